"""Phần hai, các lớp mà khoá học suy ra tiếp: forward đã có sẵn; bạn viết backward (rồi: exercises check .).

Như ở phần một, mỗi lớp là một Function: backward nhận g = ∂L/∂out (cùng kích thước với out) và trả về một tuple
gồm một gradient cho mỗi đầu vào, ∂L/∂(đầu vào) cùng kích thước với đầu vào đó. Được dùng vòng lặp (rõ ràng quan
trọng hơn nhanh): chấm cả sổ vẫn chỉ mất vài giây. Khi một lớp đã đạt ✓, hãy dùng nó trên Tensor: `Softmax.apply(x)`.
"""
import numpy as np

from tinygrad_edu.autograd import Function

EPS = 1e-5


class BatchNorm(Function):
    """Chế độ huấn luyện, x N×D: với mỗi đặc trưng, x̂ = (x − μ)/√(σ² + ε) với trung bình μ và phương sai (chệch) σ²
    của batch theo trục 0, và out = γ ⊙ x̂ + β, γ và β có kích thước (D,)."""

    name = "batch_norm"

    def forward(self, x, gamma, beta):
        mu = x.mean(axis=0, keepdims=True)
        var = x.var(axis=0, keepdims=True)                       # chệch: chia cho N
        std = np.sqrt(var + EPS)
        xhat = (x - mu) / std
        self.save(xhat, std, gamma)
        return xhat * gamma + beta

    def backward(self, g):
        xhat, std, gamma = self.saved
        # Trả về (∂L/∂x, ∂L/∂γ, ∂L/∂β): N×D, (D,), (D,). μ và σ² cũng là hàm của x.
        raise NotImplementedError("BatchNorm.backward")


class LayerNorm(Function):
    """x N×D: với mỗi hàng, x̂ = (x − μ)/√(σ² + ε) với trung bình μ và phương sai (chệch) σ² của hàng theo trục 1
    (D đặc trưng của nó), và out = γ ⊙ x̂ + β, γ và β có kích thước (D,)."""

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
        # Trả về (∂L/∂x, ∂L/∂γ, ∂L/∂β): N×D, (D,), (D,).
        raise NotImplementedError("LayerNorm.backward")


class Softmax(Function):
    """s = softmax(x) theo trục cuối: s_j = exp(x_j)/Σ_i exp(x_i), từng hàng một (A2 = softmax(Z2) của bài hướng
    dẫn, ở đây các lớp nằm trên trục cuối)."""

    name = "softmax"

    def forward(self, x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        s = e / e.sum(axis=-1, keepdims=True)
        self.save(s)
        return s

    def backward(self, g):
        (s,) = self.saved
        # Trả về (∂L/∂x,): tích Jacobi-vectơ, không cần dựng ma trận Jacobi.
        raise NotImplementedError("Softmax.backward")


class Attention(Function):
    """Attention tích vô hướng có chia tỉ lệ, một đầu, nhân quả: q và k T×d, v T×e;
    S = q·kᵀ/√d, với S[i, j] = −∞ khi j > i (vị trí i chỉ thấy 0..i); P = softmax(S) theo từng hàng; out = P·v."""

    name = "attention"

    def forward(self, q, k, v):
        T, d = q.shape
        mask = np.tril(np.ones((T, T), dtype=bool))             # True khi j ≤ i
        scores = np.where(mask, q @ k.T / np.sqrt(d), -np.inf)
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        p = e / e.sum(axis=-1, keepdims=True)
        self.save(q, k, v)
        self.attrs["mask"] = mask
        return p @ v

    def backward(self, g):
        q, k, v = self.saved
        mask = self.attrs["mask"]
        # Tính lại P ở đây như forward đã làm. Trả về (∂L/∂q, ∂L/∂k, ∂L/∂v): T×d, T×d, T×e.
        raise NotImplementedError("Attention.backward")


class Embedding(Function):
    """out = W[indices]: hàng indices[n, t] của W (V×D) cho mỗi số nguyên trong indices (N×T), nên out là N×T×D."""

    name = "embedding"

    def forward(self, W, *, indices):
        self.attrs.update(indices=indices, shape=W.shape)
        return W[indices]

    def backward(self, g):
        indices, shape = self.attrs["indices"], self.attrs["shape"]
        # Trả về (∂L/∂W,), V×D. Một chỉ số có thể xuất hiện nhiều lần.
        raise NotImplementedError("Embedding.backward")


class Conv2d(Function):
    """out[n, o, i, j] = Σ_c,p,q xp[n, c, i·s + p, j·s + q] · w[o, c, p, q]: x N×C×H×W được đệm số 0 rộng `padding`
    ở mỗi bên thành xp, w O×C×kh×kw, stride s; out là N×O×Ho×Wo, Ho = (H + 2·padding − kh)//s + 1."""

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
        # Trả về (∂L/∂x, ∂L/∂w): N×C×H×W (của x, chưa đệm), O×C×kh×kw.
        raise NotImplementedError("Conv2d.backward")


class MaxPool2d(Function):
    """out[n, c, i, j] = giá trị lớn nhất của x[n, c] trên cửa sổ kernel_size×kernel_size tại (i·stride, j·stride);
    x N×C×H×W, out N×C×Ho×Wo, Ho = (H − kernel_size)//stride + 1. Các cửa sổ có thể chồng nhau
    (stride < kernel_size)."""

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
        # Trả về (∂L/∂x,): N×C×H×W.
        raise NotImplementedError("MaxPool2d.backward")


class RNN(Function):
    """Một ô tanh qua T bước: a_t = x_t·Wxh + h_{t−1}·Whh + b, h_t = tanh(a_t), bắt đầu từ h_{−1} = h0.
    x T×N×I, h0 N×H, Wxh I×H, Whh H×H, b (H,); out = (h_0, ..., h_{T−1}) xếp chồng, T×N×H."""

    name = "rnn"

    def forward(self, x, h0, Wxh, Whh, b):
        pre, hs, h = [], [], h0
        for t in range(x.shape[0]):
            a = x[t] @ Wxh + h @ Whh + b
            h = np.tanh(a)
            pre.append(a)
            hs.append(h)
        out = np.stack(hs)
        self.save(x, h0, Wxh, Whh, np.stack(pre), out)          # a: T×N×H, giá trị trước hàm kích hoạt
        return out

    def backward(self, g):
        x, h0, Wxh, Whh, a, hs = self.saved
        # g[t] = ∂L/∂h_t chỉ từ hàm loss. Trả về (∂L/∂x, ∂L/∂h0, ∂L/∂Wxh, ∂L/∂Whh, ∂L/∂b).
        raise NotImplementedError("RNN.backward")


class Dropout(Function):
    """Dropout đảo ngược với mặt nạ cho sẵn (1 giữ một phần tử, 0 bỏ nó; mỗi số 0 xuất hiện với xác suất p):
    out = x ⊙ mask/(1 − p), nên giá trị kỳ vọng bằng của x và lúc đánh giá không cần chia lại."""

    name = "dropout"

    def forward(self, x, *, mask, p):
        self.attrs.update(mask=mask, p=p)
        return x * mask / (1 - p)

    def backward(self, g):
        mask, p = self.attrs["mask"], self.attrs["p"]
        # Trả về (∂L/∂x,).
        raise NotImplementedError("Dropout.backward")
