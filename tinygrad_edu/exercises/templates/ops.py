"""Your backward rules: each op's forward is given; write its backward (then: tinygrad-edu exercises check .).

Each op is a Function, as in tinygrad_edu/ops.py. backward gets g = ∂L/∂out (out's shape) and returns a tuple
with one gradient per input, ∂L/∂input in that input's shape (None for an input that needs none). Once an
op passes, use it on Tensors: `Add.apply(x, y)`, and backward() goes through your rule.
"""
import numpy as np

from tinygrad_edu.autograd import Function


class Add(Function):
    """out = a + b, with numpy broadcasting: a and b may have different shapes, e.g. Z (n×m) + b (n×1)."""

    name = "add"

    def forward(self, a, b):
        self.attrs.update(a_shape=a.shape, b_shape=b.shape)
        return a + b

    def backward(self, g):
        # Return (∂L/∂a, ∂L/∂b), each in its input's shape: self.attrs["a_shape"], self.attrs["b_shape"].
        raise NotImplementedError("Add.backward")


class Mul(Function):
    """out = a ⊙ b, elementwise; a and b have the same shape."""

    name = "mul"

    def forward(self, a, b):
        self.save(a, b)
        return a * b

    def backward(self, g):
        a, b = self.saved
        raise NotImplementedError("Mul.backward")


class MatMul(Function):
    """out = a · b, the matrix product of a (n×k) and b (k×p)."""

    name = "matmul"

    def forward(self, a, b):
        self.save(a, b)
        return a @ b

    def backward(self, g):
        a, b = self.saved
        raise NotImplementedError("MatMul.backward")


class ReLU(Function):
    """out = max(a, 0), elementwise (ReLU′(0) = 0, as the tutorial's Z > 0)."""

    name = "relu"

    def forward(self, a):
        self.save(a)
        return np.maximum(a, 0)

    def backward(self, g):
        (a,) = self.saved
        raise NotImplementedError("ReLU.backward")


class Exp(Function):
    """out = exp(a), elementwise."""

    name = "exp"

    def forward(self, a):
        out = np.exp(a)
        self.save(out)
        return out

    def backward(self, g):
        (out,) = self.saved
        raise NotImplementedError("Exp.backward")


class Log(Function):
    """out = log(a), elementwise, for a > 0."""

    name = "log"

    def forward(self, a):
        self.save(a)
        return np.log(a)

    def backward(self, g):
        (a,) = self.saved
        raise NotImplementedError("Log.backward")


class Sum(Function):
    """out = Σ a over one axis: a (n×m) with axis=1 gives n numbers, with axis=0 gives m."""

    name = "sum"

    def forward(self, a, *, axis):
        self.attrs.update(axis=axis, shape=a.shape)
        return np.sum(a, axis=axis)

    def backward(self, g):
        axis, shape = self.attrs["axis"], self.attrs["shape"]
        raise NotImplementedError("Sum.backward")


class Mean(Function):
    """out = the mean of a over one axis: Σ a / n, with n = a.shape[axis]."""

    name = "mean"

    def forward(self, a, *, axis):
        self.attrs.update(axis=axis, shape=a.shape, n=a.shape[axis])
        return np.mean(a, axis=axis)

    def backward(self, g):
        axis, shape, n = self.attrs["axis"], self.attrs["shape"], self.attrs["n"]
        raise NotImplementedError("Mean.backward")


class SoftmaxCrossEntropy(Function):
    """L = −(1/m) Σ Y ⊙ log softmax(Z): the tutorial's loss, classes on axis 0, Z and Y (one-hot) both k×m."""

    name = "softmax_cross_entropy"

    def forward(self, z, y):
        m = z.shape[1]
        shifted = z - z.max(axis=0, keepdims=True)            # the column max subtracted: exp cannot overflow
        log_softmax = shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))
        self.attrs["m"] = m
        self.save(np.exp(log_softmax), y)                      # softmax(Z), i.e. A2, and the one-hot Y
        return np.asarray(-(y * log_softmax).sum() / m)

    def backward(self, g):
        softmax, y = self.saved
        m = self.attrs["m"]
        # g is ∂L/∂out, a number. Return (∂L/∂z, None): Y is data and needs no gradient.
        raise NotImplementedError("SoftmaxCrossEntropy.backward")
