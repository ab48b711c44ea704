"""Stateless layers and losses on Tensors (`import tinygrad_edu.nn.functional as F`), as torch.nn.functional."""
from __future__ import annotations

import numpy as np

from tinygrad_edu import ops
from tinygrad_edu.autograd import ShapeError
from tinygrad_edu.tensor import Tensor, _rng, as_array, cat

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str, fn: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {', '.join(map(repr, _REDUCTIONS))}, got {reduction!r}")


def linear(input, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x·Wᵀ + b: input batch×in_features, weight out_features×in_features (PyTorch's layout), bias out_features."""
    out = input @ weight.T
    return out if bias is None else out + bias


def relu(input: Tensor) -> Tensor:
    """max(x, 0), elementwise."""
    return input.relu()


def tanh(input: Tensor) -> Tensor:
    return input.tanh()


def sigmoid(input: Tensor) -> Tensor:
    """σ(x) = 1/(1 + e^−x), elementwise."""
    return input.sigmoid()


def softmax(input: Tensor, dim: int = -1) -> Tensor:
    return input.softmax(axis=dim)


def log_softmax(input: Tensor, dim: int = -1) -> Tensor:
    return input.log_softmax(axis=dim)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, *, seed=None) -> Tensor:
    """Inverted dropout: each element is zeroed with probability p and the survivors are scaled by 1/(1 − p),
    so the expected value is unchanged and evaluation needs no rescaling. Returns input itself when not
    training or p = 0. seed is an int, None, or a numpy.random.Generator to draw the mask from.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    dtype = input.dtype if input.dtype.kind == "f" else np.dtype(np.float32)
    if p == 1.0:
        mask = np.zeros(input.shape, dtype)
    else:
        keep = _rng(seed).random(input.shape, dtype=np.float32) >= p
        mask = np.multiply(keep, 1.0 / (1.0 - p), dtype=dtype)
    return input * mask


def cross_entropy(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Cross-entropy of softmax(input) against target, classes along the last axis (batch×classes logits).

    target: integer class labels (shape batch) or class probabilities (input's shape), checked the same way
    for every reduction (ops.check_target). With labels y, the loss of example i is −log softmax(xᵢ)[yᵢ];
    with probabilities, −Σ_c y_ic·log softmax(xᵢ)_c. Reduction "mean" averages over the batch (PyTorch's
    default), "sum" adds, "none" returns one loss per example. "mean" and "sum" use the fused, stable
    softmax_cross_entropy, whose gradient is (softmax − onehot(y))/m.
    """
    _check_reduction(reduction, "cross_entropy")
    if input.ndim != 2:
        raise ShapeError(f"cross_entropy: expects logits of shape batch×classes, got {input.shape}")
    target = as_array(target.data if isinstance(target, Tensor) else target)
    ops.check_target(input.data, target, 1, "cross_entropy")
    if reduction == "none":
        logp = input.log_softmax(axis=-1)
        if target.dtype.kind in "iu":
            return -logp[np.arange(len(target)), target]
        return -(logp * target).sum(axis=-1)
    loss = input.softmax_cross_entropy(target, axis=-1)
    return loss if reduction == "mean" else loss * input.shape[0]


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean squared error: mean((input − target)²) for "mean", the sum for "sum", elementwise for "none".

    input and target must have the same shape (PyTorch broadcasts with a warning; here it is an error,
    since a (N, 1) input against an (N,) target would silently become N×N).
    """
    _check_reduction(reduction, "mse_loss")
    if tuple(np.shape(getattr(target, "data", target))) != input.shape:
        raise ShapeError(f"mse_loss: input {input.shape} and target {np.shape(getattr(target, 'data', target))} "
                         "must have the same shape")
    sq = (input - target) ** 2
    return sq.mean() if reduction == "mean" else sq.sum() if reduction == "sum" else sq


# --- convolution and pooling (N×C×H×W) -----------------------------------------------------------------------


def conv2d(input, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0) -> Tensor:
    """out[n, o] = bias[o] + Σ_c input[n, c] ⋆ weight[o, c], as torch.nn.functional.conv2d (⋆ is a correlation).

    input N×C×H×W, weight out×C×kh×kw, bias out; stride and padding (zeros on both sides) are an int or an
    (h, w) pair. out is N×out×Ho×Wo with Ho = (H + 2·padding − kh)//stride + 1. The op (ops.Conv2d) computes it
    as one matrix product of the im2col patches with the weight; its docs derive the backward.
    """
    input = input if isinstance(input, Tensor) else Tensor(input)
    out = input.conv2d(weight, stride=stride, padding=padding)
    if bias is None:
        return out
    if tuple(bias.shape) != out.shape[1:2]:
        raise ShapeError(f"conv2d: bias {tuple(bias.shape)} must hold one value per output channel of weight "
                         f"{tuple(weight.shape)}, i.e. shape ({out.shape[1]},)")
    return out + bias.reshape(1, -1, 1, 1)


def max_pool2d(input, kernel_size, stride=None) -> Tensor:
    """The maximum of each kernel_size window, stride apart (default: kernel_size), as torch's max_pool2d.

    Rows and columns past the last whole window are dropped. Where a window's maximum is tied, the gradient is
    shared equally among the tied elements, as Tensor.max does (PyTorch gives it all to the first one).
    """
    return (input if isinstance(input, Tensor) else Tensor(input)).max_pool2d(kernel_size, stride)


def avg_pool2d(input, kernel_size, stride=None) -> Tensor:
    """The mean of each kernel_size window, stride apart (default: kernel_size), as torch's avg_pool2d
    (without its padding)."""
    return (input if isinstance(input, Tensor) else Tensor(input)).avg_pool2d(kernel_size, stride)


# --- padding and one-hot -------------------------------------------------------------------------------------


def pad(input: Tensor, pad, mode: str = "constant", value=None) -> Tensor:
    """input padded with `value` (default 0), as torch.nn.functional.pad in constant mode: pad is
    (left, right) pairs, the last axis's first, so (1, 2) pads the last axis and (1, 2, 0, 3) the last two.
    A negative amount crops. Composed: constant blocks joined on by cat (a crop is a getitem), so
    ∂L/∂input is ∂L/∂out without its padding."""
    if mode != "constant":
        raise ValueError(f"pad: only mode 'constant' is supported, got {mode!r}")
    input = input if isinstance(input, Tensor) else Tensor(input)
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ShapeError(f"pad: the pad {pad} has odd length {len(pad)}; it takes (left, right) pairs, last axis "
                         f"first (input {input.shape})")
    if len(pad) // 2 > input.ndim:
        raise ShapeError(f"pad: the pad {pad} gives {len(pad) // 2} (left, right) pairs for an input of shape "
                         f"{input.shape}, which has {input.ndim} axes")
    out = input
    for k in range(len(pad) // 2):
        ax, (left, right) = input.ndim - 1 - k, pad[2 * k:2 * k + 2]
        n = input.shape[ax]
        start, stop = max(-left, 0), n - max(-right, 0)
        if start > stop:
            raise ShapeError(f"pad: the pad {pad} crops axis {ax} of the input {input.shape}, of size {n}, to "
                             f"{n + left + right}")
        if start or stop < n:
            out = out[(slice(None),) * ax + (slice(start, stop),)]
        size = out.shape
        blocks = [np.full(size[:ax] + (p,) + size[ax + 1:], 0 if value is None else value, dtype=out.dtype)
                  for p in (max(left, 0), max(right, 0))]
        if blocks[0].size or blocks[1].size:
            out = cat([blocks[0], out, blocks[1]], dim=ax)
    return out


def one_hot(tensor, num_classes: int = -1) -> Tensor:
    """Integer class labels as one-hot int64 rows, a new last axis of num_classes (−1: the largest label + 1),
    as torch.nn.functional.one_hot. Not differentiable. Labels are checked as every loss checks them."""
    labels = as_array(tensor.data if isinstance(tensor, Tensor) else tensor)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"one_hot: class labels must be integers, got dtype {labels.dtype}")
    if num_classes == -1:
        if labels.size == 0:
            raise ShapeError(f"one_hot: cannot infer the number of classes from empty labels {labels.shape}; "
                             "pass num_classes")
        num_classes = max(int(labels.max()) + 1, 0)
    ops.check_labels(labels, num_classes, "one_hot")
    return Tensor._wrap((labels[..., None] == np.arange(num_classes)).astype(np.int64), False)
