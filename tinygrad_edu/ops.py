"""The differentiable ops: each forward on numpy arrays beside the backward that differentiates it.

Reading guide. Every backward gets g = ∂L/∂out and returns ∂L/∂input for each input (None where the input
needs no gradient, e.g. the data X). Its `rules` say in one line per input what it computes. A gradient may
come back in the output's broadcast shape: the backward walk (autograd.reduce_to) sums it to the input's
shape, so no op deals with broadcasting itself. The tutorial's formulas live here:

    dZ2 = A2 − Y, and the /m of dW2, db2, dW1, db1 ...  SoftmaxCrossEntropy.backward  ((softmax − Y)/m)
    dW2 = dZ2·A1ᵀ, dW1 = dZ1·Xᵀ (the product) .......  MatMul.backward                (∂L/∂A = g·Bᵀ)
    db2 = Σ dZ2, db1 = Σ dZ1 (per unit) .............  Add.backward + autograd.unbroadcast (the sum over m)
    W2ᵀ·dZ2 ...........................................  MatMul.backward                (∂L/∂B = Aᵀ·g)
    ⊙ ReLU′(Z1) ........................................  ReLU.backward                  (g·[Z1 > 0])
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from tinygrad_edu.autograd import Function, ShapeError
from tinygrad_edu.dims import normalize_axes

# --- the tutorial's ops: Z = W·X + b, A = ReLU(Z), and the loss with dZ2 = A2 − Y -----------------------


def _transposed(x) -> bool:
    """True for a column-major (Fortran-order) matrix, e.g. the .T of a row-major one (an array's layout: a
    Tensor in a recorded rule has none to keep)."""
    return type(x) is np.ndarray and x.flags.f_contiguous and not x.flags.c_contiguous


class MatMul(Function):
    name = "matmul"

    @classmethod
    def flops(cls, shapes, out_shape):
        """2·n·k·m: each of the output's n·m elements is k multiply-adds (batched: per matrix)."""
        return 2 * math.prod(out_shape) * shapes[0][-1]

    @classmethod
    def backward_flops(cls, shapes, out_shape, needs_grad):
        """One product of the forward's size for each input that needs a gradient (g·bᵀ, aᵀ·g)."""
        return sum(needs_grad) * cls.flops(shapes, out_shape)

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError(f"matmul: {a.shape} @ {b.shape}: both operands need at least one dimension")
        k_a, k_b = a.shape[-1], b.shape[-2] if b.ndim > 1 else b.shape[0]
        if k_a != k_b:
            raise ShapeError(f"matmul: {a.shape} @ {b.shape}: inner dimensions {k_a} and {k_b} differ")
        try:
            if a.ndim > 2 or b.ndim > 2:   # NOTE: only batched products have batch axes to check
                np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ShapeError(f"matmul: {a.shape} @ {b.shape}: batch dimensions {a.shape[:-2]} and {b.shape[:-2]} "
                             "do not broadcast") from None
        self.save(a, b)
        return a @ b

    rules = ("∂L/∂{a} += ∂L/∂{out} · {b}ᵀ", "∂L/∂{b} += {a}ᵀ · ∂L/∂{out}")

    def backward(self, g):
        a, b = self.saved
        if a.ndim == 2 and b.ndim == 2:
            # NOTE: a gradient is formed in its operand's memory layout: for a transposed view such as the Wᵀ
            # of x·Wᵀ, Aᵀ·g is computed as (gᵀ·A)ᵀ, so W.grad comes out contiguous, like W.
            ga = gb = None
            if self.needs_grad[0]:
                ga = (b @ g.T).T if _transposed(a) else g @ b.T
            if self.needs_grad[1]:
                gb = (g.T @ a).T if _transposed(b) else a.T @ g
            return ga, gb
        # NOTE: a vector operand is a 1-row (a) or 1-column (b) matrix; batch axes are summed by the walk.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g[..., None] if b.ndim == 1 else g            # put back the axes numpy dropped for vectors
        g2 = np.expand_dims(g2, -2) if a.ndim == 1 else g2
        ga = np.matmul(g2, np.swapaxes(b2, -1, -2)) if self.needs_grad[0] else None
        gb = np.matmul(np.swapaxes(a2, -1, -2), g2) if self.needs_grad[1] else None
        if ga is not None and a.ndim == 1:
            ga = ga[..., 0, :]   # drop the row axis added above; the walk sums any batch axes
        if gb is not None and b.ndim == 1:
            gb = gb[..., 0]
        return ga, gb


class Add(Function):
    name = "add"
    flops_per_element = (1, 0)

    def forward(self, a, b):
        return a + b

    rules = ("∂L/∂{a} += ∂L/∂{out}", "∂L/∂{b} += ∂L/∂{out}")

    def backward(self, g):
        return g, g


class ReLU(Function):
    name = "relu"
    flops_per_element = (1, 1)

    def forward(self, a):
        self.save(a)
        return np.maximum(a, 0)

    # NOTE: ReLU′(0) = 0, as the tutorial's `Z > 0`; at x = nan the gradient passes (PyTorch's: not x ≤ 0).
    rules = ("∂L/∂{a} += ∂L/∂{out} ⊙ [{a} > 0]",)

    def backward(self, g):
        (a,) = self.saved
        return (g * ~(a <= 0),)


def _log_softmax(z, axis):
    shifted = z - np.max(z, axis=axis, keepdims=True)   # NOTE: subtracting the max keeps exp finite
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _check_axis(z, axis, op):
    if not -z.ndim <= axis < z.ndim:
        raise ShapeError(f"{op}: axis {axis} is out of range for shape {z.shape}")
    return axis % z.ndim


def _softmax_axis(z, axis, op):
    """The class axis; None for a 0-d z, whose one value is its own class (as PyTorch: softmax 1, log_softmax 0)."""
    if z.ndim == 0 and axis in (-1, 0):
        return None
    return _check_axis(z, axis, op)


def check_labels(labels, n_classes: int, op: str, logits_axis: tuple | None = None) -> None:
    """The one check of integer class labels (every loss and one_hot): integers in 0..n_classes − 1. The error
    names the first bad value and its position: a −1 must not silently pick the last class, as numpy would.
    logits_axis: (axis, logits shape) where n_classes comes from, named in the error."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{op}: class labels must be integers, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        pos = tuple(int(k) for k in np.argwhere((labels < 0) | (labels >= n_classes))[0])
        at = f" at position {pos[0] if len(pos) == 1 else pos}" if pos else ""
        where = f" (the size of axis {logits_axis[0]} of logits {logits_axis[1]})" if logits_axis else ""
        raise ShapeError(f"{op}: labels must lie in 0..{n_classes - 1}{where}; got {labels[pos]}{at}")


def check_target(z, target, axis: int, op: str = "softmax_cross_entropy") -> None:
    """The one check of a cross-entropy target against logits z with classes on `axis` (every entry point:
    the op, F.cross_entropy with each reduction, the tutorial's loss). Integer labels have z's shape without
    `axis` and lie in 0..C−1; probability targets are floating point with z's shape, and any values are
    accepted, as in PyTorch (the loss is −Σ y·log softmax(z) whatever the rows sum to), except a target that
    is one-hot along another axis and not along `axis`: the tutorial's classes×m one-hot Y given without
    axis=0, whose loss would be silently wrong. The errors suggest the axis that would fit.
    """
    n_classes = z.shape[axis]
    labels_shape = z.shape[:axis] + z.shape[axis + 1:]
    if target.dtype.kind in "iu":
        if target.shape != labels_shape:
            fits = [ax for ax in range(z.ndim) if z.shape[:ax] + z.shape[ax + 1:] == target.shape]
            hint = f"; axis={fits[0]} would fit" if fits else ""
            raise ShapeError(f"{op}: logits {z.shape} with classes on axis {axis} need integer labels of shape "
                             f"{labels_shape}, got {target.shape}{hint}")
        check_labels(target, n_classes, op, (axis, z.shape))   # NOTE: the message is formatted only on failure
        return
    if target.dtype.kind != "f":
        raise TypeError(f"{op}: targets must be integer class labels or floating-point probabilities, "
                        f"got dtype {target.dtype}")
    if target.shape != z.shape:
        hint = f"; class labels must be integers, got dtype {target.dtype}" if target.shape == labels_shape else ""
        raise ShapeError(f"{op}: one-hot/probability targets must have the logits' shape {z.shape}, "
                         f"got {target.shape}{hint}")
    if z.ndim > 1 and ((target == 0) | (target == 1)).all() and not (target.sum(axis=axis) == 1).all():
        fits = [ax for ax in range(z.ndim) if ax != axis and (target.sum(axis=ax) == 1).all()]
        if fits:
            raise ShapeError(f"{op}: targets {target.shape} are one-hot along axis {fits[0]}, not along the class "
                             f"axis {axis} of logits {z.shape}: pass axis={fits[0]}")


class SoftmaxCrossEntropy(Function):
    """L = −(1/m) Σ_examples Σ_classes Y·log softmax(Z), classes along `axis`, m = the number of examples.

    target is integer labels (Z's shape without `axis`) or one-hot/probability rows (Z's shape), checked by
    check_target. Rows that do not sum to 1 are allowed, as in PyTorch: the loss is still −Σ Y·log softmax(Z)/m.
    reduction "sum" leaves out the 1/m (so an empty batch sums to 0, where its mean is 0/0 = nan, as in PyTorch).
    A probability target that requires grad gets ∂L/∂Y = −log softmax(Z)/m (distillation trains through it).
    """

    name = "softmax_cross_entropy"
    flops_per_element = (5, 2)

    def forward(self, z, target, *, axis=-1, reduction="mean"):
        axis = _check_axis(z, axis, "softmax_cross_entropy")
        check_target(z, target, axis)
        m = z.size // z.shape[axis] if z.shape[axis] else 0
        labels = target.dtype.kind in "iu"
        self.attrs.update(axis=axis, m=m, labels=labels, reduction=reduction)
        # log softmax(Z) = S − log Σ exp(S), with S = Z − max(Z) so that exp cannot overflow
        shifted = z - np.max(z, axis=axis, keepdims=True)
        if labels:   # Y as the position of each example's true class, instead of a one-hot array
            where = (np.arange(target.size),) if target.ndim == 1 else np.indices(target.shape, sparse=True)
            target = (*where[:axis], target, *where[axis:])
            Y_dot_shifted = shifted[target].sum()
            Y_sum = None
        else:
            target = target.astype(z.dtype, copy=False)
            Y_dot_shifted = (target * shifted).sum()
            Y_sum = target.sum(axis=axis, keepdims=True)   # 1 for one-hot and probability rows
        log_softmax = shifted.copy() if self.needs_grad[1:] == (True,) else None   # only for ∂L/∂Y
        softmax = np.exp(shifted, out=shifted)
        total = np.sum(softmax, axis=axis, keepdims=True)
        softmax /= total
        log_total = np.log(total)
        if log_softmax is not None:
            log_softmax -= log_total
        Y_dot_log_total = log_total.sum() if labels else (Y_sum * log_total).sum()
        self.save(softmax, target, Y_sum, log_softmax)
        total_loss = Y_dot_log_total - Y_dot_shifted
        return np.asarray(total_loss if reduction == "sum" else total_loss / m if m else math.nan, dtype=z.dtype)

    # NOTE: with the mean over m examples, ∂L/∂Z2 is the tutorial's dZ2 = A2 − Y divided by m ("sum": m = 1).
    rules = ("∂L/∂{a} = ∂L/∂{out} · (softmax({a}) − onehot({b}))/m",
             "∂L/∂{b} = −∂L/∂{out} · log softmax({a})/m")

    def composite(self, z, target):
        """−Σ Y·log softmax(Z) / m with Tensor ops: the function this op fuses, differentiated under create_graph."""
        at = self.attrs
        log_p = z.log_softmax(at["axis"])
        if at["labels"]:
            total = -log_p[self.saved[1]].sum()   # the saved labels as an index: each example's true class
        else:
            total = -(target.to(z.dtype) * log_p).sum()
        return total / at["m"] if at["reduction"] == "mean" and at["m"] else total

    def backward(self, g):
        softmax, target, Y_sum, log_softmax = self.saved
        # NOTE: m = 0 only for an empty batch, whose gradients are empty: max(m, 1) divides nothing
        scale = g / max(self.attrs["m"], 1) if self.attrs["reduction"] == "mean" else g
        grad = grad_target = None
        if self.needs_grad[0]:
            if self.attrs["labels"]:
                grad = softmax * scale
                grad[target] -= scale
            else:
                # NOTE: a target whose rows do not sum to 1 scales log Σ exp(Z) by its row sums, so the exact
                # gradient (PyTorch's too) is softmax·ΣY − Y: the rule above with ΣY = 1.
                grad = (softmax * Y_sum - target) * scale
        if log_softmax is not None:
            grad_target = -log_softmax * scale
        return grad, grad_target


class Cast(Function):
    """The same values in another dtype (Tensor.to): how a float32 tensor enters a float64 op in a recorded rule."""

    name = "cast"
    flops_per_element = (0, 0)   # NOTE: a copy in another dtype: no arithmetic

    def forward(self, a, *, to):
        self.attrs["to"] = to
        return a.astype(to)

    rules = ("∂L/∂{a} += ∂L/∂{out}, cast back to {a}'s dtype",)

    def backward(self, g):
        return (g,)   # NOTE: the walk's reduce_to casts it to the input's dtype


# --- elementwise, with numpy broadcasting ---------------------------------------------------------------


class Sub(Function):
    name = "sub"
    flops_per_element = (1, (0, 1))

    def forward(self, a, b):
        return a - b

    rules = ("∂L/∂{a} += ∂L/∂{out}", "∂L/∂{b} += −∂L/∂{out}")

    def backward(self, g):
        return g, (-g if self.needs_grad[1] else None)


class Mul(Function):
    name = "mul"
    flops_per_element = (1, 1)

    def forward(self, a, b):
        self.save(a, b)
        return a * b

    rules = ("∂L/∂{a} += ∂L/∂{out} ⊙ {b}", "∂L/∂{b} += ∂L/∂{out} ⊙ {a}")

    def backward(self, g):
        a, b = self.saved
        return (g * b if self.needs_grad[0] else None), (g * a if self.needs_grad[1] else None)


class Div(Function):
    name = "div"
    flops_per_element = (1, (1, 3))

    def forward(self, a, b):
        self.save(a, b)
        return a / b

    rules = ("∂L/∂{a} += ∂L/∂{out} / {b}", "∂L/∂{b} += −∂L/∂{out} ⊙ {a} / {b}²")

    def backward(self, g):
        a, b = self.saved
        ga = g / b if self.needs_grad[0] else None
        gb = -g * a / (b * b) if self.needs_grad[1] else None
        return ga, gb


class Neg(Function):
    name = "neg"
    flops_per_element = (1, 1)

    def forward(self, a):
        return -a

    rules = ("∂L/∂{a} += −∂L/∂{out}",)

    def backward(self, g):
        return (-g,)


class Abs(Function):
    """|x|. A primitive, as PyTorch's: composed as x ⊙ sign(x), the gradient at nan would be sign(nan) = nan."""

    name = "abs"
    flops_per_element = (1, 1)

    def forward(self, a):
        self.save(a)
        return np.abs(a)

    # NOTE: abs′(0) = 0, and 0 at nan too (PyTorch's sgn), so a nan input spreads no nan gradient.
    rules = ("∂L/∂{a} += ∂L/∂{out} ⊙ sign({a})",)

    def backward(self, g):
        (a,) = self.saved
        return (g * np.where(np.isnan(a), 0, np.sign(a)),)


def _check_not_bool(a) -> None:
    """A power whose operands promote to bool (bool ** bool) has no dtype to be in: PyTorch refuses it too."""
    if a.dtype.kind == "b":
        raise TypeError("pow: bool ** bool is not defined (PyTorch refuses it too); make the base or the exponent "
                        "an integer or a float first, e.g. Tensor(t.data.astype(np.int64)) ** u")


class Pow(Function):
    name = "pow"
    flops_per_element = (1, 3)

    def forward(self, a, *, exponent):
        _check_not_bool(a)
        if a.dtype.kind in "biu" and exponent < 0:   # NOTE: 1/aⁿ is not an integer; PyTorch refuses it too
            raise RuntimeError(f"pow: integers to negative integer powers are not allowed ({a.dtype} tensor ** "
                               f"{exponent}); make it floating point first, e.g. (t * 1.0) ** {exponent}")
        self.attrs["exponent"] = exponent
        self.save(a)
        return a ** exponent

    rules = ("∂L/∂{a} += ∂L/∂{out} ⊙ {exponent}·{a}^({exponent}−1)",)

    def backward(self, g):
        (a,) = self.saved
        p = self.attrs["exponent"]
        if p == 0:   # NOTE: a⁰ = 1 is flat; p·a^(p−1) would be 0·∞ = nan at a = 0
            return (np.zeros_like(g),)
        with np.errstate(divide="ignore"):   # the slope of √a at 0 is ∞, as in PyTorch: no warning
            return (g * (p * a ** (p - 1)),)


class Exp(Function):
    name = "exp"
    flops_per_element = (1, 1)

    def forward(self, a):
        out = np.exp(a)
        self.save(out)
        return out

    rules = ("∂L/∂{a} += ∂L/∂{out} ⊙ exp({a})",)

    def backward(self, g):
        (out,) = self.saved
        return (g * out,)


class Log(Function):
    name = "log"
    flops_per_element = (1, 1)

    def forward(self, a):
        self.save(a)
        return np.log(a)

    rules = ("∂L/∂{a} += ∂L/∂{out} / {a}",)

    def backward(self, g):
        (a,) = self.saved
        return (g / a,)


class Tanh(Function):
    name = "tanh"
    flops_per_element = (1, 3)

    def forward(self, a):
        out = np.tanh(a)
        self.save(out)
        return out

    rules = ("∂L/∂{a} += ∂L/∂{out} ⊙ (1 − tanh²({a}))",)

    def backward(self, g):
        (out,) = self.saved
        return (g * (1 - out * out),)


def _sigmoid(z):
    """σ(z) = 1/(1 + e^−z) for z ≥ 0 and e^z/(1 + e^z) below. NOTE: e^−|z| never overflows, and the far negative
    tail keeps its relative precision (σ(−50) = 1.9e−22, where 1 − σ(50) or (1 + tanh(z/2))/2 would give 0)."""
    e = np.exp(np.where(z >= 0, -z, z))   # NOTE: e^−|z| without abs, whose slope at 0 is 0: recorded in a rule
    return np.where(z >= 0, 1, e) / (1 + e)   # (create_graph), σ′(0) must come out ¼, as each branch gives it


class Sigmoid(Function):
    name = "sigmoid"
    flops_per_element = (3, 3)

    def forward(self, a):
        out = _sigmoid(a)
        self.save(out)
        return out

    rules = ("∂L/∂{a} += ∂L/∂{out} ⊙ σ({a})(1 − σ({a}))",)

    def backward(self, g):
        (out,) = self.saved
        return (g * out * (1 - out),)


# --- elementwise, beyond the tutorial's -----------------------------------------------------------------
#
# The primitives below are the ones that cannot be composed exactly from others; the rest (abs, sqrt, clip,
# minimum, sign, the activations and losses but softplus and BCE) are compositions in tensor.py and
# nn/functional.py, with no backward of their own. docs/ops.md lists which is which, and why.


class Where(Function):
    name = "where"

    def forward(self, a, b, *, condition):
        try:
            np.broadcast_shapes(condition.shape, a.shape, b.shape)
        except ValueError:
            raise ShapeError(f"where: condition {condition.shape}, input {a.shape} and other {b.shape} cannot be "
                             "broadcast together") from None
        self.save(condition)   # NOTE: saved, not an attr: released with the other saved arrays after backward
        return np.where(condition, a, b)

    rules = ("∂L/∂{a} += ∂L/∂{out} where condition, 0 elsewhere",
             "∂L/∂{b} += ∂L/∂{out} where not condition, 0 elsewhere")

    def backward(self, g):
        # NOTE: np.where, not g ⊙ condition: an inf in g must not become inf·0 = nan in the branch not taken
        (cond,), zero = self.saved, g.dtype.type(0)
        return (np.where(cond, g, zero) if self.needs_grad[0] else None,
                np.where(cond, zero, g) if self.needs_grad[1] else None)


class Maximum(Function):
    name = "maximum"
    flops_per_element = (1, 1)

    def forward(self, a, b):
        self.save(a, b)
        return np.maximum(a, b)

    # NOTE: a tie splits the gradient in half between the two, as PyTorch's maximum does.
    rules = ("∂L/∂{a} += ∂L/∂{out} ⊙ ([{a} > {b}] + ½[{a} = {b}])",
             "∂L/∂{b} += ∂L/∂{out} ⊙ ([{b} > {a}] + ½[{a} = {b}])")

    def backward(self, g):
        # NOTE: written as "not below" (PyTorch's masks), so that where a or b is nan both get the gradient
        a, b = self.saved
        share = np.where(a == b, g.dtype.type(0.5), g.dtype.type(1))
        return (g * (~(a < b) * share) if self.needs_grad[0] else None,
                g * (~(b < a) * share) if self.needs_grad[1] else None)


class PowTensor(Function):
    """a ** b with a tensor exponent b (Pow has a constant one)."""

    name = "pow"
    flops_per_element = (1, 3)

    def forward(self, a, b):
        _check_not_bool(a)
        if a.dtype.kind in "biu" and b.dtype.kind in "biu" and b.size and b.min() < 0:
            raise RuntimeError(f"pow: integers to negative integer powers are not allowed ({a.dtype} tensor ** "
                               f"{b.dtype} tensor holding {b.min()}); make the base floating point first")
        with np.errstate(divide="ignore", invalid="ignore"):   # 0 ** −1 = ∞ and (−2) ** 0.5 = nan, as in PyTorch
            out = np.power(a, b)
        self.save(a, b, out)
        return out

    # NOTE: PyTorch's conventions where the formulas give 0·∞: ∂/∂a is 0 where b = 0, ∂/∂b is 0 where a = 0 ≤ b.
    rules = ("∂L/∂{a} += ∂L/∂{out} ⊙ {b}·{a}^({b}−1)", "∂L/∂{b} += ∂L/∂{out} ⊙ {a}^{b}·log {a}")

    def backward(self, g):
        a, b, out = self.saved
        ga = gb = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.needs_grad[0]:
                # NOTE: masked only where b·a^(b−1) is 0·∞ (a = 0 = b): elsewhere the term itself is 0 at b = 0,
                # and a recorded rule (create_graph) keeps its slope in b there, a^(b−1)·log… ≠ 0
                ga = np.where((b == 0) & (a == 0), 0, g * (b * a ** (b - 1)))   # reduce_to casts it to a's dtype
            if self.needs_grad[1]:
                gb = np.where((a == 0) & (b >= 0), 0, g * (out * np.log(a)))
        return ga, gb


class Sin(Function):
    name = "sin"
    flops_per_element = (1, 2)

    def forward(self, a):
        self.save(a)
        return np.sin(a)

    rules = ("∂L/∂{a} += ∂L/∂{out} ⊙ cos({a})",)

    def backward(self, g):
        (a,) = self.saved
        return (g * np.cos(a),)


class Cos(Function):
    name = "cos"
    flops_per_element = (1, 2)

    def forward(self, a):
        self.save(a)
        return np.cos(a)

    rules = ("∂L/∂{a} += −∂L/∂{out} ⊙ sin({a})",)

    def backward(self, g):
        (a,) = self.saved
        return (-g * np.sin(a),)


# erf, vectorised (numpy has none; math.erf one element at a time, np.frompyfunc, is several times slower).
# Coefficients fitted by scripts/derive_erf.py, which says how; within 1 ulp of the true erf on its grid, as
# math.erf is:
#     |x| < 1:      erf(x) = x + x·g(x²), g a polynomial of degree 11 (g(t) ≈ erf(√t)/√t − 1)
#     1 ≤ |x| < 6:  erf(x) = ±(1 − exp(−x²)·P(|x|)/Q(|x|)), P/Q ≈ erfc(a)·exp(a²), degrees 6 and 7
#     |x| ≥ 6:      ±1 (erfc(6) = 2.2e−17 is below half an ulp of 1); erf(nan) = nan
# For float32 (and float16) results a shorter set (degree 7; 3 and 4; ±1 from 4.5), within 2e−10 relative, is
# still computed in float64 and then rounded: a float32 ulp is 6e−8.
_ERF_G = (0.12837916709551256, -0.3761263890318345, 0.1128379167094243, -0.026866170642985104,
          0.005223977606083124, -0.0008548325965961085, 0.00012055295593222344, -1.492476529021709e-05,
          1.644792771819814e-06, -1.62132963289608e-07, 1.3744301523067391e-08, -7.846415112124176e-10)
_ERFCX_P = (1.0000001552161233, 1.684199258087584, 1.3894040635951586, 0.6929249655691071, 0.21896259006596036,
            0.04190992120410228, 0.003943631709215286)
_ERFCX_Q = (1.0, 2.8125799438991335, 3.5630535425463417, 2.653094728474434, 1.265329756009119, 0.3915953651055834,
            0.07428342815181448, 0.006989904703866628)
_ERF_G_F32 = (0.12837916703686209, -0.3761263833019497, 0.11283781440707231, -0.02686541817074277,
              0.005221107003372526, -0.0008486472654578483, 0.00011290966926689302, -9.756497148727036e-06)
_ERFCX_P_F32 = (0.999667098280805, 1.082857864456812, 0.5326127093380678, 0.12139466415466516)
_ERFCX_Q_F32 = (1.0, 2.2090203458423434, 2.032239736186487, 0.9435479016674794, 0.21518605591631534)
_ERF_SETS = {True: (_ERF_G_F32, _ERFCX_P_F32, _ERFCX_Q_F32, 4.5), False: (_ERF_G, _ERFCX_P, _ERFCX_Q, 6.0)}


def _polynomial(coeffs, u, out=None):
    """Σ coeffs[k]·uᵏ by Horner's rule, in place in one array (out, if given: not u)."""
    acc = np.multiply(u, coeffs[-1], out=out)
    acc += coeffs[-2]
    for c in coeffs[-3::-1]:
        acc *= u
        acc += c
    return acc


_ERF_BLOCK = 1 << 15   # elements per block: its four float64 scratch arrays (1 MB) stay in the cache


def erf(x: np.ndarray) -> np.ndarray:
    """The error function elementwise, in x's floating dtype (computed in float64, a block at a time).

    NOTE: in blocks of 32768 elements the scratch arrays are reused from the cache and the allocator's free
    list; one pass over a whole 768×512 array with fresh arrays was 3× slower (page faults, cache misses).
    """
    x = np.asarray(x)
    coeffs = _ERF_SETS[x.dtype.kind == "f" and x.dtype.itemsize < 8]
    flat = x.reshape(-1)
    out = np.empty(flat.shape, x.dtype if x.dtype.kind == "f" else np.float64)
    for start in range(0, flat.size, _ERF_BLOCK):
        out[start:start + _ERF_BLOCK] = _erf_block(flat[start:start + _ERF_BLOCK], *coeffs)
    return out.reshape(x.shape)


def _erf_block(x: np.ndarray, g, P, Q, one: float) -> np.ndarray:
    """erf of a 1-d block, in float64. Both pieces are computed on every element (|x| clipped into each one's
    range), and each result is multiplied by 1 where its piece applies and by 0 where not, then added: exact,
    since p·1 + 0 = p, and faster than picking each piece's elements out and back (boolean indexing costs more
    than the sums)."""
    a = np.abs(x, dtype=np.float64)
    small = a < 1.0
    s = np.minimum(a, 1.0)                 # (nan stays nan, in both pieces: erf(nan) = nan)
    u = s * s
    near = _polynomial(g, u)
    near *= s
    near += s                              # x + x·g: g is small, so this rounds once, to about ½ ulp
    np.clip(a, 1.0, one, out=a)
    far = _polynomial(P, a, out=s)
    far /= _polynomial(Q, a, out=u)
    np.multiply(a, a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    far *= a                               # erfc(|x|)
    np.subtract(1.0, far, out=far)
    near *= small
    np.logical_not(small, out=small)
    far *= small
    near += far
    return np.copysign(near, x, out=near)


class Erf(Function):
    name = "erf"
    flops_per_element = (1, 4)

    def forward(self, a):
        self.save(a)
        return erf(a)

    rules = ("∂L/∂{a} += ∂L/∂{out} ⊙ (2/√π)·exp(−{a}²)",)

    def backward(self, g):
        (a,) = self.saved
        return (g * (2 / math.sqrt(math.pi)) * np.exp(-a * a),)


class Softplus(Function):
    """log(1 + exp(β·a))/β, and a itself where β·a > threshold (PyTorch's convention, there exact to rounding)."""

    name = "softplus"
    flops_per_element = (3, 3)

    def forward(self, a, *, beta=1.0, threshold=20.0):
        self.attrs.update(beta=beta, threshold=threshold)
        z = a * beta
        self.save(a)
        # NOTE: logaddexp(0, z) = max(z, 0) + log1p(exp(−|z|)): no overflow for large z, full precision for very
        # negative z, where log(1 + exp(z)) would round 1 + exp(z) to 1 and give 0
        return np.where(z > threshold, a, np.logaddexp(0, z) / beta).astype(a.dtype, copy=False)

    rules = ("∂L/∂{a} += ∂L/∂{out} ⊙ σ({beta}·{a}), and ∂L/∂{out} where {beta}·{a} > {threshold}",)

    def backward(self, g):
        (a,) = self.saved
        z = a * self.attrs["beta"]
        return (np.where(z > self.attrs["threshold"], g, g * _sigmoid(z)),)


_BCE_EPS = float(np.float32(1e-12))   # NOTE: PyTorch's 1e-12, which it stores in float32


class BinaryCrossEntropy(Function):
    """−(y·log x + (1 − y)·log(1 − x)) elementwise, x probabilities, each log clamped at −100 as in PyTorch."""

    name = "binary_cross_entropy"
    flops_per_element = (5, 4)

    def forward(self, x, y):
        with np.errstate(divide="ignore"):
            log_x, log_1mx = np.maximum(np.log(x), -100), np.maximum(np.log1p(-x), -100)
        self.save(x, y, log_x, log_1mx)
        return -(y * log_x + (1 - y) * log_1mx)

    # NOTE: PyTorch's gradient: the exact one, (x − y)/(x(1 − x)), with the denominator kept ≥ 10⁻¹², so that it
    # stays finite at x = 0 and x = 1 (where the clamped forward is flat)
    rules = ("∂L/∂{a} += ∂L/∂{out} ⊙ ({a} − {b}) / max({a}(1 − {a}), 10⁻¹²)",
             "∂L/∂{b} += ∂L/∂{out} ⊙ (log(1 − {a}) − log {a}), each log clamped at −100")

    def composite(self, x, y):
        """The loss with Tensor ops, each log clamped at −100 (log(1 − x) as such, not log1p: only under
        create_graph, for the second derivative); its first derivative there is the exact (x − y)/(x(1 − x))."""
        return -(y * x.log().clamp(min=-100) + (1 - y) * (1 - x).log().clamp(min=-100))

    def backward(self, g):
        x, y, log_x, log_1mx = self.saved
        gx = g * (x - y) / np.maximum(x * (1 - x), _BCE_EPS) if self.needs_grad[0] else None
        gy = g * (log_1mx - log_x) if self.needs_grad[1] else None
        return gx, gy


# --- reductions -----------------------------------------------------------------------------------------


def _expand(g, axes, keepdims):
    """Puts back the reduced axes of g, so it broadcasts against the input's shape."""
    return g if keepdims else np.expand_dims(g, axes)


class Sum(Function):
    name = "sum"
    flops_per_element = (1, 0)

    def forward(self, a, *, axis=None, keepdims=False):
        axes = normalize_axes(axis, a.shape, "sum")
        self.attrs.update(axis=axis, keepdims=keepdims, axes=axes, shape=a.shape)
        return np.sum(a, axis=axes, keepdims=keepdims)

    rules = ("∂L/∂{a} += ∂L/∂{out} copied along the summed axes",)

    def backward(self, g):
        at = self.attrs
        return (np.broadcast_to(_expand(g, at["axes"], at["keepdims"]), at["shape"]),)


class Mean(Function):
    name = "mean"
    flops_per_element = (1, 1)

    def forward(self, a, *, axis=None, keepdims=False):
        axes = normalize_axes(axis, a.shape, "mean")
        n = int(np.prod([a.shape[ax] for ax in axes]))
        self.attrs.update(axis=axis, keepdims=keepdims, axes=axes, shape=a.shape, n=n)
        if n == 0:   # NOTE: the mean of nothing is nan, as PyTorch's, without numpy's warning
            return np.full(np.sum(a, axis=axes, keepdims=keepdims).shape, np.nan, a.dtype)
        return np.mean(a, axis=axes, keepdims=keepdims)

    rules = ("∂L/∂{a} += ∂L/∂{out} / n, copied along the averaged axes",)

    def backward(self, g):
        at = self.attrs   # NOTE: n = 0 only for an empty input, whose gradient is empty: max(n, 1) divides nothing
        return (np.broadcast_to(_expand(g, at["axes"], at["keepdims"]) / max(at["n"], 1), at["shape"]),)


def _is_maximum(values, out, nan: bool | None = None) -> np.ndarray:
    """Where values attain the extremum out: equal to it, or, for a nan extremum, nan themselves. So a nan
    maximum gets the gradient (PyTorch routes it to the nan) instead of spreading nan over every element.
    nan: whether out holds any nan, if the caller knows."""
    mask = values == out
    if nan is None:   # NOTE: looked for in the (smaller) output first
        nan = out.dtype.kind == "f" and bool(np.isnan(out).any())
    if nan:
        mask |= np.isnan(values) & np.isnan(out)
    return mask


class Max(Function):
    name = "max"
    flops_per_element = (1, 2)
    extremum = staticmethod(np.max)   # Min below is this op with np.min

    def forward(self, a, *, axis=None, keepdims=False):
        axes = normalize_axes(axis, a.shape, self.name)
        empty = [ax for ax in (axes if a.ndim else ()) if a.shape[ax] == 0]
        if empty or a.size == 0 and not axes:   # NOTE: other axes may be empty: an empty result, as PyTorch
            along = f" along axis {empty[0]}" if empty and len(axes) < a.ndim else ""
            raise ShapeError(f"{self.name}: tensor of shape {a.shape} is empty{along}: a {self.name} over no "
                             "values is undefined")
        self.attrs.update(axis=axis, keepdims=keepdims, axes=axes, shape=a.shape)
        out = self.extremum(a, axis=axes, keepdims=True)
        self.save(a, out)
        return out if keepdims else np.squeeze(out, axes)

    # NOTE: ties share the gradient equally, so it stays a valid subgradient; a nan maximum is the nan's.
    rules = ("∂L/∂{a} += ∂L/∂{out} at the maximum, 0 elsewhere",)

    def graph_saved(self, out):
        """The saved values only say where the maximum is: a mask, constant under create_graph (no derivative)."""
        return self.saved

    def backward(self, g):
        a, out = self.saved
        at = self.attrs
        mask = _is_maximum(a, out)
        ties = mask.sum(axis=at["axes"], keepdims=True, dtype=g.dtype)
        return (mask * (_expand(g, at["axes"], at["keepdims"]) / ties),)


# --- shape ----------------------------------------------------------------------------------------------


class Reshape(Function):
    name = "reshape"

    def forward(self, a, *, shape):
        self.attrs.update(shape=a.shape, new_shape=shape)
        try:
            return a.reshape(shape)
        except ValueError:
            raise ShapeError(f"reshape: cannot reshape {a.shape} ({a.size} elements) into {shape}") from None

    rules = ("∂L/∂{a} += ∂L/∂{out} reshaped back",)

    def backward(self, g):
        return (g.reshape(self.attrs["shape"]),)


class Transpose(Function):
    name = "transpose"

    def forward(self, a, *, axes=None):
        if axes is None:
            axes = tuple(reversed(range(a.ndim)))
        elif len(axes) != a.ndim or not all(-a.ndim <= ax < a.ndim for ax in axes):
            raise ShapeError(f"transpose: axes {axes} do not name each of the {a.ndim} axes of {a.shape} once")
        axes = tuple(ax % a.ndim for ax in axes) if a.ndim else ()
        if sorted(axes) != list(range(a.ndim)):
            raise ShapeError(f"transpose: axes {axes} are not a permutation of the {a.ndim} axes of {a.shape}")
        self.attrs["axes"] = axes
        return a.transpose(axes)

    rules = ("∂L/∂{a} += (∂L/∂{out})ᵀ",)

    def backward(self, g):
        return (g.transpose(np.argsort(self.attrs["axes"])),)


def _is_int(i) -> bool:
    """A Python or numpy integer, or a 0-d integer array (PyTorch treats a 0-d index tensor as an int)."""
    return (isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_))) or (
        isinstance(i, np.ndarray) and i.ndim == 0 and i.dtype.kind in "iu")


def _split_index(index) -> tuple[tuple, tuple | None]:
    """PyTorch's indexing as two numpy steps, a[first][then]: ints, slices, None and ... first (a view), then the
    index arrays on what is left. numpy would instead broadcast the ints with the arrays, and move the result's
    axes to the front when a slice separates them: x[0, :, [1, 2]] is (d1, 2) in PyTorch, (2, d1) in numpy.
    `then` is None when there are no index arrays. Arrays are copied: the caller may change theirs later.
    """
    items = index if isinstance(index, tuple) else (index,)
    first, then = [], []
    for i in items:
        if _is_int(i):
            first.append(int(i))
        elif isinstance(i, slice) or i is None or i is Ellipsis:
            first.append(i)
            then.append(Ellipsis if i is Ellipsis else slice(None))
        else:   # an index array (bool or integer), or a list of them
            arr = np.array(i)
            if arr.size == 0 and arr.dtype.kind == "f":   # NOTE: [] is an empty list of indices, not of floats
                arr = arr.astype(np.intp)
            first.extend([slice(None)] * (arr.ndim if arr.dtype.kind == "b" else 1))   # a bool array spans ndim axes
            then.append(arr)
    if not any(isinstance(i, np.ndarray) for i in then):
        return tuple(first), None
    return tuple(first), tuple(then)


def _spell_out_ellipsis(then: tuple, ndim: int) -> tuple:
    """then with its ... written as the slices it stands for. NOTE: numpy counts a ... as separating two index
    arrays even where it spans no axis (and then moves their axes to the front); PyTorch does not."""
    if not any(i is Ellipsis for i in then):
        return then
    spanned = ndim - sum(i.ndim if isinstance(i, np.ndarray) and i.dtype.kind == "b" else 1
                         for i in then if i is not Ellipsis)
    k = next(n for n, i in enumerate(then) if i is Ellipsis)
    return then[:k] + (slice(None),) * max(spanned, 0) + then[k + 1:]


def _index_text(index) -> str:
    """The index as a short text for viewing (viz's graph labels): index arrays by their dtype and shape."""
    items = index if isinstance(index, tuple) else (index,)
    texts = [f"<{np.asarray(i).dtype} {'×'.join(map(str, np.shape(i))) or '0-d'}>"
             if isinstance(i, (np.ndarray, list)) else repr(i) for i in items]
    return texts[0] if not isinstance(index, tuple) else f"({', '.join(texts)}{',' if len(texts) == 1 else ''})"


def _pick(a, first: tuple, then: tuple | None):
    """a[first][then]: PyTorch's indexing as its two numpy steps (_split_index), on an array or a Tensor."""
    picked = a[first]
    return picked if then is None else picked[then]


def _scatter_add(shape: tuple, first: tuple, then: tuple | None, g):
    """zeros(shape) with g added where _pick(·, first, then) picks: the adjoint of picking, getitem's backward.
    On arrays numpy's add.at (an element picked k times gets k contributions); on Tensors (create_graph) the
    recorded op IndexAdd, whose own backward picks again."""
    if not isinstance(g, np.ndarray):
        return IndexAdd.apply(g, shape=shape, first=first, then=then)
    grad = np.zeros(shape, dtype=g.dtype)
    if then is None:   # ints and slices pick each element at most once
        grad[first] = g
    else:              # grad[first] is a view of grad, so add.at writes into it
        np.add.at(grad[first], then, g)
    return grad


class GetItem(Function):
    name = "getitem"

    def forward(self, a, *, index):
        first, then = _split_index(index)
        try:
            picked = a[first]
            if then is not None:
                then = _spell_out_ellipsis(then, picked.ndim)
                picked = picked[then]
        except (IndexError, TypeError) as e:
            raise ShapeError(f"getitem: index {index!r} into shape {a.shape}: {e}") from None
        self.attrs.update(index=_index_text(index), first=first, shape=a.shape)
        self.save(then)   # NOTE: the index arrays (copies) are saved, so they are released after backward
        return picked

    # NOTE: an element picked k times gets k contributions (np.add.at), as integer-array indexing repeats.
    rules = ("∂L/∂{a}[index] += ∂L/∂{out}",)

    def backward(self, g):
        (then,) = self.saved
        return (_scatter_add(self.attrs["shape"], self.attrs["first"], then, g),)


class IndexAdd(Function):
    """zeros(shape) with a added at an index (split as _split_index does): getitem's backward, as an op, so that
    a recorded backward can be differentiated again. Its backward picks at the same index: each is the other's
    adjoint. Also pads (conv2d's composite): a scattered into the middle of zeros."""

    name = "index_add"
    flops_per_element = (1, 0)

    def forward(self, a, *, shape, first, then):
        self.attrs.update(shape=shape, first=first)
        self.save(then)
        return _scatter_add(shape, first, then, a)

    rules = ("∂L/∂{a} += ∂L/∂{out}[index]",)

    def backward(self, g):
        (then,) = self.saved
        return (_pick(g, self.attrs["first"], then),)


class Min(Max):
    """min is max with the comparison turned round: the same forward and backward, with np.min."""

    name = "min"
    extremum = staticmethod(np.min)

    # NOTE: as max: ties share the gradient equally (PyTorch's amin and min() do; its min(dim) picks one index).
    rules = ("∂L/∂{a} += ∂L/∂{out} at the minimum, 0 elsewhere",)


def _others_product(b):
    """Π_{j≠i} b_j along the last axis, for every i, without dividing (exact where some b_j = 0):
    the product of the elements before i (an exclusive cumulative product) times that of the elements after i."""
    before, after = np.ones_like(b), np.ones_like(b)
    before[..., 1:] = np.cumprod(b[..., :-1], axis=-1)
    after[..., :-1] = np.cumprod(b[..., :0:-1], axis=-1)[..., ::-1]
    return before * after


class Prod(Function):
    name = "prod"
    flops_per_element = (1, 2)

    def forward(self, a, *, axis=None, keepdims=False):
        axes = normalize_axes(axis, a.shape, "prod")
        self.attrs.update(axis=axis, keepdims=keepdims, axes=axes, shape=a.shape)
        self.save(a)
        return np.prod(a, axis=axes, keepdims=keepdims)

    # NOTE: not g·out/a, which is 0/0 where a = 0: the product of the others is computed directly.
    rules = ("∂L/∂{a}ᵢ += ∂L/∂{out} · Π_{j≠i} {a}ⱼ (over the reduced axes)",)

    def composite(self, a):
        """The product as a chain of multiplications along the reduced axes (flattened into the last one)."""
        at = self.attrs
        axes = at["axes"]
        kept = tuple(ax for ax in range(a.ndim) if ax not in axes)
        n = int(np.prod([a.shape[ax] for ax in axes]))
        moved = a.permute(*(kept + axes)) if a.ndim else a
        moved = moved.reshape(*(a.shape[ax] for ax in kept), n)
        out = moved[..., 0] if n else moved.sum(-1) + 1   # NOTE: the empty product is 1
        for k in range(1, n):
            out = out * moved[..., k]
        if at["keepdims"]:
            out = out.reshape(*(1 if ax in axes else a.shape[ax] for ax in range(a.ndim)))
        return out

    def backward(self, g):
        (a,) = self.saved
        at = self.attrs
        axes = at["axes"]
        kept = tuple(ax for ax in range(a.ndim) if ax not in axes)
        order = kept + axes   # the reduced axes last, flattened into one
        moved = a.transpose(order)
        n = int(np.prod([a.shape[ax] for ax in axes]))
        others = _others_product(moved.reshape(moved.shape[:len(kept)] + (n,))).reshape(moved.shape)
        others = others.transpose(np.argsort(order))
        return (_expand(g, axes, at["keepdims"]) * others,)


class Cumsum(Function):
    name = "cumsum"
    flops_per_element = (1, 1)

    def forward(self, a, *, axis):
        if not _is_int(axis):
            raise TypeError(f"cumsum: axis must be one int (the axis to sum along), got {axis!r}")
        if a.ndim == 0:   # NOTE: as PyTorch, a 0-d tensor is its own cumulative sum (axis 0 or −1)
            normalize_axes(axis, (1,), "cumsum")
            self.attrs.update(axis=axis, ax=None)
            return a.copy()
        (ax,) = normalize_axes(int(axis), a.shape, "cumsum")
        self.attrs.update(axis=axis, ax=ax)
        return np.cumsum(a, axis=ax)

    rules = ("∂L/∂{a}ᵢ += Σ_{j≥i} ∂L/∂{out}ⱼ (along the axis)",)

    def backward(self, g):
        ax = self.attrs["ax"]
        if ax is None:
            return (g,)
        return (np.flip(np.cumsum(np.flip(g, ax), axis=ax), ax),)


class Cat(Function):
    name = "cat"

    def forward(self, *arrays, axis=0):
        if not _is_int(axis):
            raise TypeError(f"cat: dim must be one int, got {axis!r}")
        shapes = [a.shape for a in arrays]
        if any(a.ndim == 0 for a in arrays):
            raise ShapeError(f"cat: shapes {shapes}: a 0-d tensor cannot be concatenated (unsqueeze it, or use stack)")
        ndim = arrays[0].ndim
        (ax,) = normalize_axes(axis, arrays[0].shape, "cat")
        for k, a in enumerate(arrays):
            if a.ndim != ndim or a.shape[:ax] + a.shape[ax + 1:] != arrays[0].shape[:ax] + arrays[0].shape[ax + 1:]:
                raise ShapeError(f"cat: shapes {shapes} must match except along dim {axis}, but tensor {k} "
                                 f"{a.shape} differs from tensor 0 {arrays[0].shape}")
        self.attrs.update(axis=axis, ax=ax, ends=tuple(itertools.accumulate(a.shape[ax] for a in arrays[:-1])))
        return np.concatenate(arrays, axis=ax)

    @property
    def rules(self):
        """One rule per input, however many were joined ({a} and {b} name the first two in a trace)."""
        names = ["{a}", "{b}"] + [f"(input {k})" for k in range(2, len(self.parents))]
        return tuple(f"∂L/∂{x} += ∂L/∂{{out}}[{x}'s slice along dim {{axis}}]" for x in names)

    def backward(self, g):
        return tuple(np.split(g, list(self.attrs["ends"]), axis=self.attrs["ax"]))


# --- softmax, log_softmax and the logistic loss ---------------------------------------------------------


class Softmax(Function):
    name = "softmax"
    flops_per_element = (4, 4)

    def forward(self, z, *, axis=-1):
        axis = _softmax_axis(z, axis, "softmax")
        if z.size == 0:   # NOTE: nothing to normalise: an empty result, as PyTorch (np.max would refuse it)
            out = z.copy()
        else:
            e = np.exp(z - np.max(z, axis=axis, keepdims=True))
            out = e / np.sum(e, axis=axis, keepdims=True)
        self.attrs["axis"] = axis
        self.save(out)
        return out

    rules = ("∂L/∂{a} += s ⊙ (∂L/∂{out} − Σ_axis ∂L/∂{out} ⊙ s),  s = softmax({a})",)

    def backward(self, g):
        (s,) = self.saved
        return (s * (g - np.sum(g * s, axis=self.attrs["axis"], keepdims=True)),)


class LogSoftmax(Function):
    name = "log_softmax"
    flops_per_element = (4, 3)

    def forward(self, z, *, axis=-1):
        axis = _softmax_axis(z, axis, "log_softmax")
        out = _log_softmax(z, axis) if z.size else z.copy()   # NOTE: empty in, empty out, as PyTorch
        self.attrs["axis"] = axis
        self.save(out)
        return out

    rules = ("∂L/∂{a} += ∂L/∂{out} − softmax({a}) ⊙ Σ_axis ∂L/∂{out}",)

    def backward(self, g):
        (out,) = self.saved
        return (g - np.exp(out) * np.sum(g, axis=self.attrs["axis"], keepdims=True),)


class BinaryCrossEntropyWithLogits(Function):
    """The binary cross-entropy of σ(x) against y, elementwise: −y·log σ(x) − (1 − y)·log(1 − σ(x)).

    Computed as max(x, 0) − x·y + log(1 + e^−|x|), the same number written so that nothing overflows: e^−|x| ≤ 1
    for any x, where log σ(x) would take the log of an underflowed 0 for x ≪ 0. x and y have one shape.
    """

    name = "binary_cross_entropy_with_logits"
    flops_per_element = (6, 4)

    def forward(self, x, y):
        if x.shape != y.shape:
            raise ShapeError(f"binary_cross_entropy_with_logits: input {x.shape} and target {y.shape} must have "
                             "the same shape")
        self.save(x, y)
        return np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))

    # NOTE: ∂/∂x of log(1 + e^x) − x·y (the same function) is σ(x) − y: the tutorial's A2 − Y, one unit at a time.
    rules = ("∂L/∂{a} += ∂L/∂{out} ⊙ (σ({a}) − {b})", "∂L/∂{b} += −∂L/∂{out} ⊙ {a}")

    def backward(self, g):
        x, y = self.saved
        sigma = _sigmoid(x)
        return (g * (sigma - y) if self.needs_grad[0] else None), (-g * x if self.needs_grad[1] else None)


# --- convolution and pooling (NCHW, as PyTorch) ---------------------------------------------------------
#
# _windows(x) is a view N×C×Ho×Wo×kh×kw of every kh×kw patch of x, `stride` apart, with no copy. A convolution
# copies the patches once, into the im2col matrix (one row per output position), so that it is one matrix
# product; its backward is that product transposed, and col2im adds each row of ∂L/∂im2col back onto the pixels
# its patch came from (a pixel in k patches gets k terms). Pooling takes the same windows one element (p, q) at a
# time, as kh·kw strided views (Pool2d).
#
# Why ∂L/∂w is a correlation and ∂L/∂x a full convolution with the flipped kernel (stride 1, no padding):
#     out[n,o,i,j]   = Σ_c,p,q x[n,c,i+p,j+q] · w[o,c,p,q]
#     ∂L/∂w[o,c,p,q] = Σ_n,i,j x[n,c,i+p,j+q] · ∂L/∂out[n,o,i,j]      ∂L/∂out slid over x: a correlation
#     ∂L/∂x[n,c,u,v] = Σ_o,p,q ∂L/∂out[n,o,u−p,v−q] · w[o,c,p,q]       (∂L/∂out taken as 0 outside its range)
#                    = Σ_o,p,q ∂L/∂out₀[n,o,u+p,v+q] · w[o,c,kh−1−p,kw−1−q]   (p → kh−1−p, q → kw−1−q)
# where ∂L/∂out₀ is ∂L/∂out zero-padded by kh−1 and kw−1 on each side: a correlation of the padded ∂L/∂out with
# the kernel flipped in both axes (and in/out channels swapped), i.e. a "full" convolution. col2im computes the
# same sums, and does so with a stride (patches `stride` apart) and padding (cropped off at the end) as well.


def _windows(x, kh: int, kw: int, sh: int, sw: int):
    """The kh×kw patches of x (N×C×H×W), (sh, sw) apart, as a view N×C×Ho×Wo×kh×kw."""
    return np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


def _col2im(patches, shape, sh: int, sw: int):
    """The adjoint of _windows: patches N×C×Ho×Wo×kh×kw added back onto an array of `shape` (N×C×H×W)."""
    _, _, Ho, Wo, kh, kw = patches.shape
    out = np.zeros(shape, dtype=patches.dtype)
    for p in range(kh):
        for q in range(kw):
            out[:, :, p:p + sh * (Ho - 1) + 1:sh, q:q + sw * (Wo - 1) + 1:sw] += patches[..., p, q]
    return out


def _out_sizes(op: str, x_shape, size: tuple, kernel: tuple, stride: tuple, padded: bool) -> tuple[int, int]:
    """(Ho, Wo) = ((H − kh)//sh + 1, (W − kw)//sw + 1) for a (padded) input of spatial size (H, W)."""
    if size[0] < kernel[0] or size[1] < kernel[1]:
        what = "padded input" if padded else "input"
        raise ShapeError(f"{op}: the kernel {kernel[0]}×{kernel[1]} is larger than the {what} {size[0]}×{size[1]} "
                         f"(input {x_shape})")
    return (size[0] - kernel[0]) // stride[0] + 1, (size[1] - kernel[1]) // stride[1] + 1


def _check_nchw(op: str, x) -> None:
    if x.ndim != 4:
        raise ShapeError(f"{op}: the input must be N×C×H×W (4 axes), got shape {x.shape}")


class Conv2d(Function):
    """out[n,o] = Σ_c x[n,c] ⋆ w[o,c] (⋆: correlation, as in PyTorch), x N×C×H×W, w O×C×kh×kw, by im2col.

    stride (sh, sw) and padding (ph, pw), zeros on both sides: out is N×O×Ho×Wo, Ho = (H + 2ph − kh)//sh + 1.
    """

    name = "conv2d"

    @classmethod
    def flops(cls, shapes, out_shape):
        """2·N·O·Ho·Wo·C·kh·kw: each output element is a C×kh×kw patch of multiply-adds."""
        _, C, kh, kw = shapes[1]
        return 2 * math.prod(out_shape) * C * kh * kw

    @classmethod
    def backward_flops(cls, shapes, out_shape, needs_grad):
        """One product of the forward's size for each input that needs a gradient (col2im's adds not counted)."""
        return sum(needs_grad) * cls.flops(shapes, out_shape)

    def forward(self, x, w, *, stride=(1, 1), padding=(0, 0)):
        _check_nchw("conv2d", x)
        if w.ndim != 4 or x.shape[1] != w.shape[1]:
            raise ShapeError(f"conv2d: weight {w.shape} must be out×in×kh×kw with in = the {x.shape[1]} channels "
                             f"of input {x.shape}")
        (sh, sw), (ph, pw) = stride, padding
        N, C, H, W = x.shape
        O, _, kh, kw = w.shape
        Ho, Wo = _out_sizes("conv2d", x.shape, (H + 2 * ph, W + 2 * pw), (kh, kw), stride, padded=True)
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
        # im2col: row (n, i, j) holds the patch under output position (i, j) of image n, as (c, p, q)
        cols = _windows(xp, kh, kw, sh, sw).transpose(0, 2, 3, 1, 4, 5).reshape(N * Ho * Wo, C * kh * kw)
        W_mat = w.reshape(O, C * kh * kw)
        self.attrs.update(stride=stride, padding=padding, shape=x.shape, padded_shape=xp.shape, kernel=(kh, kw))
        self.save(cols, W_mat)
        # NOTE: the product comes out N·Ho·Wo × O; out is its N×O×Ho×Wo view (no copy), as the backward wants g
        return (cols @ W_mat.T).reshape(N, Ho, Wo, O).transpose(0, 3, 1, 2)

    def composite(self, x, w):
        """The convolution with Tensor ops: zero padding (a scatter into zeros), then for each kernel position
        (p, q) the strided view of x it meets times w[:, :, p, q], summed over the kh·kw positions."""
        at = self.attrs
        (sh, sw), (ph, pw), (kh, kw) = at["stride"], at["padding"], at["kernel"]
        N, C, H, W = at["shape"]
        if ph or pw:
            inner = (slice(None), slice(None), slice(ph, ph + H), slice(pw, pw + W))
            x = IndexAdd.apply(x, shape=at["padded_shape"], first=inner, then=None)
        Hp, Wp = at["padded_shape"][2:]
        Ho, Wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
        out = None
        for p in range(kh):
            for q in range(kw):
                view = x[:, :, p:p + sh * (Ho - 1) + 1:sh, q:q + sw * (Wo - 1) + 1:sw]   # N×C×Ho×Wo
                term = view.permute(0, 2, 3, 1) @ w[:, :, p, q].T                          # N×Ho×Wo×O
                out = term if out is None else out + term
        return out.permute(0, 3, 1, 2)

    rules = ("∂L/∂{a} += full convolution of ∂L/∂{out} with {b} flipped: col2im(∂L/∂{out}·W)",
             "∂L/∂{b} += correlation of {a} with ∂L/∂{out}: (∂L/∂{out})ᵀ·im2col({a})")

    def backward(self, g):
        cols, W_mat = self.saved
        at = self.attrs
        N, O, Ho, Wo = g.shape
        C, H, W = at["shape"][1:]
        (sh, sw), (ph, pw), (kh, kw) = at["stride"], at["padding"], at["kernel"]
        G = g.transpose(0, 2, 3, 1).reshape(N * Ho * Wo, O)    # ∂L/∂out in the product's rows
        gx = gw = None
        if self.needs_grad[0]:
            # NOTE: as (G·W)ᵀ = Wᵀ·Gᵀ, so that each of col2im's kh·kw slices is one contiguous C×N×Ho×Wo block
            patches = (W_mat.T @ G.T).reshape(C, kh, kw, N, Ho, Wo).transpose(3, 0, 4, 5, 1, 2)
            gx = _col2im(patches, at["padded_shape"], sh, sw)[:, :, ph:ph + H, pw:pw + W]
        if self.needs_grad[1]:
            gw = (G.T @ cols).reshape(O, C, kh, kw)
        return gx, gw


class Pool2d(Function):
    """Pooling over kh×kw windows, (sh, sw) apart. Window element (p, q) of every window at once is the strided view
    x[:, :, p::sh, q::sw] (cut to Ho×Wo): the forward combines these kh·kw views elementwise (max or sum), and
    the backward adds each view's share of ∂L/∂out back through the same slices, so overlapping windows add up.
    Rows and columns past the last whole window are dropped, as in PyTorch.

    NOTE: for 2×2 windows this is 6× faster here than viewing the windows by a reshape, N×C×Ho×kh×Wo×kw, and
    reducing over axes 3 and 5: the reshape copies the convolution's channels-last output, the views copy nothing.
    """

    def forward(self, x, *, kernel_size=(2, 2), stride=(2, 2)):
        _check_nchw(self.name, x)
        (kh, kw), (sh, sw) = kernel_size, stride
        Ho, Wo = _out_sizes(self.name, x.shape, x.shape[2:], kernel_size, stride, padded=False)
        slices = [(slice(p, p + sh * (Ho - 1) + 1, sh), slice(q, q + sw * (Wo - 1) + 1, sw))
                  for p in range(kh) for q in range(kw)]
        out = x[:, :, slices[0][0], slices[0][1]].copy()
        for rows, cols in slices[1:]:
            self.combine(out, x[:, :, rows, cols])
        self.attrs.update(kernel_size=kernel_size, stride=stride, slices=slices)
        self.save(x, out)
        return self.finish(out, kh * kw)

    def composite(self, x):
        """The pooling with Tensor ops: the kh·kw strided views stacked, then their max (ties shared) or mean."""
        from tinygrad_edu.tensor import stack  # NOTE: tensor imports this module, so not at the top

        views = stack([x[:, :, rows, cols] for rows, cols in self.attrs["slices"]])
        return views.max(0) if self.name == "max_pool2d" else views.mean(0)

    def backward(self, g):
        x, out = self.saved
        slices = self.attrs["slices"]
        gx = np.zeros(x.shape, dtype=g.dtype)
        for (rows, cols), share in zip(slices, self.shares(x, out, g, slices)):
            gx[:, :, rows, cols] += share
        return (gx,)


class MaxPool2d(Pool2d):
    name = "max_pool2d"
    flops_per_element = (1, 2)

    @staticmethod
    def combine(out, view):
        np.maximum(out, view, out=out)

    @staticmethod
    def finish(out, n):
        return out

    # NOTE: as max: tied maxima of a window share its gradient equally (PyTorch gives it all to the first).
    rules = ("∂L/∂{a} += ∂L/∂{out} at each window's maximum (shared by ties), 0 elsewhere",)

    @staticmethod
    def shares(x, out, g, slices):
        nan = out.dtype.kind == "f" and bool(np.isnan(out).any())
        masks = [_is_maximum(x[:, :, rows, cols], out, nan) for rows, cols in slices]
        ties = np.sum(masks, axis=0, dtype=g.dtype)
        g = g / ties
        return (mask * g for mask in masks)


class AvgPool2d(Pool2d):
    name = "avg_pool2d"
    flops_per_element = (1, 1)

    @staticmethod
    def combine(out, view):
        out += view

    @staticmethod
    def finish(out, n):
        out /= n
        return out

    rules = ("∂L/∂{a} += ∂L/∂{out} / (kh·kw), copied over each window",)

    @staticmethod
    def shares(x, out, g, slices):
        share = g / len(slices)
        return (share for _ in slices)
