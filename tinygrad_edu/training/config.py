"""What decides a training run (TrainConfig, its checks and ConfigError) and how a model takes pixels."""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from tinygrad_edu import checkpoint, datasets, init, optim
from tinygrad_edu.dtypes import MODEL_DTYPES


class ConfigError(ValueError):
    """A training configuration that cannot run (e.g. --backprop manual on a model without it); says which."""


OPTIMIZERS = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW}
SCHEDULES = ("none", "step", "cosine")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; stored in the metrics JSON and in the weights file."""
    model: str = "tutorial"
    hidden: tuple[int, ...] = (10,)
    channels: tuple[int, ...] | None = None   # the cnn's two convolutions' widths (None: CNN's default)
    init: str = "tutorial"
    lr: float = 0.1
    batch_size: int | None = None        # None: full batch, one step per epoch
    iterations: int | None = 500         # exactly one of iterations and epochs
    epochs: int | None = None
    backprop: str = "autograd"
    optimizer: str = "sgd"
    momentum: float = 0.0
    weight_decay: float | None = None    # None: the optimizer's own default (0; 0.01 for adamw)
    schedule: str = "none"               # the lr over the run, stepped every iteration
    dropout: float = 0.0
    normalize: str = "none"              # "none": p/255; "standard": (p/255 − mean)/std, the training pixels'
                                         # own mean and std
    validation: int = 0                  # hold out this many training images (the last) as the evaluation set
    seed: int = 0
    dtype: str = "float32"
    dataset: str = "mnist"
    log_every: int | None = None         # None: every 10 steps in full batch, every 100 with minibatches

    def __post_init__(self):
        if (self.iterations is None) == (self.epochs is None):
            raise ConfigError("give either iterations or epochs, not both and not neither")
        # NOTE: the models' own checks are the adapters', which build on this module's names: imported here
        from tinygrad_edu.training import adapters

        MODELS = adapters.MODELS
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        if self.init not in init.INITS:
            raise ConfigError(f"unknown init {self.init!r}; choose one of {', '.join(init.INITS)}")
        if self.dtype not in MODEL_DTYPES:
            raise ConfigError(f"dtype must be {' or '.join(MODEL_DTYPES)}, got {self.dtype}")
        for name in ("batch_size", "iterations", "epochs", "log_every"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be an integer ≥ 1, got {value!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a positive number, got {self.lr!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        for name in ("momentum", "weight_decay"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a number ≥ 0, got {value!r}")
        if self.momentum and self.optimizer != "sgd":
            raise ConfigError(f"momentum is for --optimizer sgd, not {self.optimizer} (Adam's β₁ is its momentum)")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be a probability in [0, 1), got {self.dropout!r}")
        if self.normalize not in NORMALIZATIONS:
            raise ConfigError(f"unknown normalize {self.normalize!r}; choose one of {', '.join(NORMALIZATIONS)}")
        if isinstance(self.validation, bool) or not isinstance(self.validation, int) or self.validation < 0:
            raise ConfigError(f"validation must be a number of images ≥ 0, got {self.validation!r}")
        if not self.hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden):
            raise ConfigError(f"hidden must be widths ≥ 1, got {self.hidden!r}")
        if self.channels is not None and (len(self.channels) != 2 or any(
                isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in self.channels)):
            raise ConfigError(f"channels must be two widths ≥ 1 (the two convolutions'), got {self.channels!r}")
        if self.channels is not None and self.model != "cnn":
            raise ConfigError(f"--channels is for --model cnn, not {self.model}")
        MODELS[self.model].check(self)
        widths = "".join(f" --{k} {','.join(map(str, getattr(self, k)))}" for k in ("channels", "hidden")
                         if getattr(self, k) is not None)
        try:
            checkpoint.check_parameter_count(adapters.parameter_shapes(self), f"--model {self.model}{widths}")
        except ValueError as e:
            raise ConfigError(e) from None

    def as_dict(self) -> dict:
        """The configuration as a JSON-able dict (hidden and channels as lists)."""
        channels = None if self.channels is None else list(self.channels)
        return {**dataclasses.asdict(self), "hidden": list(self.hidden), "channels": channels}


# --- inputs -----------------------------------------------------------------------------------------------

# How a model takes pixels p: as (p/255 − mean)/std. "none" keeps the tutorial's p/255; "standard" uses the
# mean and std of the training images' pixels (datasets.pixel_stats), which the weights file then records, so
# that predict and evaluate scale new images the same way.
NORMALIZATIONS = ("none", "standard")
PIXELS = (0.0, 1.0)


def inputs_entry(inputs: tuple[float, float]) -> dict:
    """The architecture's record of a model's input scaling."""
    mean, std = inputs
    return {"inputs": {"mean": float(mean), "std": float(std)}}


def read_inputs(path, architecture: dict) -> tuple[float, float]:
    """The (mean, std) a weights file records; p/255 for a file without one (saved before the option)."""
    entry = architecture.get("inputs", {"mean": 0.0, "std": 1.0})
    mean, std = (entry.get(k) if isinstance(entry, dict) else None for k in ("mean", "std"))
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (mean, std)) \
            or std <= 0:
        raise checkpoint.CheckpointError(f"{path}: inputs must be {{\"mean\": number, \"std\": number > 0}}, "
                                         f"the file says {entry!r}")
    try:   # NOTE: float32, the narrowest model dtype: what is usable there is usable in float64
        datasets.check_scaling(mean, std, np.float32)
    except ValueError:
        raise checkpoint.CheckpointError(f"{path}: inputs {entry!r} cannot scale pixels: the std is too small (or "
                                         "the mean too large) for (p/255 − mean)/std to stay finite in "
                                         "float32") from None
    return float(mean), float(std)


def input_scaling(config: TrainConfig, X_train: np.ndarray) -> tuple[float, float]:
    """(mean, std) for config.normalize, measured on the training images X_train (uint8) when "standard"."""
    if config.normalize == "none":
        return PIXELS
    mean, std = datasets.pixel_stats(X_train)
    if std == 0:
        raise ConfigError(f"--normalize standard: every training pixel has the value {round(mean * 255)}, so "
                          "their std is 0 and they cannot be standardised")
    return mean, std
