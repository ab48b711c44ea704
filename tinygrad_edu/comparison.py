"""The tutorial's gradients by hand and by autograd on one batch, side by side (what `compare` prints).

Also the measure used to compare them, the batch they are computed on (real MNIST or synthetic digits), and
the tutorial's code as it was published, to show how far each published bug is from the true gradient.
`compare(images, labels)` gives the whole report: printed as the command prints it, shown as HTML tables
in a notebook.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

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

# The largest normwise relative error that counts as agreement, by dtype.
TOLERANCE = {"float64": 1e-10, "float32": 1e-5}

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


# --- the report ------------------------------------------------------------------------------------------


class Row(NamedTuple):
    """One quantity, by hand and by autograd."""
    quantity: str
    formula: str        # the tutorial's formula (manual.py)
    autograd: str       # the autograd value it equals (tutorial.py)
    shape: tuple
    max_abs: float      # max|hand − autograd|
    rel_error: float    # normwise_relative_error(hand, autograd)


class PublishedRow(NamedTuple):
    """One bug of the published code: how far its value is from the true gradient, or the error it raises."""
    quantity: str
    code: str
    shape: tuple | None
    max_abs: float | None
    rel_error: float | None
    error: Exception | None


@dataclasses.dataclass(repr=False)
class Comparison:
    """The result of compare(): the rows, and the published code's rows when asked for. str() is the text the
    `compare` command prints; in a notebook it shows as HTML tables."""
    rows: list[Row]
    tolerance: float
    dtype: str
    columns: int
    source: str
    seed: int
    note: str | None = None
    published: list[PublishedRow] | None = None
    published_columns: int = 0

    @property
    def failed(self) -> list[str]:
        """The quantities above the tolerance (NaN counts as above)."""
        return [r.quantity for r in self.rows if not r.rel_error <= self.tolerance]

    def report(self):
        """The comparison as a viz Report: paragraphs and tables."""
        from tinygrad_edu.viz.display import Report, Table, sci

        tol = self.tolerance
        title = (f"The tutorial's gradients by hand and by autograd: {self.dtype}, {self.columns} columns of the "
                 f"{self.source}, seed {self.seed}")
        table = Table(["quantity", "hand formula (manual.py)", "autograd (tutorial.py)", "shape",
                       "max|hand − autograd|", "normwise rel. error", "check"],
                      [[r.quantity, r.formula, r.autograd, r.shape, sci(r.max_abs), sci(r.rel_error),
                        "ok" if r.rel_error <= tol else "FAIL"] for r in self.rows])
        failed = self.failed
        verdict = (f"FAIL: {', '.join(failed)} above {tol:g}: the hand derivation and autograd disagree." if failed
                   else f"All {len(self.rows)} rows within {tol:g}: the hand derivation and autograd agree.")
        blocks = [title if self.note is None else f"{self.note}\n{title}", table,
                  f"normwise rel. error = max|hand − autograd| / max|autograd|\n{verdict}"]
        if self.published is not None:
            rows, raised = [], []
            for r in self.published:
                if r.error is not None:
                    rows.append([r.quantity, r.code, "-", "-", f"{type(r.error).__name__}, below"])
                    raised.append(f"{r.quantity}, {r.code} ({self.published_columns} columns), raises:\n"
                                  f"    {type(r.error).__name__}: {str(r.error).strip()}")
                else:
                    rows.append([r.quantity, r.code, r.shape, sci(r.max_abs), sci(r.rel_error)])
            blocks += ["The tutorial's code as published, against the true gradient (reported, not failures):",
                       (Table(["quantity", "published code", "shape", "max|published − true|",
                               "normwise rel. error"], rows), *raised),
                       f"Comparing with autograd is the instrument that catches such bugs: every published row "
                       f"is far above {tol:g}."]
        return Report(blocks)

    def __str__(self) -> str:
        return str(self.report())

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.report()._repr_html_()


def compare(images, labels, batch_size: int = 1000, seed=0, dtype="float64", as_published: bool = False,
            source: str = "MNIST training set", note: str | None = None) -> Comparison:
    """The tutorial's gradients by hand and by autograd on a batch of batch_size images drawn by seed (from
    the same init_params(seed)), one Row per quantity; with as_published, the published code's rows too
    (on that batch, and for one_hot on a batch without a 9). The tolerance is TOLERANCE[dtype].
    """
    dtype = np.dtype(dtype).name
    if dtype not in TOLERANCE:
        raise ValueError(f"compare: dtype must be one of {', '.join(TOLERANCE)}, got {dtype}")
    X, Y = draw_batch(images, labels, batch_size, seed, dtype)
    hand, auto = hand_and_autograd(X, Y, seed)
    rows = []
    for name, (formula, autograd_name) in QUANTITIES.items():
        a, b = getattr(hand, name), getattr(auto, name)
        rows.append(Row(name, formula, autograd_name, a.shape, float(np.max(np.abs(a - b))),
                        normwise_relative_error(a, b)))
    result = Comparison(rows, TOLERANCE[dtype], dtype, X.shape[1], source, seed, note)
    if as_published:
        X_no9, Y_no9 = draw_batch(images, labels, batch_size, seed, dtype, without=9)
        result.published_columns = X_no9.shape[1]
        result.published = [
            PublishedRow(name, code, None, None, None, value) if isinstance(value, Exception) else
            PublishedRow(name, code, np.shape(value), float(np.max(np.abs(value - true))),
                         normwise_relative_error(value, true), None)
            for name, code, value, true in published_rows(X, Y, X_no9, Y_no9, seed)]
    return result
