"""The registry of differentiable ops and the inputs to check them on, shared by the tests and `gradcheck`.

Each OpSpec builds one example from a *chooser*, an object with three methods:

    integers(lo, hi) -> int            (both ends included)
    floats(shape, lo, hi) -> ndarray   (float64, in [lo, hi])
    sample(options) -> one of options

The tests pass a chooser that draws with hypothesis (so failures shrink); `python -m tinygrad_edu gradcheck`
passes NumpyChooser. Domains hold by construction: relu's inputs stay away from its kink at 0, max's values
are distinct (so are max_pool2d's), log and fractional powers see only positive numbers, divisors stay away from 0.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from tinygrad_edu import ops, tensor
from tinygrad_edu.nn import functional as F
from tinygrad_edu.tensor import cat, stack


class NumpyChooser:
    """A chooser drawing from a numpy Generator (the gradcheck command's)."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)

    def integers(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi, endpoint=True))

    def floats(self, shape, lo: float, hi: float) -> np.ndarray:
        return self.rng.uniform(lo, hi, size=shape)

    def sample(self, options):
        return options[int(self.rng.integers(len(options)))]


# --- shapes and domains, built from a chooser ------------------------------------------------------------


def shape(c, min_dims: int = 0, max_dims: int = 3, max_side: int = 4) -> tuple[int, ...]:
    return tuple(c.integers(1, max_side) for _ in range(c.integers(min_dims, max_dims)))


def broadcast_partner(c, s: tuple) -> tuple:
    """A shape that broadcasts with s: some leading axes dropped, some axes set to 1."""
    s = s[c.integers(0, len(s)):]
    return tuple(1 if c.integers(0, 2) == 0 else n for n in s)


def axis(c, ndim: int):
    """None, one axis (maybe negative) or a tuple of distinct axes."""
    if ndim == 0:
        return None
    kind = c.sample(["none", "int", "tuple"])
    if kind == "none":
        return None
    if kind == "int":
        return c.integers(-ndim, ndim - 1)
    return tuple(ax for ax in range(ndim) if c.integers(0, 1))


def real(c, s, bound: float = 2.0):
    return c.floats(s, -bound, bound)


def positive(c, s):
    return c.floats(s, 0.2, 3.0)


def away_from_zero(c, s, gap: float = 0.1):
    """Values with |x| ≥ gap: clear of relu's kink, and of a zero divisor."""
    magnitude = c.floats(s, gap, 2.0)
    return np.where(c.floats(s, -1, 1) < 0, -magnitude, magnitude)


def distinct(c, s, gap: float = 0.1):
    """Values at least `gap` apart, in a drawn order: max then has one clear winner in every slice."""
    keys = c.floats(s, 0, 1).reshape(-1)
    ranks = np.argsort(np.argsort(keys, kind="stable"), kind="stable")   # distinct even when keys tie
    return (ranks * gap - 1.0).reshape(s) + c.floats(s, 0, gap / 4)


def as_pair(c, elements=real):
    a = shape(c)
    b = broadcast_partner(c, a)
    if c.integers(0, 1):
        a, b = b, a
    return elements(c, a), elements(c, b)


# --- the registry ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpSpec:
    """One op to check: build(chooser) -> (f, inputs); f maps Tensors to a Tensor; every input requires grad."""
    name: str
    covers: tuple[type, ...]
    build: Callable
    domain: str = "real numbers"

    def example(self, c) -> Example:
        """One drawn example. build returns (f, inputs) or (f, inputs, twin), twin(torch, *tensors) being the same
        computation in PyTorch's API (the differential tests run it when torch is installed)."""
        return Example(*self.build(c))


class Example(NamedTuple):
    f: Callable
    inputs: list
    twin: Callable | None = None


def binary_op(op):
    return lambda c: (op, list(as_pair(c)), lambda torch, x, y: op(x, y))


def _div(c):
    a, b = as_pair(c)
    return (lambda x, y: x / y), [a, away_from_zero(c, np.shape(b), gap=0.5)], (lambda torch, x, y: x / y)


def _pow(c):
    p = c.sample([2, 3, 0.5, -1.5, 1.7])
    return (lambda x: x ** p), [positive(c, shape(c))], (lambda torch, x: x ** p)


def _matmul(c):
    n, k, p, batch = (c.integers(1, 4) for _ in range(4))
    a_shape, b_shape = c.sample([((n, k), (k, p)), ((batch, n, k), (k, p)), ((batch, n, k), (batch, k, p)),
                                 ((n, k), (batch, k, p)), ((k,), (k, p)), ((n, k), (k,)), ((k,), (k,)),
                                 ((k,), (batch, k, p))])
    return (lambda x, y: x @ y), [real(c, a_shape), real(c, b_shape)], (lambda torch, x, y: x @ y)


def _unary(method, elements=real):
    return lambda c: ((lambda x: getattr(x, method)()), [elements(c, shape(c))], lambda torch, x: getattr(x, method)())


def _reduce(method, elements=real):
    def build(c):
        x = elements(c, shape(c))
        ax, keepdims = axis(c, x.ndim), bool(c.integers(0, 1))
        return (lambda t: getattr(t, method)(axis=ax, keepdims=keepdims)), [x], _torch_reduce(method, ax, keepdims)
    return build


def _torch_reduce(method, ax, keepdims):
    def twin(torch, t):
        if ax is None or ax == ():
            out = getattr(t, method)() if ax is None else t.clone()   # an empty axis tuple reduces nothing
            return out.reshape((1,) * t.ndim) if keepdims and ax is None else out
        dims = ax if isinstance(ax, tuple) else (ax,)
        if method in ("max", "min"):   # NOTE: amax/amin split ties evenly, as ours; max(dim)/min(dim) pick one
            return getattr(t, "a" + method)(dim=dims, keepdim=keepdims)
        return getattr(t, method)(dim=dims, keepdim=keepdims)
    return twin


def _reshape(c):
    x = real(c, shape(c))
    new = c.sample([(-1,), (x.size, 1), (1, x.size), tuple(reversed(x.shape))])
    return (lambda t: t.reshape(new)), [x], (lambda torch, t: t.reshape(new))


def _transpose(c):
    x = real(c, shape(c, min_dims=1))
    keys = c.floats((x.ndim,), 0, 1)
    axes = tuple(int(i) for i in np.argsort(keys, kind="stable"))
    form = c.sample(["axes", "permute", "T", "swap"])
    if form == "T":
        axes = tuple(reversed(range(x.ndim)))
        return (lambda t: t.T), [x], (lambda torch, t: t.permute(axes))
    if form == "swap" and x.ndim >= 2:   # transpose(d0, d1) swaps two dims, negative ones too, as torch's
        d0, d1 = c.integers(-x.ndim, x.ndim - 1), c.integers(-x.ndim, x.ndim - 1)
        return (lambda t: t.transpose(d0, d1)), [x], (lambda torch, t: t.transpose(d0, d1))
    if form == "permute":
        return (lambda t: t.permute(*axes)), [x], (lambda torch, t: t.permute(*axes))
    return (lambda t: t.transpose(axes)), [x], (lambda torch, t: t.permute(axes))


def _getitem(c):
    x = real(c, shape(c, min_dims=1))
    n = x.shape[0]
    if c.integers(0, 1):   # integer-array indexing, with repeats: their gradients add up
        index = np.array([c.integers(0, n - 1) for _ in range(c.integers(1, 6))])
    else:
        start, stop = c.integers(0, n - 1), c.integers(0, n)
        index = (slice(start, max(stop, start + 1), c.integers(1, 2)),) + (Ellipsis,)
    return (lambda t: t[index]), [x], (lambda torch, t: t[torch.as_tensor(index) if isinstance(index, np.ndarray)
                                                   else index])


def _index_add(c):
    """getitem's adjoint (its backward, recorded): rows of x added into zeros at integer indices, with repeats."""
    x = real(c, shape(c, min_dims=1))
    n = c.integers(x.shape[0], x.shape[0] + 2)
    rows = np.array([c.integers(0, n - 1) for _ in range(x.shape[0])])
    out_shape = (n, *x.shape[1:])
    def f(t):
        return ops.IndexAdd.apply(t, shape=out_shape, first=(slice(None),), then=(rows,))
    return f, [x], (lambda torch, t: torch.zeros(out_shape, dtype=t.dtype).index_put((torch.as_tensor(rows),), t,
                                                                                      accumulate=True))


def _reduced(c, min_dims: int = 1):
    """(shape, axis) with at least 2 elements per reduction: the first reduced axis gets size 2–4."""
    s = list(shape(c, min_dims=min_dims))
    ax = axis(c, len(s))
    if ax == ():
        ax = None
    axes = range(len(s)) if ax is None else [ax] if isinstance(ax, int) else ax
    s[min(axes) % len(s)] = c.integers(2, 4)
    return tuple(s), ax


def _dims(ax, ndim: int):
    """Our axis argument as PyTorch's dim: a tuple of every axis for None."""
    return tuple(range(ndim)) if ax is None else ax


def _var(method):
    def build(c):
        s, ax = _reduced(c)
        x = distinct(c, s)   # NOTE: not all equal, so std stays clear of √0's infinite slope
        n = x.size if ax is None else int(np.prod([s[a] for a in ((ax,) if isinstance(ax, int) else ax)]))
        corr, keepdims = c.integers(0, min(2, n - 1)), bool(c.integers(0, 1))
        return (lambda t: getattr(t, method)(ax, correction=corr, keepdims=keepdims)), [x], (
            lambda torch, t: getattr(torch, method)(t, dim=_dims(ax, t.ndim), correction=corr, keepdim=keepdims))
    return build


def _logsumexp(c):
    s, ax = _reduced(c)
    x, keepdims = real(c, s, bound=3.0), bool(c.integers(0, 1))
    ax = _dims(ax, len(s))   # NOTE: axis is required, as PyTorch's dim
    return (lambda t: t.logsumexp(ax, keepdims=keepdims)), [x], (
        lambda torch, t: torch.logsumexp(t, dim=ax, keepdim=keepdims))


def _prod(c):
    s = shape(c)
    x = away_from_zero(c, s, gap=0.5) * 0.75   # NOTE: |x| in [0.375, 1.5]: products of up to 64 stay moderate
    x = np.where(c.floats(s, 0, 1) < 0.15, 0.0, x)   # and some exact zeros: prod is linear in each element
    ax = c.integers(-len(s), len(s) - 1) if s and c.integers(0, 1) else None   # PyTorch's prod takes one dim
    keepdims = bool(c.integers(0, 1)) and ax is not None
    return (lambda t: t.prod(axis=ax, keepdims=keepdims)), [x], (
        lambda torch, t: t.prod() if ax is None else t.prod(dim=ax, keepdim=keepdims))


def _cumsum(c):
    x = real(c, shape(c))
    ax = c.integers(-max(x.ndim, 1), max(x.ndim, 1) - 1)
    return (lambda t: t.cumsum(ax)), [x], (lambda torch, t: t.cumsum(ax))


def _cat(c):
    s = shape(c, min_dims=1)
    ax = c.integers(-len(s), len(s) - 1)
    parts = []
    for _ in range(c.integers(1, 3)):
        part = list(s)
        part[ax] = c.integers(1, 3)
        parts.append(real(c, tuple(part)))
    return (lambda *ts: cat(ts, dim=ax)), parts, (lambda torch, *ts: torch.cat(ts, dim=ax))


def _stack(c):
    s = shape(c)
    ax = c.integers(-len(s) - 1, len(s))
    parts = [real(c, s) for _ in range(c.integers(1, 3))]
    return (lambda *ts: stack(ts, dim=ax)), parts, (lambda torch, *ts: torch.stack(ts, dim=ax))


def _pad(c):
    x = real(c, shape(c, min_dims=1))
    pad = []
    for k in range(c.integers(1, x.ndim)):
        n = x.shape[-1 - k]   # a crop of −1 only where the axis keeps an element
        pad += [c.integers(-1 if n > 2 else 0, 2), c.integers(-1 if n > 1 else 0, 2)]
    value = c.sample([None, 0.5, -2.0])
    return (lambda t: F.pad(t, pad, value=value)), [x], (
        lambda torch, t: torch.nn.functional.pad(t, pad, value=0.0 if value is None else value))


def _flatten(c):
    x = real(c, shape(c))
    nd = max(x.ndim, 1)
    start = c.integers(-nd, nd - 1)
    end = c.integers(start % nd, nd - 1) - (nd if c.integers(0, 1) else 0)
    return (lambda t: t.flatten(start, end)), [x], (lambda torch, t: t.flatten(start, end))


def _squeeze(c):
    x = real(c, tuple(c.sample([1, n]) for n in shape(c, max_dims=4)))
    dim = axis(c, x.ndim)
    return (lambda t: t.squeeze(dim)), [x], (lambda torch, t: t.squeeze() if dim is None else t.squeeze(dim))


def _unsqueeze(c):
    x = real(c, shape(c))
    dim = c.integers(-x.ndim - 1, x.ndim)
    return (lambda t: t.unsqueeze(dim)), [x], (lambda torch, t: t.unsqueeze(dim))


def _expand(c):
    x = real(c, tuple(c.sample([1, n]) for n in shape(c)))
    sizes = tuple(c.integers(1, 3) for _ in range(c.integers(0, 2)))   # new axes in front
    sizes += tuple(c.sample([-1, n, c.integers(1, 3)]) if n == 1 else c.sample([-1, n]) for n in x.shape)
    return (lambda t: t.expand(*sizes)), [x], (lambda torch, t: t.expand(sizes))


def _flip(c):
    x = real(c, shape(c, min_dims=1))
    dims = tuple(ax - x.ndim if c.integers(0, 1) else ax for ax in range(x.ndim) if c.integers(0, 1))
    return (lambda t: t.flip(dims)), [x], (lambda torch, t: t.flip(dims))


def _repeat(c):
    x = real(c, shape(c))
    sizes = tuple(c.integers(1, 3) for _ in range(x.ndim + c.integers(0, 1)))
    return (lambda t: t.repeat(*sizes)), [x], (lambda torch, t: t.repeat(sizes))


def _gather(c):
    x = real(c, shape(c, min_dims=1))
    dim = c.integers(-x.ndim, x.ndim - 1)
    s = tuple(c.integers(1, 4) if k == dim % x.ndim else c.integers(1, n) for k, n in enumerate(x.shape))
    index = np.array([c.integers(0, x.shape[dim] - 1) for _ in range(int(np.prod(s)))], dtype=np.int64).reshape(s)
    return (lambda t: t.gather(dim, index)), [x], (lambda torch, t: t.gather(dim, torch.as_tensor(index)))


def _masked_fill(c):
    x = real(c, shape(c))
    mask = c.floats(broadcast_partner(c, x.shape), 0, 1) < 0.5
    value = c.sample([0.0, -1.5, 3.0])
    return (lambda t: t.masked_fill(mask, value)), [x], (lambda torch, t: t.masked_fill(torch.as_tensor(mask), value))


def _softmax(method):
    def build(c):
        x = real(c, shape(c, min_dims=1), bound=3.0)
        ax = c.integers(-x.ndim, x.ndim - 1)
        return (lambda t: getattr(t, method)(axis=ax)), [x], (lambda torch, t: getattr(t, method)(dim=ax))
    return build


def _softmax_cross_entropy(c):
    z = real(c, shape(c, min_dims=1), bound=3.0)
    ax = c.integers(-z.ndim, z.ndim - 1)
    n_classes = z.shape[ax]
    reduction = c.sample(["mean", "sum"])

    def moved(t):   # torch takes the class axis second: move it there
        return t.movedim(ax, 1) if t.ndim > 1 else t

    if c.integers(0, 1):   # integer labels: the logits' shape without the class axis
        label_shape = z.shape[:ax % z.ndim] + z.shape[ax % z.ndim + 1:]
        target = np.array([c.integers(0, n_classes - 1) for _ in range(int(np.prod(label_shape)))],
                          dtype=np.int64).reshape(label_shape)

        def twin(torch, t):
            return torch.nn.functional.cross_entropy(moved(t), torch.as_tensor(target), reduction=reduction)
        return (lambda t: t.softmax_cross_entropy(target, axis=ax, reduction=reduction)), [z], twin
    # probability rows along the class axis, differentiated too (as torch does)
    w = positive(c, z.shape)
    target = w / w.sum(axis=ax, keepdims=True)

    def twin_p(torch, t, y):
        return torch.nn.functional.cross_entropy(moved(t), moved(y), reduction=reduction)
    return (lambda t, y: t.softmax_cross_entropy(y, axis=ax, reduction=reduction)), [z, target], twin_p


def _reduction(c):
    return c.sample(["mean", "sum", "none"])


def _nll_loss(c):
    from tinygrad_edu.nn import functional as F
    n, k = c.integers(1, 4), c.integers(1, 4)
    x = real(c, (n, k), bound=3.0)
    labels = np.array([c.integers(0, k - 1) for _ in range(n)], dtype=np.int64)
    r = _reduction(c)
    return (lambda t: F.nll_loss(t, labels, reduction=r)), [x], (
        lambda torch, t: torch.nn.functional.nll_loss(t, torch.as_tensor(labels), reduction=r))


def _binary_cross_entropy_with_logits(c):
    from tinygrad_edu.nn import functional as F
    s = shape(c, min_dims=1)
    x, y = real(c, s, bound=4.0), c.floats(s, 0.0, 1.0)
    r = _reduction(c)
    # one weight per class (the last axis), or none; a constant (PyTorch does not differentiate pos_weight)
    p = positive(c, s[-1:]) if c.integers(0, 1) else None
    return (lambda t, u: F.binary_cross_entropy_with_logits(t, u, reduction=r, pos_weight=p)), [x, y], (
        lambda torch, t, u: torch.nn.functional.binary_cross_entropy_with_logits(
            t, u, reduction=r, pos_weight=None if p is None else torch.tensor(p)))


def _mse_loss(c):
    from tinygrad_edu.nn import functional as F
    s = shape(c)
    r = _reduction(c)
    return (lambda t, u: F.mse_loss(t, u, reduction=r)), [real(c, s), real(c, s)], (
        lambda torch, t, u: torch.nn.functional.mse_loss(t, u, reduction=r))


def _affine(c, f, twin, x, s):
    """(f, inputs, twin) with a weight and a bias of shape s as inputs too, or without them."""
    if c.integers(0, 1):
        return (lambda t, w, b: f(t, w, b)), [x, real(c, s), real(c, s)], (
            lambda torch, t, w, b: twin(torch, t, w, b))
    return (lambda t: f(t, None, None)), [x], (lambda torch, t: twin(torch, t, None, None))


def _batch_norm(c):
    from tinygrad_edu.nn import functional as F
    training = bool(c.integers(0, 1))
    C = c.integers(1, 3)
    x = distinct(c, (c.integers(2, 3), C, *shape(c, max_dims=2, max_side=3)))   # > 1 value per channel
    mean, var = real(c, (C,)), positive(c, (C,))
    momentum, eps = c.sample([0.1, 0.5]), c.sample([1e-5, 1e-3])

    def f(t, w, b):   # NOTE: fresh running statistics each call (training updates them in place)
        return F.batch_norm(t, mean.copy(), var.copy(), w, b, training=training, momentum=momentum, eps=eps)

    def twin(torch, t, w, b):
        return torch.nn.functional.batch_norm(t, torch.tensor(mean), torch.tensor(var), w, b, training=training,
                                              momentum=momentum, eps=eps)
    return _affine(c, f, twin, x, (C,))


def _layer_norm(c):
    from tinygrad_edu.nn import functional as F
    x = distinct(c, shape(c, min_dims=1))
    k = c.integers(1, x.ndim)
    normalized = x.shape[x.ndim - k:]
    if int(np.prod(normalized)) == 1:   # one value: (x − μ) is 0, nothing to check but that
        x = distinct(c, (*x.shape[:x.ndim - k], 2, *normalized[1:]))
        normalized = x.shape[x.ndim - k:]
    eps = c.sample([1e-5, 1e-3])
    return _affine(c, lambda t, w, b: F.layer_norm(t, normalized, w, b, eps=eps),
                   lambda torch, t, w, b: torch.nn.functional.layer_norm(t, normalized, w, b, eps=eps),
                   x, normalized)


def _embedding(c):
    from tinygrad_edu.nn import functional as F
    n, d = c.integers(1, 5), c.integers(1, 3)
    idx = np.array([c.integers(0, n - 1) for _ in range(c.integers(1, 6))], dtype=np.int64)
    idx = idx.reshape(c.sample([(-1,), (1, -1)]))
    return (lambda w: F.embedding(idx, w)), [real(c, (n, d))], (
        lambda torch, w: torch.nn.functional.embedding(torch.as_tensor(idx), w))


def _image(c, kh: int, kw: int, pad=(0, 0), elements=real):
    """An N×C×H×W batch of images just large enough for a kh×kw kernel (after padding), or a few pixels more."""
    H, W = (max(1, k - 2 * p) + c.integers(0, 3) for k, p in zip((kh, kw), pad))
    return elements(c, (c.integers(1, 2), c.integers(1, 3), H, W))


def _int_or_pair(c, lo: int, hi: int):
    """An int or an (h, w) pair: the two forms conv2d and the pools take."""
    return c.integers(lo, hi) if c.integers(0, 1) else (c.integers(lo, hi), c.integers(lo, hi))


def _pair_of(v):
    return (v, v) if isinstance(v, int) else v


def _conv2d(c):
    kh, kw = c.integers(1, 3), c.integers(1, 3)
    stride, padding = _int_or_pair(c, 1, 2), _int_or_pair(c, 0, 1)
    x = _image(c, kh, kw, _pair_of(padding))
    w = real(c, (c.integers(1, 3), x.shape[1], kh, kw))
    return (lambda t, k: t.conv2d(k, stride=stride, padding=padding)), [x, w], (
        lambda torch, t, k: torch.nn.functional.conv2d(t, k, stride=stride, padding=padding))


def _pool2d(method, elements):
    def build(c):
        kernel = _int_or_pair(c, 1, 3)
        stride = c.sample([None, 1, 2, 3, (1, 2)])
        x = _image(c, *_pair_of(kernel), elements=elements)
        return (lambda t: getattr(t, method)(kernel, stride)), [x], (
            lambda torch, t: getattr(torch.nn.functional, method)(t, kernel, stride))
    return build


# --- elementwise beyond the tutorial's, activations and the losses built on them -----------------------------


def _functional(name: str):
    """nn.functional's `name`, looked up when an example runs (the registry sits below the nn layer)."""
    from tinygrad_edu.nn import functional
    return getattr(functional, name)


def _bounds(c, s, lo: float, hi: float):
    """Values at least 0.1 clear of lo and hi (lo + 1 ≤ hi, either may be an array broadcasting to s): below
    lo, between the two, or above hi, each element drawn into one of the three."""
    region = np.floor(c.floats(s, 0, 2.999))
    gap, t = c.floats(s, 0.1, 1.0), c.floats(s, 0.1, 0.9)
    return np.where(region == 0, lo - gap, np.where(region == 1, lo + (hi - lo) * t, hi + gap))


def _clip(c):
    x_shape = shape(c)
    method, form = c.sample(["clip", "clamp"]), c.sample(["both", "min", "max", "tensors"])
    if form == "tensors":   # bound tensors that broadcast to x's shape: they get gradients too
        lo = c.floats(broadcast_partner(c, x_shape), -1.5, -0.5)
        hi = c.floats(broadcast_partner(c, x_shape), 0.5, 1.5)
        return (lambda t, low, high: getattr(t, method)(low, high)), [_bounds(c, x_shape, lo, hi), lo, hi], (
            lambda torch, t, low, high: t.clamp(low, high))
    lo, hi = float(c.floats((), -1.5, -0.5)), float(c.floats((), 0.5, 1.5))
    low, high = (lo if form != "max" else None), (hi if form != "min" else None)
    return (lambda t: getattr(t, method)(min=low, max=high)), [_bounds(c, x_shape, lo, hi)], (
        lambda torch, t: t.clamp(min=low, max=high))


def _odd_and_even(c, s, odd: bool):
    """Values 2k + u (k in −1..1, u in [0, 0.8]), plus 1 if odd: an odd one and an even one are ≥ 0.2 apart."""
    return 2 * np.floor(c.floats(s, -1, 1.999)) + c.floats(s, 0, 0.8) + odd


def _max_or_min(name):
    def build(c):
        a_shape = shape(c)
        b_shape = broadcast_partner(c, a_shape)
        if c.integers(0, 1):
            a_shape, b_shape = b_shape, a_shape
        odd = bool(c.integers(0, 1))
        x, y = _odd_and_even(c, a_shape, odd), _odd_and_even(c, b_shape, not odd)   # no ties
        f = getattr(tensor, name) if c.integers(0, 1) else (lambda t, u: getattr(t, name)(u))
        return f, [x, y], lambda torch, t, u: getattr(torch, name)(t, u)
    return build


def _where(c):
    s = shape(c)
    shapes = [s, broadcast_partner(c, s), broadcast_partner(c, s)]
    first = c.integers(0, 2)   # which of the three has the full shape
    shapes[0], shapes[first] = shapes[first], shapes[0]
    cond = c.floats(shapes[0], -1, 1) > 0
    x, y = real(c, shapes[1]), real(c, shapes[2])
    f = (lambda t, u: tensor.where(cond, t, u)) if c.integers(0, 1) else (lambda t, u: t.where(cond, u))
    return f, [x, y], lambda torch, t, u: torch.where(torch.as_tensor(cond), t, u)


def _pow_tensor(c):
    a_shape = shape(c)
    b_shape = broadcast_partner(c, a_shape)
    if c.integers(0, 1):
        a_shape, b_shape = b_shape, a_shape
    f = (lambda t, u: t ** u) if c.integers(0, 1) else (lambda t, u: t.pow(u))
    return f, [positive(c, a_shape), real(c, b_shape)], lambda torch, t, u: t ** u


def _activation(name, elements=real, **choices):
    """F.name(x, **kwargs), each keyword drawn from its options; the twin is torch's function of the same name."""
    torch_name = {"log_sigmoid": "logsigmoid"}.get(name, name)

    def build(c):
        kwargs = {k: c.sample(options) for k, options in choices.items()}
        return (lambda t: _functional(name)(t, **kwargs)), [elements(c, shape(c))], (
            lambda torch, t: getattr(torch.nn.functional, torch_name)(t, **kwargs))
    return build


def _softplus(c):
    beta, threshold = c.sample([1.0, 2.0, 0.5]), c.sample([20.0, 1.0])
    s = shape(c)
    # NOTE: with threshold 1 the switch to x is inside the drawn range: β·x stays ≥ 0.1 clear of it
    x = real(c, s, 3.0) if threshold == 20.0 else (threshold + away_from_zero(c, s)) / beta
    return (lambda t: _functional("softplus")(t, beta, threshold)), [x], (
        lambda torch, t: torch.nn.functional.softplus(t, beta, threshold))


def _loss(name, second):
    """F.name(input, target, reduction=..., **kwargs); `second(c, x)` draws the target from the input x."""
    def build(c):
        x = real(c, shape(c))
        kwargs = {"reduction": c.sample(["mean", "sum", "none"])}
        return (lambda t, u: _functional(name)(t, u, **kwargs)), [x, second(c, x)], (
            lambda torch, t, u: getattr(torch.nn.functional, name)(t, u, **kwargs))
    return build


def _huber_loss(c):
    """huber_loss with the target |x − y| ≥ 0.1 away from delta: its second derivative jumps there (1 inside, 0
    outside), where central differences of the first derivative see half of each."""
    x = real(c, shape(c))
    delta, reduction = c.sample([1.0, 0.5, 2.0]), c.sample(["mean", "sum", "none"])
    gap = np.where(c.floats(x.shape, 0, 1) < 0.5, c.floats(x.shape, 0, delta - 0.1),
                   c.floats(x.shape, delta + 0.1, delta + 2))
    target = x + np.where(c.floats(x.shape, -1, 1) < 0, -gap, gap)
    return (lambda t, u: _functional("huber_loss")(t, u, delta=delta, reduction=reduction)), [x, target], (
        lambda torch, t, u: torch.nn.functional.huber_loss(t, u, delta=delta, reduction=reduction))


def _binary_cross_entropy(c):
    s = shape(c)
    reduction = c.sample(["mean", "sum", "none"])
    weight = None if c.integers(0, 1) else positive(c, broadcast_partner(c, s)).astype(np.float32)
    def twin(torch, t, u):
        w = None if weight is None else torch.as_tensor(weight, dtype=t.dtype)
        return torch.nn.functional.binary_cross_entropy(t, u, weight=w, reduction=reduction)
    return (lambda t, u: _functional("binary_cross_entropy")(t, u, weight=weight, reduction=reduction)), [
        c.floats(s, 0.05, 0.95), c.floats(s, 0, 1)], twin


def _triangle(name):
    def build(c):
        x = real(c, shape(c, min_dims=2))
        diagonal = c.integers(-3, 3)
        return (lambda t: getattr(tensor, name)(t, diagonal=diagonal)), [x], (
            lambda torch, t: getattr(torch, name)(t, diagonal=diagonal))
    return build


def _pieces(method):
    """split or chunk along a drawn dim; the pieces are joined again, each times its own number, so every piece's
    gradient is told apart."""
    def build(c):
        x = real(c, shape(c, min_dims=1, max_side=5))
        dim = c.integers(-x.ndim, x.ndim - 1)
        n = x.shape[dim]
        if method == "chunk":
            how = c.integers(1, n + 1)
        elif c.integers(0, 1):
            how = c.integers(1, n + 1)
        else:   # sizes that add up to n, zeros allowed
            cuts = sorted(c.integers(0, n) for _ in range(c.integers(0, 2)))
            how = [b - a for a, b in zip([0, *cuts], [*cuts, n])]

        def join(cat_fn, pieces):
            return cat_fn([p * (k + 1) for k, p in enumerate(pieces)], dim)
        return (lambda t: join(lambda ps, d: cat(ps, dim=d), getattr(t, method)(how, dim))), [x], (
            lambda torch, t: join(lambda ps, d: torch.cat(ps, dim=d), getattr(t, method)(how, dim)))
    return build


def _attention(c):
    """query, key and value with leading dims that broadcast; no mask, causal, a bool mask or a float mask (an
    input: its gradient is checked too), or a mask with causal; the default scale or a drawn one."""
    L, S, E, Ev = c.integers(1, 4), c.integers(1, 4), c.integers(1, 3), c.integers(1, 3)
    batch = tuple(c.integers(1, 2) for _ in range(c.integers(0, 2)))
    k_batch = tuple(c.sample([1, n]) for n in batch)
    q, k, v = real(c, (*batch, L, E)), real(c, (*k_batch, S, E)), real(c, (*k_batch, S, Ev))
    kind = c.sample(["none", "causal", "bool", "float", "bool+causal", "float+causal"])
    causal, scale = kind.endswith("causal"), c.sample([None, 0.5, 2.0])
    mask_shape = tuple(c.sample([1, n]) for n in (*batch, L, S))[c.integers(0, len(batch)):]
    inputs, mask = [q, k, v], None
    if kind.startswith("bool"):   # NOTE: rows that see no key are allowed: their output and gradients are 0
        mask = c.floats(mask_shape, 0, 1) < 0.7
    elif kind.startswith("float"):   # NOTE: one value per key: a mask constant along the keys has gradient 0
        inputs.append(real(c, (*mask_shape[:-1], S)))

    def ours(*ts):
        m = ts[3] if len(ts) == 4 else mask
        return F.scaled_dot_product_attention(*ts[:3], attn_mask=m, is_causal=causal, scale=scale)

    def twin(torch, *ts):
        m = ts[3] if len(ts) == 4 else None if mask is None else torch.as_tensor(mask)
        if causal and m is not None:   # NOTE: torch 2.13 refuses a mask with is_causal: fold the two into one
            allowed = torch.ones(L, S, dtype=torch.bool).tril()
            m = m & allowed if m.dtype == torch.bool else m.masked_fill(~allowed, float("-inf"))
        return torch.nn.functional.scaled_dot_product_attention(*ts[:3], attn_mask=m, is_causal=causal and m is None,
                                                                scale=scale)
    return ours, inputs, twin


REGISTRY: dict[str, OpSpec] = {spec.name: spec for spec in [
    OpSpec("add", (ops.Add,), binary_op(lambda x, y: x + y), "broadcasting pairs"),
    OpSpec("sub", (ops.Sub,), binary_op(lambda x, y: x - y), "broadcasting pairs"),
    OpSpec("mul", (ops.Mul,), binary_op(lambda x, y: x * y), "broadcasting pairs"),
    OpSpec("div", (ops.Div,), _div, "broadcasting pairs, |divisor| ≥ 0.5"),
    OpSpec("neg", (ops.Neg,), _unary("__neg__")),
    OpSpec("pow", (ops.Pow,), _pow, "positive base, exponent in {2, 3, 0.5, −1.5, 1.7}"),
    OpSpec("matmul", (ops.MatMul,), _matmul, "matrices, vectors and batches"),
    OpSpec("relu", (ops.ReLU,), _unary("relu", away_from_zero), "|x| ≥ 0.1, clear of the kink"),
    OpSpec("exp", (ops.Exp,), _unary("exp")),
    OpSpec("log", (ops.Log,), _unary("log", positive), "x in [0.2, 3]"),
    OpSpec("tanh", (ops.Tanh,), _unary("tanh")),
    OpSpec("sigmoid", (ops.Sigmoid,), _unary("sigmoid")),
    OpSpec("abs", (ops.Abs,), _unary("abs", away_from_zero), "|x| ≥ 0.1, clear of the kink"),
    OpSpec("sqrt", (), _unary("sqrt", positive), "x in [0.2, 3]"),
    OpSpec("sin", (ops.Sin,), _unary("sin")),
    OpSpec("cos", (ops.Cos,), _unary("cos")),
    OpSpec("erf", (ops.Erf,), _unary("erf")),
    OpSpec("clip", (), _clip, "x ≥ 0.1 clear of each bound; bounds numbers, None or broadcasting tensors"),
    OpSpec("maximum", (ops.Maximum,), _max_or_min("maximum"), "broadcasting pairs ≥ 0.2 apart (no ties)"),
    OpSpec("minimum", (), _max_or_min("minimum"), "broadcasting pairs ≥ 0.2 apart (no ties)"),
    OpSpec("where", (ops.Where,), _where, "a bool condition and two tensors, the three broadcasting"),
    OpSpec("pow_tensor", (ops.PowTensor,), _pow_tensor, "broadcasting pairs: base in [0.2, 3], exponent in [−2, 2]"),
    OpSpec("leaky_relu", (), _activation("leaky_relu", away_from_zero, negative_slope=[0.01, 0.2, 1.5]),
           "|x| ≥ 0.1, clear of the kink"),
    OpSpec("elu", (), _activation("elu", away_from_zero, alpha=[1.0, 0.5, 2.0]), "|x| ≥ 0.1, clear of the kink"),
    OpSpec("gelu", (ops.Erf,), _activation("gelu", approximate=["none", "tanh"]), "exact (erf) and tanh forms"),
    OpSpec("silu", (), _activation("silu")),
    OpSpec("softplus", (ops.Softplus,), _softplus, "β in {1, 2, 0.5}, threshold 20 or 1 (β·x ≥ 0.1 clear of it)"),
    OpSpec("log_sigmoid", (), _activation("log_sigmoid", lambda c, s: real(c, s, 5.0)), "x in [−5, 5]"),
    OpSpec("l1_loss", (), _loss("l1_loss", lambda c, x: x + away_from_zero(c, x.shape)),
           "input and target ≥ 0.1 apart (clear of the kink); each reduction"),
    OpSpec("huber_loss", (), _huber_loss,
           "|input − target| ≥ 0.1 away from delta (the second derivative's jump); delta 1, 0.5 or 2; each reduction"),
    OpSpec("binary_cross_entropy", (ops.BinaryCrossEntropy,), _binary_cross_entropy,
           "x in [0.05, 0.95], target in [0, 1], with or without a weight; each reduction"),
    OpSpec("sum", (ops.Sum,), _reduce("sum"), "axis None, int or tuple; keepdims"),
    OpSpec("mean", (ops.Mean,), _reduce("mean"), "axis None, int or tuple; keepdims"),
    OpSpec("max", (ops.Max,), _reduce("max", distinct), "distinct values (no ties); axis; keepdims"),
    OpSpec("reshape", (ops.Reshape,), _reshape),
    OpSpec("transpose", (ops.Transpose,), _transpose, "any permutation, permute, .T, a swap of two dims"),
    OpSpec("getitem", (ops.GetItem,), _getitem, "slices, and integer arrays with repeated indices"),
    OpSpec("index_add", (ops.IndexAdd,), _index_add, "rows added into zeros at integer indices, with repeats"),
    OpSpec("min", (ops.Min,), _reduce("min", distinct), "distinct values (no ties); axis; keepdims"),
    OpSpec("var", (), _var("var"), "≥ 2 elements per reduction, correction 0 to min(2, n − 1); axis; keepdims"),
    OpSpec("std", (), _var("std"), "distinct values, ≥ 2 per reduction (std > 0), correction 0 to min(2, n − 1)"),
    OpSpec("logsumexp", (), _logsumexp, "axis an int or a tuple (required); keepdims"),
    OpSpec("prod", (ops.Prod,), _prod, "|x| in [0.375, 1.5] and some exact zeros; axis None or an int; keepdims"),
    OpSpec("cumsum", (ops.Cumsum,), _cumsum, "any axis, 0-d included"),
    OpSpec("cat", (ops.Cat,), _cat, "1–3 tensors of sizes 1–3 along any dim"),
    OpSpec("stack", (), _stack, "1–3 tensors of one shape, any new dim"),
    OpSpec("pad", (), _pad, "1 to ndim (left, right) pairs in −1..2 (a crop leaves ≥ 1 element); value"),
    OpSpec("flatten", (), _flatten, "start_dim ≤ end_dim, negatives included"),
    OpSpec("squeeze", (), _squeeze, "size-1 axes mixed in; dim None, an int or a tuple"),
    OpSpec("unsqueeze", (), _unsqueeze, "any dim in −ndim−1..ndim"),
    OpSpec("expand", (), _expand, "size-1 axes grown, −1 kept, new axes in front"),
    OpSpec("flip", (), _flip, "any set of dims, negatives included"),
    OpSpec("repeat", (), _repeat, "counts 1–3, maybe one axis more"),
    OpSpec("gather", (), _gather, "index of the input's axes, ≤ its sizes off dim, values in range, repeats"),
    OpSpec("masked_fill", (), _masked_fill, "bool masks that broadcast to the input; value"),
    OpSpec("softmax", (ops.Softmax,), _softmax("softmax"), "any axis"),
    OpSpec("log_softmax", (ops.LogSoftmax,), _softmax("log_softmax"), "any axis"),
    OpSpec("softmax_cross_entropy", (ops.SoftmaxCrossEntropy,), _softmax_cross_entropy,
           "integer labels or probability rows (differentiated too), any class axis; mean or sum"),
    OpSpec("nll_loss", (), _nll_loss, "composed: batch×classes, integer labels; mean, sum or none"),
    OpSpec("binary_cross_entropy_with_logits", (ops.BinaryCrossEntropyWithLogits,),
           _binary_cross_entropy_with_logits,
           "logits in [−4, 4], targets in [0, 1], a constant pos_weight or none; reductions"),
    OpSpec("mse_loss", (), _mse_loss, "composed: equal shapes; mean, sum or none"),
    OpSpec("batch_norm", (), _batch_norm, "composed: N ≥ 2, distinct values (variance clear of 0); training or "
           "running statistics; with or without weight and bias"),
    OpSpec("layer_norm", (), _layer_norm, "composed: distinct values, the last 1..ndim axes; with or without "
           "weight and bias"),
    OpSpec("embedding", (), _embedding, "composed: indices with repeats (their gradients add up)"),
    OpSpec("conv2d", (ops.Conv2d,), _conv2d, "N×C×H×W images, kernels 1–3, strides 1–2, paddings 0–1, int or pair"),
    OpSpec("max_pool2d", (ops.MaxPool2d, ops.Pool2d), _pool2d("max_pool2d", distinct),
           "distinct values (one clear maximum per window); kernels 1–3, strides default, 1–3 or a pair"),
    OpSpec("avg_pool2d", (ops.AvgPool2d, ops.Pool2d), _pool2d("avg_pool2d", real),
           "kernels 1–3, strides default, 1–3 or a pair"),
    OpSpec("tril", (), _triangle("tril"), "composed: ≥ 2 dims, diagonal −3..3"),
    OpSpec("triu", (), _triangle("triu"), "composed: ≥ 2 dims, diagonal −3..3"),
    OpSpec("split", (), _pieces("split"), "composed: a size 1..n+1 or sizes (zeros too) adding up to n; any dim"),
    OpSpec("chunk", (), _pieces("chunk"), "composed: 1..n+1 chunks along any dim"),
    OpSpec("scaled_dot_product_attention", (), _attention,
           "composed: broadcasting leading dims; no mask, causal, bool (rows seeing no key too) or float masks "
           "(differentiated), a mask with causal; scale default, 0.5 or 2"),
]}


def all_ops() -> list[type]:
    """Every differentiable op defined in tinygrad_edu.ops (a test checks that REGISTRY covers them all), but Cast:
    a change of dtype has no float64 finite differences to check (tests/test_higher_order.py checks it exactly)."""
    return [cls for cls in vars(ops).values()
            if isinstance(cls, type) and issubclass(cls, ops.Function) and cls not in (ops.Function, ops.Cast)]
