"""Part two, the layers a course derives next: each forward is given; write its backward (then: exercises check .).

As in part one, each layer is a Function: backward gets g = ∂L/∂out (out's shape) and returns a tuple with one
gradient per input, ∂L/∂input in that input's shape. Loops are allowed (clarity over speed): a check of the
whole workbook still takes a few seconds. Once a layer passes, apply it to Tensors: `Softmax.apply(x)`.
"""
import numpy as np

from tinygrad_edu.autograd import Function

EPS = 1e-5


class BatchNorm(Function):
    """Training mode, x N×D: per feature, x̂ = (x − μ)/√(σ² + ε) with the batch's mean μ and (biased) variance σ²
    over axis 0, and out = γ ⊙ x̂ + β, γ and β of shape (D,)."""

    name = "batch_norm"

    def forward(self, x, gamma, beta):
        mu = x.mean(axis=0, keepdims=True)
        var = x.var(axis=0, keepdims=True)                       # biased: divides by N
        std = np.sqrt(var + EPS)
        xhat = (x - mu) / std
        self.save(xhat, std, gamma)
        return xhat * gamma + beta

    def backward(self, g):
        xhat, std, gamma = self.saved
        # Return (∂L/∂x, ∂L/∂γ, ∂L/∂β): N×D, (D,), (D,). μ and σ² are functions of x too.
        raise NotImplementedError("BatchNorm.backward")


class LayerNorm(Function):
    """x N×D: per row, x̂ = (x − μ)/√(σ² + ε) with the row's mean μ and (biased) variance σ² over axis 1 (its D
    features), and out = γ ⊙ x̂ + β, γ and β of shape (D,)."""

    name = "layer_norm"

    def forward(self, x, gamma, beta):
        mu = x.mean(axis=1, keepdims=True)
        var = x.var(axis=1, keepdims=True)
        std = np.sqrt(var + EPS)
        xhat = (x - mu) / std
        self.save(xhat, std, gamma)
        return xhat * gamma + beta

    def backward(self, g):
        xhat, std, gamma = self.saved
        # Return (∂L/∂x, ∂L/∂γ, ∂L/∂β): N×D, (D,), (D,).
        raise NotImplementedError("LayerNorm.backward")


class Softmax(Function):
    """s = softmax(x) over the last axis: s_j = exp(x_j)/Σ_i exp(x_i), row by row (the tutorial's A2 = softmax(Z2),
    here with the classes on the last axis)."""

    name = "softmax"

    def forward(self, x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        s = e / e.sum(axis=-1, keepdims=True)
        self.save(s)
        return s

    def backward(self, g):
        (s,) = self.saved
        # Return (∂L/∂x,): the Jacobian-vector product, without building the Jacobian.
        raise NotImplementedError("Softmax.backward")


class Attention(Function):
    """Scaled dot-product attention, one head, causal: q and k T×d, v T×e;
    S = q·kᵀ/√d, with S[i, j] = −∞ where j > i (position i sees only 0..i); P = softmax(S) row by row; out = P·v."""

    name = "attention"

    def forward(self, q, k, v):
        T, d = q.shape
        mask = np.tril(np.ones((T, T), dtype=bool))             # True where j ≤ i
        scores = np.where(mask, q @ k.T / np.sqrt(d), -np.inf)
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        p = e / e.sum(axis=-1, keepdims=True)
        self.save(q, k, v)
        self.attrs["mask"] = mask
        return p @ v

    def backward(self, g):
        q, k, v = self.saved
        mask = self.attrs["mask"]
        # Recompute P here as the forward did. Return (∂L/∂q, ∂L/∂k, ∂L/∂v): T×d, T×d, T×e.
        raise NotImplementedError("Attention.backward")


class Embedding(Function):
    """out = W[indices]: row indices[n, t] of W (V×D) for each integer of indices (N×T), so out is N×T×D."""

    name = "embedding"

    def forward(self, W, *, indices):
        self.attrs.update(indices=indices, shape=W.shape)
        return W[indices]

    def backward(self, g):
        indices, shape = self.attrs["indices"], self.attrs["shape"]
        # Return (∂L/∂W,), V×D. An index may appear more than once.
        raise NotImplementedError("Embedding.backward")


class Conv2d(Function):
    """out[n, o, i, j] = Σ_c,p,q xp[n, c, i·s + p, j·s + q] · w[o, c, p, q]: x N×C×H×W zero-padded by `padding` on
    each side into xp, w O×C×kh×kw, stride s; out is N×O×Ho×Wo, Ho = (H + 2·padding − kh)//s + 1."""

    name = "conv2d"

    def forward(self, x, w, *, stride, padding):
        xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        N, C, H, W = xp.shape
        O, _, kh, kw = w.shape
        Ho, Wo = (H - kh) // stride + 1, (W - kw) // stride + 1
        out = np.zeros((N, O, Ho, Wo))
        for i in range(Ho):
            for j in range(Wo):
                patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]   # N×C×kh×kw
                out[:, :, i, j] = np.einsum("ncpq,ocpq->no", patch, w)
        self.save(x, w)
        self.attrs.update(stride=stride, padding=padding)
        return out

    def backward(self, g):
        x, w = self.saved
        stride, padding = self.attrs["stride"], self.attrs["padding"]
        # Return (∂L/∂x, ∂L/∂w): N×C×H×W (x's, unpadded), O×C×kh×kw.
        raise NotImplementedError("Conv2d.backward")


class MaxPool2d(Function):
    """out[n, c, i, j] = the maximum of x[n, c] over the kernel_size×kernel_size window at (i·stride, j·stride);
    x N×C×H×W, out N×C×Ho×Wo, Ho = (H − kernel_size)//stride + 1. Windows may overlap (stride < kernel_size)."""

    name = "max_pool2d"

    def forward(self, x, *, kernel_size, stride):
        N, C, H, W = x.shape
        k, s = kernel_size, stride
        Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
        out = np.zeros((N, C, Ho, Wo))
        for i in range(Ho):
            for j in range(Wo):
                out[:, :, i, j] = x[:, :, i * s:i * s + k, j * s:j * s + k].max(axis=(2, 3))
        self.save(x, out)
        self.attrs.update(kernel_size=k, stride=s)
        return out

    def backward(self, g):
        x, out = self.saved
        k, s = self.attrs["kernel_size"], self.attrs["stride"]
        # Return (∂L/∂x,): N×C×H×W.
        raise NotImplementedError("MaxPool2d.backward")


class RNN(Function):
    """A tanh cell over T steps: a_t = x_t·Wxh + h_{t−1}·Whh + b, h_t = tanh(a_t), from h_{−1} = h0.
    x T×N×I, h0 N×H, Wxh I×H, Whh H×H, b (H,); out = (h_0, ..., h_{T−1}) stacked, T×N×H."""

    name = "rnn"

    def forward(self, x, h0, Wxh, Whh, b):
        pre, hs, h = [], [], h0
        for t in range(x.shape[0]):
            a = x[t] @ Wxh + h @ Whh + b
            h = np.tanh(a)
            pre.append(a)
            hs.append(h)
        out = np.stack(hs)
        self.save(x, h0, Wxh, Whh, np.stack(pre), out)          # a: T×N×H, the pre-activations
        return out

    def backward(self, g):
        x, h0, Wxh, Whh, a, hs = self.saved
        # g[t] = ∂L/∂h_t from the loss alone. Return (∂L/∂x, ∂L/∂h0, ∂L/∂Wxh, ∂L/∂Whh, ∂L/∂b).
        raise NotImplementedError("RNN.backward")


class Dropout(Function):
    """Inverted dropout with its mask given (1 keeps an element, 0 drops it; drawn with probability p of a 0):
    out = x ⊙ mask/(1 − p), so the expected value is x's and evaluation needs no rescaling."""

    name = "dropout"

    def forward(self, x, *, mask, p):
        self.attrs.update(mask=mask, p=p)
        return x * mask / (1 - p)

    def backward(self, g):
        mask, p = self.attrs["mask"], self.attrs["p"]
        # Return (∂L/∂x,).
        raise NotImplementedError("Dropout.backward")
