"""Part two's exercises as data: the layers a course derives next, their examples, and each named mistake's gradient.

Each exercise is a Function of the workbook's layers.py (`exercises start DIR --part 2`) whose forward is given
and whose backward the learner writes; it is graded by the same mechanism as part one (grading.py): float64
examples, sizes drawn by hypothesis and the rest seeded, the learner's code in the child, the reference the
library's autograd through the same layer written with the library's Tensor ops (nn.functional's batch_norm and
layer_norm, softmax, masked_fill, embedding's getitem, conv2d, max_pool2d, a tanh loop, a product by the mask).

A mistake of this part is a whole wrong derivation, so each case computes the gradient that mistake gives (the
batch mean and variance held constant, the mask left out, the kernel not flipped, ...) and hands it to the
doctor's one table (mistakes.py) as the ingredient named by its key. Those formulas are numpy here, in the
checker: the workbook gets none of them.
"""
from __future__ import annotations

import numpy as np

from tinygrad_edu import Tensor, stack
from tinygrad_edu.exercises.grading import Exercise, like_hint, op_case, shapes_text
from tinygrad_edu.nn import functional as F

EPS = 1e-5   # BatchNorm's and LayerNorm's, as the library's (and PyTorch's) default


def _case(name, arrays, labels, symbols, f, upstream, ing, kwargs=None, shapes=None):
    """A Case of layer `name`: inputs arrays (all wanting a gradient), the reference autograd through f."""
    hints = [like_hint(f"∂L/∂{x}", x, a.shape, s) for x, a, s in zip(labels, arrays, symbols)]
    return op_case(name, None, arrays, kwargs=kwargs, upstream=upstream, ing=ing, hints=hints, labels=labels, f=f,
                    shapes=shapes)


# --- BatchNorm and LayerNorm: x̂ = (x − μ)/√(σ² + ε), out = γ ⊙ x̂ + β ------------------------------------------


def _normalised(x, axis, ddof=0):
    mu = x.mean(axis=axis, keepdims=True)
    std = np.sqrt(x.var(axis=axis, keepdims=True, ddof=ddof) + EPS)
    return (x - mu) / std, std


def _norm_dx(dxhat, xhat, std, axis, mean_term=True, var_term=True, n_var=None):
    """∂L/∂x from ∂L/∂x̂ when μ and σ² are taken over axis: (dx̂ − mean(dx̂) − x̂·Σ(dx̂ ⊙ x̂)/n)/σ; the mistakes
    drop a term, or divide the variance's by n_var (N − 1) instead of n."""
    n = xhat.shape[axis]
    out = dxhat
    if mean_term:
        out = out - dxhat.mean(axis=axis, keepdims=True)
    if var_term:
        out = out - xhat * (dxhat * xhat).sum(axis=axis, keepdims=True) / (n_var or n)
    return out / std


def _norm_case(name, seed, rows, cols, batch):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, cols)) * rng.uniform(0.5, 2.0) + rng.normal()
    gamma, beta = rng.uniform(0.5, 1.5, cols) * rng.choice([-1.0, 1.0], cols), rng.normal(size=cols)
    g = rng.normal(size=(rows, cols))
    axis = 0 if batch else 1
    xhat, std = _normalised(x, axis)
    dxhat = g * gamma
    wrong_axis = [{"gamma-beta-wrong-axis": (g * xhat).sum(axis=1)}, {"gamma-beta-wrong-axis": g.sum(axis=1)}]
    if batch:
        n = rows
        xhat_u, std_u = _normalised(x, 0, ddof=1)
        ing_x = {
            "batchnorm-stats-constant": _norm_dx(dxhat, xhat, std, 0, False, False),
            "batchnorm-mean-term-missing": _norm_dx(dxhat, xhat, std, 0, mean_term=False),
            "batchnorm-var-term-missing": _norm_dx(dxhat, xhat, std, 0, var_term=False),
            # the variance's derivative over N − 1; or the whole backward of the forward with the unbiased σ²
            "batchnorm-unbiased-variance": [_norm_dx(dxhat, xhat, std, 0, n_var=n - 1),
                                            _norm_dx(g * gamma, xhat_u, std_u, 0, n_var=n - 1)],
        }
        f = lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, eps=EPS)   # noqa: E731
    else:
        ing_x = {"layernorm-stats-constant": _norm_dx(dxhat, xhat, std, 1, False, False),
                 # BatchNorm's backward: the means taken over the batch's axis 0, not over each row's features
                 "layernorm-batch-axis": (dxhat - dxhat.mean(axis=0, keepdims=True)
                                          - xhat * (dxhat * xhat).mean(axis=0, keepdims=True)) / std}
        f = lambda x, w, b: F.layer_norm(x, (cols,), w, b, eps=EPS)   # noqa: E731
    return _case(name, [x, gamma, beta], ["x", "γ", "β"], ["N×D", "D", "D"], f, g, [ing_x, *wrong_axis])


def batchnorm_case(seed, n, d):
    # NOTE: N ≥ 4: with N = 2 each column normalises to ±1 whatever x is, and ∂L/∂x is nearly 0
    return _norm_case("BatchNorm", seed, n + 2, d, batch=True)


def layernorm_case(seed, n, d):
    return _norm_case("LayerNorm", seed, n, d + 2, batch=False)


# --- Softmax over the last axis ----------------------------------------------------------------------------


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_case(seed, r, c):
    rng = np.random.default_rng(seed)
    x, g = rng.normal(size=(r, c)), rng.normal(size=(r, c))
    s = _softmax(x)
    ing = [{"softmax-row-term-missing": g * s, "softmax-diagonal-only": g * s * (1 - s)}]
    return _case("Softmax", [x], ["x"], ["r×c"], lambda t: t.softmax(-1), g, ing)


# --- scaled dot-product attention, one head, causal ---------------------------------------------------------


def causal_mask(T: int) -> np.ndarray:
    """True where query i may look at key j, j ≤ i."""
    return np.tril(np.ones((T, T), dtype=bool))


def _attention_grads(q, k, v, g, scale, mask):
    """(∂L/∂q, ∂L/∂k, ∂L/∂v) of out = softmax(q·kᵀ·scale, masked)·v; mask None: nothing masked."""
    s = q @ k.T * scale
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    p = _softmax(s)
    dp = g @ v.T
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    return ds @ k * scale, ds.T @ q * scale, p.T @ g


def attention_case(seed, t, d, e):
    rng = np.random.default_rng(seed)
    T = t + 1
    q, k, v, g = (rng.normal(size=s) for s in ((T, d), (T, d), (T, e), (T, e)))
    mask, scale = causal_mask(T), 1 / np.sqrt(d)
    right = _attention_grads(q, k, v, g, scale, mask)
    unscaled = _attention_grads(q, k, v, g, 1.0, mask)
    unmasked = _attention_grads(q, k, v, g, scale, None)
    ing = [{"attention-scale-missing": [right[i] / scale, unscaled[i]] if i < 2 else [unscaled[i]],
            "attention-mask-not-applied": unmasked[i], "d": d} for i in range(3)]
    ing[0]["attention-qk-swapped"], ing[1]["attention-qk-swapped"] = right[1], right[0]

    def f(q, k, v):
        scores = (q @ k.transpose(1, 0)) * scale
        return scores.masked_fill(~mask, -np.inf).softmax(-1) @ v

    return _case("Attention", [q, k, v], ["q", "k", "v"], ["T×d", "T×d", "T×e"], f, g, ing)


# --- Embedding: row indices[i] of W for each index -------------------------------------------------------


def embedding_case(seed, v, n, t):
    rng = np.random.default_rng(seed)
    V, D = v, int(rng.integers(2, 5))
    # NOTE: n·(t + 1) ≥ 6 > V indices into V rows: some index is always repeated
    indices = rng.integers(0, V, (n, t + 1))
    W, g = rng.normal(size=(V, D)), rng.normal(size=(n, t + 1, D))
    assigned = np.zeros_like(W)
    assigned[indices] = g   # the mistake itself: one of the repeats' rows wins, the others are lost
    ing = [{"embedding-repeats-lost": assigned}]
    case = _case("Embedding", [W], ["W"], ["V×D"], lambda W: W[indices], g, ing, kwargs={"indices": indices},
                 shapes=shapes_text(W=W, indices=indices, g=g))
    return case


# --- Conv2d (N×C×H×W, correlation as PyTorch), with stride and padding ---------------------------------------


def conv_input_grad(g, w, x_shape, stride, padding, *, flip=False, strided=True, crop=True):
    """∂L/∂x of the convolution by scattering: each g[n, o, i, j] adds g·w[o, :, p, q] onto the padded input at
    (i·stride + p, j·stride + q), then the padding is cropped. The mistakes: the kernel flipped (what "a full
    convolution with the kernel", unflipped, gives), the stride left out of the position, the padding kept."""
    N, C, H, W = x_shape
    _, _, kh, kw = w.shape
    Ho, Wo = g.shape[2:]
    w = w[:, :, ::-1, ::-1] if flip else w
    s = stride if strided else 1
    out = np.zeros((N, C, H + 2 * padding, W + 2 * padding))
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i * s:i * s + kh, j * s:j * s + kw] += np.einsum("no,ocpq->ncpq", g[:, :, i, j], w)
    return out[:, :, padding:padding + H, padding:padding + W] if crop else out


def conv2d_case(seed, c, o, h):
    rng = np.random.default_rng(seed)
    N, C, O = 2, c - 1, o - 1
    H, W = h + 3, int(rng.integers(5, 8))
    kh, kw = (int(k) for k in rng.integers(2, 4, 2))
    stride, padding = int(rng.integers(1, 3)), int(rng.integers(0, 2))
    x, w = rng.normal(size=(N, C, H, W)), rng.normal(size=(O, C, kh, kw))
    Ho, Wo = (H + 2 * padding - kh) // stride + 1, (W + 2 * padding - kw) // stride + 1
    g = rng.normal(size=(N, O, Ho, Wo))
    grad = lambda **how: conv_input_grad(g, w, x.shape, stride, padding, **how)   # noqa: E731
    ing = [{"conv-kernel-not-flipped": grad(flip=True), "conv-stride-forgotten": grad(strided=False),
            "conv-padding-not-cropped": grad(crop=False), "stride": stride, "padding": padding}, {}]
    case = _case("Conv2d", [x, w], ["x", "w"], ["N×C×H×W", "O×C×kh×kw"],
                 lambda x, w: x.conv2d(w, stride=stride, padding=padding), g, ing,
                 kwargs={"stride": stride, "padding": padding})
    case.shapes += f", stride = {stride}, padding = {padding}"
    return case


# --- MaxPool2d ---------------------------------------------------------------------------------------------


def maxpool2d_case(seed, n, c, h):
    rng = np.random.default_rng(seed)
    size = int(rng.choice([2, 3]))
    stride = int(rng.choice([1, size]))
    N, C, H, W = n - 1, c - 1, h + 3, int(rng.integers(4, 8))
    # NOTE: distinct values, so that every window has one maximum (ties would share its gradient)
    x = (rng.permutation(N * C * H * W) / (N * C * H * W) + 0.1 * rng.normal()).reshape(N, C, H, W)
    Ho, Wo = (H - size) // stride + 1, (W - size) // stride + 1
    g = rng.normal(size=(N, C, Ho, Wo))
    everywhere = np.zeros_like(x)
    for i in range(Ho):
        for j in range(Wo):
            everywhere[:, :, i * stride:i * stride + size, j * stride:j * stride + size] += g[:, :, i, j, None, None]
    ing = [{"maxpool-gradient-everywhere": everywhere}]
    case = _case("MaxPool2d", [x], ["x"], ["N×C×H×W"], lambda x: x.max_pool2d(size, stride), g, ing,
                 kwargs={"kernel_size": size, "stride": stride})
    case.shapes += f", kernel_size = {size}, stride = {stride}"
    return case


# --- an RNN cell over T steps: h_t = tanh(x_t·Wxh + h_{t−1}·Whh + b) -------------------------------------------


def bptt(x, h0, Wxh, Whh, b, hs, g, *, carry=True, derivative="out"):
    """(∂L/∂x, ∂L/∂h0, ∂L/∂Wxh, ∂L/∂Whh, ∂L/∂b) by backprop through time, step T−1 down to 0. The mistakes:
    the hidden state's gradient not carried to the step before (carry=False); tanh′ = 1 − h² taken from the
    previous state ("prev"), from the pre-activation ("pre"), or as 1 − tanh(h_t)² ("tanh")."""
    T = x.shape[0]
    dx, dWxh, dWhh, db = np.zeros_like(x), np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(b)
    dh_next = np.zeros_like(h0)
    for t in reversed(range(T)):
        prev = hs[t - 1] if t else h0
        a = x[t] @ Wxh + prev @ Whh + b
        h = {"out": hs[t], "prev": prev, "pre": a, "tanh": np.tanh(hs[t])}[derivative]
        da = (g[t] + (dh_next if carry else 0)) * (1 - h * h)
        dx[t] = da @ Wxh.T
        dWxh, dWhh, db = dWxh + x[t].T @ da, dWhh + prev.T @ da, db + da.sum(axis=0)
        dh_next = da @ Whh.T
    return dx, dh_next, dWxh, dWhh, db


def rnn_case(seed, t, n, h):
    rng = np.random.default_rng(seed)
    T, N, H, I = t, n - 1, h, int(rng.integers(2, 5))
    x, h0 = rng.normal(size=(T, N, I)), rng.uniform(-0.8, 0.8, (N, H))
    Wxh, Whh, b = rng.normal(size=(I, H)) * 0.6, rng.normal(size=(H, H)) * 0.5, rng.normal(size=H) * 0.3
    g = rng.normal(size=(T, N, H))
    hs, prev = [], h0
    for step in range(T):
        prev = np.tanh(x[step] @ Wxh + prev @ Whh + b)
        hs.append(prev)
    hs = np.stack(hs)
    args = (x, h0, Wxh, Whh, b, hs, g)
    not_carried = bptt(*args, carry=False)
    wrong = [bptt(*args, derivative=d) for d in ("prev", "pre", "tanh")]
    ing = [{"rnn-hidden-gradient-not-carried": not_carried[i],
            "rnn-tanh-derivative-wrong-tensor": [w[i] for w in wrong]} for i in range(5)]

    def f(x, h0, Wxh, Whh, b):
        states, state = [], h0
        for step in range(T):
            state = (x[step] @ Wxh + state @ Whh + b).tanh()
            states.append(state)
        return stack(states)

    return _case("RNN", [x, h0, Wxh, Whh, b], ["x", "h0", "Wxh", "Whh", "b"], ["T×N×I", "N×H", "I×H", "H×H", "H"],
                 f, g, ing)


# --- Dropout, with the mask given (so that the grading is deterministic) ------------------------------------


def dropout_case(seed, r, c):
    rng = np.random.default_rng(seed)
    p = float(rng.choice([0.2, 0.25, 0.4, 0.5]))
    x, g = rng.normal(size=(r, c)), rng.normal(size=(r, c))
    mask = (rng.random((r, c)) >= p).astype(np.float64)
    mask.flat[0], mask.flat[-1] = 0.0, 1.0   # at least one dropped and one kept
    ing = [{"dropout-not-rescaled": g * mask, "p": f"{p:g}"}]
    case = _case("Dropout", [x], ["x"], ["r×c"], lambda x: x * Tensor(mask / (1 - p)), g, ing,
                 kwargs={"mask": mask, "p": p})
    case.shapes += f", p = {p:g}"
    return case


EXERCISES = [
    Exercise("BatchNorm", "layers.py", batchnorm_case, ("n", "d")),
    Exercise("LayerNorm", "layers.py", layernorm_case, ("n", "d")),
    Exercise("Softmax", "layers.py", softmax_case, ("r", "c")),
    Exercise("Attention", "layers.py", attention_case, ("t", "d", "e")),
    Exercise("Embedding", "layers.py", embedding_case, ("v", "n", "t")),
    Exercise("Conv2d", "layers.py", conv2d_case, ("c", "o", "h")),
    Exercise("MaxPool2d", "layers.py", maxpool2d_case, ("n", "c", "h")),
    Exercise("RNN", "layers.py", rnn_case, ("t", "n", "h")),
    Exercise("Dropout", "layers.py", dropout_case, ("r", "c")),
]
