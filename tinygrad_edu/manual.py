"""The tutorial's 784-10-10 network with backprop derived by hand, in plain numpy: the reference autograd must equal.

Layout as in the tutorial: X is 784×m (one column per image, pixels/255), Y holds m integer labels, and every
formula below is the tutorial's, in its notation. This is also the baseline the benchmarks measure against, so
it is written as plainly and efficiently as the formulas allow, and nothing more.

Three things here are the correct version of the tutorial's published code (`compare --as-published` shows
the published versions): db sums per unit (axis=1, keepdims=True), one_hot is sized by the number of
classes (10), and m is the number of columns actually trained on.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tinygrad_edu.ops import check_labels  # the one check of labels, shared with the autograd loss


def init_params(seed=0, dtype=np.float32, hidden: int = 10, n_in: int = 784, n_out: int = 10):
    """W1 (hidden×784), b1 (hidden×1), W2 (10×hidden), b2 (10×1), each `rand − 0.5`, drawn in that order.

    The one init of the project: the autograd network and the `train` command take their weights from here,
    so a seed gives the same weights by hand and by autograd. Values are drawn in float64 and then cast, so
    float32 weights are the float64 ones rounded.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    W1 = rng.random((hidden, n_in)) - 0.5
    b1 = rng.random((hidden, 1)) - 0.5
    W2 = rng.random((n_out, hidden)) - 0.5
    b2 = rng.random((n_out, 1)) - 0.5
    return tuple(p.astype(dtype) for p in (W1, b1, W2, b2))


def ReLU(Z):
    """ReLU(Z) = max(Z, 0), elementwise."""
    return np.maximum(Z, 0)


def ReLU_deriv(Z):
    """ReLU′(Z) = [Z > 0] (so ReLU′(0) = 0)."""
    return Z > 0


def softmax(Z):
    """A = exp(Z) / Σ exp(Z) per column; the column max is subtracted first so exp cannot overflow."""
    E = np.exp(Z - Z.max(axis=0, keepdims=True))
    return E / E.sum(axis=0, keepdims=True)


def forward_prop(W1, b1, W2, b2, X):
    """Z1 = W1·X + b1,  A1 = ReLU(Z1),  Z2 = W2·A1 + b2,  A2 = softmax(Z2)."""
    Z1 = W1 @ X + b1
    A1 = ReLU(Z1)
    Z2 = W2 @ A1 + b2
    A2 = softmax(Z2)
    return Z1, A1, Z2, A2


def one_hot(Y, num_classes: int = 10, dtype=np.float32):
    """Y one-hot, num_classes×m: column j has a 1 in row Y[j]. Sized by the classes, not by Y.max() + 1."""
    Y = np.asarray(Y)
    check_labels(Y, num_classes, "one_hot")
    one_hot_Y = np.zeros((num_classes, Y.size), dtype=dtype)
    one_hot_Y[Y, np.arange(Y.size)] = 1
    return one_hot_Y


class Gradients(NamedTuple):
    """What backward_prop returns: the four parameter gradients, then dZ1 and dZ2 for inspection."""
    dW1: np.ndarray
    db1: np.ndarray
    dW2: np.ndarray
    db2: np.ndarray
    dZ1: np.ndarray
    dZ2: np.ndarray


def backward_prop(Z1, A1, Z2, A2, W1, W2, X, Y) -> Gradients:
    """The tutorial's hand-derived gradients (its dZ's are gradients of the loss summed over the m examples):

        dZ2 = A2 − Y                      dW2 = (1/m)·dZ2·A1ᵀ      db2 = (1/m)·Σ dZ2
        dZ1 = W2ᵀ·dZ2 ⊙ ReLU′(Z1)         dW1 = (1/m)·dZ1·Xᵀ       db1 = (1/m)·Σ dZ1

    Σ runs over the m examples, one sum per unit; m = X.shape[1], the columns actually trained on.
    """
    m = X.shape[1]
    dZ2 = A2 - one_hot(Y, A2.shape[0], A2.dtype)
    dW2 = dZ2 @ A1.T / m
    db2 = np.sum(dZ2, axis=1, keepdims=True) / m
    dZ1 = W2.T @ dZ2 * ReLU_deriv(Z1)
    dW1 = dZ1 @ X.T / m
    db1 = np.sum(dZ1, axis=1, keepdims=True) / m
    return Gradients(dW1, db1, dW2, db2, dZ1, dZ2)


def update_params(W1, b1, W2, b2, dW1, db1, dW2, db2, alpha):
    """W := W − α·dW,  b := b − α·db."""
    return W1 - alpha * dW1, b1 - alpha * db1, W2 - alpha * dW2, b2 - alpha * db2


def cross_entropy(A2, Y) -> float:
    """L = −(1/m) Σⱼ log A2[Yⱼ, j]: the mean loss whose gradients backward_prop computes (times m, for dZ).

    A probability that underflowed to 0 counts as the dtype's smallest normal number, so L stays finite.
    """
    check_labels(Y, A2.shape[0], "cross_entropy")
    picked = A2[np.asarray(Y), np.arange(A2.shape[1])]
    return float(-np.mean(np.log(np.maximum(picked, np.finfo(A2.dtype).tiny))))


def get_predictions(A2):
    """The predicted digit of each column: argmax over the 10 rows."""
    return np.argmax(A2, axis=0)


def get_accuracy(predictions, Y) -> float:
    """The fraction of columns predicted right."""
    return float(np.mean(predictions == Y))


def gradient_descent(X, Y, alpha: float = 0.10, iterations: int = 500, seed=0):
    """The tutorial's training loop: full-batch gradient descent from init_params(seed) in X's dtype."""
    W1, b1, W2, b2 = init_params(seed, X.dtype)
    for _ in range(iterations):
        Z1, A1, Z2, A2 = forward_prop(W1, b1, W2, b2, X)
        dW1, db1, dW2, db2, _, _ = backward_prop(Z1, A1, Z2, A2, W1, W2, X, Y)
        W1, b1, W2, b2 = update_params(W1, b1, W2, b2, dW1, db1, dW2, db2, alpha)
    return W1, b1, W2, b2
