"""The built-in layers (Linear, Conv2d, BatchNorm, ...) and Sequential, each registered in nn.specs' one table.

Each layer checks its arguments with its `arguments` classmethod (nn.specs' checks), which a file's spec goes
through too, and gives the shapes of its state from those arguments alone (`state_shapes`), so a file's
architecture is sized before anything is built.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from tinygrad_edu import init as inits
from tinygrad_edu.autograd import ShapeError
from tinygrad_edu.nn import functional, specs
from tinygrad_edu.nn.module import Buffer, Module, Parameter
from tinygrad_edu.tensor import Tensor, as_generator


class Layer(Module):
    """A built-in layer: a Module with checked arguments and state shapes known before it is built (nn.specs).
    The defaults here are a layer's without arguments and without state."""

    @classmethod
    def arguments(cls) -> dict:
        """The constructor's arguments (all but seed) checked and normalised; ValueError naming what is wrong."""
        return {}

    @classmethod
    def state_shapes(cls, **arguments) -> dict[str, tuple[tuple[int, ...], str]]:
        """name -> (shape, dtype) of the parameters and buffers a layer of these checked arguments has."""
        return {}


def _weight_and_bias(weight: tuple[int, ...], bias: bool, dtype: np.dtype) -> dict:
    shapes = {"weight": (weight, str(dtype))}
    return {**shapes, "bias": ((weight[0],), str(dtype))} if bias else shapes


@specs.layer
class Linear(Layer):
    """y = x·Wᵀ + b, with x batch×in_features, weight W out_features×in_features and bias b out_features.

    init (formulas in tinygrad_edu.init): "torch" (default, PyTorch's: W and b ~ U(±1/√in_features)),
    "he" (W ~ N(0, 2/in_features), b = 0), "xavier" (W ~ U(±√(6/(in + out))), b = 0), "tutorial"
    (W and b ~ U[−0.5, 0.5)). seed is an int, None, or a numpy.random.Generator (the weight is drawn first);
    dtype is float32 (default) or float64.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, dtype=None,
                 init: str = "torch", seed=None):
        a = self.arguments(in_features, out_features, bias, dtype=dtype, init=init)
        self.in_features, self.out_features, self.init = a["in_features"], a["out_features"], a["init"]
        W, b = inits.linear(self.init, self.in_features, self.out_features, as_generator(seed), a["dtype"])
        self.weight = Parameter(W)
        self.bias = Parameter(b) if a["bias"] else None

    @classmethod
    def arguments(cls, in_features, out_features, bias=True, *, dtype=None, init="torch") -> dict:
        return {"in_features": specs.positive_int("Linear", "in_features", in_features),
                "out_features": specs.positive_int("Linear", "out_features", out_features),
                "bias": specs.flag("Linear", "bias", bias), "dtype": specs.model_dtype("Linear", dtype),
                "init": specs.choice("Linear", "init", init, inits.INITS)}

    @classmethod
    def state_shapes(cls, in_features, out_features, bias, dtype, init) -> dict:
        return _weight_and_bias((out_features, in_features), bias, dtype)

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


@specs.layer
class ReLU(Layer):
    def forward(self, x):
        return functional.relu(x)


@specs.layer
class Tanh(Layer):
    def forward(self, x):
        return functional.tanh(x)


@specs.layer
class Sigmoid(Layer):
    def forward(self, x):
        return functional.sigmoid(x)


@specs.layer
class LeakyReLU(Layer):
    """x for x > 0, negative_slope·x elsewhere (F.leaky_relu)."""

    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = self.arguments(negative_slope)["negative_slope"]

    @classmethod
    def arguments(cls, negative_slope=0.01) -> dict:
        return {"negative_slope": specs.number("LeakyReLU", "negative_slope", negative_slope)}

    def forward(self, x):
        return functional.leaky_relu(x, self.negative_slope)

    def _config(self) -> dict:
        return {"negative_slope": self.negative_slope}


@specs.layer
class ELU(Layer):
    """x for x > 0, α(eˣ − 1) elsewhere (F.elu)."""

    def __init__(self, alpha: float = 1.0):
        self.alpha = self.arguments(alpha)["alpha"]

    @classmethod
    def arguments(cls, alpha=1.0) -> dict:
        return {"alpha": specs.number("ELU", "alpha", alpha)}

    def forward(self, x):
        return functional.elu(x, self.alpha)

    def _config(self) -> dict:
        return {"alpha": self.alpha}


@specs.layer
class GELU(Layer):
    """x·Φ(x), exact (erf) by default or approximate="tanh" (F.gelu)."""

    def __init__(self, approximate: str = "none"):
        self.approximate = self.arguments(approximate)["approximate"]

    @classmethod
    def arguments(cls, approximate="none") -> dict:
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        return {"approximate": approximate}

    def forward(self, x):
        return functional.gelu(x, self.approximate)

    def _config(self) -> dict:
        return {"approximate": self.approximate}


@specs.layer
class SiLU(Layer):
    """x·σ(x) (F.silu)."""

    def forward(self, x):
        return functional.silu(x)


@specs.layer
class Softplus(Layer):
    """log(1 + exp(β·x))/β, and x where β·x > threshold (F.softplus)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        a = self.arguments(beta, threshold)
        self.beta, self.threshold = a["beta"], a["threshold"]

    @classmethod
    def arguments(cls, beta=1.0, threshold=20.0) -> dict:
        return {"beta": specs.number("Softplus", "beta", beta, positive=True),
                "threshold": specs.number("Softplus", "threshold", threshold)}

    def forward(self, x):
        return functional.softplus(x, self.beta, self.threshold)

    def _config(self) -> dict:
        return {"beta": self.beta, "threshold": self.threshold}


@specs.layer
class LogSigmoid(Layer):
    """log σ(x), stable for any x (F.log_sigmoid)."""

    def forward(self, x):
        return functional.log_sigmoid(x)


@specs.layer
class Dropout(Layer):
    """Inverted dropout while training (zero with probability p, scale the rest by 1/(1 − p)); identity in eval."""

    def __init__(self, p: float = 0.5, *, seed=None):
        self.p = self.arguments(p)["p"]
        self.rng = as_generator(seed)

    @classmethod
    def arguments(cls, p=0.5) -> dict:
        return {"p": specs.probability("Dropout", "p", p)}

    def forward(self, x):
        return functional.dropout(x, self.p, self.training, seed=self.rng)

    def _config(self) -> dict:
        return {"p": self.p}


@specs.layer
class Flatten(Layer):
    """Reshapes axes start_dim..end_dim into one: N×28×28 images become N×784 rows."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        a = self.arguments(start_dim, end_dim)
        self.start_dim, self.end_dim = a["start_dim"], a["end_dim"]

    @classmethod
    def arguments(cls, start_dim=1, end_dim=-1) -> dict:
        return {"start_dim": specs.integer("Flatten", "start_dim", start_dim),
                "end_dim": specs.integer("Flatten", "end_dim", end_dim)}

    def forward(self, x):
        return (x if isinstance(x, Tensor) else Tensor(x)).flatten(self.start_dim, self.end_dim)

    def _config(self) -> dict:
        return {"start_dim": self.start_dim, "end_dim": self.end_dim}


@specs.layer
class Conv2d(Layer):
    """out = bias + Σ_c input[:, c] ⋆ weight[:, c] on N×C×H×W images (F.conv2d), as torch.nn.Conv2d.

    weight is out_channels×in_channels×kh×kw, bias out_channels; kernel_size, stride and padding are an int or an
    (h, w) pair, kept as pairs, with padding at most kernel_size − 1 on each side. init as Linear's, with
    fan_in = in_channels·kh·kw (tinygrad_edu.init.conv2d): "torch" (default) is PyTorch's kaiming-uniform with
    a = √5, W and b ~ U(±1/√fan_in).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True, *,
                 dtype=None, init: str = "torch", seed=None):
        a = self.arguments(in_channels, out_channels, kernel_size, stride, padding, bias, dtype=dtype, init=init)
        self.in_channels, self.out_channels, self.init = a["in_channels"], a["out_channels"], a["init"]
        self.kernel_size, self.stride, self.padding = a["kernel_size"], a["stride"], a["padding"]
        W, b = inits.conv2d(self.init, self.in_channels, self.out_channels, self.kernel_size, as_generator(seed),
                            a["dtype"])
        self.weight = Parameter(W)
        self.bias = Parameter(b) if a["bias"] else None

    @classmethod
    def arguments(cls, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, *, dtype=None,
                  init="torch") -> dict:
        kernel = specs.pair("Conv2d", "kernel_size", kernel_size, 1)
        pad = specs.pair("Conv2d", "padding", padding, 0)
        if not all(p < k for p, k in zip(pad, kernel)):   # NOTE: more adds only outputs that see no pixel at all
            raise ValueError(f"Conv2d: padding must be at most kernel_size − 1 on each side ({kernel[0] - 1}, "
                             f"{kernel[1] - 1} here), got {padding!r}")
        return {"in_channels": specs.positive_int("Conv2d", "in_channels", in_channels),
                "out_channels": specs.positive_int("Conv2d", "out_channels", out_channels),
                "kernel_size": kernel, "stride": specs.pair("Conv2d", "stride", stride, 1), "padding": pad,
                "bias": specs.flag("Conv2d", "bias", bias), "dtype": specs.model_dtype("Conv2d", dtype),
                "init": specs.choice("Conv2d", "init", init, inits.INITS)}

    @classmethod
    def state_shapes(cls, in_channels, out_channels, kernel_size, stride, padding, bias, dtype, init) -> dict:
        return _weight_and_bias((out_channels, in_channels, *kernel_size), bias, dtype)

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


@specs.layer
class MaxPool2d(Layer):
    """The maximum of each kernel_size window, stride apart (default: kernel_size), as torch.nn.MaxPool2d."""

    def __init__(self, kernel_size, stride=None):
        a = self.arguments(kernel_size, stride)
        self.kernel_size, self.stride = a["kernel_size"], a["stride"]

    @classmethod
    def arguments(cls, kernel_size, stride=None) -> dict:
        """kernel_size and stride as given (an int or a pair, as PyTorch keeps them), checked."""
        stride = kernel_size if stride is None else stride
        for name, value in (("kernel_size", kernel_size), ("stride", stride)):
            specs.pair(cls.__name__, name, value, 1)
        return {"kernel_size": kernel_size, "stride": stride}

    def forward(self, x):
        return functional.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"

    def _config(self) -> dict:
        return {"kernel_size": self.kernel_size, "stride": self.stride}


@specs.layer
class AvgPool2d(MaxPool2d):
    """The mean of each kernel_size window, stride apart (default: kernel_size), as torch.nn.AvgPool2d."""

    def forward(self, x):
        return functional.avg_pool2d(x, self.kernel_size, self.stride)


class _BatchNorm(Layer):
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
        a = self.arguments(num_features, eps, momentum, affine, track_running_stats, bias=bias, dtype=dtype)
        self.num_features, self.eps, self.momentum = a["num_features"], a["eps"], a["momentum"]
        self.affine, self.track_running_stats, self._dtype = a["affine"], a["track_running_stats"], a["dtype"]
        C, dtype = self.num_features, self._dtype
        self.weight = Parameter(np.ones(C, dtype)) if self.affine else None
        self.bias = Parameter(np.zeros(C, dtype)) if self.affine and a["bias"] else None
        if self.track_running_stats:
            self.running_mean = Buffer(np.zeros(C, dtype))
            self.running_var = Buffer(np.ones(C, dtype))
            self.num_batches_tracked = Buffer(np.array(0, np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    @classmethod
    def arguments(cls, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, *, bias=True,
                  dtype=None) -> dict:
        layer = cls.__name__
        if momentum is not None and (isinstance(momentum, bool) or not isinstance(momentum, (int, float))):
            raise ValueError(f"{layer}: momentum must be a number or None, got {momentum!r}")
        return {"num_features": specs.positive_int(layer, "num_features", num_features),
                "eps": specs.eps(layer, eps), "momentum": momentum, "affine": specs.flag(layer, "affine", affine),
                "track_running_stats": specs.flag(layer, "track_running_stats", track_running_stats),
                "bias": specs.flag(layer, "bias", bias), "dtype": specs.model_dtype(layer, dtype)}

    @classmethod
    def state_shapes(cls, num_features, eps, momentum, affine, track_running_stats, bias, dtype) -> dict:
        C, dtype = (num_features,), str(dtype)
        shapes = {"weight": (C, dtype)} if affine else {}
        if affine and bias:
            shapes["bias"] = (C, dtype)
        if track_running_stats:
            shapes.update(running_mean=(C, dtype), running_var=(C, dtype), num_batches_tracked=((), "int64"))
        return shapes

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
                "track_running_stats": self.track_running_stats, "dtype": str(self._dtype)}


@specs.layer
class BatchNorm1d(_BatchNorm):
    """Batch normalisation of N×C or N×C×L inputs, per channel, as torch.nn.BatchNorm1d (see _BatchNorm)."""
    _ndims, _inputs = (2, 3), "N×{C} or N×{C}×L"


@specs.layer
class BatchNorm2d(_BatchNorm):
    """Batch normalisation of N×C×H×W images, per channel, as torch.nn.BatchNorm2d (see _BatchNorm)."""
    _ndims, _inputs = (4,), "N×{C}×H×W"


@specs.layer
class LayerNorm(Layer):
    """Normalises each example over its last axes (normalized_shape) by its own mean and biased variance, then
    scales by weight (ones) and shifts by bias (zeros), as torch.nn.LayerNorm (F.layer_norm). Same in eval()."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True, *,
                 dtype=None):
        a = self.arguments(normalized_shape, eps, elementwise_affine, bias, dtype=dtype)
        self.normalized_shape, self.eps = a["normalized_shape"], a["eps"]
        self.elementwise_affine, self._dtype = a["elementwise_affine"], a["dtype"]
        affine, shape = self.elementwise_affine, self.normalized_shape
        self.weight = Parameter(np.ones(shape, self._dtype)) if affine else None
        self.bias = Parameter(np.zeros(shape, self._dtype)) if affine and a["bias"] else None

    @classmethod
    def arguments(cls, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, *, dtype=None) -> dict:
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else normalized_shape
        if not isinstance(shape, (tuple, list)) or not shape:
            raise ValueError(f"LayerNorm: normalized_shape must be an integer or a non-empty tuple of them, got "
                             f"{normalized_shape!r}")
        return {"normalized_shape": tuple(specs.positive_int("LayerNorm", "normalized_shape", n) for n in shape),
                "eps": specs.eps("LayerNorm", eps),
                "elementwise_affine": specs.flag("LayerNorm", "elementwise_affine", elementwise_affine),
                "bias": specs.flag("LayerNorm", "bias", bias), "dtype": specs.model_dtype("LayerNorm", dtype)}

    @classmethod
    def state_shapes(cls, normalized_shape, eps, elementwise_affine, bias, dtype) -> dict:
        shapes = {"weight": (normalized_shape, str(dtype))} if elementwise_affine else {}
        if elementwise_affine and bias:
            shapes["bias"] = (normalized_shape, str(dtype))
        return shapes

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


@specs.layer
class Embedding(Layer):
    """A lookup table: row i of weight (num_embeddings×embedding_dim) for each integer index i (F.embedding), as
    torch.nn.Embedding. weight ~ N(0, 1), as PyTorch; seed is an int, None, or a numpy.random.Generator."""

    def __init__(self, num_embeddings: int, embedding_dim: int, *, dtype=None, seed=None):
        a = self.arguments(num_embeddings, embedding_dim, dtype=dtype)
        self.num_embeddings, self.embedding_dim = a["num_embeddings"], a["embedding_dim"]
        weight = as_generator(seed).standard_normal((self.num_embeddings, self.embedding_dim))
        self.weight = Parameter(weight.astype(a["dtype"]))

    @classmethod
    def arguments(cls, num_embeddings, embedding_dim, *, dtype=None) -> dict:
        return {"num_embeddings": specs.positive_int("Embedding", "num_embeddings", num_embeddings),
                "embedding_dim": specs.positive_int("Embedding", "embedding_dim", embedding_dim),
                "dtype": specs.model_dtype("Embedding", dtype)}

    @classmethod
    def state_shapes(cls, num_embeddings, embedding_dim, dtype) -> dict:
        return {"weight": ((num_embeddings, embedding_dim), str(dtype))}

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
        """{"model": "sequential", "layers": [each layer's spec]}; NotImplementedError for a layer that is not
        one of nn.specs' table (it could not be rebuilt from a file)."""
        layers = []
        for m in self:
            if specs.LAYERS.get(type(m).__name__) is not type(m):
                raise NotImplementedError(f"Sequential: {type(m).__name__} is not a built-in layer, so the model "
                                          "cannot be rebuilt from a file; save its state_dict() instead")
            layers.append({"type": type(m).__name__, **(m._config() if hasattr(m, "_config") else {})})
        return {"model": "sequential", "layers": layers}

    @classmethod
    def from_architecture(cls, arch: dict, *, seed=None) -> Sequential:
        """The model of architecture(); seed (an int, None or a Generator) draws the layers' weights and
        dropout masks, in order. ValueError naming the layer for a spec that is not one."""
        rng, modules = as_generator(seed), []
        for i, spec in _specs(arch):
            try:
                layer = specs.layer_class(spec)
                specs.spec_arguments(spec)
                modules.append(layer(**{k: v for k, v in spec.items() if k != "type"},
                                     **({"seed": rng} if specs.takes_seed(layer) else {})))
            except ValueError as e:
                raise ValueError(f"layer {i}: {e}") from None
        return cls(*modules)

    @classmethod
    def parameter_shapes(cls, arch: dict) -> dict[str, tuple[tuple[int, ...], str]]:
        """name -> (shape, dtype) of the state_dict entries (parameters and buffers) from_architecture(arch) would
        make, from the layers' specs alone (nn.specs.state_shapes): nothing is allocated, so a file's architecture
        is checked against its arrays before the model is built. ValueError for a spec that is not a layer's."""
        shapes = {}
        for i, spec in _specs(arch):
            try:
                shapes.update({f"{i}.{name}": shape for name, shape in specs.state_shapes(spec).items()})
            except ValueError as e:
                raise ValueError(f"layer {i}: {e}") from None
        return shapes


def _specs(arch: dict) -> Iterator[tuple[int, dict]]:
    layers = arch.get("layers") if isinstance(arch, dict) else None
    if not isinstance(layers, list):
        raise ValueError(f"a sequential architecture's layers must be a list, got {layers!r}")
    return enumerate(layers)
