"""The tutorial's gradients by hand and by autograd on one batch, side by side (what `compare` prints).

Also the measure used to compare them, the batch they are computed on (real MNIST or synthetic digits), and
the tutorial's code as it was published, to show how far each published bug is from the true gradient.
"""
from __future__ import annotations

import numpy as np

from tinygrad_edu import manual, tutorial
from tinygrad_edu.datasets import DatasetNotFoundError, load_mnist, to_float

# quantity: (the tutorial's formula, the autograd value it equals)
QUANTITIES = {
    "dZ2": ("A2 − Y", "m·Z2.grad"),
    "dW2": ("(1/m)·dZ2·A1ᵀ", "W2.grad"),
    "db2": ("(1/m)·Σ dZ2  (per unit)", "b2.grad"),
    "dZ1": ("W2ᵀ·dZ2 ⊙ ReLU′(Z1)", "m·Z1.grad"),
    "dW1": ("(1/m)·dZ1·Xᵀ", "W1.grad"),
    "db1": ("(1/m)·Σ dZ1  (per unit)", "b1.grad"),
}

# The published code took m from the whole of Kaggle's train.csv, then trained on what the dev split left.
M_PUBLISHED, M_TRAINED_PUBLISHED = 42_000, 41_000


def normwise_relative_error(a, b) -> float:
    """max|a − b| / max|b|: how far a is from the reference b, relative to b's largest entry (0 if both are 0).

    Elementwise relative error would be meaningless for gradients with exact zeros, such as dW1's columns
    for the pixels that are 0 in every image. a may be a scalar that broadcasts against b (the published
    code's one-number db).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = float(np.max(np.abs(a - b), initial=0.0))
    scale = float(np.max(np.abs(b), initial=0.0))
    if scale == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return diff / scale


# --- the batch -------------------------------------------------------------------------------------------


def synthetic_digits(n: int, seed=0):
    """n random 28×28 uint8 "digits" and their labels 0..9: the stand-in when MNIST is not on disk.

    As in MNIST, a 4-pixel margin stays 0 (so some dW1 columns are exactly 0); inside it a pixel is 0 or
    random in 1..255.
    """
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    inked = rng.random((n, 20, 20)) < 0.2
    images[:, 4:24, 4:24] = inked * rng.integers(1, 256, size=(n, 20, 20))
    return images, rng.integers(0, 10, size=n).astype(np.uint8)


def load_digits(n_synthetic: int = 2000, seed=0):
    """(images, labels, source, note): MNIST's training set if load_mnist finds it on disk (it never
    downloads here), else n_synthetic synthetic digits and a note saying so."""
    try:
        (images, labels), _ = load_mnist(download=False, progress=False)
        return images, labels, "MNIST training set", None
    except DatasetNotFoundError:
        images, labels = synthetic_digits(n_synthetic, seed)
        note = ("note: MNIST not found (the bundled copy is hidden or missing; set TINYGRAD_EDU_DATA to a folder with "
                "its four IDX .gz files); "
                "using synthetic digits, random pixels and labels: the gradients compare the same way.")
        return images, labels, "synthetic digits", note


def draw_batch(images, labels, batch_size: int, seed=0, dtype=np.float64, without: int | None = None):
    """X (784×m, pixels/255) and Y (the m labels): the first batch_size images of a seeded shuffle,
    leaving out the label `without` if given (a batch that lacks a digit)."""
    order = np.random.default_rng(seed).permutation(len(labels))
    if without is not None:
        order = order[labels[order] != without]
    idx = order[:batch_size]
    return to_float(images[idx], dtype, layout="columns"), labels[idx]


# --- the comparison --------------------------------------------------------------------------------------


def hand_and_autograd(X, Y, seed=0) -> tuple[manual.Gradients, manual.Gradients]:
    """manual.backward_prop's gradients and autograd's (tutorial.backward_prop), from one init_params(seed)."""
    W1, b1, W2, b2 = manual.init_params(seed, X.dtype)
    Z1, A1, Z2, A2 = manual.forward_prop(W1, b1, W2, b2, X)
    hand = manual.backward_prop(Z1, A1, Z2, A2, W1, W2, X, Y)
    params = tutorial.init_params(seed, X.dtype)
    auto = tutorial.backward_prop(params, tutorial.forward_prop(params, X, Y))
    return hand, auto


def one_hot_as_published(Y):
    """The published one_hot: Y.max() + 1 rows, so a batch without the digit 9 gets only 9."""
    one_hot_Y = np.zeros((Y.size, Y.max() + 1))
    one_hot_Y[np.arange(Y.size), Y] = 1
    return one_hot_Y.T


def published_rows(X, Y, X_no9, Y_no9, seed=0):
    """The published code's gradients against the true ones, one bug at a time:
    [(quantity, published code, its value (or the exception it raises), the true value)].

    db summed with no axis; m taken from 42,000 rows while 41,000 columns are trained on (on this batch:
    m·42000/41000); one_hot sized by Y.max() + 1, on a batch (X_no9, Y_no9) that lacks the digit 9.
    """
    W1, b1, W2, b2 = manual.init_params(seed, X.dtype)
    Z1, A1, Z2, A2 = manual.forward_prop(W1, b1, W2, b2, X)
    true = manual.backward_prop(Z1, A1, Z2, A2, W1, W2, X, Y)
    m = X.shape[1]
    m_published = m * M_PUBLISHED / M_TRAINED_PUBLISHED
    m_code = f"m = {M_PUBLISHED}, trained on {M_TRAINED_PUBLISHED} columns"
    rows = [
        ("db2", "1/m * np.sum(dZ2): no axis, one number", np.sum(true.dZ2) / m, true.db2),
        ("db1", "1/m * np.sum(dZ1): no axis, one number", np.sum(true.dZ1) / m, true.db1),
        ("dW2", m_code, true.dZ2 @ A1.T / m_published, true.dW2),
        ("db2", m_code, np.sum(true.dZ2, axis=1, keepdims=True) / m_published, true.db2),
        ("dW1", m_code, true.dZ1 @ X.T / m_published, true.dW1),
        ("db1", m_code, np.sum(true.dZ1, axis=1, keepdims=True) / m_published, true.db1),
    ]
    _, _, _, A2 = manual.forward_prop(W1, b1, W2, b2, X_no9)
    try:
        dZ2 = A2 - one_hot_as_published(Y_no9)
    except ValueError as e:
        dZ2 = e
    rows.append(("dZ2", "one_hot sized Y.max() + 1, batch without a 9", dZ2,
                 A2 - manual.one_hot(Y_no9, 10, A2.dtype)))
    return rows
