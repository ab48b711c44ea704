"""Stateless layers and losses on Tensors (`import tinygrad_edu.nn.functional as F`), as torch.nn.functional."""
from __future__ import annotations

import math

import numpy as np

from tinygrad_edu import ops
from tinygrad_edu.autograd import ShapeError
from tinygrad_edu.dims import numpy_names
from tinygrad_edu.dtypes import as_array, fill_value, float_dtype
from tinygrad_edu.tensor import Tensor, apply_op, as_generator, binary_op, cat, numpy_value, where

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str, fn: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {', '.join(map(repr, _REDUCTIONS))}, got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    """A loss's elementwise terms averaged ("mean"), summed ("sum") or as they are ("none")."""
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


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


# --- more activations (composed of Tensor ops, but softplus: ops.Softplus) -----------------------------------


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, negative_slope·x elsewhere; composed with where, so the slope at 0 is negative_slope, as in
    PyTorch."""
    return where(input > 0, input, input * negative_slope)


def elu(input: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, α(eˣ − 1) elsewhere; the gradient at 0 is α, and at nan 1 (x's branch: not x ≤ 0), as in
    PyTorch.

    exp only sees min(x, 0): in the branch not taken a large x would make exp(x) = ∞, whose gradient times
    the 0 that where sends it would be nan. (PyTorch uses expm1, so for tiny |x| its value agrees with this
    eˣ − 1 to α·2⁻⁵³ absolutely, not relatively.)
    """
    positive = np.logical_not((input <= 0).data)
    return where(positive, input, alpha * (where(positive, 0.0, input).exp() - 1))


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x·Φ(x), Φ the standard normal's distribution function: exactly ½x(1 + erf(x/√2)) by default (through
    Tensor.erf, the C library's erf), or with approximate="tanh" ½x(1 + tanh(√(2/π)(x + 0.044715x³))), as
    torch.nn.functional.gelu."""
    if approximate == "none":
        return 0.5 * input * (1 + (input * (1 / math.sqrt(2))).erf())
    if approximate == "tanh":
        return 0.5 * input * (1 + (_SQRT_2_OVER_PI * (input + 0.044715 * input ** 3)).tanh())
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(input: Tensor) -> Tensor:
    """x·σ(x) (also called swish)."""
    return input * input.sigmoid()


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(β·x))/β, a smooth relu whose derivative is σ(β·x); x itself where β·x > threshold (PyTorch's
    convention). A primitive (ops.Softplus): it needs log1p for its precision, which the Tensor ops lack."""
    if not beta > 0:   # NOTE: torch accepts β ≤ 0 but divides by it; here it is refused
        raise ValueError(f"softplus: beta must be positive, got {beta}")
    return apply_op(ops.Softplus, input, dtype=float_dtype(input), beta=beta, threshold=threshold)


def log_sigmoid(input: Tensor) -> Tensor:
    """log σ(x) = −softplus(−x), finite for any x (no threshold: −log(1 + e⁻ˣ) to full precision)."""
    return -softplus(-input, threshold=math.inf)


# --- losses on the ops above (binary_cross_entropy: ops.BinaryCrossEntropy) ---------------------------------


def _same_shape(fn: str, input: Tensor, target) -> None:
    shape = tuple(np.shape(getattr(target, "data", target)))
    if shape != input.shape:
        raise ShapeError(f"{fn}: input {input.shape} and target {shape} must have the same shape")


def l1_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """|input − target|, averaged ("mean"), summed or elementwise ("none"); the gradient at a zero difference
    is 0, as abs's (PyTorch's too). Same shapes required, as mse_loss."""
    _check_reduction(reduction, "l1_loss")
    _same_shape("l1_loss", input, target)
    return _reduce((input - target).abs(), reduction)


def huber_loss(input: Tensor, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """½d² where |d| < delta, delta·(|d| − ½delta) elsewhere, d = input − target (torch's huber_loss); its
    gradient, d clipped to [−delta, delta], is continuous, so the switch between the two needs no convention."""
    _check_reduction(reduction, "huber_loss")
    _same_shape("huber_loss", input, target)
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    d = input - target
    size = d.abs()
    return _reduce(where(size < delta, 0.5 * d * d, delta * (size - 0.5 * delta)), reduction)


def binary_cross_entropy(input: Tensor, target, weight=None, reduction: str = "mean") -> Tensor:
    """−w·(y·log x + (1 − y)·log(1 − x)) for probabilities x = input in [0, 1] and targets y, each log clamped at
    −100 as in PyTorch (so x = 0 or 1 give a finite loss); weight w broadcasts to the input's shape.

    A primitive (ops.BinaryCrossEntropy), for PyTorch's gradient (x − y)/max(x(1 − x), 10⁻¹²), finite at 0 and 1
    where the composed logs would give ∞·0. For logits, binary_cross_entropy_with_logits is the stable one.
    """
    _check_reduction(reduction, "binary_cross_entropy")
    input = input if isinstance(input, Tensor) else Tensor(input)
    _same_shape("binary_cross_entropy", input, target)
    x = input.data
    if x.size and not ((x >= 0) & (x <= 1)).all():
        bad = x[~((x >= 0) & (x <= 1))][0]
        raise ValueError(f"binary_cross_entropy: the input {input.shape} must hold probabilities in [0, 1], got "
                         f"{bad}; for logits use binary_cross_entropy_with_logits")
    loss = binary_op(ops.BinaryCrossEntropy, input, target, float_dtype(input, target))
    if weight is not None:
        try:
            if np.broadcast_shapes(np.shape(getattr(weight, "data", weight)), input.shape) != input.shape:
                raise ValueError
        except ValueError:
            raise ShapeError(f"binary_cross_entropy: weight {np.shape(getattr(weight, 'data', weight))} must "
                             f"broadcast to the input's shape {input.shape}") from None
        loss = loss * weight
    return _reduce(loss, reduction)


@numpy_names
def softmax(input: Tensor, dim: int = -1) -> Tensor:
    return input.softmax(dim)


@numpy_names
def log_softmax(input: Tensor, dim: int = -1) -> Tensor:
    return input.log_softmax(dim)


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
        keep = as_generator(seed).random(input.shape, dtype=np.float32) >= p
        mask = np.multiply(keep, 1.0 / (1.0 - p), dtype=dtype)
    return input * mask


def cross_entropy(input: Tensor, target, reduction: str = "mean", ignore_index: int = -100,
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of softmax(input) against target, as torch.nn.functional.cross_entropy: classes along dim 1.

    input is N×C logits, or N×C×d1×... (a class score per position: a sequence's characters, an image's pixels),
    or unbatched C. target: integer class labels of input's shape without C, or class probabilities of input's
    shape, checked the same way for every reduction (ops.check_target). With labels y, the loss of example i is
    −log softmax(xᵢ)[yᵢ]; with probabilities, −Σ_c y_ic·log softmax(xᵢ)_c. A probability target that requires
    grad gets its gradient too, −log softmax(x)/m (PyTorch's; distillation).

    ignore_index (labels only): examples whose label is it count for nothing; "mean" divides by the examples
    that count (all ignored: nan, as in PyTorch). label_smoothing ε mixes the target with the uniform
    distribution: (1 − ε)·target + ε/C, so a label's loss is (1 − ε)·(−log p_y) + ε·mean_c(−log p_c).
    reduction "mean" averages over the examples (PyTorch's default), "sum" adds (an empty batch gives 0, its mean
    nan), "none" returns one loss per example, in target's shape. "mean" and "sum" use the fused, stable
    softmax_cross_entropy, whose gradient is (softmax − onehot(y))/m: the tutorial's dZ2 = A2 − Y, over m.
    """
    _check_reduction(reduction, "cross_entropy")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) or \
            not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be a number in [0, 1], got {label_smoothing!r}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"cross_entropy: ignore_index must be an integer, got {ignore_index!r}")
    if input.ndim == 0:
        raise ShapeError("cross_entropy: expects logits of shape C, N×C or N×C×d1×..., got a 0-d tensor")
    # NOTE: a target Tensor is kept as it is: a probability target that requires grad is differentiated too
    target = target if isinstance(target, Tensor) else Tensor(as_array(target))
    labels = target.dtype.kind in "iu"
    if not labels and ignore_index != -100:
        raise ValueError(f"cross_entropy: ignore_index={ignore_index} applies to class labels; these targets are "
                         "probabilities (as PyTorch: ignore_index is not supported for floating point target)")
    classes = 0 if input.ndim == 1 else 1
    shape = input.shape[:classes] + input.shape[classes + 1:]          # one loss per example: labels' shape
    valid = target.data != ignore_index if labels else None
    checked = np.where(valid, target.data, 0) if labels else target.data   # NOTE: an ignored label may be anything
    ops.check_target(input.data, checked, classes, "cross_entropy")
    # the examples as rows: N×C (classes last), labels or probabilities in the same order
    rows = input.reshape(1, -1) if input.ndim == 1 else input if input.ndim == 2 else \
        input.permute(0, *range(2, input.ndim), 1).reshape(-1, input.shape[1])
    if labels:
        y = checked.reshape(-1)
    else:
        y = target.reshape(1, -1) if target.ndim == 1 else target if target.ndim == 2 else \
            target.permute(0, *range(2, target.ndim), 1).reshape(-1, input.shape[1])
    C = rows.shape[1]
    if label_smoothing and not labels:
        y = y * (1 - label_smoothing) + label_smoothing / C
    if reduction == "none":
        logp = rows.log_softmax(dim=-1)
        if labels:
            loss = -logp[np.arange(len(y)), y]
            if label_smoothing:
                loss = (1 - label_smoothing) * loss - label_smoothing * logp.mean(dim=-1)
            loss = where(valid.reshape(-1), loss, 0.0) if not valid.all() else loss
        else:
            loss = -(logp * y).sum(dim=-1)
        return loss.reshape(shape)
    if labels and not valid.all():   # only the examples that count
        keep = valid.reshape(-1)
        rows, y = rows[keep], y[keep]
    loss = rows.softmax_cross_entropy(y, axis=-1, reduction=reduction)
    if labels and label_smoothing:
        uniform = -rows.log_softmax(dim=-1).mean(dim=-1)
        smooth = uniform.sum() if reduction == "sum" else uniform.mean()
        loss = (1 - label_smoothing) * loss + label_smoothing * smooth
    return loss


def nll_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """The negative log-likelihood of integer labels under log-probabilities: example i's loss is −input[i, yᵢ].

    input is batch×classes (log_softmax's output), target the batch's integer labels in 0..C−1 (checked by
    ops.check_labels). "mean" divides the sum by the batch size, as PyTorch without class weights.
    nll_loss(log_softmax(x), y) is cross_entropy(x, y); composed: an integer-array index, a minus and the reduction.
    """
    _check_reduction(reduction, "nll_loss")
    input = input if isinstance(input, Tensor) else Tensor(input)
    if input.ndim != 2:
        raise ShapeError(f"nll_loss: expects log-probabilities of shape batch×classes, got {input.shape}")
    target = as_array(target.data if isinstance(target, Tensor) else target)
    if target.shape != input.shape[:1]:
        raise ShapeError(f"nll_loss: log-probabilities {input.shape} need one integer label per row, shape "
                         f"{input.shape[:1]}, got {target.shape}")
    ops.check_labels(target, input.shape[1], "nll_loss", (1, input.shape))
    return _reduce(-input[np.arange(len(target)), target], reduction)


def binary_cross_entropy_with_logits(input: Tensor, target, reduction: str = "mean", pos_weight=None) -> Tensor:
    """Binary cross-entropy of σ(input) against target probabilities, computed from the logits without overflow.

    Elementwise −[p·y·log σ(x) + (1 − y)·log(1 − σ(x))], p = pos_weight (1 if None; broadcast along the last
    axis, one weight per class as in PyTorch). The p = 1 loss is the primitive ops.BinaryCrossEntropyWithLogits,
    max(x, 0) − x·y + log(1 + e^−|x|), whose gradient is σ(x) − y. The pos_weight term adds (p − 1)·y·softplus(−x),
    and softplus(−x) = −log σ(x) is the same primitive with y = 1, so pos_weight needs no backward of its own.
    """
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    input = input if isinstance(input, Tensor) else Tensor(input)
    y = numpy_value(target)
    if np.shape(y) != input.shape:
        raise ShapeError(f"binary_cross_entropy_with_logits: input {input.shape} and target {np.shape(y)} must "
                         "have the same shape")
    if as_array(y).dtype.kind != "f":
        raise TypeError("binary_cross_entropy_with_logits: target must be floating point (probabilities in "
                        f"[0, 1]), got dtype {as_array(y).dtype}")
    loss = binary_op(ops.BinaryCrossEntropyWithLogits, input, target)
    if pos_weight is not None:
        p_shape = np.shape(numpy_value(pos_weight))
        try:
            fits = np.broadcast_shapes(p_shape, input.shape) == input.shape
        except ValueError:
            fits = False
        if not fits:
            raise ShapeError(f"binary_cross_entropy_with_logits: pos_weight {p_shape} must broadcast to the input's "
                             f"shape {input.shape}")
        softplus_minus_x = binary_op(ops.BinaryCrossEntropyWithLogits, input, np.ones(input.shape, loss.dtype))
        loss = loss + (pos_weight - 1) * target * softplus_minus_x
    return _reduce(loss, reduction)


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean squared error: mean((input − target)²) for "mean", the sum for "sum", elementwise for "none".

    input and target must have the same shape (PyTorch broadcasts with a warning; here it is an error,
    since a (N, 1) input against an (N,) target would silently become N×N).
    """
    _check_reduction(reduction, "mse_loss")
    _same_shape("mse_loss", input, target)
    return _reduce((input - target) ** 2, reduction)


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
    fill = fill_value(0 if value is None else value, input.dtype, "pad")
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
        blocks = [np.full(size[:ax] + (p,) + size[ax + 1:], fill, dtype=out.dtype)
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


# --- normalisation and embeddings --------------------------------------------------------------------------


def batch_norm(input, running_mean, running_var, weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """(x − μ)/√(σ² + eps)·weight + bias per channel (axis 1), as torch.nn.functional.batch_norm.

    input is N×C, N×C×L or N×C×H×W. Training: μ and σ² are the batch's mean and biased variance over every
    axis but 1, and running_mean/running_var (if given) move in place towards them by momentum, running_var
    towards the unbiased variance (·n/(n − 1)), as PyTorch. Otherwise μ and σ² are running_mean/running_var.
    Composed from mean, sub, mul and pow: autograd differentiates through the batch statistics.
    """
    input = input if isinstance(input, Tensor) else Tensor(input)
    if input.ndim < 2:
        raise ShapeError(f"batch_norm: expects an input N×C (or N×C×L, N×C×H×W) with channels on axis 1, got "
                         f"{input.shape}")
    C = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and tuple(np.shape(numpy_value(t))) != (C,):
            raise ShapeError(f"batch_norm: {name} must hold one value per channel of input {input.shape}, i.e. "
                             f"shape ({C},), got {tuple(np.shape(numpy_value(t)))}")
    axes = (0, *range(2, input.ndim))
    per_channel = (1, C) + (1,) * (input.ndim - 2)
    if training:
        n = input.size // C if C else 0
        if n <= 1:
            raise ShapeError(f"batch_norm: training needs more than one value per channel to take a variance, got "
                             f"input {input.shape}")
        mean = input.mean(axis=axes, keepdims=True)
        centred = input - mean
        var = (centred * centred).mean(axis=axes, keepdims=True)   # biased: the batch's own spread
        for running, batch in ((running_mean, mean.data), (running_var, var.data * (n / (n - 1)))):
            if running is not None:   # NOTE: in place, outside the graph, as PyTorch's buffers
                data = numpy_value(running)
                data *= 1 - momentum
                data += momentum * batch.reshape(C)
                if isinstance(running, Tensor):
                    running._bump_version()
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: evaluation (training=False) normalises by running_mean and running_var, "
                             "but they are None; pass them, or training=True to use the batch's statistics")
        mean = as_array(numpy_value(running_mean)).reshape(per_channel)
        var = as_array(numpy_value(running_var)).reshape(per_channel)
        centred = input - mean.astype(input.dtype, copy=False)
        var = var.astype(input.dtype, copy=False)
    out = centred * (var + eps) ** -0.5
    if weight is not None:
        out = out * weight.reshape(per_channel)
    return out if bias is None else out + bias.reshape(per_channel)


def layer_norm(input, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """(x − μ)/√(σ² + eps)·weight + bias, μ and σ² (biased) over the last len(normalized_shape) axes, which must
    be normalized_shape, as torch.nn.functional.layer_norm. Composed from mean, sub, mul and pow."""
    input = input if isinstance(input, Tensor) else Tensor(input)
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or input.shape[input.ndim - k:] != shape or input.ndim < k:
        raise ShapeError(f"layer_norm: the input's last axes must be normalized_shape {shape}, got input "
                         f"{input.shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise ShapeError(f"layer_norm: {name} must have the normalized_shape {shape}, got {tuple(t.shape)}")
    axes = tuple(range(input.ndim - k, input.ndim))
    centred = input - input.mean(axis=axes, keepdims=True)
    out = centred * ((centred * centred).mean(axis=axes, keepdims=True) + eps) ** -0.5
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


def check_indices(indices, n: int, who: str) -> np.ndarray:
    """Integer indices into n rows (an embedding's), as an array; the error names `who`, the range and the first
    index outside it (a −1 must not silently pick the last row, as numpy would)."""
    indices = as_array(numpy_value(indices))
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{who}: indices must be integers, got dtype {indices.dtype}")
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        pos = tuple(int(k) for k in np.argwhere((indices < 0) | (indices >= n))[0])
        at = f" at position {pos[0] if len(pos) == 1 else pos}" if pos else ""
        raise IndexError(f"{who}: index {indices[pos]}{at} is out of range for {n} embeddings (0..{n - 1})")
    return indices


def embedding(input, weight: Tensor) -> Tensor:
    """weight[input]: row i of weight (num_embeddings×embedding_dim) for each integer i in input, so the result
    is input.shape + (embedding_dim,), as torch.nn.functional.embedding. Its gradient adds into the rows picked
    (an index repeated k times gets k terms): the getitem op's backward."""
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be num_embeddings×embedding_dim, got {tuple(weight.shape)}")
    return weight[check_indices(input, weight.shape[0], "embedding")]


# --- attention ---------------------------------------------------------------------------------------------


def _attention_operand(name: str, x) -> Tensor:
    x = x if isinstance(x, Tensor) else Tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"scaled_dot_product_attention: {name} must be floating point, got dtype {x.dtype}")
    if x.ndim < 2:
        raise ShapeError(f"scaled_dot_product_attention: {name} must have at least 2 dims (…×L×E, …×S×E, "
                         f"…×S×Ev), got shape {x.shape}")
    return x


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None, *, seed=None) -> Tensor:
    """softmax(query·keyᵀ·scale + mask)·value, as torch.nn.functional.scaled_dot_product_attention on the CPU.

    query …×L×E, key …×S×E, value …×S×Ev (the leading dims broadcast, as in @) give …×L×Ev: row i of the
    output is the average of value's rows weighted by softmax over the keys of query i's scores q_i·k_j·scale.
    scale defaults to 1/√E. attn_mask has ≥ 2 dims and broadcasts to the weights' shape …×L×S (it may have
    fewer leading dims, not more): a bool mask's True means "may attend" (False puts −∞ in the score); a float
    mask (float32 or query's dtype) is added to the scores, and differentiated if it requires grad. is_causal
    lets query i see keys j ≤ i only (top-left aligned, for L ≠ S too). Given with attn_mask, both apply
    (NOTE: torch 2.13 refuses attn_mask with is_causal=True; here they combine, as two masks that both hold).
    A query that may see no key gets a zero row, and zero gradients, not the nan of a softmax over all −∞
    (torch's "safe softmax").
    dropout_p > 0 zeroes each weight with probability p and scales the rest by 1/(1 − p), whenever it is given
    (as torch: there is no training flag; pass 0.0 to evaluate); seed is an int, None or a numpy Generator.

    Composed of Tensor ops (matmul, mul, where, add, softmax, dropout's mul) rather than a primitive: it reads
    as the formula, its backward is the ops' rules (∂L/∂V = Wᵀ·∂L/∂out, the softmax rule through the mask, ...),
    so it is differentiable twice with no backward of its own to get wrong.
    """
    q, k, v = (_attention_operand(n, x) for n, x in (("query", query), ("key", key), ("value", value)))
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"scaled_dot_product_attention: query, key and value must have one dtype, got {q.dtype}, "
                        f"{k.dtype} and {v.dtype}")
    if q.shape[-1] != k.shape[-1]:
        raise ShapeError(f"scaled_dot_product_attention: query {q.shape} and key {k.shape} must have the same "
                         f"last dim E, got {q.shape[-1]} and {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ShapeError(f"scaled_dot_product_attention: key {k.shape} and value {v.shape} must have the same "
                         f"number of keys S (the next-to-last dim), got {k.shape[-2]} and {v.shape[-2]}")
    try:
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except ValueError:
        raise ShapeError(f"scaled_dot_product_attention: the leading dims of query {q.shape}, key {k.shape} and "
                         f"value {v.shape} do not broadcast together") from None
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be a probability in [0, 1], got {dropout_p}")
    L, S = q.shape[-2], k.shape[-2]
    weights_shape = (*batch, L, S)
    mask = None if attn_mask is None else _attention_mask(attn_mask, q.dtype, weights_shape)
    if scale is None:
        scale = 1 / math.sqrt(q.shape[-1]) if q.shape[-1] else 1.0
    # NOTE: the scale goes on the query (L×E numbers) rather than on the scores (L×S): the same product
    scores = (q * q.dtype.type(scale)) @ k.transpose(-2, -1)
    allowed = np.tri(L, S, dtype=bool) if is_causal else None
    if mask is not None and mask.dtype == np.bool_:
        m = numpy_value(mask)
        allowed = m if allowed is None else allowed & m
    elif mask is not None:
        scores = scores + mask   # a float mask: added, so a −∞ in it forbids that key
    if allowed is not None:
        scores = where(allowed, scores, -math.inf)
    # a query that may see no key: its scores are all −∞, and softmax would give 0/0 = nan
    dead = np.isneginf(scores.data).all(axis=-1, keepdims=True) if S else None
    if dead is not None and dead.any():
        scores = where(dead, 0.0, scores)            # finite scores, whose gradient the where stops
        weights = where(dead, 0.0, scores.softmax(dim=-1))
    else:
        weights = scores.softmax(dim=-1)
    if dropout_p > 0:
        weights = dropout(weights, dropout_p, training=True, seed=seed)
    return weights @ v


def _attention_mask(attn_mask, dtype, weights_shape: tuple):
    """attn_mask checked: bool, or float32 or the query's dtype (as torch), broadcasting to
    the attention weights' shape …×L×S without making it larger."""
    is_tensor = isinstance(attn_mask, Tensor)
    m = attn_mask if is_tensor else np.asarray(attn_mask)
    if m.dtype != np.bool_ and not (m.dtype.kind == "f" and m.dtype in (np.dtype(np.float32), dtype)):
        raise TypeError(f"scaled_dot_product_attention: attn_mask must be bool (True: may attend) or float "
                        f"(added to the scores; float32 or the query's {dtype}), got dtype {m.dtype}")
    shape = tuple(m.shape)
    try:
        fits = len(shape) >= 2 and np.broadcast_shapes(shape, weights_shape) == weights_shape
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(f"scaled_dot_product_attention: attn_mask of shape {shape} must broadcast to the "
                         f"attention weights' shape {weights_shape} (…×L×S, L queries and S keys)"
                         + ("; it needs at least those 2 dims (as torch): a mask of S keys is shape (1, S)"
                            if len(shape) < 2 else ""))
    return m if is_tensor else Tensor._wrap(m, False)   # NOTE: a float32 mask joins float64 scores by promotion
