"""Modules and layers with PyTorch's layouts, defaults and names (Module, Linear, Sequential, ...), and saving them.

A model is a Module whose attributes hold its parameters and its sub-modules, directly or inside lists, tuples
and dicts; `parameters()` finds them by walking those attributes, so nothing needs registering:

    class MLP(nn.Module):
        def __init__(self):
            self.layers = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
        def forward(self, x):
            return self.layers(x)

    [name for name, p in MLP().named_parameters()]  ->  ['layers.0.weight', 'layers.0.bias', 'layers.2.weight', ...]

A parameter is a `Parameter`, or any other leaf Tensor that requires grad. Each parameter is listed once, under
the first name the walk reaches it by, even when several modules share it (tied weights). A `Buffer` is state
that is not trained (BatchNorm's running statistics): `named_buffers()` finds it by the same walk, and
`state_dict()` holds both, each module's parameters then its buffers, in PyTorch's order and names.
"""
from __future__ import annotations

import importlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from tinygrad_edu import checkpoint, init
from tinygrad_edu.autograd import ShapeError
from tinygrad_edu.nn import functional
from tinygrad_edu.tensor import Tensor, as_generator, as_pair

__all__ = ["AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Buffer", "Conv2d", "Dropout", "ELU", "Embedding", "Flatten",
           "GELU", "LayerNorm", "LeakyReLU", "Linear", "LogSigmoid", "MaxPool2d", "Module", "Parameter", "ReLU",
           "Sequential", "SiLU", "Sigmoid", "Softplus", "Tanh",
           "checkpoint_arrays", "from_checkpoint", "functional", "load", "load_optimizer_state", "save"]


class Parameter(Tensor):
    """A Tensor that is a model's parameter: requires grad by default, and is found by `Module.parameters()`
    even when frozen (requires_grad=False)."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True, dtype=None, name: str | None = None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, name=name)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Buffer(Tensor):
    """A Tensor that is part of a module's state but not trained (running statistics, counters), as
    torch.nn.Buffer: never requires grad, is not in `parameters()`, is in `state_dict()` and `named_buffers()`."""

    __slots__ = ()

    def __init__(self, data, dtype=None, name: str | None = None):
        super().__init__(data, requires_grad=False, dtype=dtype, name=name)


def _is_parameter(t: Tensor) -> bool:
    return isinstance(t, Parameter) or (t.requires_grad and t.is_leaf)


def _is_buffer(t: Tensor) -> bool:
    return isinstance(t, Buffer)


def _reachable(value, name: str, inside: tuple = ()) -> Iterator[tuple[str, object]]:
    """(name, x) for each Module or Tensor x in value, looking inside lists, tuples and dicts (`inside`: the
    containers on the way here, so a list that contains itself is not entered again)."""
    if isinstance(value, (Module, Tensor)):
        yield name, value
    elif isinstance(value, (list, tuple, dict)) and not any(value is c for c in inside):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for k, v in items:
            yield from _reachable(v, f"{name}.{k}", (*inside, value))


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of models and layers: subclasses set attributes in __init__ and define forward(...).

    Calling the module calls forward. `training` is True until eval() (it switches off Dropout).
    Unlike PyTorch, calling super().__init__() is optional.
    """

    training = True

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward(...)")

    # --- the walk ---

    def _children(self, prefix: str) -> Iterator[tuple[str, object]]:
        for attr, value in vars(self).items():
            yield from _reachable(value, f"{prefix}.{attr}" if prefix else attr)

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(name, module) for this module ("") and every sub-module, depth first, each module once."""
        seen: set[int] = set()

        def visit(module: Module, name: str):
            seen.add(id(module))
            yield name, module
            for sub, x in module._children(name):
                if isinstance(x, Module) and id(x) not in seen:
                    yield from visit(x, sub)

        return visit(self, prefix)

    def modules(self) -> Iterator[Module]:
        return (m for _, m in self.named_modules())

    def _named_tensors(self, prefix: str, *kinds) -> Iterator[tuple[str, Tensor]]:
        """(name, tensor) for each tensor one of `kinds` (predicates) accepts, module by module, and within a
        module the first kind's tensors first (PyTorch's order: a module's parameters, then its buffers)."""
        seen: set[int] = set()
        for name, module in self.named_modules(prefix):
            tensors = [(sub, x) for sub, x in module._children(name) if isinstance(x, Tensor)]
            for kind in kinds:
                for sub, x in tensors:
                    if kind(x) and id(x) not in seen:
                        seen.add(id(x))
                        yield sub, x

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """(name, parameter) in PyTorch's order and names (`layers.0.weight`), each parameter once."""
        return self._named_tensors(prefix, _is_parameter)

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """(name, buffer) for each Buffer (`0.running_mean`), each once, in PyTorch's order and names."""
        return self._named_tensors(prefix, _is_buffer)

    def buffers(self) -> Iterator[Tensor]:
        return (b for _, b in self.named_buffers())

    def _named_state(self) -> Iterator[tuple[str, Tensor]]:
        """What state_dict holds: each module's parameters, then its buffers."""
        return self._named_tensors("", _is_parameter, _is_buffer)

    def parameters(self) -> Iterator[Tensor]:
        return (p for _, p in self.named_parameters())

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clears every parameter's .grad (to None, or to zeros with set_to_none=False), as PyTorch does."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad[...] = 0

    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    # --- state ---

    def state_dict(self) -> dict[str, np.ndarray]:
        """{name: a copy of the array} of every parameter and buffer (each module's parameters, then its buffers).
        (PyTorch shares storage; a copy is a safe snapshot.)"""
        return {name: p.data.copy() for name, p in self._named_state()}

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copies arrays into the parameters and buffers in place (so optimizers holding them stay valid, and each
        one's version goes up), cast to each one's dtype. Shapes must match; with strict, the names too."""
        params = dict(self._named_state())
        missing = [k for k in params if k not in state_dict]
        unexpected = [k for k in state_dict if k not in params]
        if strict and (missing or unexpected):
            raise RuntimeError(f"load_state_dict: the names do not match the model's: missing {missing}, "
                               f"unexpected {unexpected}")
        for name, p in params.items():
            if name in state_dict:
                value = np.asarray(getattr(state_dict[name], "data", state_dict[name]))
                if value.shape != p.shape:
                    raise ShapeError(f"load_state_dict: {name} has shape {p.shape} in the model but {value.shape} "
                                     "in the state dict")
                p.data[...] = value
                p._bump_version()
        return IncompatibleKeys(missing, unexpected)

    # --- architecture (for save/load) ---

    def architecture(self) -> dict:
        """A JSON-able description from which `from_architecture` rebuilds this model (before its weights)."""
        raise NotImplementedError(f"{type(self).__name__} does not describe its architecture, so it cannot be "
                                  "saved with nn.save; save its state_dict() instead, or use Sequential")

    # --- printing ---

    def extra_repr(self) -> str:
        """The settings inside the printed Layer(...): those _config records, as PyTorch prints them."""
        config = self._config() if hasattr(self, "_config") else {}
        return ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in config.items())

    def __repr__(self) -> str:
        return self._repr(())

    def _repr(self, outer: tuple) -> str:
        """The repr, with `outer` the modules it is nested in: one of them met again (a reference to a parent)
        prints as a back-reference instead of recursing forever."""
        lines = []
        for attr, value in vars(self).items():
            for name, x in _reachable(value, attr):
                if not isinstance(x, Module):
                    continue
                if x is self or any(x is m for m in outer):
                    text = f"<{type(x).__name__}, the enclosing module above>"
                elif type(x).__repr__ is Module.__repr__:
                    text = x._repr((*outer, self))
                else:
                    text = repr(x)
                lines.append(f"({name}): " + text.replace("\n", "\n  "))
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ")" if not lines else head + "\n  " + "\n  ".join(lines) + "\n)"


# --- layers -------------------------------------------------------------------------------------------------


class Linear(Module):
    """y = x·Wᵀ + b, with x batch×in_features, weight W out_features×in_features and bias b out_features.

    init (formulas in tinygrad_edu.init): "torch" (default, PyTorch's: W and b ~ U(±1/√in_features)),
    "he" (W ~ N(0, 2/in_features), b = 0), "xavier" (W ~ U(±√(6/(in + out))), b = 0), "tutorial"
    (W and b ~ U[−0.5, 0.5)). seed is an int, None, or a numpy.random.Generator (the weight is drawn first);
    dtype defaults to float32.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, dtype=None,
                 init: str = "torch", seed=None):
        self.in_features, self.out_features, self.init = in_features, out_features, init
        W, b = _init_linear(init, in_features, out_features, as_generator(seed), np.dtype(dtype or np.float32))
        self.weight = Parameter(W)
        self.bias = Parameter(b) if bias else None

    def forward(self, x):
        if np.shape(x)[-1:] != (self.in_features,):
            raise ShapeError(f"Linear(in_features={self.in_features}): the input's last axis must hold the "
                             f"{self.in_features} features, got an input of shape {np.shape(x)}")
        return functional.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def _config(self) -> dict:
        return {"in_features": self.in_features, "out_features": self.out_features, "bias": self.bias is not None,
                "dtype": str(self.weight.dtype), "init": self.init}


def _init_linear(name, fan_in, fan_out, rng, dtype):
    if name not in init.INITS:
        raise ValueError(f"Linear: unknown init {name!r}; choose one of {', '.join(init.INITS)}")
    return init.linear(name, fan_in, fan_out, rng, dtype)


class ReLU(Module):
    def forward(self, x):
        return functional.relu(x)


class Tanh(Module):
    def forward(self, x):
        return functional.tanh(x)


class Sigmoid(Module):
    def forward(self, x):
        return functional.sigmoid(x)


def _number(layer: str, name: str, value, positive: bool = False) -> float:
    """A constructor's real-number argument as a float; ValueError naming the layer otherwise (so a file's bad
    spec fails as it loads)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or (
            value != value or (positive and not value > 0)):   # NOTE: value != value is nan
        raise ValueError(f"{layer}: {name} must be a {'positive ' if positive else ''}number, got {value!r}")
    return float(value)


class LeakyReLU(Module):
    """x for x > 0, negative_slope·x elsewhere (F.leaky_relu)."""

    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = _number("LeakyReLU", "negative_slope", negative_slope)

    def forward(self, x):
        return functional.leaky_relu(x, self.negative_slope)

    def _config(self) -> dict:
        return {"negative_slope": self.negative_slope}


class ELU(Module):
    """x for x > 0, α(eˣ − 1) elsewhere (F.elu)."""

    def __init__(self, alpha: float = 1.0):
        self.alpha = _number("ELU", "alpha", alpha)

    def forward(self, x):
        return functional.elu(x, self.alpha)

    def _config(self) -> dict:
        return {"alpha": self.alpha}


class GELU(Module):
    """x·Φ(x), exact (erf) by default or approximate="tanh" (F.gelu)."""

    def __init__(self, approximate: str = "none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return functional.gelu(x, self.approximate)

    def _config(self) -> dict:
        return {"approximate": self.approximate}


class SiLU(Module):
    """x·σ(x) (F.silu)."""

    def forward(self, x):
        return functional.silu(x)


class Softplus(Module):
    """log(1 + exp(β·x))/β, and x where β·x > threshold (F.softplus)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        self.beta = _number("Softplus", "beta", beta, positive=True)
        self.threshold = _number("Softplus", "threshold", threshold)

    def forward(self, x):
        return functional.softplus(x, self.beta, self.threshold)

    def _config(self) -> dict:
        return {"beta": self.beta, "threshold": self.threshold}


class LogSigmoid(Module):
    """log σ(x), stable for any x (F.log_sigmoid)."""

    def forward(self, x):
        return functional.log_sigmoid(x)


class Dropout(Module):
    """Inverted dropout while training (zero with probability p, scale the rest by 1/(1 − p)); identity in eval."""

    def __init__(self, p: float = 0.5, *, seed=None):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p}")
        self.p = p
        self.rng = as_generator(seed)

    def forward(self, x):
        return functional.dropout(x, self.p, self.training, seed=self.rng)

    def _config(self) -> dict:
        return {"p": self.p}


class Flatten(Module):
    """Reshapes axes start_dim..end_dim into one: N×28×28 images become N×784 rows."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return (x if isinstance(x, Tensor) else Tensor(x)).flatten(self.start_dim, self.end_dim)

    def _config(self) -> dict:
        return {"start_dim": self.start_dim, "end_dim": self.end_dim}


class Conv2d(Module):
    """out = bias + Σ_c input[:, c] ⋆ weight[:, c] on N×C×H×W images (F.conv2d), as torch.nn.Conv2d.

    weight is out_channels×in_channels×kh×kw, bias out_channels; kernel_size, stride and padding are an int or an
    (h, w) pair, kept as pairs. init as Linear's, with fan_in = in_channels·kh·kw (tinygrad_edu.init.conv2d):
    "torch" (default) is PyTorch's kaiming-uniform with a = √5, W and b ~ U(±1/√fan_in).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True, *,
                 dtype=None, init: str = "torch", seed=None):
        self.in_channels, self.out_channels, self.init = in_channels, out_channels, init
        self.kernel_size = as_pair("Conv2d", "kernel_size", kernel_size, 1)
        self.stride = as_pair("Conv2d", "stride", stride, 1)
        self.padding = as_pair("Conv2d", "padding", padding, 0)
        W, b = _init_conv2d(init, in_channels, out_channels, self.kernel_size, as_generator(seed),
                            np.dtype(dtype or np.float32))
        self.weight = Parameter(W)
        self.bias = Parameter(b) if bias else None

    def forward(self, x):
        if np.ndim(x) != 4 or np.shape(x)[1] != self.in_channels:
            raise ShapeError(f"Conv2d(in_channels={self.in_channels}): the input must be N×{self.in_channels}×H×W, "
                             f"got shape {np.shape(x)}")
        return functional.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, bias={self.bias is not None}")

    def _config(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding),
                "bias": self.bias is not None, "dtype": str(self.weight.dtype), "init": self.init}


def _init_conv2d(name, in_channels, out_channels, kernel_size, rng, dtype):
    if name not in init.INITS:
        raise ValueError(f"Conv2d: unknown init {name!r}; choose one of {', '.join(init.INITS)}")
    return init.conv2d(name, in_channels, out_channels, kernel_size, rng, dtype)


class MaxPool2d(Module):
    """The maximum of each kernel_size window, stride apart (default: kernel_size), as torch.nn.MaxPool2d."""

    def __init__(self, kernel_size, stride=None):
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        for name in ("kernel_size", "stride"):   # NOTE: checked here, so a file's bad spec fails as it loads
            as_pair(type(self).__name__, name, getattr(self, name), 1)

    def forward(self, x):
        return functional.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"

    def _config(self) -> dict:
        return {"kernel_size": self.kernel_size, "stride": self.stride}


class AvgPool2d(MaxPool2d):
    """The mean of each kernel_size window, stride apart (default: kernel_size), as torch.nn.AvgPool2d."""

    def forward(self, x):
        return functional.avg_pool2d(x, self.kernel_size, self.stride)


def _positive_int(layer: str, name: str, value) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)) or value < 1:
        raise ValueError(f"{layer}: {name} must be an integer ≥ 1, got {value!r}")
    return int(value)


def _layer_dtype(layer: str, dtype) -> np.dtype:
    dtype = np.dtype(dtype or np.float32)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"{layer}: dtype must be float32 or float64, got {dtype}")
    return dtype


def _check_eps(layer: str, eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"{layer}: eps must be a number ≥ 0, got {eps!r}")
    return float(eps)


class _BatchNorm(Module):
    """Batch normalisation over channel axis 1 (F.batch_norm), with PyTorch's parameters, buffers and updates.

    train(): each channel is normalised by the batch's mean and biased variance; running_mean and running_var
    move towards the batch's mean and unbiased variance by momentum (by 1/num_batches_tracked, a cumulative
    average, when momentum is None), and num_batches_tracked counts the batches. eval(): the running statistics
    normalise instead. weight (γ, ones) and bias (β, zeros) scale and shift each channel when affine (bias=False:
    no shift, as PyTorch 2.x). With track_running_stats=False there are no buffers and the batch's statistics are
    used in eval() too.
    """

    _inputs = ""   # the input layouts, for the errors

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, *, bias: bool = True, dtype=None):
        layer = type(self).__name__
        self.num_features = _positive_int(layer, "num_features", num_features)
        self.eps = _check_eps(layer, eps)
        if momentum is not None and (isinstance(momentum, bool) or not isinstance(momentum, (int, float))):
            raise ValueError(f"{layer}: momentum must be a number or None, got {momentum!r}")
        for name, flag in (("affine", affine), ("bias", bias), ("track_running_stats", track_running_stats)):
            if not isinstance(flag, bool):
                raise ValueError(f"{layer}: {name} must be True or False, got {flag!r}")
        self.momentum, self.affine, self.track_running_stats = momentum, affine, track_running_stats
        dtype = _layer_dtype(layer, dtype)
        C = self.num_features
        self.weight = Parameter(np.ones(C, dtype)) if affine else None
        self.bias = Parameter(np.zeros(C, dtype)) if affine and bias else None
        if track_running_stats:
            self.running_mean = Buffer(np.zeros(C, dtype))
            self.running_var = Buffer(np.ones(C, dtype))
            self.num_batches_tracked = Buffer(np.array(0, np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, x):
        shape = np.shape(x)
        if len(shape) not in self._ndims or shape[1] != self.num_features:
            raise ShapeError(f"{type(self).__name__}({self.num_features}): expects an input "
                             f"{self._inputs.format(C=self.num_features)} (channels on axis 1), got shape {shape}")
        momentum = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            self.num_batches_tracked._bump_version()
            momentum = 1.0 / int(self.num_batches_tracked.data) if self.momentum is None else self.momentum
        use_batch = self.training or not self.track_running_stats
        try:
            return functional.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                         training=use_batch, momentum=momentum, eps=self.eps)
        except ShapeError as e:   # NOTE: a batch of one: name the layer
            raise ShapeError(f"{type(self).__name__}({self.num_features}): {e}") from None

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")

    def _config(self) -> dict:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "affine": self.affine, "bias": self.bias is not None or not self.affine,
                "track_running_stats": self.track_running_stats, "dtype": str(self._dtype())}

    def _dtype(self) -> np.dtype:
        held = self.weight if self.weight is not None else self.running_mean
        return held.dtype if held is not None else np.dtype(np.float32)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of N×C or N×C×L inputs, per channel, as torch.nn.BatchNorm1d (see _BatchNorm)."""
    _ndims, _inputs = (2, 3), "N×{C} or N×{C}×L"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of N×C×H×W images, per channel, as torch.nn.BatchNorm2d (see _BatchNorm)."""
    _ndims, _inputs = (4,), "N×{C}×H×W"


class LayerNorm(Module):
    """Normalises each example over its last axes (normalized_shape) by its own mean and biased variance, then
    scales by weight (ones) and shifts by bias (zeros), as torch.nn.LayerNorm (F.layer_norm). Same in eval()."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True, *,
                 dtype=None):
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else normalized_shape
        if not isinstance(shape, (tuple, list)) or not shape:
            raise ValueError(f"LayerNorm: normalized_shape must be an integer or a non-empty tuple of them, got "
                             f"{normalized_shape!r}")
        self.normalized_shape = tuple(_positive_int("LayerNorm", "normalized_shape", n) for n in shape)
        self.eps = _check_eps("LayerNorm", eps)
        for name, flag in (("elementwise_affine", elementwise_affine), ("bias", bias)):
            if not isinstance(flag, bool):
                raise ValueError(f"LayerNorm: {name} must be True or False, got {flag!r}")
        self.elementwise_affine = elementwise_affine
        dtype = _layer_dtype("LayerNorm", dtype)
        self.weight = Parameter(np.ones(self.normalized_shape, dtype)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype)) if elementwise_affine and bias else None
        self._dtype = dtype

    def forward(self, x):
        k = len(self.normalized_shape)
        if np.shape(x)[np.ndim(x) - k:] != self.normalized_shape or np.ndim(x) < k:
            raise ShapeError(f"LayerNorm({self.normalized_shape}): the input's last axes must be "
                             f"{self.normalized_shape}, got shape {np.shape(x)}")
        return functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")

    def _config(self) -> dict:
        return {"normalized_shape": list(self.normalized_shape), "eps": self.eps,
                "elementwise_affine": self.elementwise_affine,
                "bias": self.bias is not None or not self.elementwise_affine, "dtype": str(self._dtype)}


class Embedding(Module):
    """A lookup table: row i of weight (num_embeddings×embedding_dim) for each integer index i (F.embedding), as
    torch.nn.Embedding. weight ~ N(0, 1), as PyTorch; seed is an int, None, or a numpy.random.Generator."""

    def __init__(self, num_embeddings: int, embedding_dim: int, *, dtype=None, seed=None):
        self.num_embeddings = _positive_int("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = _positive_int("Embedding", "embedding_dim", embedding_dim)
        dtype = _layer_dtype("Embedding", dtype)
        weight = as_generator(seed).standard_normal((self.num_embeddings, self.embedding_dim))
        self.weight = Parameter(weight.astype(dtype))

    def forward(self, input):
        indices = functional.check_indices(input, self.num_embeddings,
                                           f"Embedding({self.num_embeddings}, {self.embedding_dim})")
        return functional.embedding(indices, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"

    def _config(self) -> dict:
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim,
                "dtype": str(self.weight.dtype)}


class Sequential(Module):
    """Applies its modules in order; they are named "0", "1", ... as in PyTorch (so `0.weight`)."""

    def __init__(self, *modules: Module):
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, not a Module")
            setattr(self, str(i), m)

    def __len__(self) -> int:
        return sum(1 for k in vars(self) if k.isdigit())

    def __getitem__(self, i: int | slice) -> Module:
        """The i-th module, or for a slice a new Sequential of those modules (shared, not copied), named 0, 1, ...
        by their new positions (PyTorch keeps the old names; here a name is always the position)."""
        n = len(self)
        if isinstance(i, slice):
            return Sequential(*(vars(self)[str(k)] for k in range(n)[i]))
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"Sequential: indices must be integers or slices, not {type(i).__name__}")
        if not -n <= i < n:
            raise IndexError(f"Sequential: index {i} is out of range for {n} modules")
        return vars(self)[str(i % n)]

    def __iter__(self) -> Iterator[Module]:
        return (self[i] for i in range(len(self)))

    def forward(self, x):
        for m in self:
            x = m(x)
        return x

    def architecture(self) -> dict:
        layers = []
        for m in self:
            if type(m) not in _LAYERS.values():
                raise NotImplementedError(f"Sequential: {type(m).__name__} is not a built-in layer, so the model "
                                          "cannot be rebuilt from a file; save its state_dict() instead")
            layers.append({"type": type(m).__name__, **(m._config() if hasattr(m, "_config") else {})})
        return {"model": "sequential", "layers": layers}

    @classmethod
    def from_architecture(cls, arch: dict, *, seed=None) -> Sequential:
        """The model of architecture(); seed (an int, None or a Generator) draws the layers' weights and
        dropout masks, in order."""
        rng = as_generator(seed)
        modules = []
        for spec in arch["layers"]:
            spec = dict(spec)
            kind = spec.pop("type")
            if kind not in _LAYERS:
                raise ValueError(f"unknown layer type {kind!r}; known: {', '.join(_LAYERS)}")
            modules.append(_LAYERS[kind](**spec, **({"seed": rng} if kind in _SEEDED else {})))
        return cls(*modules)

    @classmethod
    def parameter_shapes(cls, arch: dict) -> dict[str, tuple[tuple[int, ...], str]]:
        """name -> (shape, dtype) of the state_dict entries (parameters and buffers) from_architecture(arch) would
        make, from the layers' specs alone: nothing is allocated, so a file's architecture is checked against its
        arrays (and against checkpoint.MAX_PARAMETERS) before the model is built. ValueError for a spec that is not
        a layer's."""
        layers = arch["layers"]
        if not isinstance(layers, list):
            raise ValueError(f"layers must be a list, got {layers!r}")
        shapes = {}
        for i, spec in enumerate(layers):
            if not isinstance(spec, dict) or spec.get("type") not in _LAYERS:
                raise ValueError(f"layer {i} is not a known layer's spec: {spec!r}")
            kind = spec["type"]
            if kind in _STATE_SHAPES:
                shapes.update({f"{i}.{name}": shape for name, shape in _STATE_SHAPES[kind](i, spec).items()})
                continue
            if kind not in ("Linear", "Conv2d"):
                continue
            n_in, n_out = (spec.get(k) for k in (("in_features", "out_features") if kind == "Linear"
                                                   else ("in_channels", "out_channels")))
            kernel = () if kind == "Linear" else spec.get("kernel_size")
            bias, dtype = spec.get("bias", True), spec.get("dtype", "float32")
            if not all(type(n) is int and n >= 1 for n in (n_in, n_out)) or type(bias) is not bool \
                    or dtype not in ("float32", "float64") or not (
                    kind == "Linear" or (isinstance(kernel, list) and len(kernel) == 2
                                         and all(type(k) is int and k >= 1 for k in kernel))):
                sizes = "in_features and out_features ≥ 1" if kind == "Linear" else \
                    "in_channels and out_channels ≥ 1, a kernel_size pair"
                raise ValueError(f"layer {i}: {kind} needs {sizes}, bias true or false and dtype float32 or "
                                 f"float64, got {spec!r}")
            if kind == "Conv2d":   # NOTE: padding beyond kernel − 1 adds only outputs that see no pixel at all
                padding = spec.get("padding", [0, 0])
                if not (isinstance(padding, list) and len(padding) == 2 and all(
                        type(p) is int and 0 <= p < k for p, k in zip(padding, kernel))):
                    raise ValueError(f"layer {i}: Conv2d's padding must be a pair of integers from 0 to the "
                                     f"kernel_size − 1, got {spec!r}")
            shapes[f"{i}.weight"] = ((n_out, n_in, *kernel), dtype)
            if bias:
                shapes[f"{i}.bias"] = ((n_out,), dtype)
        count = sum(math.prod(shape) for shape, _ in shapes.values())
        if count > checkpoint.MAX_PARAMETERS:
            raise ValueError(f"its layers hold {count} parameters, more than the limit of "
                             f"{checkpoint.MAX_PARAMETERS}")
        return shapes


def _spec_dtype(i: int, spec: dict) -> str:
    dtype = spec.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"layer {i}: {spec.get('type')} needs dtype float32 or float64, got {spec!r}")
    return dtype


def _spec_int(i: int, spec: dict, key: str) -> int:
    n = spec.get(key)
    if type(n) is not int or n < 1:
        raise ValueError(f"layer {i}: {spec.get('type')} needs {key} ≥ 1, got {spec!r}")
    return n


def _spec_flag(i: int, spec: dict, key: str) -> bool:
    flag = spec.get(key, True)
    if type(flag) is not bool:
        raise ValueError(f"layer {i}: {spec.get('type')} needs {key} true or false, got {spec!r}")
    return flag


def _batch_norm_shapes(i: int, spec: dict) -> dict:
    C, dtype = _spec_int(i, spec, "num_features"), _spec_dtype(i, spec)
    affine, bias = _spec_flag(i, spec, "affine"), _spec_flag(i, spec, "bias")
    shapes = {"weight": ((C,), dtype)} if affine else {}
    if affine and bias:
        shapes["bias"] = ((C,), dtype)
    if _spec_flag(i, spec, "track_running_stats"):
        shapes.update(running_mean=((C,), dtype), running_var=((C,), dtype), num_batches_tracked=((), "int64"))
    return shapes


def _layer_norm_shapes(i: int, spec: dict) -> dict:
    shape = spec.get("normalized_shape")
    if not (isinstance(shape, list) and shape and all(type(n) is int and n >= 1 for n in shape)):
        raise ValueError(f"layer {i}: LayerNorm needs normalized_shape, a list of integers ≥ 1, got {spec!r}")
    dtype, affine, bias = _spec_dtype(i, spec), _spec_flag(i, spec, "elementwise_affine"), _spec_flag(i, spec, "bias")
    shapes = {"weight": (tuple(shape), dtype)} if affine else {}
    if affine and bias:
        shapes["bias"] = (tuple(shape), dtype)
    return shapes


def _embedding_shapes(i: int, spec: dict) -> dict:
    return {"weight": ((_spec_int(i, spec, "num_embeddings"), _spec_int(i, spec, "embedding_dim")),
                       _spec_dtype(i, spec))}


# layer type -> the shapes and dtypes of its state_dict entries, from its spec alone (Sequential.parameter_shapes)
_STATE_SHAPES = {"BatchNorm1d": _batch_norm_shapes, "BatchNorm2d": _batch_norm_shapes,
                 "LayerNorm": _layer_norm_shapes, "Embedding": _embedding_shapes}
_SEEDED = ("Linear", "Conv2d", "Dropout", "Embedding")   # the layers that draw from the seed, in order
_LAYERS = {c.__name__: c for c in (Linear, ReLU, Tanh, Sigmoid, Dropout, Flatten, Conv2d, MaxPool2d, AvgPool2d,
                                   LeakyReLU, ELU, GELU, SiLU, Softplus, LogSigmoid,
                                   BatchNorm1d, BatchNorm2d, LayerNorm, Embedding)}

# --- saving and loading ---------------------------------------------------------------------------------------
#
# One .npz (tinygrad_edu.checkpoint's format): the model's arrays by parameter name, its architecture() as JSON,
# and optionally optimizer state under optim/: `optim/state.<i>.<key>` arrays (i = the parameter's position in
# the optimizer's groups) and `optim/meta`, a JSON string with the optimizer's class, param_groups and the
# scheduler's state.

# model name in the architecture -> "module:class" with from_architecture(arch)
MODELS = {"sequential": "tinygrad_edu.nn:Sequential", "mlp": "tinygrad_edu.mlp:MLP",
          "cnn": "tinygrad_edu.cnn:CNN"}
_META = checkpoint.OPTIM_PREFIX + "meta"


def save(model: Module, path, optimizer=None, scheduler=None) -> Path:
    """Writes model (architecture and weights) and, if given, the optimizer's and scheduler's state to path."""
    return checkpoint.save(path, checkpoint_arrays(model, optimizer, scheduler), model.architecture())


def checkpoint_arrays(model: Module, optimizer=None, scheduler=None) -> dict[str, np.ndarray]:
    """The arrays `save` writes: the model's state_dict and, given an optimizer, its state (and the scheduler's)
    under optim/ keys. For callers that add their own entries to the architecture (the `train` command)."""
    arrays = model.state_dict()
    if optimizer is not None:
        sd = optimizer.state_dict()
        for i, entries in sd["state"].items():
            for key, value in entries.items():
                arrays[f"{checkpoint.OPTIM_PREFIX}state.{i}.{key}"] = np.asarray(value)
        meta = {"optimizer": type(optimizer).__name__, "param_groups": sd["param_groups"],
                "scheduler": None if scheduler is None else
                {"type": type(scheduler).__name__, **scheduler.state_dict()}}
        arrays[_META] = np.array(json.dumps(meta))
    return arrays


def _model_class(name, path):
    if name not in MODELS:
        raise checkpoint.CheckpointError(f"{path}: unknown model {name!r} in the architecture; known: "
                                         f"{', '.join(MODELS)}")
    module, cls = MODELS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def load(path) -> Module:
    """The model saved at path, rebuilt from its architecture, with its weights (names, shapes, dtypes checked,
    from the arrays' headers, before anything is built or read)."""
    def check(architecture, headers):
        checkpoint.check_arrays(path, headers, expected_parameters(path, architecture))

    arrays, architecture = checkpoint.load(path, check, optimizer=False)
    return from_checkpoint(path, arrays, architecture)


def expected_parameters(path, architecture: dict) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (shape, dtype) of the model a file's architecture describes, computed without building it;
    CheckpointError (naming path) for an architecture that is not one."""
    cls = _model_class(architecture.get("model"), path)
    try:
        return cls.parameter_shapes(architecture)
    except (KeyError, TypeError, ValueError) as e:
        raise checkpoint.CheckpointError(f"{path}: cannot rebuild the model from its architecture: {e}") from None


def from_checkpoint(path, arrays: dict[str, np.ndarray], architecture: dict) -> Module:
    """The model rebuilt from what checkpoint.load(path) returned; path is only for the error messages.
    The arrays are checked against the architecture before the model is built."""
    cls = _model_class(architecture.get("model"), path)
    checkpoint.check_arrays(path, arrays, expected_parameters(path, architecture))
    try:
        model = cls.from_architecture(architecture)
    except (KeyError, TypeError, ValueError) as e:
        raise checkpoint.CheckpointError(f"{path}: cannot rebuild the model from its architecture {architecture}: "
                                         f"{e}") from None
    checkpoint.check_arrays(path, arrays, {n: (p.shape, p.dtype) for n, p in model._named_state()})
    model.load_state_dict({k: a for k, a in arrays.items() if not k.startswith(checkpoint.OPTIM_PREFIX)})
    return model


def load_optimizer_state(path, optimizer, scheduler=None) -> None:
    """Restores the optimizer (and scheduler) state saved at path into ones built like the saved ones, over the
    loaded model's parameters: `model = nn.load(p); opt = optim.Adam(model.parameters()); load_optimizer_state(p, opt)`.

    Everything is checked before anything is changed: the meta entry's form, each hyperparameter against the
    type of the optimizer's own, each state array's name, parameter and dtype. Any defect is a CheckpointError.
    """
    arrays, _ = checkpoint.load(path)
    if _META not in arrays:
        raise checkpoint.CheckpointError(f"{path}: holds no optimizer state (it was saved without an optimizer)")
    meta = checkpoint.read_json(path, _META, arrays[_META])

    def bad(what):
        return checkpoint.CheckpointError(f"{path}: corrupt optimizer state: {what}")

    if not isinstance(meta, dict) or not {"optimizer", "param_groups", "scheduler"} <= set(meta):
        raise bad("the meta entry must be an object with optimizer, param_groups and scheduler")
    if meta["optimizer"] != type(optimizer).__name__:
        raise checkpoint.CheckpointError(f"{path}: holds {meta['optimizer']} state, not {type(optimizer).__name__}")
    groups, ours = meta["param_groups"], optimizer.state_dict()["param_groups"]
    if not isinstance(groups, list) or len(groups) != len(ours):
        raise bad(f"param_groups must be a list of {len(ours)} groups")
    for k, (group, own) in enumerate(zip(groups, ours)):
        if not isinstance(group, dict) or not set(own) <= set(group):
            raise bad(f"param group {k} must have the keys {sorted(own)}")
        if not (isinstance(group["params"], list) and all(type(i) is int for i in group["params"])):
            raise bad(f"param group {k}: params must be a list of parameter numbers")
        for key, value in group.items():
            like = own.get(key, 0.0)   # a key this optimizer lacks (a schedule's initial_lr) holds a number
            if key != "params" and not _same_kind(value, like):
                raise bad(f"param group {k}: {key} is {value!r}, not like this optimizer's {like!r}")
    n = sum(len(g["params"]) for g in ours)
    state: dict[int, dict] = {}
    prefix = checkpoint.OPTIM_PREFIX + "state."
    for key, value in arrays.items():
        if not key.startswith(checkpoint.OPTIM_PREFIX) or key == _META:
            continue
        i, _, name = key[len(prefix):].partition(".")
        if not key.startswith(prefix) or not i.isdigit() or int(i) >= n or not name:
            raise bad(f"{key!r} is not optim/state.<i>.<name> with i < {n}")
        if value.dtype.kind not in "biuf":
            raise bad(f"{key!r} is {value.dtype}, not numbers")
        state.setdefault(int(i), {})[name] = value
    if scheduler is not None:
        saved, own = meta["scheduler"], scheduler.state_dict()
        if not isinstance(saved, dict) or saved.get("type") != type(scheduler).__name__:
            raise checkpoint.CheckpointError(f"{path}: holds no {type(scheduler).__name__} state")
        saved = {k: v for k, v in saved.items() if k != "type"}
        if set(saved) != set(own) or not all(_same_kind(saved[k], own[k]) for k in own):
            raise bad(f"the {type(scheduler).__name__} state must have {sorted(own)}, like this scheduler's "
                      f"{own!r}; the file says {saved!r}")
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, TypeError, KeyError, IndexError) as e:
        raise checkpoint.CheckpointError(f"{path}: {e}") from None
    if scheduler is not None:
        scheduler.load_state_dict(saved)


def _same_kind(value, own) -> bool:
    """Whether a value read from JSON can stand for `own`: a number for a number, a bool for a bool, a list of
    the same length for a tuple or list (item by item), None for None, a string for a string."""
    if isinstance(own, bool) or own is None or isinstance(own, str):
        return type(value) is type(own)
    if isinstance(own, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(own, (list, tuple)):
        return isinstance(value, list) and len(value) == len(own) and all(map(_same_kind, value, own))
    return False
