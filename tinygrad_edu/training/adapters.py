"""How each model kind trains and predicts on MNIST: the tutorial's plain gradient descent, or a Module's optimizer.

An adapter wraps a model of the one registry (tinygrad_edu.models) with the small protocol the loop and the
`predict`/`evaluate` commands use; MODELS maps each kind `train` trains to its adapter, one per way of training:

    layout, dtype                 how it wants X: "columns" (784×m, the tutorial's) or "rows" (m×784), and
                                  the float dtype of its weights
    inputs                        (mean, std): it takes pixels p as (p/255 − mean)/std; (0, 1) is the
                                  tutorial's p/255 (as_input applies it; it is saved with the weights)
    check(config)                 raises ConfigError for options the model cannot take (e.g. two hidden widths)
    create(config, rng, steps, inputs)   a fresh model, its weights drawn from rng, set up to be trained for
                                  `steps` update steps (the whole run: a schedule such as the cosine spans them)
                                  on inputs scaled by `inputs` = (mean, std) (train measures them by
                                  config.normalize: input_scaling; PIXELS for p/255)
    wrap(module, inputs)          a model rebuilt from a file (models.load) as one of these (for predicting:
                                  it has no optimizer)
    train_step(X, y)              one update on the batch by the model's own rule, which create set up from the
                                  config (the tutorial's W := W − α·dW with α = config.lr; the optimizer
                                  and schedule of the others); returns (loss before the update, predicted labels)
    evaluate(X, y)                (mean cross-entropy, predicted labels), no update
    probabilities(X)              softmax outputs, one row of 10 per example
    as_input(images)              uint8 images as its X
    state_dict(), architecture()  what checkpoint.save writes (state_dict may hold optimizer state, optim/ keys)

architecture_for(config) is the one description of the model a config makes: create builds it, and TrainConfig
sizes it (models' parameter_shapes) against the limit of a weights file before anything is drawn.
"""
from __future__ import annotations

import math

import numpy as np

from tinygrad_edu import checkpoint, datasets, manual, models, nn, optim, tutorial
from tinygrad_edu.autograd import no_grad
from tinygrad_edu.models import TutorialNetwork
from tinygrad_edu.models.text import TEXT_KINDS
from tinygrad_edu.nn import functional as F
from tinygrad_edu.tensor import Tensor
from tinygrad_edu.training.config import OPTIMIZERS, PIXELS, ConfigError, TrainConfig, inputs_entry, read_inputs

N_IN, N_OUT = 784, 10      # MNIST: 28×28 pixels in, the 10 digits out
CNN_CHANNELS = (16, 32)    # train --model cnn's convolutions' widths when config.channels is None

# kind -> the architecture of the model `train` makes of a config (models.KINDS[kind].from_architecture builds it)
ARCHITECTURES = {
    "tutorial": lambda c: {"model": "tutorial", "sizes": [N_IN, *c.hidden, N_OUT], "init": c.init, "dtype": c.dtype},
    "mlp": lambda c: {"model": "mlp", "sizes": [N_IN, *c.hidden, N_OUT], "dropout": c.dropout, "init": c.init,
                      "dtype": c.dtype},
    "cnn": lambda c: {"model": "cnn", "channels": list(c.channels or CNN_CHANNELS), "hidden": list(c.hidden),
                      "n_out": N_OUT, "init": c.init, "dtype": c.dtype},
}


def architecture_for(config: TrainConfig) -> dict:
    return ARCHITECTURES[config.model](config)


def parameter_shapes(config: TrainConfig) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (shape, dtype) of the state of the model config makes, without making it."""
    return models.KINDS[config.model].parameter_shapes(architecture_for(config))


def cross_entropy(Z, Y, axis: int = 0) -> float:
    """The mean cross-entropy of softmax(Z) against labels Y, classes on `axis` (0: the tutorial's columns), by
    the Tensor op autograd uses."""
    return Tensor(Z).softmax_cross_entropy(Y, axis=axis).item()


# NOTE: evaluating holds a few activations of chunk × width numbers at once; eval_chunk bounds them for any width
# a file may claim (within checkpoint.MAX_PARAMETERS), and keeps the usual widths in one or few chunks.
EVAL_NUMBERS = 2**23


def eval_chunk(width: int) -> int:
    """How many examples to evaluate at once in a model whose widest layer has `width` units."""
    return max(1, EVAL_NUMBERS // width)


class _Adapter:
    """What the adapters share: inputs as the model takes them, and what a weights file records."""

    layout = "rows"
    inputs = PIXELS
    module: nn.Module

    @property
    def name(self) -> str:
        return self.module.architecture()["model"]

    @property
    def dtype(self) -> np.dtype:
        return next(self.module.parameters()).dtype

    @property
    def init(self) -> str:
        return self.module.init

    def as_input(self, images: np.ndarray) -> np.ndarray:
        """uint8 images as this model's X: (pixels/255 − mean)/std by its inputs, in its dtype and layout."""
        mean, std = self.inputs
        return datasets.to_float(images, self.dtype, self.layout, mean=mean, std=std)

    def architecture(self) -> dict:
        return {**self.module.architecture(), **inputs_entry(self.inputs)}


class TutorialNet(_Adapter):
    """The tutorial's 784-H-10 network (models.TutorialNetwork: W1, b1, W2, b2, one column per image), trained by
    the tutorial's plain gradient descent, W := W − α·dW with α = lr (None: a model loaded to predict).

    `backprop="autograd"` steps with tutorial.gradient_descent_step (Tensor ops and backward()); "manual" with
    manual.py's hand-derived forward_prop, backward_prop and update_params. Both start from the same weights.
    TutorialNet(W1, b1, W2, b2) wraps a network of these weights.
    """

    layout = "columns"
    n_in, n_out = N_IN, N_OUT

    def __init__(self, W1, b1, W2, b2, init: str = "tutorial", backprop: str = "autograd", lr: float | None = None,
                 inputs: tuple[float, float] = PIXELS):
        self._hold(TutorialNetwork.from_arrays(W1, b1, W2, b2, init=init), backprop, lr, inputs)

    def _hold(self, module: TutorialNetwork, backprop: str, lr: float | None, inputs: tuple[float, float]) -> None:
        self.module, self.backprop, self.lr, self.inputs = module, backprop, lr, inputs

    @classmethod
    def wrap(cls, module: TutorialNetwork, inputs: tuple[float, float] = PIXELS, *, backprop: str = "autograd",
             lr: float | None = None) -> TutorialNet:
        net = cls.__new__(cls)
        net._hold(module, backprop, lr, inputs)
        return net

    @staticmethod
    def check(config: TrainConfig) -> None:
        if len(config.hidden) != 1:
            raise ConfigError(f"the tutorial model has exactly one hidden layer (784-H-10); got --hidden "
                              f"{','.join(map(str, config.hidden))}; use --model mlp for several")
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
        module = TutorialNetwork.from_architecture(architecture_for(config), seed=rng)
        return cls.wrap(module, inputs, backprop=config.backprop, lr=config.lr)

    @property
    def params(self) -> tutorial.Params:
        return self.module.params

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
        return self.module.state_dict()


# kind -> images evaluated at a time, so that their activations stay bounded
EVAL_ROWS = {"mlp": lambda module: min(10000, eval_chunk(max(module.sizes))),
             # NOTE: the cnn's im2col matrices, 256 × 24·24 × 25 numbers for the first conv, grow with the chunk
             "cnn": lambda module: 256}


class ModuleNet(_Adapter):
    """A model of the registry that takes rows (an MLP, a CNN: one row of 784 pixels per image) with its
    optimizer and lr schedule.

    create builds optim.SGD (with config.momentum), Adam or AdamW at config.lr, with config.weight_decay if given
    (else the optimizer's own default), and a schedule stepped after every update over the run's `steps`:
    "cosine" anneals the lr to 0 at the last step (CosineAnnealingLR, T_max = steps), "step" multiplies it by 0.1
    after each third of the run (StepLR), "none" keeps it. A model rebuilt from a file has no optimizer.
    """

    n_in, n_out = N_IN, N_OUT

    def __init__(self, module: nn.Module, optimizer: optim.Optimizer | None = None, scheduler=None,
                 inputs: tuple[float, float] = PIXELS):
        self.module, self.optimizer, self.scheduler, self.inputs = module, optimizer, scheduler, inputs

    @classmethod
    def wrap(cls, module: nn.Module, inputs: tuple[float, float] = PIXELS) -> ModuleNet:
        return cls(module, inputs=inputs)

    def eval_rows(self) -> int:
        """Images evaluated at a time (EVAL_ROWS)."""
        return EVAL_ROWS[self.name](self.module)

    @classmethod
    def check(cls, config: TrainConfig) -> None:
        if config.backprop != "autograd":
            raise ConfigError(f"--backprop {config.backprop} needs --model tutorial: the hand-derived backprop is "
                              "the tutorial network's")
        if config.dropout and "dropout" not in architecture_for(config):
            raise ConfigError(f"--dropout is for --model mlp: the {config.model} has no dropout layer")

    @classmethod
    def create(cls, config: TrainConfig, rng: np.random.Generator, steps: int,
               inputs: tuple[float, float]) -> ModuleNet:
        module = models.KINDS[config.model].from_architecture(architecture_for(config), seed=rng)
        decay = {} if config.weight_decay is None else {"weight_decay": config.weight_decay}
        momentum = {"momentum": config.momentum} if config.optimizer == "sgd" else {}
        optimizer = OPTIMIZERS[config.optimizer](module.parameters(), lr=config.lr, **momentum, **decay)
        scheduler = None
        if config.schedule == "cosine":
            scheduler = optim.CosineAnnealingLR(optimizer, T_max=steps)
        elif config.schedule == "step":
            scheduler = optim.StepLR(optimizer, step_size=math.ceil(steps / 3), gamma=0.1)
        return cls(module, optimizer, scheduler, inputs)

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


MLPNet = CNNNet = ModuleNet   # the names the mlp's and the cnn's adapters had, when each had its own

# kind -> its adapter: how `train --model KIND` trains it and the MNIST commands use it
MODELS = {"tutorial": TutorialNet, "mlp": ModuleNet, "cnn": ModuleNet}


def load_model(path):
    """(the model stored in a weights file as its adapter, the file's architecture), rebuilt from the file alone
    by the one loader (models.load_with_architecture); CheckpointError on any defect.

    Before any array is read or the model built, the architecture is checked against the arrays' headers and the
    limits, and must describe an MNIST model of MODELS (784 inputs, 10 outputs) with valid inputs scaling."""
    def mnist(architecture):
        name = architecture.get("model")
        if name in TEXT_KINDS:
            raise checkpoint.CheckpointError(f"{path}: the {name} model is a text model, which draws characters "
                                             f"rather than classifies images: use sample --weights {path}")
        if name not in MODELS:
            raise checkpoint.CheckpointError(f"{path}: model {name!r} is not one the MNIST commands take "
                                             f"({', '.join(MODELS)})")
        n_in, n_out = models.KINDS[name].in_out(architecture)
        if (n_in, n_out) != (N_IN, N_OUT):
            raise checkpoint.CheckpointError(f"{path}: the {name} model takes {n_in} inputs and gives {n_out} "
                                             f"outputs; the MNIST commands need {N_IN} (28×28 pixels) and {N_OUT} "
                                             "(the digits)")
        read_inputs(path, architecture)
        config = architecture.get("config")
        if config is not None and not isinstance(config, dict):   # train --save writes its options as an object
            raise checkpoint.CheckpointError(f"{path}: config must be a JSON object (train's options), the file "
                                             f"says {config!r}")

    module, architecture = models.load_with_architecture(path, mnist)
    check_finite(path, module)
    return MODELS[architecture["model"]].wrap(module, read_inputs(path, architecture)), architecture


def check_finite(path, module: nn.Module) -> None:
    """Refuses a model whose weights hold nan or ±inf, naming the array: every prediction of it would be
    nan (an accuracy of chance and a loss of nan, printed without a word)."""
    for name, t in module.state_dict().items():
        a = np.asarray(getattr(t, "data", t))
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            bad = ~np.isfinite(a)
            where = tuple(int(k) for k in np.argwhere(bad)[0])
            n = int(bad.sum())
            raise checkpoint.CheckpointError(
                f"{path}: {name} holds {n} {'value that is' if n == 1 else 'values that are'} not finite ({a[where]} "
                f"at {where}); a model with nan or infinite weights cannot predict")


def as_input(images: np.ndarray, model) -> np.ndarray:
    """uint8 images as the model's input: (pixels/255 − mean)/std by its `inputs` (pixels/255 unless trained
    with --normalize standard), in its dtype and layout (columns are a view of rows)."""
    return model.as_input(images)


def describe(model) -> str:
    """e.g. "tutorial 784-10-10, init tutorial, float32", or "cnn 1x28x28-c8-c16-128-10, init torch, float32"."""
    a = model.architecture()
    sizes = a["sizes"] if "sizes" in a else ["1x28x28", *(f"c{c}" for c in a["channels"]), *a["hidden"], a["n_out"]]
    text = f"{a['model']} {'-'.join(map(str, sizes))}, init {a['init']}, {a['dtype']}"
    if model.inputs != PIXELS:
        text += f", inputs (p/255 − {model.inputs[0]:.4f})/{model.inputs[1]:.4f}"
    return text
