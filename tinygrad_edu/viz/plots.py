"""Pictures of learning as PNG files: loss and accuracy curves, W1's rows as images, mistakes, confusion matrix.

matplotlib is imported inside the functions that draw, so `import tinygrad_edu.viz` works without it; drawing
without it raises ModuleNotFoundError saying `pip install "tinygrad_edu[plot]"`. Figures are made with
matplotlib's object API (Figure, no pyplot), so no backend or global state of the caller is touched.
Every picture has a fixed size in pixels (its FIGSIZE × DPI), written whole or not at all. Given no path, a
plot function returns the Figure instead of writing it: a notebook shows it inline (`%matplotlib inline`).
"""
from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path

import numpy as np

from tinygrad_edu.files import write_atomic

DPI = 100
CURVES_SIZE = (10.0, 4.0)       # inches: 1000×400 pixels
CONFUSION_SIZE = (6.5, 6.0)     # 650×600
WEIGHT_CELL = (1.5, 1.75)       # one 28×28 image with its title
DIGIT_CELL = (1.25, 1.5)
TITLE_HEIGHT = 0.5

# The file names plot_run writes in its folder.
FILES = {"curves": "curves.png", "weights": "weights.png", "misclassified": "misclassified.png",
         "confusion": "confusion.png"}


def figure(size):
    """A matplotlib Figure of size (width, height) inches at the pictures' DPI, without pyplot (no GUI backend)."""
    try:
        from matplotlib.figure import Figure
    except ModuleNotFoundError:
        raise ModuleNotFoundError('plots need matplotlib, which is not installed: pip install "tinygrad_edu[plot]"') \
            from None
    return Figure(figsize=size, dpi=DPI)


def save_png(fig, path):
    """Writes fig as a PNG to path and returns the path; with path None, returns the Figure itself."""
    if path is None:
        return fig
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return write_atomic(path, buf.getvalue())


def _grid(n: int, ncols: int, cell) -> tuple[int, int, tuple[float, float]]:
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    return nrows, ncols, (cell[0] * ncols, cell[1] * nrows + TITLE_HEIGHT)


def image_side(n_pixels: int) -> int:
    """28 for 784: the side of the square image a row of weights or pixels is; ValueError if not square."""
    side = math.isqrt(n_pixels)
    if side * side != n_pixels or side < 2:
        raise ValueError(f"{n_pixels} values do not make a square image (MNIST rows have 784 = 28×28)")
    return side


# --- curves -------------------------------------------------------------------------------------------------


def plot_curves(history: list[dict], path=None, *, test_accuracy: float | None = None,
                validation_accuracy: float | None = None, title: str | None = None):
    """Loss (left) and train/test (or validation) accuracy (right) against the step, from a metrics.json history.

    history: a list of {"step", "loss", "train_accuracy"?, "test_accuracy"? or "validation_accuracy"?};
    test_accuracy or validation_accuracy, if given, is the final one, drawn as a dashed line.
    """
    if not isinstance(history, list) or not history:
        raise ValueError("plot_curves: the history is empty; it needs a list of {step, loss, ...} entries")
    for i, h in enumerate(history):
        if not isinstance(h, dict) or "step" not in h or "loss" not in h:
            raise ValueError(f"plot_curves: history entry {i} must be a dict with 'step' and 'loss', got {h!r}")
    steps = [h["step"] for h in history]
    fig = figure(CURVES_SIZE)
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(steps, [h["loss"] for h in history], color="tab:red", lw=1.5)
    ax_loss.set(xlabel="step", ylabel="loss", title="training loss")
    ax_loss.grid(alpha=0.3)
    for key, label, color in (("train_accuracy", "train", "tab:blue"), ("test_accuracy", "test", "tab:green"),
                              ("validation_accuracy", "validation", "tab:purple")):
        points = [(h["step"], h[key]) for h in history if h.get(key) is not None]
        if points:
            xs, ys = zip(*points)
            ax_acc.plot(xs, ys, color=color, lw=1.5, marker="o" if len(points) < 30 else None, ms=3, label=label)
    finals = ((test_accuracy, "test", "tab:green"), (validation_accuracy, "validation", "tab:purple"))
    for final, label, color in finals:
        if final is not None:
            ax_acc.axhline(final, color=color, ls="--", lw=1, label=f"final {label} {final:.4f}")
    ax_acc.set(xlabel="step", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    ax_acc.grid(alpha=0.3)
    if ax_acc.get_legend_handles_labels()[0]:
        ax_acc.legend(loc="lower right")
    else:
        ax_acc.text(0.5, 0.5, "no accuracy recorded", ha="center", va="center", transform=ax_acc.transAxes)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_png(fig, path)


# --- weights ------------------------------------------------------------------------------------------------


def plot_weights(W, path=None, *, name: str = "W1", max_units: int = 50):
    """W's rows as square images (W1 is hidden×784: row j holds unit j's weight on each pixel), red + / blue −.

    Each image has its own symmetric colour scale, so a unit's pattern shows whatever its size. At most
    max_units rows are drawn (5 per line up to 10 units, else 10 per line).
    """
    W = np.asarray(W)
    if W.ndim != 2:
        raise ValueError(f"plot_weights: {name} must be a 2-D array (units × pixels), got shape {W.shape}")
    side = image_side(W.shape[1])
    n = min(len(W), max_units)
    nrows, ncols, size = _grid(n, 5 if n <= 10 else 10, WEIGHT_CELL)
    fig = figure(size)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for j, ax in enumerate(axes):
        ax.set_axis_off()
        if j < n:
            lim = float(np.abs(W[j]).max()) or 1.0
            ax.imshow(W[j].reshape(side, side), cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_title(f"unit {j}", fontsize=9)
    shown = f" (first {n} of {len(W)})" if n < len(W) else ""
    fig.suptitle(f"{name}'s rows as {side}×{side} images{shown}: red +, blue −", fontsize=11)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - TITLE_HEIGHT / size[1], wspace=0.1, hspace=0.3)
    return save_png(fig, path)


# --- predictions --------------------------------------------------------------------------------------------


def _labels_and_predictions(labels, predictions) -> tuple[np.ndarray, np.ndarray]:
    labels, predictions = np.asarray(labels).ravel(), np.asarray(predictions).ravel()
    if labels.shape != predictions.shape:
        raise ValueError(f"{labels.size} labels but {predictions.size} predictions")
    for what, a in (("labels", labels), ("predictions", predictions)):
        if a.dtype.kind not in "iu":
            raise TypeError(f"{what} must be integer classes, got {a.dtype}")
    return labels, predictions


def plot_misclassified(images, labels, predictions, path=None, *, max_count: int = 24, ncols: int = 8):
    """A grid of the first max_count images whose prediction is wrong, each titled `true 3 · pred 5`.

    images: N×28×28 or N×784 (uint8 pixels or floats); labels, predictions: N integer classes.
    """
    images = np.asarray(images)
    labels, predictions = _labels_and_predictions(labels, predictions)
    if len(images) != len(labels):
        raise ValueError(f"plot_misclassified: {len(images)} images but {len(labels)} labels")
    flat = images.reshape(len(images), -1)
    side = image_side(flat.shape[1])
    wrong = np.flatnonzero(labels != predictions)
    shown = wrong[:max_count]
    nrows, ncols, size = _grid(max(len(shown), 1), ncols, DIGIT_CELL)
    fig = figure(size)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, i in zip(axes, list(shown) + [None] * len(axes)):
        ax.set_axis_off()
        if i is not None:
            ax.imshow(flat[i].reshape(side, side), cmap="gray_r")
            ax.set_title(f"true {labels[i]} · pred {predictions[i]}", fontsize=9, color="tab:red")
    if not len(wrong):
        axes[0].text(0.5, 0.5, "no misclassified images", ha="center", va="center", transform=axes[0].transAxes)
    fig.suptitle(f"misclassified: {len(wrong)} of {len(labels)} (first {len(shown)} shown)", fontsize=11)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - TITLE_HEIGHT / size[1], wspace=0.1, hspace=0.35)
    return save_png(fig, path)


def confusion_matrix(labels, predictions, num_classes: int = 10) -> np.ndarray:
    """counts[t, p] = how many examples of true class t were predicted as p."""
    labels, predictions = _labels_and_predictions(labels, predictions)
    for what, a in (("labels", labels), ("predictions", predictions)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{what} must lie in 0..{num_classes - 1}, got values from {a.min()} to {a.max()}")
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


def plot_confusion(labels, predictions, path=None, *, num_classes: int = 10):
    """The confusion matrix: rows true class, columns predicted, each cell's count written in it.

    Colour is the fraction of the row (so the mistakes of a rare class show as well as a common one's).
    """
    counts = confusion_matrix(labels, predictions, num_classes)
    fraction = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig = figure(CONFUSION_SIZE)
    ax = fig.subplots()
    ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
    for t in range(num_classes):
        for p in range(num_classes):
            ax.text(p, t, str(counts[t, p]), ha="center", va="center", fontsize=8,
                    color="white" if fraction[t, p] > 0.5 else "black")
    ax.set(xticks=range(num_classes), yticks=range(num_classes), xlabel="predicted", ylabel="true")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"confusion matrix: accuracy {accuracy:.4f} on {counts.sum()} examples")
    fig.tight_layout()
    return save_png(fig, path)


# --- a whole run ----------------------------------------------------------------------------------------------


def load_metrics(path) -> dict:
    """A metrics.json written by `train`: a dict with at least a non-empty `history` list."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a metrics file (the JSON written by train --metrics-out)")
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such metrics file") from None
    if text.startswith(b"PK\x03\x04"):   # a zip: the .npz of train --save
        raise ValueError(f"{path} is a weights file (train --save), not a metrics file: plot reads the JSON written "
                         f"by train --metrics-out, and takes the weights as --weights {path}")
    try:
        metrics = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(metrics, dict) or not isinstance(metrics.get("history"), list):
        raise ValueError(f"{path}: not a metrics file from `train` (it needs a 'history' list)")
    return metrics


def first_layer_weights(arrays: dict[str, np.ndarray]) -> tuple[str, np.ndarray]:
    """(name, array) of the weights whose rows are images: the tutorial's W1, else the first 2-D array whose
    rows are square images (e.g. an MLP's `layers.0.weight`, out×784), or a first convolution's kernels on one
    input channel (a CNN's `features.0.weight`, out×1×k×k, as out rows of k·k pixels)."""
    if "W1" in arrays:
        return "W1", arrays["W1"]
    for name, a in arrays.items():
        if name.startswith("optim/"):
            continue
        if a.ndim == 4 and a.shape[1] == 1 and a.shape[2] == a.shape[3] > 1:
            return name, a.reshape(len(a), -1)
        if a.ndim == 2 and math.isqrt(a.shape[1]) ** 2 == a.shape[1] > 1:
            return name, a
    raise ValueError(f"no first-layer weights with image-shaped rows among {', '.join(arrays) or 'no arrays'}")


def predict(model, images) -> np.ndarray:
    """The classes a model gives images (N×28×28 uint8 pixels): a model of the training loop's protocol (e.g.
    train's result.model, or training.load_model(path)[0]), with as_input and probabilities."""
    return np.argmax(model.probabilities(model.as_input(images)), axis=1)


def plot_run(metrics, weights_path=None, out_dir=".", *, model=None, test_data=None, load_model=None,
             evaluated_set=None) -> list[Path]:
    """All the pictures of a training run, written into out_dir; returns the paths written.

    metrics: the dict `train` writes to metrics.json, or that file's path. The model: `model` (one of the
    training loop's, e.g. still in memory), else the one saved at weights_path (default: the file metrics
    names under "weights", if any), rebuilt by load_model(path) -> (model, architecture) (training.load_model,
    which the commands pass in). Writes curves.png always; with a model, weights.png, and, given
    test_data=(X_test uint8 N×28×28, y_test) or evaluated_set(metrics) finding the run's images on disk
    (training.evaluated_set), misclassified.png and confusion.png. What it must skip, it says on stderr.
    """
    if not isinstance(metrics, dict):
        metrics_path = Path(metrics)
        metrics = load_metrics(metrics_path)
        if weights_path is None and metrics.get("weights"):
            weights_path = Path(metrics["weights"])
            if not weights_path.is_absolute() and not weights_path.exists():
                weights_path = metrics_path.parent / weights_path   # a path relative to the metrics file
    elif weights_path is None and metrics.get("weights"):
        weights_path = metrics["weights"]
    out_dir = Path(out_dir)
    if model is None and weights_path is not None:   # read before anything is drawn: a bad file leaves no picture
        if load_model is None:
            raise ValueError(f"plot_run: to draw from the weights file {weights_path}, pass load_model, the "
                             "function that rebuilds a model from a weights file")
        model, _ = load_model(weights_path)
    written = [plot_curves(metrics["history"], out_dir / FILES["curves"], test_accuracy=metrics.get("test_accuracy"),
                           validation_accuracy=metrics.get("validation_accuracy"))]
    if model is None:
        print("plot: no model, and no weights file given or named in the metrics: only the curves are drawn",
              file=sys.stderr)
        return written
    name, W = first_layer_weights(model.state_dict())
    written.append(plot_weights(W, out_dir / FILES["weights"], name=name))
    if test_data is None:
        from tinygrad_edu.datasets import DatasetError
        try:
            if evaluated_set is None:
                raise DatasetError("no evaluated_set given to find them")
            test_data = evaluated_set(metrics)
        except DatasetError as e:
            images = "held-out training images" if (metrics.get("config") or {}).get("validation") else "test set"
            print(f"plot: no {images} on disk, so no misclassified digits or confusion matrix ({e})", file=sys.stderr)
            return written
    X_test, y_test = test_data
    predictions = predict(model, X_test)
    written.append(plot_misclassified(X_test, y_test, predictions, out_dir / FILES["misclassified"]))
    written.append(plot_confusion(y_test, predictions, out_dir / FILES["confusion"]))
    return written
