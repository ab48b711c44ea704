"""The training loop behind `train`: the tutorial's network (by autograd or by hand) and the MLP, live progress,
a metrics history.

A model here is a class with the small protocol the loop and the `predict`/`evaluate` commands use (MODELS maps
the name stored in a weights file to it):

    layout, dtype                 how it wants X: "columns" (784×m, the tutorial's) or "rows" (m×784), and
                                  the float dtype of its weights
    inputs                        (mean, std): it takes pixels p as (p/255 − mean)/std; (0, 1) is the
                                  tutorial's p/255 (as_input applies it; it is saved with the weights)
    check(config)                 raises ConfigError for options the model cannot take (e.g. two hidden widths)
    create(config, rng, steps, inputs)   a fresh model, its weights drawn from rng, set up to be trained for
                                  `steps` update steps (the whole run: a schedule such as the cosine spans them)
                                  on inputs scaled by `inputs` = (mean, std) (train measures them by
                                  config.normalize: input_scaling; PIXELS for p/255)
    train_step(X, y)              one update on the batch by the model's own rule, which create set up from the
                                  config (the tutorial's W := W − α·dW with α = config.lr; the MLP's optimizer
                                  and schedule); returns (loss before the update, predicted labels)
    evaluate(X, y)                (mean cross-entropy, predicted labels), no update
    probabilities(X)              softmax outputs, one row of 10 per example
    state_dict(), architecture()  what checkpoint.save writes (state_dict may hold optimizer state, optim/ keys)
    expected_arrays(path, architecture)   name -> (shape, dtype) of the arrays a file's architecture claims,
                                  its claims checked against the limits without building anything
    from_checkpoint(path, arrays, architecture)   the model rebuilt from a file alone (for predicting: it has
                                  no optimizer)
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from tinygrad_edu import checkpoint, datasets, init, manual, nn, optim, tutorial
from tinygrad_edu.autograd import no_grad
from tinygrad_edu.cnn import CNN
from tinygrad_edu.files import write_atomic
from tinygrad_edu.mlp import MLP
from tinygrad_edu.nn import functional as F
from tinygrad_edu.tensor import Tensor


class ConfigError(ValueError):
    """A training configuration that cannot run (e.g. --backprop manual on a model without it); says which."""


class TrainingDiverged(ArithmeticError):
    """The loss stopped being a finite number: the learning rate is too large for this model and data."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run between two steps: model holds the weights after `step` of `total` steps (whole steps:
    the interrupt waits for the step under way), history the log so far."""

    def __init__(self, model, step: int, total: int, history: list[dict]):
        super().__init__(f"interrupted after step {step} of {total}")
        self.model, self.step, self.total, self.history = model, step, total, history


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
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        if self.init not in init.INITS:
            raise ConfigError(f"unknown init {self.init!r}; choose one of {', '.join(init.INITS)}")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"dtype must be float32 or float64, got {self.dtype!r}")
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
        MODELS[self.model].check(self)
        if (count := MODELS[self.model].parameter_count(self)) > checkpoint.MAX_PARAMETERS:
            widths = "".join(f" --{k} {','.join(map(str, getattr(self, k)))}" for k in ("channels", "hidden")
                             if getattr(self, k) is not None)
            raise ConfigError(f"--model {self.model}{widths} makes {count} parameters, more than the "
                              f"{checkpoint.MAX_PARAMETERS} a weights file can hold")

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


# --- the tutorial's network ---------------------------------------------------------------------------------


def cross_entropy(Z, Y, axis: int = 0) -> float:
    """The mean cross-entropy of softmax(Z) against labels Y, classes on `axis` (0: the tutorial's columns), by
    the Tensor op autograd uses."""
    return Tensor(Z).softmax_cross_entropy(Y, axis=axis).item()


def linear_parameters(sizes) -> int:
    """The weights and biases of Linear layers between consecutive sizes: Σ (n_in + 1)·n_out."""
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


class TutorialNet:
    """The tutorial's 784-H-10 network: W1 (H×784), b1 (H×1), W2 (10×H), b2 (10×1), one column per image.

    `backprop="autograd"` steps with tutorial.gradient_descent_step (Tensor ops and backward()); "manual" with
    manual.py's hand-derived forward_prop, backward_prop and update_params. Both start from the same weights.
    Both update by the tutorial's plain gradient descent, W := W − α·dW with α = lr (None: a model loaded to
    predict).
    """

    name = "tutorial"
    layout = "columns"
    n_in, n_out = 784, 10

    def __init__(self, W1, b1, W2, b2, init: str = "tutorial", backprop: str = "autograd", lr: float | None = None,
                 inputs: tuple[float, float] = PIXELS):
        self.params = tutorial.Params(*(Tensor(a, requires_grad=True, name=n)
                                        for a, n in zip((W1, b1, W2, b2), tutorial.Params._fields)))
        self.init, self.backprop, self.lr, self.inputs = init, backprop, lr, inputs

    @staticmethod
    def parameter_count(config: TrainConfig) -> int:
        return linear_parameters((784, *config.hidden, 10))

    @staticmethod
    def check(config: TrainConfig) -> None:
        if len(config.hidden) != 1:
            raise ConfigError(f"the tutorial model has exactly one hidden layer (784-H-10); got --hidden "
                              f"{','.join(map(str, config.hidden))}" +
                              ("; use --model mlp for several" if "mlp" in MODELS else ""))
        if config.backprop not in ("autograd", "manual"):
            raise ConfigError(f"backprop must be autograd or manual, got {config.backprop!r}")
        plain = {"optimizer": "sgd", "momentum": 0, "weight_decay": 0, "schedule": "none", "dropout": 0}
        for name, value in plain.items():
            got = getattr(config, name)
            if got is not None and got != value:
                raise ConfigError(f"--{name.replace('_', '-')} {got} needs --model mlp: the tutorial model trains by "
                                  "the tutorial's plain gradient descent (W := W − α·dW), without dropout")

    @classmethod
    def create(cls, config: TrainConfig, rng: np.random.Generator, steps: int,
               inputs: tuple[float, float]) -> TutorialNet:
        """init "tutorial" is manual.init_params (the project's one init); the others come from tinygrad_edu.init.
        Plain gradient descent needs no count of steps."""
        (hidden,) = config.hidden
        if config.init == "tutorial":
            arrays = manual.init_params(rng, config.dtype, hidden)
        else:
            arrays = (*init.linear(config.init, cls.n_in, hidden, rng, config.dtype, (hidden, 1)),
                      *init.linear(config.init, hidden, cls.n_out, rng, config.dtype, (cls.n_out, 1)))
        return cls(*arrays, init=config.init, backprop=config.backprop, lr=config.lr, inputs=inputs)

    @property
    def dtype(self) -> np.dtype:
        return self.params.W1.dtype

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        return tuple(p.data for p in self.params)

    def train_step(self, X, Y):
        lr = self.lr
        if self.backprop == "autograd":
            fwd = tutorial.gradient_descent_step(self.params, X, Y, lr)
            return fwd.loss.item(), manual.get_predictions(fwd.Z2.data)
        W1, b1, W2, b2 = self.arrays
        Z1, A1, Z2, A2 = manual.forward_prop(W1, b1, W2, b2, X)
        dW1, db1, dW2, db2, _, _ = manual.backward_prop(Z1, A1, Z2, A2, W1, W2, X, Y)
        for p, new in zip(self.params, manual.update_params(W1, b1, W2, b2, dW1, db1, dW2, db2, lr)):
            p.data = new
        return manual.cross_entropy(A2, Y), manual.get_predictions(A2)

    def _outputs(self, X, k: int) -> np.ndarray:
        """forward_prop's output k (2: Z2, 3: A2) for X's columns, a bounded number of columns at a time."""
        chunk = eval_chunk(self.params.W1.shape[0])
        return np.concatenate([manual.forward_prop(*self.arrays, X[:, i:i + chunk])[k]
                               for i in range(0, X.shape[1], chunk)] or [np.zeros((self.n_out, 0), self.dtype)],
                              axis=1)

    def evaluate(self, X, Y):
        Z2 = self._outputs(X, 2)
        return cross_entropy(Z2, Y), manual.get_predictions(Z2)

    def probabilities(self, X) -> np.ndarray:
        return self._outputs(X, 3).T

    def state_dict(self) -> dict[str, np.ndarray]:
        return dict(zip(tutorial.Params._fields, self.arrays))

    def architecture(self) -> dict:
        return {"model": self.name, "sizes": [self.n_in, self.params.W1.shape[0], self.n_out],
                "dtype": str(self.dtype), "init": self.init, **inputs_entry(self.inputs)}

    @classmethod
    def expected_arrays(cls, path, architecture: dict) -> dict[str, tuple[tuple, str]]:
        """name -> (shape, dtype) of the arrays a file's architecture claims, each claim checked (sizes
        [784, H, 10] within checkpoint.MAX_PARAMETERS, a float dtype) without allocating anything."""
        sizes, dtype = architecture.get("sizes"), architecture.get("dtype")
        if not (isinstance(sizes, list) and len(sizes) == 3 and all(type(s) is int and s > 0 for s in sizes)
                and sizes[0] == cls.n_in and sizes[2] == cls.n_out):
            raise checkpoint.CheckpointError(f"{path}: the tutorial model's sizes must be [784, H, 10], "
                                             f"the file says {sizes!r}")
        if dtype not in ("float32", "float64"):
            raise checkpoint.CheckpointError(f"{path}: dtype must be float32 or float64, the file says {dtype!r}")
        n_in, hidden, n_out = sizes
        if (n_in + n_out + 1) * hidden + n_out > checkpoint.MAX_PARAMETERS:
            raise checkpoint.CheckpointError(f"{path}: hidden width {hidden} makes more parameters than the limit "
                                             f"of {checkpoint.MAX_PARAMETERS}")
        return {"W1": ((hidden, n_in), dtype), "b1": ((hidden, 1), dtype),
                "W2": ((n_out, hidden), dtype), "b2": ((n_out, 1), dtype)}

    @classmethod
    def from_checkpoint(cls, path, arrays: dict, architecture: dict) -> TutorialNet:
        checkpoint.check_arrays(path, arrays, cls.expected_arrays(path, architecture))
        return cls(*(arrays[n] for n in tutorial.Params._fields), init=str(architecture.get("init", "unknown")),
                   inputs=read_inputs(path, architecture))


# --- the MLP ----------------------------------------------------------------------------------------------

OPTIMIZERS = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW}
SCHEDULES = ("none", "step", "cosine")


class MLPNet:
    """An mlp.MLP (784-H-...-10 nn.Linear layers, ReLU, one row per image) with its optimizer and lr schedule.

    create builds optim.SGD (with config.momentum), Adam or AdamW at config.lr, with config.weight_decay if given
    (else the optimizer's own default), and a schedule stepped after every update over the run's `steps`:
    "cosine" anneals the lr to 0 at the last step (CosineAnnealingLR, T_max = steps), "step" multiplies it by 0.1
    after each third of the run (StepLR), "none" keeps it. A model rebuilt from a file has no optimizer.
    """

    name = "mlp"
    layout = "rows"
    n_in, n_out = 784, 10

    def __init__(self, module: MLP, optimizer: optim.Optimizer | None = None, scheduler=None,
                 inputs: tuple[float, float] = PIXELS):
        self.module, self.optimizer, self.scheduler, self.inputs = module, optimizer, scheduler, inputs

    def eval_rows(self) -> int:
        """Images evaluated at a time: their activations, chunk × the widest layer, stay bounded (eval_chunk)."""
        return min(10000, eval_chunk(max(self.module.sizes)))

    @classmethod
    def parameter_count(cls, config: TrainConfig) -> int:
        return linear_parameters((cls.n_in, *config.hidden, cls.n_out))

    @classmethod
    def check(cls, config: TrainConfig) -> None:
        if config.backprop != "autograd":
            raise ConfigError(f"--backprop {config.backprop} needs --model tutorial: the hand-derived backprop is "
                              "the tutorial network's")
        if config.channels is not None and cls.name != "cnn":
            raise ConfigError(f"--channels is for --model cnn, not {config.model}")

    @classmethod
    def build(cls, config: TrainConfig, rng: np.random.Generator) -> nn.Module:
        return MLP((cls.n_in, *config.hidden, cls.n_out), dropout=config.dropout, init=config.init,
                   dtype=config.dtype, seed=rng)

    @classmethod
    def create(cls, config: TrainConfig, rng: np.random.Generator, steps: int,
               inputs: tuple[float, float]) -> MLPNet:
        module = cls.build(config, rng)
        decay = {} if config.weight_decay is None else {"weight_decay": config.weight_decay}
        momentum = {"momentum": config.momentum} if config.optimizer == "sgd" else {}
        optimizer = OPTIMIZERS[config.optimizer](module.parameters(), lr=config.lr, **momentum, **decay)
        scheduler = None
        if config.schedule == "cosine":
            scheduler = optim.CosineAnnealingLR(optimizer, T_max=steps)
        elif config.schedule == "step":
            scheduler = optim.StepLR(optimizer, step_size=math.ceil(steps / 3), gamma=0.1)
        return cls(module, optimizer, scheduler, inputs)

    @property
    def dtype(self) -> np.dtype:
        return next(self.module.parameters()).dtype

    @property
    def init(self) -> str:
        return self.module.init

    def train_step(self, X, y):
        logits = self.module(X)
        loss = F.cross_entropy(logits, y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.item(), logits.data.argmax(axis=1)

    @no_grad()
    def logits(self, X, chunk: int | None = None) -> np.ndarray:
        """The outputs for X's rows in eval mode (no dropout), chunk rows at a time (default: eval_rows()), as one
        array."""
        chunk = chunk or self.eval_rows()
        self.module.eval()
        try:
            return np.concatenate([self.module(X[i:i + chunk]).data for i in range(0, len(X), chunk)]
                                  or [np.zeros((0, self.n_out), self.dtype)])
        finally:
            self.module.train()

    def evaluate(self, X, y):
        Z = self.logits(X)
        return cross_entropy(Z, y, axis=1), Z.argmax(axis=1)

    def probabilities(self, X) -> np.ndarray:
        return Tensor(self.logits(X)).softmax(axis=1).data

    def state_dict(self) -> dict[str, np.ndarray]:
        """The weights, and the optimizer's and schedule's state under optim/ keys (nn.load_optimizer_state
        reads them back)."""
        return nn.checkpoint_arrays(self.module, self.optimizer, self.scheduler)

    def architecture(self) -> dict:
        return {**self.module.architecture(), **inputs_entry(self.inputs)}

    @classmethod
    def expected_arrays(cls, path, architecture: dict) -> dict[str, tuple[tuple, str]]:
        """name -> (shape, dtype) of the arrays a file's architecture claims, each claim checked (sizes
        [784, ..., 10], nn's limits) without allocating anything."""
        sizes, dtype = architecture.get("sizes"), architecture.get("dtype")
        if not (isinstance(sizes, list) and len(sizes) >= 2 and sizes[0] == cls.n_in and sizes[-1] == cls.n_out):
            raise checkpoint.CheckpointError(f"{path}: the mlp model's sizes must be [784, ..., 10], the file says "
                                             f"{sizes!r}")
        if dtype not in ("float32", "float64"):
            raise checkpoint.CheckpointError(f"{path}: dtype must be float32 or float64, the file says {dtype!r}")
        return nn.expected_parameters(path, architecture)

    @classmethod
    def from_checkpoint(cls, path, arrays: dict, architecture: dict) -> MLPNet:
        cls.expected_arrays(path, architecture)
        return cls(nn.from_checkpoint(path, arrays, architecture), inputs=read_inputs(path, architecture))


class CNNNet(MLPNet):
    """A cnn.CNN (LeNet-style: two 5×5 convolutions with ReLU and 2×2 max-pooling, then Linear layers), trained
    as MLPNet is (its optimizers and schedules). config.channels sets the convolutions' widths, config.hidden
    the Linear layers'. It takes the same rows of 784 pixels (as 1×28×28 images), and evaluates 256 images at
    a time: their im2col matrices are the memory that grows with the chunk."""

    name = "cnn"
    channels = (16, 32)   # when config.channels is None: train --model cnn's default

    def eval_rows(self) -> int:
        return 256   # NOTE: their im2col matrices, 256 × 24·24 × 25 numbers for the first conv, grow with the chunk

    @classmethod
    def parameter_count(cls, config: TrainConfig) -> int:
        """The convolutions' kernels and biases, then the Linear layers from the flattened c₂×4×4 features."""
        (c1, c2), k = config.channels or cls.channels, 5
        side = ((28 - k + 1) // 2 - k + 1) // 2
        return c1 * (k * k + 1) + c2 * (c1 * k * k + 1) + linear_parameters((c2 * side * side, *config.hidden, 10))

    @classmethod
    def check(cls, config: TrainConfig) -> None:
        super().check(config)
        if config.dropout:
            raise ConfigError("--dropout is for --model mlp: the cnn has no dropout layer")

    @classmethod
    def build(cls, config: TrainConfig, rng: np.random.Generator) -> nn.Module:
        return CNN(config.channels or cls.channels, config.hidden, cls.n_out, init=config.init, dtype=config.dtype,
                   seed=rng)

    @classmethod
    def expected_arrays(cls, path, architecture: dict) -> dict[str, tuple[tuple, str]]:
        """name -> (shape, dtype) of the arrays a file's architecture claims (two channel widths, hidden widths,
        a float dtype, nn's limits), computed without allocating anything."""
        channels, hidden, dtype = (architecture.get(k) for k in ("channels", "hidden", "dtype"))
        if not (isinstance(channels, list) and len(channels) == 2 and isinstance(hidden, list)
                and all(type(c) is int and c > 0 for c in channels + hidden)):
            raise checkpoint.CheckpointError(f"{path}: the cnn's channels must be two widths and hidden a list of "
                                             f"widths, the file says {channels!r} and {hidden!r}")
        if dtype not in ("float32", "float64"):
            raise checkpoint.CheckpointError(f"{path}: dtype must be float32 or float64, the file says {dtype!r}")
        if architecture.get("n_out", cls.n_out) != cls.n_out:
            raise checkpoint.CheckpointError(f"{path}: the cnn must have {cls.n_out} outputs (MNIST's digits), the "
                                             f"file says n_out {architecture.get('n_out')!r}")
        return nn.expected_parameters(path, architecture)


MODELS = {"tutorial": TutorialNet, "mlp": MLPNet, "cnn": CNNNet}


def model_class(path, architecture: dict):
    """The class of MODELS a file's architecture names; CheckpointError for another."""
    name = architecture.get("model")
    if name not in MODELS:
        raise checkpoint.CheckpointError(f"{path}: model {name!r} is not one this version knows "
                                         f"({', '.join(MODELS)})")
    return MODELS[name]


def load_model(path):
    """The model stored in a weights file, rebuilt from the file alone; CheckpointError on any defect.

    The architecture is checked against the arrays' headers (and the models' limits) before any array is read
    or the model built, so a file claiming a huge model is refused without allocating it."""
    def check(architecture, headers):
        checkpoint.check_arrays(path, headers, model_class(path, architecture).expected_arrays(path, architecture))

    arrays, architecture = checkpoint.load(path, check, optimizer=False)
    return model_class(path, architecture).from_checkpoint(path, arrays, architecture), architecture


# NOTE: evaluating holds a few activations of chunk × width numbers at once; eval_chunk bounds them for any width
# a file may claim (within checkpoint.MAX_PARAMETERS), and keeps the usual widths in one or few chunks.
EVAL_NUMBERS = 2**23


def eval_chunk(width: int) -> int:
    """How many examples to evaluate at once in a model whose widest layer has `width` units."""
    return max(1, EVAL_NUMBERS // width)


def describe(model) -> str:
    """e.g. "tutorial 784-10-10, init tutorial, float32", or "cnn 1x28x28-c8-c16-128-10, init torch, float32"."""
    a = model.architecture()
    sizes = a["sizes"] if "sizes" in a else ["1x28x28", *(f"c{c}" for c in a["channels"]), *a["hidden"], a["n_out"]]
    text = f"{a['model']} {'-'.join(map(str, sizes))}, init {a['init']}, {a['dtype']}"
    if model.inputs != PIXELS:
        text += f", inputs (p/255 − {model.inputs[0]:.4f})/{model.inputs[1]:.4f}"
    return text


# --- data ---------------------------------------------------------------------------------------------------

LOADERS = {"mnist": datasets.load_mnist, "fashion-mnist": datasets.load_fashion_mnist}


def load_data(dataset: str = "mnist", root=None, download: bool = True, progress: bool = True):
    """(X_train, y_train), (X_test, y_test) of the named data set, uint8 as the loader gives them."""
    if dataset not in LOADERS:
        raise ConfigError(f"unknown dataset {dataset!r}; choose one of {', '.join(LOADERS)}")
    return LOADERS[dataset](root, download=download, progress=progress)


def split_validation(data, n: int):
    """((X_train, y_train), (X_eval, y_eval)) with the last n training images held out as the evaluation set
    (views, no copy); n = 0 gives data back, evaluated on its test set."""
    (X_train, y_train), test = data
    if not n:
        return data
    if n >= len(y_train):
        raise ConfigError(f"--validation {n} leaves no images to train on: the training set has {len(y_train)}")
    split = len(y_train) - n
    return (X_train[:split], y_train[:split]), (X_train[split:], y_train[split:])


def as_input(images: np.ndarray, model) -> np.ndarray:
    """uint8 images as the model's input: (pixels/255 − mean)/std by its `inputs` (pixels/255 unless trained
    with --normalize standard), in its dtype and layout (columns are a view of rows)."""
    mean, std = model.inputs
    return datasets.to_float(images, model.dtype, model.layout, mean=mean, std=std)


# --- progress -----------------------------------------------------------------------------------------------


class Progress:
    """Live status on a stream (stderr): redrawn in place on a terminal, one line per log entry otherwise."""

    def __init__(self, stream=None, quiet: bool = False, min_interval: float = 0.1, prefix: str = ""):
        self.stream = sys.stderr if stream is None else stream
        self.prefix = prefix   # of warnings, e.g. "tinygrad-edu train: "
        self.quiet = quiet
        self.tty = not quiet and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.min_interval, self._last, self._open = min_interval, -math.inf, False

    def message(self, text: str) -> None:
        """A line of its own (e.g. what is about to be trained)."""
        if not self.quiet:
            self._end_line()
            print(text, file=self.stream, flush=True)

    def update(self, text: str, log: bool = False, keep: bool = False) -> None:
        """The current status. Terminal: redrawn at most every min_interval (always when log or keep), and kept
        as a line of its own when keep. Otherwise: printed only when log or keep."""
        if self.quiet:
            return
        if not self.tty:
            if log or keep:
                print(text, file=self.stream, flush=True)
            return
        now = time.perf_counter()
        if log or keep or now - self._last >= self.min_interval:
            self.stream.write(f"\r{text}\x1b[K")
            self.stream.flush()
            self._last, self._open = now, True
            if keep:
                self._end_line()

    def warn(self, text: str) -> None:
        """A warning: a line of its own, printed even when quiet (quiet silences progress, not warnings)."""
        self._end_line()
        print(f"{self.prefix}warning: {text}", file=self.stream, flush=True)

    def close(self) -> None:
        self._end_line()

    def _end_line(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


# --- divergence ---------------------------------------------------------------------------------------------

# A run is called diverging, early and without stopping it, when its history shows either (docs/cli.md):
LOSS_FACTOR = 2.0      # the logged loss above LOSS_FACTOR × the first logged loss (step 1's, before any update)
LOSS_POINTS = 3        # ... at LOSS_POINTS log points in a row, or
ACCURACY_FLOOR = 0.2   # the logged train accuracy below ACCURACY_FLOOR (chance is 0.1) at a log point at or after
ACCURACY_AFTER = 50    # max(one epoch, ACCURACY_AFTER steps)
# When the accuracy is that low but the logged loss has fallen at every log point, the run is not diverging but
# learning slowly (an lr too small): the warning says so, and suggests a larger --lr instead.
SLOW = "the run is learning slowly"


def divergence(history: list[dict], steps_per_epoch: int) -> str | None:
    """What the newest entry of a run's history shows of divergence, in words (None if nothing), by the rules
    above. A pure function of the entries' step, loss and train_accuracy: calling it on each prefix of a recorded
    history replays what `train` saw as it ran."""
    if not history:
        return None
    first, last = history[0], history[-1]
    recent = history[1:][-LOSS_POINTS:]
    if len(recent) == LOSS_POINTS and all(e["loss"] > LOSS_FACTOR * first["loss"] for e in recent):
        return (f"the loss is {last['loss']:.4g} at step {last['step']}, above {LOSS_FACTOR:g} × its first value "
                f"({first['loss']:.4g} at step {first['step']}) at {LOSS_POINTS} log points in a row")
    if last["step"] >= max(steps_per_epoch, ACCURACY_AFTER) and last["train_accuracy"] < ACCURACY_FLOOR:
        seen = (f"train accuracy is {last['train_accuracy']:.4f} at step {last['step']}, below {ACCURACY_FLOOR:g} "
                f"(chance is 0.1)")
        if len(history) > 1 and all(b["loss"] < a["loss"] for a, b in zip(history, history[1:])):
            seen += (f" while the loss falls at every log point ({first['loss']:.4g} at step {first['step']}, "
                     f"{last['loss']:.4g} now): {SLOW}")
        return seen
    return None


def divergence_advice(seen: str, lr: float) -> str:
    """The warning train prints once for what divergence() saw: what, and what to try."""
    if seen.endswith(SLOW):
        return f"{seen}; try a larger --lr, e.g. --lr {lr * 10:g} (this run goes on)"
    return (f"{seen}: the run looks like it is diverging; try a smaller --lr, e.g. --lr {lr / 10:g} "
            f"(this run goes on)")


# --- the loop -----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class TrainResult:
    """A finished run. evaluated_on is "test", or "validation" when config.validation held images out: then
    test_accuracy is None (the test set was not looked at) and validation_accuracy is set, and the history's
    entries carry validation_accuracy in place of test_accuracy."""
    model: object
    train_accuracy: float
    test_accuracy: float | None
    final_loss: float
    iterations: int
    epochs: float
    seconds: float
    history: list[dict]
    evaluated_on: str = "test"
    validation_accuracy: float | None = None
    warning: str | None = None   # the divergence warning, if the run printed one


def train(config: TrainConfig, data, progress: Progress | None = None) -> TrainResult:
    """Trains config.model on data = ((X_train, y_train), (X_test, y_test)) (uint8 images, as load_mnist gives).

    default_rng(config.seed) draws the initial weights (so init "tutorial" gives manual.init_params(seed); the
    MLP's dropout masks come after them from the same stream) and default_rng([config.seed, 1]) each epoch's
    shuffle, so the batches do not depend on the init. Full batch (no batch_size): every step is one epoch over all
    the training images, in order. With batch_size: minibatches, reshuffled each epoch; the last batch of an epoch
    may be smaller. Each step is the model's train_step (its own update rule; create gets the total step count).

    The history gets an entry at step 1, every log_every steps, at the end of each epoch of minibatches and at the
    last step. Its loss and train_accuracy come from the steps' own forward passes (before their updates), so
    they cost nothing: in full batch, those of the entry's step, on the whole training set; with minibatches, the
    average over the batches since the previous entry. Entries that end an epoch (every entry in full batch) also
    carry test_accuracy of the weights after that step; every entry has the seconds since the start. At the end,
    train and test accuracy and final_loss (the mean cross-entropy on the whole training set) are those of the
    final weights.

    config.validation = N holds out the last N training images: the model trains on the others and is evaluated
    on those N wherever the test set would be (validation_accuracy in the history and the result); the test set
    is not used. config.normalize = "standard" scales the inputs by the mean and std of the pixels it trains on.

    At each history entry, divergence() looks for a run going wrong; the first time it sees one, progress.warn
    says what and what to try, once, and the run goes on (TrainResult.warning keeps the line). A loss that is not
    a finite number raises TrainingDiverged. In the main thread, a Ctrl-C lets the step under way finish and then
    raises TrainingInterrupted, which holds the model (a second Ctrl-C interrupts at once).
    """
    progress = progress or Progress(quiet=True)
    (X_train, y_train), (X_eval, y_eval) = split_validation(data, config.validation)
    evaluated_on = "validation" if config.validation else "test"
    eval_key = f"{evaluated_on}_accuracy"
    inputs = input_scaling(config, X_train)
    n = len(y_train)
    full = config.batch_size is None
    per_epoch = 1 if full else math.ceil(n / config.batch_size)
    total = config.iterations if config.iterations is not None else config.epochs * per_epoch
    n_epochs = math.ceil(total / per_epoch)
    model = MODELS[config.model].create(config, np.random.default_rng(config.seed), total, inputs)
    shuffle = np.random.default_rng([config.seed, 1])   # its own stream: the batches do not depend on the init
    # NOTE: minibatches are drawn from the rows (each image contiguous) and viewed in the model's layout.
    rows = datasets.to_float(X_train, model.dtype, mean=model.inputs[0], std=model.inputs[1])   # as as_input
    view = np.transpose if model.layout == "columns" else np.asarray
    X, Xe = view(rows), as_input(X_eval, model)
    log_every = config.log_every or (10 if full else 100)

    history: list[dict] = []
    step, loss_sum, correct, seen = 0, 0.0, 0, 0
    start = time.perf_counter()

    def status(epoch, evaluated=None):
        where = f"iteration {step}/{total}" if full else f"epoch {epoch}/{n_epochs} step {step}/{total}"
        text = f"{where} | loss {loss_sum / seen:.4f} | train acc {correct / seen:.4f}"
        text += "" if evaluated is None else f" | {evaluated_on} acc {evaluated:.4f}"
        return text + f" | {time.perf_counter() - start:.1f} s"

    def epoch_batches():
        return [(rows, y_train)] if full else datasets.minibatches(rows, y_train, config.batch_size, seed=shuffle)

    def diverged(loss, step):
        raise TrainingDiverged(f"the loss became {loss} at step {step}: training diverged; "
                               f"try a smaller --lr than {config.lr}")

    warning = None
    # NOTE: a diverging run is reported by diverged(), not by numpy's overflow warnings.
    with np.errstate(over="ignore", invalid="ignore"), contextlib.closing(progress), \
            interrupt_between_steps() as interrupted:
        for epoch in range(1, n_epochs + 1):
            for i, (Xb, yb) in enumerate(epoch_batches(), 1):
                loss, predictions = model.train_step(view(Xb), yb)
                step += 1
                if not math.isfinite(loss):
                    diverged(loss, step)
                if full:   # each step sees the whole training set: its own numbers are exact, average none
                    loss_sum, correct, seen = 0.0, 0, 0
                loss_sum += loss * len(yb)
                correct += int(np.count_nonzero(predictions == yb))
                seen += len(yb)
                last, epoch_end = step == total, not full and i == per_epoch
                if step == 1 or step % log_every == 0 or epoch_end or last:
                    entry = {"step": step, "epoch": epoch, "loss": loss_sum / seen, "train_accuracy": correct / seen}
                    if (full or epoch_end) and not last:
                        entry[eval_key] = accuracy(model, Xe, y_eval)
                    entry["seconds"] = time.perf_counter() - start
                    history.append(entry)
                    progress.update(status(epoch, entry.get(eval_key)), log=True, keep=epoch_end and not last)
                    loss_sum, correct, seen = 0.0, 0, 0
                    if warning is None and (sign := divergence(history, per_epoch)):
                        warning = divergence_advice(sign, config.lr)
                        progress.warn(warning)
                else:
                    progress.update(status(epoch))
                if last:   # NOTE: a Ctrl-C during the last step comes too late to lose anything: the run finishes
                    break
                if interrupted():
                    raise TrainingInterrupted(model, step, total, history)

        final_loss, train_predictions = model.evaluate(X, y_train)
        if not math.isfinite(final_loss):
            diverged(final_loss, step)
        eval_accuracy = accuracy(model, Xe, y_eval)
    history[-1][eval_key] = eval_accuracy
    seconds = time.perf_counter() - start
    return TrainResult(model, float(np.mean(train_predictions == y_train)),
                       eval_accuracy if evaluated_on == "test" else None, final_loss, step, step / per_epoch, seconds,
                       history, evaluated_on, eval_accuracy if evaluated_on == "validation" else None, warning)


@contextlib.contextmanager
def interrupt_between_steps():
    """Within: the first Ctrl-C (SIGINT) is only noted, for the loop to stop at the end of the step under way
    (yields a function saying whether it came); a second one interrupts at once. Outside the main thread, where
    Python cannot take signals, nothing changes."""
    came = False

    def note(signum, frame):
        nonlocal came
        if came:
            raise KeyboardInterrupt
        came = True

    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) in (
            signal.SIG_IGN, None):   # NOTE: an ignored SIGINT (e.g. `cmd &` in a script) stays ignored
        yield lambda: False
        return
    previous = signal.signal(signal.SIGINT, note)
    try:
        yield lambda: came
    finally:
        signal.signal(signal.SIGINT, previous)


def accuracy(model, X, y) -> float:
    """The fraction of examples whose predicted label is y."""
    return float(np.mean(model.evaluate(X, y)[1] == y))


def write_json(path, obj) -> Path:
    """Writes obj as JSON to path atomically (a temporary file in the same folder, then a rename)."""
    return write_atomic(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))
