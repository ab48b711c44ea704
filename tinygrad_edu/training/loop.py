"""The training loop behind `train`: steps, the history it logs, evaluation, Ctrl-C between steps; and its data."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import threading
import time
from pathlib import Path

import numpy as np

from tinygrad_edu import datasets, profiler
from tinygrad_edu.files import write_atomic
from tinygrad_edu.training.adapters import MODELS, as_input
from tinygrad_edu.training.config import ConfigError, TrainConfig, input_scaling
from tinygrad_edu.training.progress import Progress, divergence, divergence_advice


class TrainingDiverged(ArithmeticError):
    """The loss stopped being a finite number: the learning rate is too large for this model and data."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run between two steps: model holds the weights after `step` of `total` steps (whole steps:
    the interrupt waits for the step under way), history the log so far."""

    def __init__(self, model, step: int, total: int, history: list[dict]):
        super().__init__(f"interrupted after step {step} of {total}")
        self.model, self.step, self.total, self.history = model, step, total, history


# --- data ---------------------------------------------------------------------------------------------------

LOADERS = {"mnist": datasets.load_mnist, "fashion-mnist": datasets.load_fashion_mnist}


def load_data(dataset: str = "mnist", root=None, download: bool = True, progress: bool = True):
    """(X_train, y_train), (X_test, y_test) of the named data set, uint8 as the loader gives them."""
    if dataset not in LOADERS:
        raise ConfigError(f"unknown dataset {dataset!r}; choose one of {', '.join(LOADERS)}")
    return LOADERS[dataset](root, download=download, progress=progress)


def split_validation(data, n: int):
    """((X_train, y_train), (X_eval, y_eval)) with the last n training images held out as the evaluation set
    (views, no copy); n = 0 gives data back, evaluated on its test set."""
    (X_train, y_train), test = data
    if not n:
        return data
    if n >= len(y_train):
        raise ConfigError(f"--validation {n} leaves no images to train on: the training set has {len(y_train)}")
    split = len(y_train) - n
    return (X_train[:split], y_train[:split]), (X_train[split:], y_train[split:])


# --- the loop -----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class TrainResult:
    """A finished run. evaluated_on is "test", or "validation" when config.validation held images out: then
    test_accuracy is None (the test set was not looked at) and validation_accuracy is set, and the history's
    entries carry validation_accuracy in place of test_accuracy."""
    model: object
    train_accuracy: float
    test_accuracy: float | None
    final_loss: float
    iterations: int
    epochs: float
    seconds: float
    history: list[dict]
    evaluated_on: str = "test"
    validation_accuracy: float | None = None
    warning: str | None = None   # the divergence warning, if the run printed one
    profile: object = None       # the profiler.profile of train(profile=N)'s steps


def train(config: TrainConfig, data, progress: Progress | None = None, profile: int | None = None) -> TrainResult:
    """Trains config.model on data = ((X_train, y_train), (X_test, y_test)) (uint8 images, as load_mnist gives).

    default_rng(config.seed) draws the initial weights (so init "tutorial" gives manual.init_params(seed); the
    MLP's dropout masks come after them from the same stream) and default_rng([config.seed, 1]) each epoch's
    shuffle, so the batches do not depend on the init. Full batch (no batch_size): every step is one epoch over all
    the training images, in order. With batch_size: minibatches, reshuffled each epoch; the last batch of an epoch
    may be smaller. Each step is the model's train_step (its own update rule; create gets the total step count).

    The history gets an entry at step 1, every log_every steps, at the end of each epoch of minibatches and at the
    last step. Its loss and train_accuracy come from the steps' own forward passes (before their updates), so
    they cost nothing: in full batch, those of the entry's step, on the whole training set; with minibatches, the
    average over the batches since the previous entry. Entries that end an epoch (every entry in full batch) also
    carry test_accuracy of the weights after that step; every entry has the seconds since the start. At the end,
    train and test accuracy and final_loss (the mean cross-entropy on the whole training set) are those of the
    final weights.

    config.validation = N holds out the last N training images: the model trains on the others and is evaluated
    on those N wherever the test set would be (validation_accuracy in the history and the result); the test set
    is not used. config.normalize = "standard" scales the inputs by the mean and std of the pixels it trains on.

    At each history entry, divergence() looks for a run going wrong; the first time it sees one, progress.warn
    says what and what to try, once, and the run goes on (TrainResult.warning keeps the line). A loss that is not
    a finite number raises TrainingDiverged. In the main thread, a Ctrl-C lets the step under way finish and then
    raises TrainingInterrupted, which holds the model (a second Ctrl-C interrupts at once).

    profile = N profiles N steps with profiler.profile (steps 2 to N + 1: the first warms the caches up; all of
    them when the run is shorter), each step's own Python as the row "train_step"; the result's .profile holds it.
    Only the steps are profiled: the history's evaluations between them are not.
    """
    progress = progress or Progress(quiet=True)
    (X_train, y_train), (X_eval, y_eval) = split_validation(data, config.validation)
    inputs = input_scaling(config, X_train)
    full = config.batch_size is None
    per_epoch = 1 if full else math.ceil(len(y_train) / config.batch_size)
    total = config.iterations if config.iterations is not None else config.epochs * per_epoch
    model = MODELS[config.model].create(config, np.random.default_rng(config.seed), total, inputs)
    shuffle = np.random.default_rng([config.seed, 1])   # its own stream: the batches do not depend on the init
    # NOTE: minibatches are drawn from the rows (each image contiguous) and viewed in the model's layout.
    rows = datasets.to_float(X_train, model.dtype, mean=model.inputs[0], std=model.inputs[1])   # as as_input
    view = np.transpose if model.layout == "columns" else np.asarray
    log = _Log(config, progress, total, per_epoch, (as_input(X_eval, model), y_eval))
    profiled = Profiled(profile, total)

    # NOTE: a diverging run is reported by _diverged(), not by numpy's overflow warnings.
    with np.errstate(over="ignore", invalid="ignore"), contextlib.closing(progress), \
            interrupt_between_steps() as interrupted:
        for epoch in range(1, math.ceil(total / per_epoch) + 1):
            batches = [(rows, y_train)] if full else datasets.minibatches(rows, y_train, config.batch_size,
                                                                           seed=shuffle)
            for i, (Xb, yb) in enumerate(batches, 1):
                # NOTE: the step's outputs stay bound until the next step replaces them, as the loop before
                # this one did: freeing the 480 KB predictions at once lets the C allocator hand the step's
                # 2.4 MB temporaries back to the OS every step (7× the page faults, +15% on the default run)
                with profiled.step(log.step + 1):
                    loss, predictions = _step(model, view(Xb), yb, log, config)
                log.after_step(model, epoch, epoch_end=not full and i == per_epoch)
                if log.step == total:   # NOTE: a Ctrl-C during the last step comes too late to lose anything
                    break
                if interrupted():
                    raise TrainingInterrupted(model, log.step, total, log.history)
        final_loss, train_predictions, eval_accuracy = _evaluate(model, view(rows), y_train, log, config)
    log.history[-1][log.eval_key] = eval_accuracy
    on_test = log.evaluated_on == "test"
    return TrainResult(model, float(np.mean(train_predictions == y_train)), eval_accuracy if on_test else None,
                       final_loss, log.step, log.step / per_epoch, time.perf_counter() - log.start, log.history,
                       log.evaluated_on, None if on_test else eval_accuracy, log.warning, profiled.profile)


class Profiled:
    """The steps `train(profile=N)` profiles: N of them from step 2 (from step 1 when the run has no N + 1)."""

    def __init__(self, n: int | None, total: int):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ConfigError(f"profile: the number of steps to profile must be a positive integer, got {n!r}")
        self.profile = None if n is None else profiler.profile()
        self.first = 2 if n is not None and total > n else 1
        self.last = 0 if n is None else min(total, self.first + n - 1)

    def step(self, number: int):
        if not self.first <= number <= self.last:
            return contextlib.nullcontext()
        return _both(self.profile, profiler.record_function("train_step"))


@contextlib.contextmanager
def _both(outer, inner):
    with outer, inner:
        yield


def _diverged(loss, step: int, config: TrainConfig):
    raise TrainingDiverged(f"the loss became {loss} at step {step}: training diverged; "
                           f"try a smaller --lr than {config.lr}")


def _step(model, X, y, log: _Log, config: TrainConfig) -> tuple[float, np.ndarray]:
    """One update by the model's own rule; its loss and predictions go into the log's window, and are returned."""
    loss, predictions = model.train_step(X, y)
    log.step += 1
    if not math.isfinite(loss):
        _diverged(loss, log.step, config)
    log.add(loss, predictions, y)
    return loss, predictions


def _evaluate(model, X, y, log: _Log, config: TrainConfig) -> tuple[float, np.ndarray, float]:
    """(final loss, predicted labels on the training set, accuracy on the evaluation set) of the final weights."""
    final_loss, predictions = model.evaluate(X, y)
    if not math.isfinite(final_loss):
        _diverged(final_loss, log.step, config)
    return final_loss, predictions, accuracy(model, *log.evaluation)


class _Log:
    """A run's history and progress: the steps' numbers since the last entry (in full batch, each step's own),
    an entry when one is due, the status line, and the divergence warning (once)."""

    def __init__(self, config: TrainConfig, progress: Progress, total: int, per_epoch: int, evaluation):
        self.config, self.progress, self.total, self.per_epoch, self.evaluation = (config, progress, total,
                                                                                   per_epoch, evaluation)
        self.full = config.batch_size is None
        self.evaluated_on = "validation" if config.validation else "test"
        self.eval_key = f"{self.evaluated_on}_accuracy"
        self.every = config.log_every or (10 if self.full else 100)
        self.history: list[dict] = []
        self.step, self.loss_sum, self.correct, self.seen = 0, 0.0, 0, 0
        self.warning: str | None = None
        self.start = time.perf_counter()

    def add(self, loss: float, predictions, y) -> None:
        if self.full:   # each step sees the whole training set: its own numbers are exact, average none
            self.loss_sum, self.correct, self.seen = 0.0, 0, 0
        self.loss_sum += loss * len(y)
        self.correct += int(np.count_nonzero(predictions == y))
        self.seen += len(y)

    def status(self, epoch: int, evaluated=None) -> str:
        n_epochs = math.ceil(self.total / self.per_epoch)
        where = f"iteration {self.step}/{self.total}" if self.full else \
            f"epoch {epoch}/{n_epochs} step {self.step}/{self.total}"
        text = f"{where} | loss {self.loss_sum / self.seen:.4f} | train acc {self.correct / self.seen:.4f}"
        text += "" if evaluated is None else f" | {self.evaluated_on} acc {evaluated:.4f}"
        return text + f" | {time.perf_counter() - self.start:.1f} s"

    def after_step(self, model, epoch: int, epoch_end: bool) -> None:
        """The history entry of the step just made, if one is due (step 1, every `every` steps, the end of an
        epoch of minibatches, the last step), else the status line only."""
        last = self.step == self.total
        if not (self.step == 1 or self.step % self.every == 0 or epoch_end or last):
            self.progress.update(self.status(epoch))
            return
        entry = {"step": self.step, "epoch": epoch, "loss": self.loss_sum / self.seen,
                 "train_accuracy": self.correct / self.seen}
        if (self.full or epoch_end) and not last:
            entry[self.eval_key] = accuracy(model, *self.evaluation)
        entry["seconds"] = time.perf_counter() - self.start
        self.history.append(entry)
        self.progress.update(self.status(epoch, entry.get(self.eval_key)), log=True, keep=epoch_end and not last)
        self.loss_sum, self.correct, self.seen = 0.0, 0, 0
        if self.warning is None and (sign := divergence(self.history, self.per_epoch)):
            self.warning = divergence_advice(sign, self.config.lr)
            self.progress.warn(self.warning)


@contextlib.contextmanager
def interrupt_between_steps():
    """Within: the first Ctrl-C (SIGINT) is only noted, for the loop to stop at the end of the step under way
    (yields a function saying whether it came); a second one interrupts at once. Outside the main thread, where
    Python cannot take signals, nothing changes."""
    came = False

    def note(signum, frame):
        nonlocal came
        if came:
            raise KeyboardInterrupt
        came = True

    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) in (
            signal.SIG_IGN, None):   # NOTE: an ignored SIGINT (e.g. `cmd &` in a script) stays ignored
        yield lambda: False
        return
    previous = signal.signal(signal.SIGINT, note)
    try:
        yield lambda: came
    finally:
        signal.signal(signal.SIGINT, previous)


def accuracy(model, X, y) -> float:
    """The fraction of examples whose predicted label is y."""
    return float(np.mean(model.evaluate(X, y)[1] == y))


def write_json(path, obj) -> Path:
    """Writes obj as JSON to path atomically (a temporary file in the same folder, then a rename)."""
    return write_atomic(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))


def evaluated_set(metrics: dict):
    """The images and labels a run (its metrics.json) was evaluated on, from its config's dataset and data folder:
    the test set, or the last N training images of a run with validation N. From disk only: never downloaded."""
    config = metrics.get("config") or {}
    data = load_data(config.get("dataset", "mnist"), config.get("data"), download=False, progress=False)
    held_out = config.get("validation") or 0
    try:
        return split_validation(data, held_out)[1]
    except ConfigError:
        raise datasets.DatasetError(f"the run held out the last {held_out} training images, but the training set "
                                    f"on disk has {len(data[0][1])}") from None
