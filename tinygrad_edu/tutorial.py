"""The tutorial's 784-10-10 network written with Tensor ops: manual.py's layout and names, gradients by backward().

A note on the factor m, for reading the gradients side by side with the tutorial. The loss here is the mean
cross-entropy over the m examples, so autograd's ∂L/∂Z2 = (A2 − Y)/m: the tutorial's dZ2 divided by m (the
tutorial's dZ's are gradients of the summed loss, and it divides by m only in dW and db). So
m·Z2.grad == dZ2 and m·Z1.grad == dZ1, while W1.grad, b1.grad, W2.grad, b2.grad equal dW1, db1, dW2, db2.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tinygrad_edu import manual
from tinygrad_edu.autograd import no_grad
from tinygrad_edu.tensor import Tensor


class Params(NamedTuple):
    """The four weights as leaf Tensors that require grad, in init_params's draw order."""
    W1: Tensor
    b1: Tensor
    W2: Tensor
    b2: Tensor


def init_params(seed=0, dtype=np.float32, hidden: int = 10) -> Params:
    """manual.init_params's weights (same seed, same draw order) as named leaves that require grad."""
    arrays = manual.init_params(seed, dtype, hidden=hidden)
    return Params(*(Tensor(a, requires_grad=True, name=n) for a, n in zip(arrays, Params._fields)))


class Forward(NamedTuple):
    """What forward_prop returns: Z1, A1, Z2 and the mean loss L, all part of the graph."""
    Z1: Tensor
    A1: Tensor
    Z2: Tensor
    loss: Tensor


def forward_prop(params: Params, X, Y) -> Forward:
    """Z1 = W1·X + b1, A1 = ReLU(Z1), Z2 = W2·A1 + b2, loss = mean cross-entropy of softmax(Z2) against Y.

    X is 784×m (a Tensor or an array; it never gets a gradient), Y the m integer labels. Z1 and Z2 retain
    their gradients, so after loss.backward() a learner can read ∂L/∂Z1 and ∂L/∂Z2 (= dZ1/m and dZ2/m).
    Under no_grad() (evaluation) nothing is recorded and there is nothing to retain.
    """
    W1, b1, W2, b2 = params
    # NOTE: arrays become tensors named as in the tutorial (for the graph and the trace); a caller's tensors keep
    # their own names
    X, Y = (v if isinstance(v, Tensor) else Tensor(v, name=name) for v, name in ((X, "X"), (Y, "Y")))
    Z1 = W1 @ X + b1
    A1 = Z1.relu()
    Z2 = W2 @ A1 + b2
    for Z in (Z1, Z2):
        if Z.requires_grad:
            Z.retain_grad()
    loss = Z2.softmax_cross_entropy(Y, dim=0)   # classes on axis 0: the tutorial's layout
    Z1.name, A1.name, Z2.name, loss.name = "Z1", "A1", "Z2", "L"
    return Forward(Z1, A1, Z2, loss)


def backward_prop(params: Params, fwd: Forward) -> manual.Gradients:
    """The tutorial's backward_prop done by autograd: fwd.loss.backward(), then the gradients in its terms.

        dW1, db1, dW2, db2 = W1.grad, b1.grad, W2.grad, b2.grad      (the mean loss's gradients)
        dZ1, dZ2 = m·∂L/∂Z1, m·∂L/∂Z2                               (the tutorial's dZ's: the summed loss's)

    The parameters' .grad are cleared first, so the result is this batch's gradients alone.
    """
    for p in params:
        p.grad = None
    fwd.loss.backward()
    m = fwd.Z2.shape[1]
    W1, b1, W2, b2 = params
    return manual.Gradients(W1.grad, b1.grad, W2.grad, b2.grad, m * fwd.Z1.grad, m * fwd.Z2.grad)


def update_params(params: Params, alpha: float) -> None:
    """W := W − α·∂L/∂W for each parameter, in place, then the gradients are cleared for the next step.

    In place under no_grad(), as in PyTorch: each parameter's version goes up, so a graph built before the
    update (whose backward would use the old weights) refuses a second backward."""
    with no_grad():
        for p in params:
            p -= alpha * p.grad
            p.grad = None


def gradient_descent_step(params: Params, X, Y, alpha: float = 0.10) -> Forward:
    """One full step: forward, backward, update. Returns the forward pass (its loss, Z1, Z2 and their grads)."""
    fwd = forward_prop(params, X, Y)
    fwd.loss.backward()
    update_params(params, alpha)
    return fwd
