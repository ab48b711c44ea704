"""The Tensor: a numpy array that records the ops it takes part in, and the factories (zeros, randn, ...)."""
from __future__ import annotations

import itertools
import math
import numbers
import warnings

import numpy as np

from tinygrad_edu import autograd, grad_mode, numpy_functions, ops
from tinygrad_edu.autograd import ShapeError, watchers
from tinygrad_edu.dims import numpy_names
from tinygrad_edu.dtypes import DEFAULT_FLOAT, as_array, cast, fill_value, float_dtype, is_scalar, rank, result_dtype


class Tensor:
    """A numpy array (`.data`) that remembers how it was computed, so `backward()` can differentiate it.

    >>> W = Tensor(np.ones((2, 3)), requires_grad=True)
    >>> loss = (W @ np.ones((3, 1))).sum()
    >>> loss.backward(); W.grad
    array([[1., 1., 1.],
           [1., 1., 1.]])
    """

    __slots__ = ("data", "_grad", "_requires_grad", "_ctx", "_retains_grad", "name", "_counter", "__weakref__")
    __hash__ = object.__hash__  # == is elementwise, so hashing stays by identity, as in PyTorch

    def __init__(self, data, requires_grad: bool = False, dtype=None, name: str | None = None):
        self.data = as_array(data.data if isinstance(data, Tensor) else data, dtype)
        # NOTE: a [version] list, shared by the tensors that use one array's memory (views, detach())
        shares = isinstance(data, Tensor) and autograd.memory_owner(self.data) is autograd.memory_owner(data.data)
        self._counter = data._counter if shares else [0]
        self._grad = None
        self._requires_grad = False
        self._ctx = None
        self._retains_grad = False
        self.name = name
        self.requires_grad = requires_grad

    @classmethod
    def _wrap(cls, data: np.ndarray, requires_grad: bool) -> Tensor:
        """A Tensor around an array that the dtype rules have already settled (the ops' fast path)."""
        t = object.__new__(cls)
        t.data, t._requires_grad = data, requires_grad
        t._grad = t._ctx = t.name = None
        t._retains_grad = False
        t._counter = [0]
        return t

    # --- attributes ---

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, but this tensor is {self.data.dtype} "
                            "(integer and bool tensors hold labels, masks and indices)")
        if not value and self._ctx is not None:
            raise RuntimeError("requires_grad can be switched off only on a leaf tensor; use .detach() instead")
        self._requires_grad = bool(value)

    @property
    def grad(self) -> np.ndarray | None:
        """∂L/∂self as a numpy array after backward (leaves, and tensors that called retain_grad)."""
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        if value is None:
            self._grad = None
            return
        g = np.asarray(numpy_value(value))
        if g.shape != self.data.shape:
            raise ShapeError(f"grad: a gradient of shape {g.shape} for a tensor of shape {self.data.shape}")
        self._grad = np.empty_like(self.data)   # a copy, in the tensor's dtype and memory layout
        np.copyto(self._grad, g, casting="unsafe")

    @property
    def grad_fn(self):
        """The op that made this tensor (None for a leaf)."""
        return self._ctx

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def _version(self) -> int:
        """How many times this tensor's memory was changed in place (PyTorch's name; shared with its views)."""
        return self._counter[0]

    def _bump_version(self) -> None:
        """Records a change in place to self.data made outside the in-place operators (e.g. `p.data[...] = v`),
        so a backward that saved the old values refuses to run."""
        self._counter[0] += 1

    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: self.data.size)

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def numpy(self) -> np.ndarray:
        return self.data

    def __array__(self, dtype=None, copy=None):
        if copy is False and dtype is not None and np.dtype(dtype) != self.data.dtype:
            raise ValueError(f"np.asarray(tensor, dtype={dtype}, copy=False): the data is {self.data.dtype}, "
                             "so a copy is needed")
        return np.array(self.data, dtype=dtype, copy=True) if copy else np.asarray(self.data, dtype=dtype)

    # NOTE: numpy hands its functions on Tensors back to the Tensor (`ndarray + t` and `np.exp(t)` become Tensor ops),
    # so that a backward rule written with numpy runs on Tensors too under create_graph: numpy_functions.py.
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return numpy_functions.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return numpy_functions.array_function(func, args, kwargs)

    def item(self):
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __float__(self) -> float:
        return float(self.data)

    def __int__(self) -> int:
        return int(self.data)

    def __bool__(self) -> bool:
        return bool(self.data)

    def to(self, dtype) -> Tensor:
        """The values in dtype, differentiable (∂L/∂self is ∂L/∂out cast back), as torch's .to(dtype); self if it
        already is of that dtype."""
        dtype = np.dtype(dtype)
        if dtype == self.data.dtype:
            return self
        if dtype.kind != "f" and self._requires_grad:
            raise TypeError(f"to: a tensor that requires grad can only become another float dtype, not {dtype}")
        return apply_op(ops.Cast, self, to=dtype)

    def detach(self) -> Tensor:
        """The same data (and name, and version counter: it is the same memory) as a new leaf outside the graph."""
        t = Tensor._wrap(self.data, False)
        t.name, t._counter = self.name, self._counter
        return t

    def retain_grad(self) -> Tensor:
        """Keeps ∂L/∂self in `.grad` after backward, even though this tensor is not a leaf."""
        if not self._requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad, so it will get no gradient")
        self._retains_grad = self._ctx is not None
        return self

    def backward(self, gradient=None, retain_graph: bool | None = None, create_graph: bool = False, *,
                 grad=None) -> None:
        """∂self/∂t for every t this tensor depends on, added into the `.grad` of leaves that require grad.

        gradient: ∂L/∂self for a non-scalar self (`grad=` is the older name). create_graph=True records the
        backward itself, so each `.grad` is a Tensor with a graph that can be differentiated again;
        retain_graph defaults to create_graph, as in PyTorch."""
        if grad is not None and gradient is not None:
            raise TypeError("backward: pass the gradient once, as gradient= (grad= is its older name)")
        autograd.backward(self, gradient if grad is None else grad, retain_graph, create_graph)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", precision=4, threshold=24, edgeitems=2, prefix="Tensor(")
        extra = [f"dtype={self.data.dtype}"]
        if self.name:
            extra.append(f"name={self.name!r}")
        if self._ctx is not None:
            extra.append(f"grad_fn={self._ctx.name}")
        elif self._requires_grad:
            extra.append("requires_grad=True")
        return f"Tensor({body}, {', '.join(extra)})"

    # --- arithmetic (Python scalars and numpy arrays mix in on either side) ---

    def __add__(self, other):
        return binary_op(ops.Add, self, other)

    def __radd__(self, other):
        return binary_op(ops.Add, other, self)

    def __sub__(self, other):
        return binary_op(ops.Sub, self, other)

    def __rsub__(self, other):
        return binary_op(ops.Sub, other, self)

    def __mul__(self, other):
        return binary_op(ops.Mul, self, other)

    def __rmul__(self, other):
        return binary_op(ops.Mul, other, self)

    def __truediv__(self, other):
        return binary_op(ops.Div, self, other, float_dtype(self, other))

    def __rtruediv__(self, other):
        return binary_op(ops.Div, other, self, float_dtype(other, self))

    def __matmul__(self, other):
        return binary_op(ops.MatMul, self, other)

    def __rmatmul__(self, other):
        return binary_op(ops.MatMul, other, self)

    def __neg__(self):
        return apply_op(ops.Neg, self)

    # --- logic on bool (and integer) tensors: ~, &, |, outside the graph, as in PyTorch ---

    def __invert__(self):
        return _logic("~", np.invert, self)

    def __and__(self, other):
        return _logic("&", np.bitwise_and, self, other)

    __rand__ = __and__

    def __or__(self, other):
        return _logic("|", np.bitwise_or, self, other)

    __ror__ = __or__

    # --- in place: x += y, x -= y, x *= y, x /= y ---

    def __iadd__(self, other):
        return self._inplace("+=", ops.Add, np.add, other)

    def __isub__(self, other):
        return self._inplace("-=", ops.Sub, np.subtract, other)

    def __imul__(self, other):
        return self._inplace("*=", ops.Mul, np.multiply, other)

    def __itruediv__(self, other):
        return self._inplace("/=", ops.Div, np.true_divide, other, float_dtype(self, other))

    def _inplace(self, symbol: str, fn_cls, ufunc, other, dtype=None) -> Tensor:
        """x op= y with PyTorch's rules. The result is `x op y` in x's dtype, which must hold it (a float result
        cannot go into an integer tensor) and in x's shape (y broadcasts to x, not x to y).

        Outside any graph (under no_grad(), or when neither x nor y requires grad) x's array is overwritten and
        its version goes up, so a backward that saved the old values refuses to run. A leaf that requires grad
        changes in place only under no_grad() (an update step), as in PyTorch. Inside a graph (x or y requires
        grad) the result is a new recorded tensor that Python binds to the name, as `x = x op y`: PyTorch would
        record the change in place instead, so other names for the old x do not see it here.
        """
        a = self.data
        b = other.data if isinstance(other, Tensor) else other
        if dtype is not None or type(b) is not np.ndarray or b.dtype != a.dtype:   # else: y is of x's dtype
            dtype = result_dtype(self, other) if dtype is None else dtype
            if rank(dtype) > rank(a.dtype):
                raise TypeError(f"{symbol}: the result is {dtype}, which cannot be stored in place in a {a.dtype} "
                                f"tensor (PyTorch refuses too); write x = x {symbol[0]} y for a new {dtype} tensor")
            if type(b) is not np.ndarray or b.dtype != dtype:
                b = as_array(b, dtype)   # NOTE: y in the op's dtype first, so the values are those of `x op y`
        if b.shape != a.shape:
            try:
                fits = np.broadcast_shapes(a.shape, b.shape) == a.shape
            except ValueError:
                fits = False
            if not fits:
                raise ShapeError(f"{symbol}: {a.shape} and {b.shape}: the operand must broadcast to the tensor's "
                                 f"own shape {a.shape}, which an in-place result keeps")
        if grad_mode.this_thread.enabled and (self._requires_grad or getattr(other, "_requires_grad", False)):
            if self._ctx is None and self._requires_grad:
                raise RuntimeError(f"{symbol}: a leaf Variable that requires grad is being used in an in-place "
                                   "operation; change a parameter in place under no_grad(), as an update step: "
                                   "`with no_grad(): W -= lr * W.grad`")
            return binary_op(fn_cls, self, other, dtype=a.dtype)
        try:
            ufunc(a, b, out=a, casting="unsafe")   # computed in the op's dtype, then stored in x's
        except ValueError:
            if not a.flags.writeable:
                raise ValueError(f"{symbol}: this tensor's array is read-only, so it cannot change in place") from None
            raise
        except TypeError as e:   # e.g. numpy has no subtraction of bools (PyTorch neither)
            raise TypeError(f"{symbol}: {a.dtype} and {b.dtype}: {str(e).strip()}") from None
        self._counter[0] += 1
        return self

    def __pow__(self, exponent):
        if isinstance(exponent, (Tensor, np.ndarray)):   # a tensor exponent: differentiable in it too
            return binary_op(ops.PowTensor, self, exponent)
        if isinstance(exponent, np.generic) and exponent.ndim == 0:
            exponent = exponent.item()   # NOTE: a numpy float64 exponent must not upcast float32 data
        if not isinstance(exponent, numbers.Real):
            raise TypeError(f"pow: the exponent must be a number, a Tensor or an array, got {type(exponent).__name__}")
        return apply_op(ops.Pow, self, dtype=result_dtype(self, exponent), exponent=exponent)

    def __rpow__(self, base):
        """base ** tensor, e.g. 2 ** t: the tensor is the exponent."""
        if not (is_scalar(base) or isinstance(base, np.ndarray)):
            return NotImplemented
        return binary_op(ops.PowTensor, base, self)

    # --- comparisons: bool tensors, outside the graph ---

    def __eq__(self, other):
        return _compare("==", np.equal, self, other)

    def __ne__(self, other):
        return _compare("!=", np.not_equal, self, other)

    def __lt__(self, other):
        return _compare("<", np.less, self, other)

    def __le__(self, other):
        return _compare("<=", np.less_equal, self, other)

    def __gt__(self, other):
        return _compare(">", np.greater, self, other)

    def __ge__(self, other):
        return _compare(">=", np.greater_equal, self, other)

    @numpy_names
    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Index of the largest value (not differentiable): the tutorial's get_predictions is argmax(dim=0)."""
        if dim is not None and not -self.data.ndim <= dim < self.data.ndim:
            raise ShapeError(f"argmax: axis {dim} is out of range for shape {self.data.shape}")
        return Tensor._wrap(np.asarray(np.argmax(self.data, axis=dim, keepdims=keepdim)), False)

    @numpy_names
    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Index of the smallest value (not differentiable); the first one where values tie, as PyTorch."""
        if dim is not None and not -self.data.ndim <= dim < self.data.ndim:
            raise ShapeError(f"argmin: axis {dim} is out of range for shape {self.data.shape}")
        return Tensor._wrap(np.asarray(np.argmin(self.data, axis=dim, keepdims=keepdim)), False)

    # --- elementwise functions ---

    def relu(self) -> Tensor:
        return apply_op(ops.ReLU, self)

    def exp(self) -> Tensor:
        return apply_op(ops.Exp, self, dtype=float_dtype(self))

    def log(self) -> Tensor:
        return apply_op(ops.Log, self, dtype=float_dtype(self))

    def tanh(self) -> Tensor:
        return apply_op(ops.Tanh, self, dtype=float_dtype(self))

    def sigmoid(self) -> Tensor:
        return apply_op(ops.Sigmoid, self, dtype=float_dtype(self))

    def abs(self) -> Tensor:
        """|x| (ops.Abs): its gradient is sign(x), 0 at x = 0 and at nan (PyTorch's)."""
        return apply_op(ops.Abs, self)

    def sqrt(self) -> Tensor:
        """√x, composed as x ** 0.5 (numpy computes that power with sqrt itself); ∂/∂x = 1/(2√x), ∞ at 0."""
        return self ** 0.5   # NOTE: an integer tensor gives float32, as the exponent 0.5 is a float

    def sin(self) -> Tensor:
        return apply_op(ops.Sin, self, dtype=float_dtype(self))

    def cos(self) -> Tensor:
        return apply_op(ops.Cos, self, dtype=float_dtype(self))

    def erf(self) -> Tensor:
        """The error function (2/√π)∫₀ˣ exp(−t²) dt, elementwise (gelu's exact form is built on it)."""
        return apply_op(ops.Erf, self, dtype=float_dtype(self))

    def sign(self) -> Tensor:
        """−1, 0 or 1 by the sign of each element (nan stays nan): a constant outside the graph, so it never
        requires grad. (PyTorch records it, with gradient 0; here the 0 is simply never computed.)"""
        return Tensor._wrap(np.asarray(np.sign(self.data)), False)   # NOTE: numpy gives 0-d results as scalars

    def clip(self, min=None, max=None) -> Tensor:
        """Each element kept within [min, max] (either may be None; scalars or tensors), as torch.clip.

        Composed of two wheres: x < min → min, then > max → max. So the gradient reaches x wherever
        min ≤ x ≤ max, bounds included (PyTorch's convention), and a tensor bound where it is taken; with
        min > max every element is max, as in PyTorch.
        """
        return self._clip(min, max, "clip")

    def clamp(self, min=None, max=None) -> Tensor:
        """The same as clip (PyTorch has both names)."""
        return self._clip(min, max, "clamp")

    def _clip(self, low, high, op: str) -> Tensor:
        if low is None and high is None:
            raise ValueError(f"{op}: at least one of min and max must not be None")
        out = self
        if low is not None:
            out = where(_compare(op, np.less, out, low), low, out)
        if high is not None:
            out = where(_compare(op, np.greater, out, high), high, out)
        # NOTE: a nan in x or in a bound gives nan and no gradient there (PyTorch's): the comparisons above pass
        # x's nan on with its gradient, and ignore a nan bound
        nan = None
        for t in (self, low, high):
            value = numpy_value(t)
            if value is not None and np.asarray(value).dtype.kind == "f" and np.isnan(value).any():
                nan = np.isnan(value) if nan is None else nan | np.isnan(value)
        if nan is not None:
            out = where(np.broadcast_to(nan, out.shape), np.asarray(np.nan, out.dtype), out)
        return out

    def maximum(self, other) -> Tensor:
        return maximum(self, other)

    def minimum(self, other) -> Tensor:
        return minimum(self, other)

    def where(self, condition, other) -> Tensor:
        """self where condition holds, other elsewhere: torch's x.where(condition, y) = where(condition, x, y)."""
        return where(condition, self, other)

    def pow(self, exponent) -> Tensor:
        """self ** exponent: a Python number (Pow) or a tensor exponent (PowTensor, differentiable in both)."""
        return self ** exponent

    # --- reductions (dim: an int, a tuple or None for all; keepdim. numpy's axis= and keepdims= work too) ---

    @numpy_names
    def sum(self, dim=None, keepdim: bool = False) -> Tensor:
        return apply_op(ops.Sum, self, axis=dim, keepdims=keepdim)

    @numpy_names
    def mean(self, dim=None, keepdim: bool = False) -> Tensor:
        return apply_op(ops.Mean, self, dtype=float_dtype(self), axis=dim, keepdims=keepdim)

    @numpy_names
    def max(self, dim=None, keepdim: bool = False) -> Tensor:
        """The largest values over dim. With dim, only the values (torch.max(x, dim) also gives the indices: use
        argmax for those)."""
        return apply_op(ops.Max, self, axis=dim, keepdims=keepdim)

    @numpy_names
    def min(self, dim=None, keepdim: bool = False) -> Tensor:
        """The smallest values over dim; the values only, as max."""
        return apply_op(ops.Min, self, axis=dim, keepdims=keepdim)

    @numpy_names
    def prod(self, dim=None, keepdim: bool = False) -> Tensor:
        return apply_op(ops.Prod, self, axis=dim, keepdims=keepdim)

    @numpy_names
    def cumsum(self, dim: int) -> Tensor:
        """Running sums along one axis (dim is required, as in PyTorch)."""
        return apply_op(ops.Cumsum, self, axis=dim)

    @numpy_names
    def var(self, dim=None, *, correction=1, keepdim: bool = False) -> Tensor:
        """Σ(x − mean)² / (n − correction) over the axes, n their number of elements: correction=1 (the default,
        as torch.var) is the unbiased sample variance, 0 the population's. Composed from mean, sub, mul, sum.

        With n − correction ≤ 0 the result is inf (or nan where the squares sum to 0), with a warning, as PyTorch.
        """
        axes = ops.normalize_axes(dim, self.shape, "var")
        n = int(np.prod([self.shape[ax] for ax in axes]))
        dof = max(0, n - correction)
        d = self - self.mean(dim, keepdim=True)
        squares = (d * d).sum(dim, keepdim=keepdim)
        if dof > 0:
            return squares / dof
        warnings.warn(f"var: {n} element(s) per reduction of shape {self.shape} with correction={correction} "
                      "leave no degrees of freedom (n − correction ≤ 0): the result is inf or nan",
                      RuntimeWarning, stacklevel=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            return squares / 0

    @numpy_names
    def std(self, dim=None, *, correction=1, keepdim: bool = False) -> Tensor:
        """√var (same arguments as var); composed as var ** 0.5."""
        return self.var(dim, correction=correction, keepdim=keepdim) ** 0.5

    @numpy_names
    def logsumexp(self, dim, keepdim: bool = False) -> Tensor:
        """log Σ exp(x) over dim (required, as in PyTorch), computed as m + log Σ exp(x − m) with m the maximum,
        a constant (any m gives the same value), so exp cannot overflow. The gradient is softmax(x)."""
        axes = ops.normalize_axes(dim, self.shape, "logsumexp")
        dtype = float_dtype(self)
        m = np.max(self.data.astype(dtype, copy=False), axis=axes, keepdims=True, initial=-np.inf)
        m = np.where(np.isfinite(m), m, dtype.type(0))   # NOTE: all −inf (or an inf): shift by 0 instead
        with np.errstate(divide="ignore"):   # log 0 = −inf where every value is −inf, as PyTorch
            return (self - m).exp().sum(axes, keepdim=keepdim).log() + (m if keepdim else np.squeeze(m, axes))

    # --- shape ---

    def reshape(self, *shape) -> Tensor:
        return apply_op(ops.Reshape, self, shape=_shape(shape))

    def transpose(self, *dims) -> Tensor:
        """As torch's transpose: `x.transpose(d0, d1)` swaps those two dims, for any rank ≥ 2 (negative dims
        allowed), so on a matrix transpose(0, 1) is its transpose. As numpy's: a tuple, or as many ints as the
        tensor has dims (≥ 3), is a permutation (`permute`); no argument reverses the dims (`.T`)."""
        if len(dims) == 2 and self.ndim >= 2 and all(isinstance(d, (int, np.integer)) for d in dims):
            d0, d1 = (ops.normalize_axes(d, self.shape, "transpose")[0] for d in dims)
            order = list(range(self.ndim))
            order[d0], order[d1] = d1, d0
            return apply_op(ops.Transpose, self, axes=tuple(order))
        return apply_op(ops.Transpose, self, axes=_shape(dims) or None)

    def permute(self, *dims) -> Tensor:
        """The dims in the order given, `x.permute(2, 0, 1)` or `x.permute((2, 0, 1))`, as torch's permute."""
        if not dims:
            raise TypeError("permute() needs the order of the dims, e.g. x.permute(1, 0)")
        return apply_op(ops.Transpose, self, axes=_shape(dims))

    @property
    def T(self) -> Tensor:
        return apply_op(ops.Transpose, self, axes=None)

    def __getitem__(self, index) -> Tensor:
        index = tuple(numpy_value(i) for i in index) if isinstance(index, tuple) else numpy_value(index)
        return apply_op(ops.GetItem, self, index=index)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Axes start_dim..end_dim (both included) made into one, as torch.flatten; a reshape."""
        ndim = max(self.ndim, 1)   # NOTE: a 0-d tensor flattens to 1 element, as in PyTorch
        for d in (start_dim, end_dim):
            if not -ndim <= d < ndim:
                raise ShapeError(f"flatten: dim {d} is out of range for shape {self.shape}")
        start, end = start_dim % ndim, end_dim % ndim
        if start > end:
            raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {self.shape}")
        s = self.shape or (1,)
        return self.reshape(*s[:start], int(np.prod(s[start:end + 1])), *s[end + 1:])

    @numpy_names
    def squeeze(self, dim=None) -> Tensor:
        """Drops axes of size 1: all of them, or those among dim (an int or a tuple) — an axis of another size
        named in dim stays, as in PyTorch. A reshape."""
        dims = ops.normalize_axes(dim, self.shape if self.ndim or dim is None else (1,), "squeeze")
        return self.reshape(*(n for ax, n in enumerate(self.shape) if not (ax in dims and n == 1)))

    @numpy_names
    def unsqueeze(self, dim: int) -> Tensor:
        """A new axis of size 1 at position dim (−ndim−1 ≤ dim ≤ ndim, as in PyTorch). A reshape."""
        if not -self.ndim - 1 <= dim <= self.ndim:
            raise ShapeError(f"unsqueeze: dim {dim} is out of range for shape {self.shape} (a new axis goes at "
                             f"{-self.ndim - 1} .. {self.ndim})")
        d = dim % (self.ndim + 1)
        return self.reshape(*self.shape[:d], 1, *self.shape[d:])

    def expand(self, *sizes) -> Tensor:
        """self broadcast to `sizes` (−1 keeps an axis; new axes go in front), as torch's expand. Composed as
        self + zeros(sizes): broadcasting's gradient (the sum over the stretched axes) is the backward walk's."""
        sizes = _shape(sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise ShapeError(f"expand: shape {self.shape} cannot expand to {sizes}, which has fewer axes")
        target = []
        for k, n in enumerate(sizes):
            old = self.shape[k - lead] if k >= lead else None
            if n == -1 and old is not None:
                n = old
            if n < 0 or (old is not None and old not in (1, n)):
                raise ShapeError(f"expand: shape {self.shape} cannot expand to {sizes}: axis {k} would go from "
                                 f"{'nothing' if old is None else old} to {n} (only an axis of size 1 can grow, "
                                 "and new axes, in front, need a size)")
            target.append(n)
        return self + np.zeros(target, dtype=self.dtype)

    @numpy_names(dim="dims")
    def flip(self, *dims_, dims=None) -> Tensor:
        """The order of the elements reversed along each of dims (`x.flip(0, 1)`, `x.flip((0, 1))` or
        `x.flip(dims=...)`, as torch's flip); a getitem with step −1."""
        if dims is not None and dims_:
            raise TypeError("flip() got the dims both as arguments and as dims=: give them once")
        dims = _shape(dims_) if dims is None else (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
        axes = ops.normalize_axes(dims, self.shape, "flip")
        return self[tuple(slice(None, None, -1) if ax in axes else slice(None) for ax in range(self.ndim))]

    def repeat(self, *sizes) -> Tensor:
        """self tiled sizes[k] times along axis k (extra sizes add axes in front), as torch's repeat. Composed:
        each axis n becomes a pair (1, n), expanded to (r, n) and merged into r·n by a reshape."""
        sizes = _shape(sizes)
        if len(sizes) < self.ndim or any(r < 0 for r in sizes):
            raise ShapeError(f"repeat: {sizes} must give a count ≥ 0 for each of the {self.ndim} axes of "
                             f"{self.shape} (more counts add axes in front)")
        shape = (1,) * (len(sizes) - self.ndim) + self.shape
        pairs = self.reshape(*(m for n in shape for m in (1, n)))
        tiled = pairs.expand(*(m for r, n in zip(sizes, shape) for m in (r, n)))
        return tiled.reshape(*(r * n for r, n in zip(sizes, shape)))

    @numpy_names
    def split(self, split_size_or_sections, dim: int = 0) -> tuple[Tensor, ...]:
        """self cut along dim into pieces, as torch's split: an int s gives pieces of s (the last one smaller if
        dim's size is not a multiple of s), a list gives pieces of those sizes (they must add up to dim's size).
        Composed: each piece is a slice (getitem), so ∂L/∂self gathers each piece's gradient at its place."""
        if self.ndim == 0:
            raise ShapeError("split: a 0-d tensor has no dim to split along")
        (ax,) = ops.normalize_axes(dim, self.shape, "split")
        n = self.shape[ax]
        if isinstance(split_size_or_sections, (int, np.integer)) and not isinstance(split_size_or_sections, bool):
            size = int(split_size_or_sections)
            if size < 0 or (size == 0 and n != 0):
                raise ValueError(f"split: split_size must be ≥ 1 (0 only for an empty dim), got {size} for dim "
                                 f"{dim} of size {n} (shape {self.shape})")
            sizes = [min(size, n - start) for start in range(0, n, size)] if n else [0]
        else:
            try:
                sizes = [int(k) for k in split_size_or_sections]
            except (TypeError, ValueError):
                raise TypeError(f"split: split_size_or_sections must be an int or a list of ints, got "
                                f"{split_size_or_sections!r}") from None
            if any(k < 0 for k in sizes) or sum(sizes) != n:
                raise ValueError(f"split: the sizes {sizes} must be ≥ 0 and add up to {n}, the size of dim {dim} "
                                 f"of shape {self.shape}")
        starts = [0, *itertools.accumulate(sizes)]
        lead = (slice(None),) * ax
        return tuple(self[(*lead, slice(a, b))] for a, b in zip(starts, starts[1:]))

    @numpy_names
    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        """self cut along dim into at most `chunks` pieces of ⌈size/chunks⌉ (the last one smaller; fewer pieces
        when they run out first: a size of 5 in 4 chunks gives 2, 2, 1), as torch's chunk. A split."""
        if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks < 1:
            raise ValueError(f"chunk: chunks must be an integer ≥ 1, got {chunks!r}")
        if self.ndim == 0:
            raise ShapeError("chunk: a 0-d tensor has no dim to split along")
        (ax,) = ops.normalize_axes(dim, self.shape, "chunk")
        n = self.shape[ax]
        if n == 0:   # NOTE: as torch: `chunks` empty pieces
            return self.split([0] * int(chunks), dim)
        return self.split(-(-n // int(chunks)), dim)

    def tril(self, diagonal: int = 0) -> Tensor:
        """The lower triangle of the last two dims (elements j ≤ i + diagonal), the rest 0, as torch.tril."""
        return tril(self, diagonal)

    def triu(self, diagonal: int = 0) -> Tensor:
        """The upper triangle of the last two dims (elements j ≥ i + diagonal), the rest 0, as torch.triu."""
        return triu(self, diagonal)

    # --- indexing ---

    @numpy_names
    def gather(self, dim: int, index) -> Tensor:
        """out[i][j][k] = self[index[i][j][k]][j][k] for dim 0 (and so on), as torch.gather: index is an integer
        array of self's number of axes, no larger than self along the other axes. Composed from getitem."""
        return gather(self, dim, index)

    def masked_fill(self, mask, value) -> Tensor:
        """self with `value` where the bool mask (broadcast to self's shape) is True, as torch's masked_fill.

        Composed: where(mask, value, self), so ∂L/∂self is ∂L/∂out where the mask is False and 0 where it is True."""
        m = np.asarray(numpy_value(mask))
        if m.dtype != np.bool_:
            raise TypeError(f"masked_fill: the mask must be bool, got dtype {m.dtype}")
        try:
            fits = np.broadcast_shapes(m.shape, self.shape) == self.shape
        except ValueError:
            fits = False
        if not fits:
            raise ShapeError(f"masked_fill: mask {m.shape} does not broadcast to the tensor's shape {self.shape}")
        if getattr(value, "requires_grad", False):
            raise TypeError("masked_fill: a value that requires grad is not supported (its gradient would be lost); "
                            "pass a number")
        value = numpy_value(value)
        if np.ndim(value) != 0:
            raise ShapeError(f"masked_fill: value must be a number or a 0-d tensor, got shape {np.shape(value)}")
        return where(np.broadcast_to(m, self.shape), fill_value(value, self.dtype, "masked_fill"), self)

    # --- softmax and the loss ---

    @numpy_names
    def softmax(self, dim: int = -1) -> Tensor:
        return apply_op(ops.Softmax, self, dtype=float_dtype(self), axis=dim)

    @numpy_names
    def log_softmax(self, dim: int = -1) -> Tensor:
        return apply_op(ops.LogSoftmax, self, dtype=float_dtype(self), axis=dim)

    @numpy_names
    def softmax_cross_entropy(self, target, dim: int = -1, *, reduction: str = "mean") -> Tensor:
        """Mean cross-entropy of softmax(self) against target, fused and stable; ∂L/∂self = (softmax − Y)/m.

        target: integer class labels (self's shape without `dim`) or one-hot/probability rows (self's shape);
        a probability target that requires grad is differentiated too (∂L/∂Y = −log softmax/m, as PyTorch).
        Classes lie along `dim`: -1 for a batch×classes layout, 0 for the tutorial's classes×m layout.
        reduction "sum" adds the examples' losses instead (0 for an empty batch, whose mean is nan).
        """
        if self.data.dtype.kind != "f":
            raise TypeError(f"softmax_cross_entropy: logits must be floating point, got {self.data.dtype}")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"softmax_cross_entropy: reduction must be 'mean' or 'sum', got {reduction!r}")
        if not isinstance(target, Tensor):
            target = Tensor._wrap(as_array(target), False)
        return apply_op(ops.SoftmaxCrossEntropy, self, target, axis=dim, reduction=reduction)

    # --- convolution and pooling (N×C×H×W images, as PyTorch; nn.functional.conv2d adds the bias) ---

    def conv2d(self, weight, stride=1, padding=0) -> Tensor:
        """Each output channel o is Σ_c self[:, c] ⋆ weight[o, c] (a correlation, as PyTorch's conv2d), weight
        out×in×kh×kw; stride and padding (zeros on both sides) are an int or an (h, w) pair."""
        stride, padding = as_pair("conv2d", "stride", stride, 1), as_pair("conv2d", "padding", padding, 0)
        dtype = float_dtype(self, weight)
        return apply_op(ops.Conv2d, self, lift(weight, dtype, "conv2d"), dtype=dtype, stride=stride, padding=padding)

    def max_pool2d(self, kernel_size, stride=None) -> Tensor:
        """The maximum of each kernel_size window, stride apart (default: kernel_size, windows side by side)."""
        return self._pool(ops.MaxPool2d, kernel_size, stride)

    def avg_pool2d(self, kernel_size, stride=None) -> Tensor:
        """The mean of each kernel_size window, stride apart (default: kernel_size, windows side by side)."""
        return self._pool(ops.AvgPool2d, kernel_size, stride)

    def _pool(self, fn_cls, kernel_size, stride) -> Tensor:
        kernel_size = as_pair(fn_cls.name, "kernel_size", kernel_size, 1)
        stride = kernel_size if stride is None else as_pair(fn_cls.name, "stride", stride, 1)
        dtype = float_dtype(self) if fn_cls is ops.AvgPool2d else None
        return apply_op(fn_cls, self, dtype=dtype, kernel_size=kernel_size, stride=stride)


# --- recording an op -------------------------------------------------------------------------------------


def apply_op(fn_cls, *parents: Tensor, dtype=None, **kwargs) -> Tensor:
    """Runs fn_cls's forward on the parents' arrays (cast to dtype) and records it if any parent needs grad."""
    watching = watchers.this_thread.watchers   # the profiler, when on: told before and after the op
    if watching:
        return watchers.watched_op(watching, _run_op, fn_cls, parents, dtype, kwargs)
    return _run_op(fn_cls, parents, dtype, kwargs)


def _run_op(fn_cls, parents: tuple, dtype, kwargs: dict) -> Tensor:
    arrays, needs_grad = [], []
    for p in parents:   # NOTE: one plain loop: two comprehensions cost more than the bookkeeping of an op
        arrays.append(p.data if dtype is None or p.data.dtype == dtype else cast(p.data, dtype, fn_cls.name))
        needs_grad.append(p._requires_grad)
    needs_grad = tuple(needs_grad)
    record = True in needs_grad and grad_mode.this_thread.enabled
    fn = fn_cls(parents, needs_grad) if record else fn_cls((), ())
    try:
        out = fn.forward(*arrays, **kwargs)
    except ShapeError:
        raise
    except (ValueError, IndexError, TypeError) as e:   # numpy's own words, with the op and shapes added
        shapes = " and ".join(str(a.shape) for a in arrays)
        error = TypeError if isinstance(e, TypeError) else ShapeError
        raise error(f"{fn.name}: {shapes}: {str(e).strip()}") from None
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    t = Tensor._wrap(out, record)
    if out.base is not None:
        _share_version(t, parents)
    if record:
        t._ctx = fn
        if fn.saved:
            fn.note_versions(t)
    return t


def _share_version(view: Tensor, parents) -> None:
    """A result that is a view of a parent's memory (reshape, transpose, slicing) shares the parent's version
    counter, as PyTorch's views do: a change in place through either is a change to both."""
    owner = autograd.memory_owner(view.data)
    for p in parents:
        if autograd.memory_owner(p.data) is owner:
            view._counter = p._counter
            return


def lift(x, dtype, op: str) -> Tensor:
    """An operand as a Tensor: a constant (no grad) in the op's dtype unless it already is a Tensor.

    An integer scalar must fit that dtype: `int32_tensor + 2**40` is refused (PyTorch wraps it around silently).
    """
    if isinstance(x, Tensor):
        return x
    if type(x) is np.ndarray and x.dtype == dtype:
        return Tensor._wrap(x, False)
    if isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_)) and dtype.kind in "iu":
        info = np.iinfo(dtype)
        if not info.min <= int(x) <= info.max:   # NOTE: numpy scalars would wrap silently, Python ints raise
            raise OverflowError(f"{op}: the integer {x} does not fit in {dtype} ({info.min} .. {info.max}), the "
                                "dtype of this op; make the tensor a wider integer or float dtype")
    return Tensor._wrap(as_array(x, dtype), False)


def binary_op(fn_cls, a, b, dtype=None) -> Tensor:
    if dtype is None:
        # NOTE: the common case, two operands of one dtype with dimensions, skips the promotion table
        same = type(a) in (Tensor, np.ndarray) and type(b) in (Tensor, np.ndarray) and a.dtype == b.dtype
        dtype = a.dtype if same and a.ndim and b.ndim else result_dtype(a, b)
    return apply_op(fn_cls, lift(a, dtype, fn_cls.name), lift(b, dtype, fn_cls.name), dtype=dtype)


def numpy_value(x):
    """The numpy value of an operand of a non-differentiable op (comparisons, indices)."""
    return x.data if isinstance(x, Tensor) else x


def _logic(symbol: str, ufunc, *operands) -> Tensor:
    """~, & and | of bool or integer tensors (masks): a tensor outside the graph."""
    values = [np.asarray(numpy_value(x)) for x in operands]
    for v in values:
        if v.dtype.kind not in "biu":
            raise TypeError(f"{symbol}: only bool and integer tensors take {symbol}, got {v.dtype}")
    try:
        return Tensor._wrap(np.asarray(ufunc(*values)), False)
    except ValueError:
        raise ShapeError(f"{symbol}: shapes {' and '.join(str(v.shape) for v in values)} cannot be broadcast "
                         "together") from None


def _compare(symbol: str, ufunc, a, b) -> Tensor:
    """An elementwise comparison: a bool tensor outside the graph."""
    try:
        return Tensor._wrap(np.asarray(ufunc(a.data, numpy_value(b))), False)
    except ValueError:
        raise ShapeError(f"{symbol}: shapes {a.shape} and {np.shape(numpy_value(b))} cannot be broadcast "
                         "together") from None


# --- elementwise functions of two or three tensors (torch.where, torch.maximum, torch.minimum) ---------------


def where(condition, input, other) -> Tensor:
    """input where condition is True, other elsewhere, broadcasting the three (torch.where); input and other
    may be tensors, arrays or numbers. condition is a bool tensor or array: it is not differentiated."""
    cond = np.array(numpy_value(condition), copy=True)   # NOTE: a copy: the backward must see today's condition
    if cond.dtype != np.bool_:
        raise TypeError(f"where: the condition must be a bool tensor or array, got dtype {cond.dtype}")
    dtype = result_dtype(input, other)
    return apply_op(ops.Where, lift(input, dtype, "where"), lift(other, dtype, "where"), dtype=dtype, condition=cond)


def _broadcast_pair(op: str, input, other) -> tuple[Tensor, Tensor, np.dtype]:
    """Both operands as Tensors of the op's dtype, checked to broadcast together."""
    dtype = result_dtype(input, other)
    a, b = lift(input, dtype, op), lift(other, dtype, op)
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None
    return a, b, dtype


def maximum(input, other) -> Tensor:
    """The larger of input and other, elementwise with broadcasting (torch.maximum); a tie splits the gradient
    in half between them, as in PyTorch."""
    a, b, dtype = _broadcast_pair("maximum", input, other)
    return apply_op(ops.Maximum, a, b, dtype=dtype)


def minimum(input, other) -> Tensor:
    """The smaller of input and other, elementwise (torch.minimum), composed as −maximum(−input, −other): exact,
    and a tie splits the gradient in half, as in PyTorch."""
    a, b, dtype = _broadcast_pair("minimum", input, other)
    if dtype.kind != "f":   # NOTE: no gradient to route, and −x would wrap around for unsigned or the least int
        return Tensor._wrap(np.asarray(np.minimum(a.data, b.data)), False)
    return -apply_op(ops.Maximum, -a, -b, dtype=dtype)


# --- functions of several tensors (top level in tinygrad_edu, as in PyTorch) ------------------------------------


@numpy_names
def cat(tensors, dim: int = 0) -> Tensor:
    """The tensors joined along dim, which they may differ in (their other axes must match), as torch.cat."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expects a non-empty list of tensors")
    dtype = result_dtype(*tensors)
    return apply_op(ops.Cat, *(lift(t, dtype, "cat") for t in tensors), dtype=dtype, axis=dim)


@numpy_names
def stack(tensors, dim: int = 0) -> Tensor:
    """Tensors of one shape joined along a new axis at dim, as torch.stack. Composed: unsqueeze, then cat."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: expects a non-empty list of tensors")
    shapes = [t.shape for t in tensors]
    if any(s != shapes[0] for s in shapes):
        raise ShapeError(f"stack: expects tensors of one shape, got shapes {shapes}")
    ndim = len(shapes[0])
    if not -ndim - 1 <= dim <= ndim:
        raise ShapeError(f"stack: dim {dim} is out of range for tensors of shape {shapes[0]} (the new axis goes at "
                         f"{-ndim - 1} .. {ndim})")
    return cat([t.unsqueeze(dim) for t in tensors], dim=dim)   # NOTE: dim names the new axis in both


@numpy_names
def gather(input: Tensor, dim: int, index) -> Tensor:
    """out[i][j][k] = input[index[i][j][k]][j][k] for dim 0 (and so on), as torch.gather. Composed from getitem:
    index along dim, and each other axis's own positions, so ∂L/∂input adds ∂L/∂out at the gathered places."""
    input = input if isinstance(input, Tensor) else Tensor(input)
    idx = np.asarray(numpy_value(index))
    if input.ndim == 0 and idx.ndim == 0:   # NOTE: a 0-d input is a 1-element axis 0 (or −1), as in PyTorch
        ops.normalize_axes(dim, (1,), "gather")
        return gather(input.reshape(1), 0, idx.reshape(1)).reshape(())
    shape = input.shape
    if idx.dtype.kind not in "iu":
        raise TypeError(f"gather: index must be integers, got dtype {idx.dtype}")
    if idx.ndim != input.ndim:
        raise ShapeError(f"gather: index {idx.shape} must have as many axes as the input {shape}")
    (ax,) = ops.normalize_axes(dim, shape, "gather")
    if any(k != ax and idx.shape[k] > shape[k] for k in range(idx.ndim)):
        raise ShapeError(f"gather: index {idx.shape} is larger than the input {shape} along an axis other than "
                         f"dim {dim}")
    size = shape[ax]
    bad = (idx < 0) | (idx >= size)
    if bad.any():
        pos = tuple(int(k) for k in np.argwhere(bad)[0])
        raise ShapeError(f"gather: index {idx[pos]} at position {pos} is out of range for dim {dim} of size {size} "
                         f"(input {shape}, index {idx.shape})")
    where = list(np.indices(idx.shape, sparse=True))
    where[ax] = idx
    return input[tuple(where)]


def _triangle(op: str, input, diagonal, lower: bool) -> Tensor:
    """where(keep, input, 0), keep the triangle of the last two dims: the gradient is ∂L/∂out on the triangle."""
    input = input if isinstance(input, Tensor) else Tensor(input)
    if input.ndim < 2:
        raise ShapeError(f"{op}: the input must have at least 2 dims (the matrix is the last two), got shape "
                         f"{input.shape}")
    if isinstance(diagonal, bool) or not isinstance(diagonal, (int, np.integer)):
        raise TypeError(f"{op}: diagonal must be an integer, got {diagonal!r}")
    n, m = input.shape[-2:]
    keep = np.tri(n, m, int(diagonal), dtype=bool) if lower else ~np.tri(n, m, int(diagonal) - 1, dtype=bool)
    if input.dtype.kind != "f":   # NOTE: nothing to differentiate; bool stays bool, as in PyTorch
        return Tensor._wrap(np.where(keep, input.data, np.zeros((), input.dtype)), False)
    return where(keep, input, np.zeros((), input.dtype))


def tril(input, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims: out[..., i, j] = input[..., i, j] where j ≤ i + diagonal, else 0,
    as torch.tril (diagonal 0: the main diagonal and below; −1: below it). Composed: a where."""
    return _triangle("tril", input, diagonal, lower=True)


def triu(input, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims: out[..., i, j] = input[..., i, j] where j ≥ i + diagonal, else 0,
    as torch.triu (diagonal 1: above the main diagonal). Composed: a where."""
    return _triangle("triu", input, diagonal, lower=False)


# --- factories ----------------------------------------------------------------------------------------------


def _shape(args) -> tuple:
    """f(2, 3) and f((2, 3)) alike, for shapes and axes."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list, np.ndarray)) else tuple(args)


def as_pair(op: str, name: str, value, least: int) -> tuple[int, int]:
    """An int or an (h, w) pair of ints ≥ least, as (h, w); ValueError naming the op otherwise."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else \
        tuple(value) if isinstance(value, (tuple, list)) else None
    if pair is None or len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                                 and v >= least for v in pair):
        raise ValueError(f"{op}: {name} must be an integer ≥ {least} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def as_generator(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def zeros(*shape, dtype=DEFAULT_FLOAT, requires_grad: bool = False, name: str | None = None) -> Tensor:
    return Tensor(np.zeros(_shape(shape), dtype=dtype), requires_grad=requires_grad, name=name)


def ones(*shape, dtype=DEFAULT_FLOAT, requires_grad: bool = False, name: str | None = None) -> Tensor:
    return Tensor(np.ones(_shape(shape), dtype=dtype), requires_grad=requires_grad, name=name)


def randn(*shape, seed=None, dtype=DEFAULT_FLOAT, requires_grad: bool = False, name: str | None = None) -> Tensor:
    """Standard normal values; seed is an int, None, or a numpy.random.Generator to draw from."""
    data = as_generator(seed).standard_normal(_shape(shape), dtype=np.dtype(dtype).type)
    return Tensor(data, requires_grad=requires_grad, name=name)


def uniform(*shape, low: float = 0.0, high: float = 1.0, seed=None, dtype=DEFAULT_FLOAT,
            requires_grad: bool = False, name: str | None = None) -> Tensor:
    """Values uniform in [low, high); seed is an int, None, or a numpy.random.Generator to draw from."""
    dtype = np.dtype(dtype)
    data = as_generator(seed).random(_shape(shape), dtype=dtype.type) * dtype.type(high - low) + dtype.type(low)
    return Tensor(data, requires_grad=requires_grad, name=name)


def arange(start, end=None, step=1, *, dtype=None, requires_grad: bool = False, name: str | None = None) -> Tensor:
    """start, start + step, ... up to end (not included), as torch.arange: `arange(5)` is 0..4, `arange(1, 2, 0.25)`
    is 1, 1.25, 1.5, 1.75. ⌈(end − start)/step⌉ values, each start + i·step (computed in float64, then cast).
    The dtype, unless given: int64 when start, end and step are all integers, else the default float (float32)."""
    if end is None:
        start, end = 0, start
    for what, v in (("start", start), ("end", end), ("step", step)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"arange: {what} must be a finite real number, got {v!r}")
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise ValueError(f"arange: the bounds start={start}, end={end} are inconsistent with the sign of "
                         f"step={step}")
    integers = all(isinstance(v, numbers.Integral) for v in (start, end, step))
    dtype = np.dtype(np.int64 if integers else DEFAULT_FLOAT) if dtype is None else np.dtype(dtype)
    if integers:
        n = max(0, -(-(end - start) // step))   # NOTE: exact, in Python's integers
        data = start + np.arange(n, dtype=np.int64) * step
    else:
        n = max(0, math.ceil((end - start) / step))
        data = float(start) + np.arange(n, dtype=np.float64) * float(step)
    return Tensor(cast(data, dtype, "arange"), requires_grad=requires_grad, name=name)
