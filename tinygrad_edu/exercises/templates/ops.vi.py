"""Công thức backward của bạn: forward của mỗi op đã có sẵn; bạn viết backward (rồi: tinygrad-edu exercises check .).

Mỗi op là một Function, như trong tinygrad_edu/ops.py. backward nhận g = ∂L/∂out (cùng kích thước với out) và trả
về một tuple gồm một gradient cho mỗi đầu vào: ∂L/∂(đầu vào), cùng kích thước với đầu vào đó (None cho đầu vào
không cần gradient). Khi một op đã đạt ✓, bạn dùng được nó trên Tensor: `Add.apply(x, y)`, và backward() sẽ đi
qua công thức của bạn.
"""
import numpy as np

from tinygrad_edu.autograd import Function


class Add(Function):
    """out = a + b, có broadcasting của numpy: a và b có thể khác kích thước, ví dụ Z (n×m) + b (n×1)."""

    name = "add"

    def forward(self, a, b):
        self.attrs.update(a_shape=a.shape, b_shape=b.shape)
        return a + b

    def backward(self, g):
        # Trả về (∂L/∂a, ∂L/∂b), mỗi cái có kích thước của đầu vào của nó: self.attrs["a_shape"],
        # self.attrs["b_shape"].
        raise NotImplementedError("Add.backward")


class Mul(Function):
    """out = a ⊙ b, nhân từng phần tử; a và b cùng kích thước."""

    name = "mul"

    def forward(self, a, b):
        self.save(a, b)
        return a * b

    def backward(self, g):
        a, b = self.saved
        raise NotImplementedError("Mul.backward")


class MatMul(Function):
    """out = a · b, tích ma trận của a (n×k) và b (k×p)."""

    name = "matmul"

    def forward(self, a, b):
        self.save(a, b)
        return a @ b

    def backward(self, g):
        a, b = self.saved
        raise NotImplementedError("MatMul.backward")


class ReLU(Function):
    """out = max(a, 0), theo từng phần tử (ReLU′(0) = 0, như Z > 0 trong bài hướng dẫn)."""

    name = "relu"

    def forward(self, a):
        self.save(a)
        return np.maximum(a, 0)

    def backward(self, g):
        (a,) = self.saved
        raise NotImplementedError("ReLU.backward")


class Exp(Function):
    """out = exp(a), theo từng phần tử."""

    name = "exp"

    def forward(self, a):
        out = np.exp(a)
        self.save(out)
        return out

    def backward(self, g):
        (out,) = self.saved
        raise NotImplementedError("Exp.backward")


class Log(Function):
    """out = log(a), theo từng phần tử, với a > 0."""

    name = "log"

    def forward(self, a):
        self.save(a)
        return np.log(a)

    def backward(self, g):
        (a,) = self.saved
        raise NotImplementedError("Log.backward")


class Sum(Function):
    """out = Σ a theo một trục: a (n×m) với axis=1 cho n số, với axis=0 cho m số."""

    name = "sum"

    def forward(self, a, *, axis):
        self.attrs.update(axis=axis, shape=a.shape)
        return np.sum(a, axis=axis)

    def backward(self, g):
        axis, shape = self.attrs["axis"], self.attrs["shape"]
        raise NotImplementedError("Sum.backward")


class Mean(Function):
    """out = trung bình của a theo một trục: Σ a / n, với n = a.shape[axis]."""

    name = "mean"

    def forward(self, a, *, axis):
        self.attrs.update(axis=axis, shape=a.shape, n=a.shape[axis])
        return np.mean(a, axis=axis)

    def backward(self, g):
        axis, shape, n = self.attrs["axis"], self.attrs["shape"], self.attrs["n"]
        raise NotImplementedError("Mean.backward")


class SoftmaxCrossEntropy(Function):
    """L = −(1/m) Σ Y ⊙ log softmax(Z): hàm loss của bài hướng dẫn, các lớp trên trục 0, Z và Y (one-hot) đều k×m."""

    name = "softmax_cross_entropy"

    def forward(self, z, y):
        m = z.shape[1]
        shifted = z - z.max(axis=0, keepdims=True)            # trừ giá trị lớn nhất của mỗi cột: exp không bị tràn số
        log_softmax = shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))
        self.attrs["m"] = m
        self.save(np.exp(log_softmax), y)                      # softmax(Z), tức A2, và one-hot Y
        return np.asarray(-(y * log_softmax).sum() / m)

    def backward(self, g):
        softmax, y = self.saved
        m = self.attrs["m"]
        # g là ∂L/∂out, một con số. Trả về (∂L/∂z, None): Y là dữ liệu, không cần gradient.
        raise NotImplementedError("SoftmaxCrossEntropy.backward")
