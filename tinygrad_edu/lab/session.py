"""The lab's network and every number the page shows: forward, backward with the trace's rules, one step, training.

All the math goes through tinygrad_edu: tutorial.forward_prop / backward_prop / update_params on Tensor ops, the
training steps through training.TutorialNet.train_step. A Lab is shared by the server's request threads and its
training thread; `Lab.lock` serialises everything that reads or changes the weights, so a request never sees a
half-made step (and backward hooks, which the trace uses, see one backward pass at a time).
"""
from __future__ import annotations

import io
import math
import sys
import threading
import time

import numpy as np

from tinygrad_edu import checkpoint, datasets, init, manual, messages, training, tutorial
from tinygrad_edu.autograd import no_grad
from tinygrad_edu.tensor import Tensor
from tinygrad_edu.viz.trace import trace

INITS = ("tutorial", "he")   # the training view's starting weights: rand − 0.5 (the tutorial's) or He's
LR_RANGE = (1e-4, 10.0)      # α accepted for a step or a training run
MAX_STEPS = 100_000          # the longest training run the page can ask for
LOG_MINIBATCH = 10           # training history: one entry per step in full batch, per 10 steps with minibatches
EVALUATE_EVERY = 10          # test accuracy on every 10th history entry (and the last)
PARAMS = ("W1", "b1", "W2", "b2")   # the weights a nudge can move, in the network's order
EPS_RANGE = (1e-8, 1.0)      # a nudge's ε
STARTUP = training.TrainConfig(init="he", batch_size=128, epochs=1, iterations=None, lr=0.1)


class LabError(Exception):
    """A request that cannot be done in the lab's present state (e.g. a second training run); status 409."""

    status = 409


def rounded(a, digits: int = 6) -> list:
    """An array as nested lists of floats rounded for JSON (the page shows at most 4 significant digits)."""
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


def check_network(net) -> None:
    """The lab shows the tutorial's 784-H-10 network; a weights file of another model is refused."""
    if not isinstance(net, training.TutorialNet):
        raise checkpoint.CheckpointError(f"the lab shows the tutorial's 784-H-10 network, not a {net.name} model "
                                         "(train it with `tinygrad-edu train --model tutorial`)")


def train_startup(data, config: training.TrainConfig = STARTUP) -> training.TrainResult:
    """The network the lab starts with when no weights are given: He's init, minibatches, about a second."""
    return training.train(config, data)


class Lab:
    """The network the page works on, its starting weights (for Reset), the MNIST images, and the trainer."""

    def __init__(self, net: training.TutorialNet, data, save_path=None, source: str = "", origin: dict | None = None,
                 language: str = messages.DEFAULT_LANGUAGE):
        """origin: where the starting weights came from, as fields the page words in its language
        ({"kind": "startup", "steps", "accuracy"} or {"kind": "file", "path", "description"});
        language: the page's language until the learner switches it."""
        check_network(net)
        self.origin = origin
        self.language = messages.check_language(language)
        self.net = net
        self.start = tuple(a.copy() for a in net.arrays)
        (self.X_train, self.y_train), (self.X_test, self.y_test) = data
        self.save_path = save_path
        self.source = source
        self.lock = threading.RLock()
        self.version = 0            # bumped by every change of the weights
        self.trainer = Trainer(self)
        self._test_inputs = None
        self._weights = None

    # --- inputs ----------------------------------------------------------------------------------------

    @property
    def params(self) -> tutorial.Params:
        return self.net.params

    def as_input(self, images: np.ndarray) -> np.ndarray:
        """Images in [0, 1] (n×784, pixels/255) as the network's columns (784×n), scaled as it was trained."""
        mean, std = self.net.inputs
        return ((np.asarray(images, dtype=self.net.dtype) - mean) / std).T

    def test_inputs(self) -> np.ndarray:
        if self._test_inputs is None:
            self._test_inputs = training.as_input(self.X_test, self.net)
        return self._test_inputs

    def test_image(self, index: int) -> np.ndarray:
        return datasets.to_float(self.X_test[index:index + 1], np.float64)[0]

    # --- what the page asks for ------------------------------------------------------------------------

    def predict(self, X) -> dict:
        """Z1, A1, Z2 and A2 = softmax(Z2) for the columns of X, computed by Tensor ops, no graph."""
        W1, b1, W2, b2 = self.params
        with no_grad():
            Z1 = W1 @ X + b1
            A1 = Z1.relu()
            Z2 = W2 @ A1 + b2
            A2 = Z2.softmax(axis=0)
        return {"Z1": Z1.data, "A1": A1.data, "Z2": Z2.data, "A2": A2.data}

    def weights(self) -> dict:
        """W1's rows (one 28×28 picture each, flattened), b1, W2, b2, and the weights' version (made once per
        version: every forward answer carries them)."""
        with self.lock:
            if self._weights is None or self._weights["version"] != self.version:
                W1, b1, W2, b2 = (p.data for p in self.params)
                self._weights = {"W1": rounded(W1), "b1": rounded(b1[:, 0]), "W2": rounded(W2),
                                 "b2": rounded(b2[:, 0]), "version": self.version}
            return self._weights

    def forward(self, image: np.ndarray, label: int | None = None) -> dict:
        """The forward pass of one image (784 values in [0, 1]), layer by layer; its loss if a label is given."""
        with self.lock:
            f = self.predict(self.as_input(image[None, :]))
            out = {k: rounded(v[:, 0]) for k, v in f.items()}
            out["prediction"] = int(np.argmax(f["A2"][:, 0]))
            if label is not None:
                out["loss"] = training.cross_entropy(f["Z2"], np.array([label]))
            out["image"] = rounded(image, 4)
            out.update(self.weights())
            return out

    def backward(self, image: np.ndarray, label: int) -> dict:
        """forward_prop and backward_prop of one image against `label`, traced: the tutorial's dZ2, dW2, db2, dZ1,
        dW1, db1 and each rule as the trace prints it. The weights are not changed (their .grad is cleared)."""
        with self.lock:
            X = Tensor(self.as_input(image[None, :]), name="X")
            fwd = tutorial.forward_prop(self.params, X, np.array([label]))
            with trace(file=io.StringIO()) as t:
                g = tutorial.backward_prop(self.params, fwd)
            for p in self.params:
                p.grad = None
            Z1 = fwd.Z1.data[:, 0]
            rules = {}
            for step in t.gradients:
                rules.setdefault(step.input, step.rule)
            return {
                "label": label, "loss": fwd.loss.item(),
                "A1": rounded(fwd.A1.data[:, 0]), "A2": rounded(manual.softmax(fwd.Z2.data)[:, 0]),
                "dZ2": rounded(g.dZ2[:, 0]), "dW2": rounded(g.dW2), "db2": rounded(g.db2[:, 0]),
                "dA1": rounded((self.params.W2.data.T @ g.dZ2)[:, 0]),
                "mask": (Z1 > 0).astype(int).tolist(), "dZ1": rounded(g.dZ1[:, 0]),
                "dW1": rounded(g.dW1), "db1": rounded(g.db1[:, 0]),
                "rules": {name: rules.get(name, "") for name in ("Z2", "b2", "W2", "A1", "Z1", "b1", "W1")},
                "trace": [f"{s.rule}   [{s.op}]  {s.shape}" for s in t.gradients],
                "m": int(fwd.Z2.shape[1]),
            }

    def step(self, image: np.ndarray, label: int, alpha: float) -> dict:
        """One gradient-descent step on this one image: W := W − α·dW for W1, b1, W2, b2. Returns the
        probabilities and the loss before and after."""
        with self.lock:
            X = self.as_input(image[None, :])
            Y = np.array([label])
            fwd = tutorial.forward_prop(self.params, X, Y)
            tutorial.backward_prop(self.params, fwd)
            tutorial.update_params(self.params, alpha)
            self.changed()
            after = self.predict(X)
            return {"label": label, "alpha": alpha,
                    "before": {"A2": rounded(manual.softmax(fwd.Z2.data)[:, 0]), "loss": fwd.loss.item()},
                    "after": {"A2": rounded(after["A2"][:, 0]),
                              "loss": training.cross_entropy(after["Z2"], Y)},
                    "version": self.version}

    def nudge(self, image: np.ndarray, label: int, param: str, index: tuple[int, int], eps: float) -> dict:
        """Finite differences for one weight: L with that weight moved to w + ε and to w − ε (the forward pass
        of manual.py, in float64, on a copy of the weights), (L(w + ε) − L(w − ε))/2ε, and beside it the same
        element of the backward pass's dW (tutorial.backward_prop, as /api/backward). The weights are not changed."""
        with self.lock:
            k = PARAMS.index(param)
            mean, std = self.net.inputs
            X = ((np.asarray(image[None, :], dtype=np.float64) - mean) / std).T
            Y = np.array([label])
            arrays = [np.asarray(a, dtype=np.float64) for a in self.net.arrays]

            def loss_at(value: float) -> float:
                moved = [a.copy() for a in arrays]
                moved[k][index] = value
                Z2 = manual.forward_prop(*moved, X)[2]
                return training.cross_entropy(Z2, Y)

            w = float(arrays[k][index])
            plus, minus = loss_at(w + eps), loss_at(w - eps)
            fwd = tutorial.forward_prop(self.params, Tensor(self.as_input(image[None, :]), name="X"), Y)
            g = tutorial.backward_prop(self.params, fwd)
            for p in self.params:
                p.grad = None
            backward = float(getattr(g, "d" + param)[index])
            numeric = (plus - minus) / (2 * eps)
            return {"param": param, "index": list(index), "eps": eps, "label": label, "w": w,
                    "loss_plus": plus, "loss_minus": minus, "numeric": numeric, "backward": backward,
                    "difference": abs(numeric - backward), "version": self.version}

    def pick(self, index: int | None = None, misclassified: bool = False, rng=None) -> dict:
        """A test image by index, or a random one the network gets wrong now; with its label and prediction."""
        n = len(self.y_test)
        with self.lock:
            if misclassified:
                predictions = np.argmax(self.predict(self.test_inputs())["Z2"], axis=0)
                wrong = np.flatnonzero(predictions != self.y_test)
                if not wrong.size:
                    raise LabError("the network classifies every test image right: none is misclassified")
                index = int((rng or np.random.default_rng()).choice(wrong))
            elif not 0 <= index < n:
                raise ValueError(f"index {index} is out of range: the test set has {n} images (0..{n - 1})")
            image = self.test_image(index)
            out = self.forward(image)
        return {"index": index, "label": int(self.y_test[index]), "count": n, **out}

    def reset(self) -> dict:
        """Back to the starting weights (stopping any training run)."""
        self.trainer.stop()
        with self.lock:
            for p, a in zip(self.params, self.start):
                p.data = a.copy()
                p.grad = None
            self.changed()
        return self.weights()

    def changed(self) -> None:
        self.version += 1

    def save(self) -> str:
        """Writes the current weights where the command line's --save said (atomically)."""
        if self.save_path is None:
            raise LabError("no file to save to: start the lab with --save WEIGHTS.npz")
        with self.lock:
            architecture = {**self.net.architecture(), "dataset": "mnist"}
            try:
                checkpoint.save(self.save_path, self.net.state_dict(), architecture)
            except (OSError, checkpoint.CheckpointError) as e:   # NOTE: the disk changed since --save was checked
                raise LabError(f"cannot write the weights to {self.save_path}: "
                               f"{getattr(e, 'strerror', None) or e}") from None
        return str(self.save_path)

    def state(self) -> dict:
        return {"hidden": int(self.params.W1.shape[0]), "test_count": int(len(self.y_test)),
                "train_count": int(len(self.y_train)), "source": self.source,
                "can_save": self.save_path is not None, "lr_range": LR_RANGE, "max_steps": MAX_STEPS,
                "inits": INITS, **self.weights(), "training": self.trainer.status(), "origin": self.origin,
                "lang": self.language, "languages": list(messages.LANGUAGES)}

    def close(self) -> None:
        self.trainer.stop()


class Trainer:
    """The training view's run: the tutorial's gradient descent on MNIST in a thread of its own, one run at a
    time, which the page starts, pauses and resumes (with a new lr or batch size) and polls."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.state = "idle"          # idle, running, paused, done, stopped
        self.history: list[dict] = []
        self.step = self.steps = 0
        self.lr, self.batch_size, self.init = 0.1, None, "tutorial"
        self.error = None
        self._thread: threading.Thread | None = None
        self._go = threading.Event()      # set while running
        self._quit = threading.Event()    # set to end the run
        self._rows = None
        self._control = threading.RLock()   # start, pause, resume and stop one at a time

    def start(self, lr: float, batch_size: int | None, steps: int, init_name: str, seed: int | None = None) -> dict:
        """A new run from fresh weights drawn by init_name ("tutorial": rand − 0.5; "he"). One run at a time."""
        with self._control:
            return self._start(lr, batch_size, steps, init_name, seed)

    def _start(self, lr, batch_size, steps, init_name, seed) -> dict:
        if self.state in ("running", "paused"):
            raise LabError("a training run is already going: pause it, or Reset, before starting another")
        self._stop()
        lab = self.lab
        rng = np.random.default_rng(seed)
        hidden, dtype = lab.params.W1.shape[0], lab.net.dtype
        if init_name == "tutorial":
            arrays = manual.init_params(rng, dtype, hidden)
        else:
            arrays = (*init.linear(init_name, 784, hidden, rng, dtype, (hidden, 1)),
                      *init.linear(init_name, hidden, 10, rng, dtype, (10, 1)))
        with lab.lock:
            for p, a in zip(lab.params, arrays):
                p.data, p.grad = a, None
            lab.changed()
        if self._rows is None:
            self._rows = training.as_input(lab.X_train, lab.net).T     # n×784 rows, scaled as the network wants
        self.history, self.step, self.steps, self.error = [], 0, steps, None
        self.lr, self.batch_size, self.init = lr, batch_size, init_name
        self._quit.clear()
        self._go.set()
        self.state = "running"
        self._thread = threading.Thread(target=self._run, args=(rng,), name="lab-training", daemon=True)
        self._thread.start()
        return self.status()

    def pause(self) -> dict:
        with self._control:
            return self._pause()

    def _pause(self) -> dict:
        if self.state != "running":
            raise LabError(f"no training run to pause (the run is {self.state})")
        self._go.clear()
        self.state = "paused"
        return self.status()

    def resume(self, lr: float | None = None, batch_size: int | None | str = "keep") -> dict:
        with self._control:
            return self._resume(lr, batch_size)

    def _resume(self, lr, batch_size) -> dict:
        if self.state != "paused":
            raise LabError(f"no paused training run to resume (the run is {self.state})")
        if lr is not None:
            self.lr = lr
        if batch_size != "keep":
            self.batch_size = batch_size
        self.state = "running"
        self._go.set()
        return self.status()

    def stop(self) -> None:
        """Ends the run (if any) and waits for its thread."""
        with self._control:
            self._stop()

    def _stop(self) -> None:
        self._quit.set()
        self._go.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.state in ("running", "paused"):
            self.state = "stopped"

    def status(self, since: int = 0) -> dict:
        return {"state": self.state, "step": self.step, "steps": self.steps, "lr": self.lr,
                "batch_size": self.batch_size, "init": self.init, "error": self.error,
                "history": self.history[since:], "history_length": len(self.history)}

    def _batches(self, rng):
        """Endless (X columns, y) batches: the whole set each time in full batch, else reshuffled minibatches;
        the batch size is read again at each epoch, so a resume can change it."""
        lab = self.lab
        while True:
            size = self.batch_size
            if size is None:
                yield self._rows.T, lab.y_train
                continue
            for Xb, yb in datasets.minibatches(self._rows, lab.y_train, size, seed=rng):
                yield Xb.T, yb
                if self.batch_size != size:
                    break

    def _run(self, rng) -> None:
        batches = self._batches(rng)
        # NOTE: a diverging run is reported by its loss (TrainingDiverged), not by numpy's overflow warnings
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self._steps(batches)

    def _steps(self, batches) -> None:
        lab, net = self.lab, self.lab.net
        loss_sum = correct = seen = 0
        try:
            while self.step < self.steps:
                while not self._go.wait(0.1):
                    pass
                if self._quit.is_set():
                    return
                Xb, yb = next(batches)
                with lab.lock:
                    net.lr = self.lr
                    loss, predictions = net.train_step(Xb, yb)
                    lab.changed()
                self.step += 1
                if not math.isfinite(loss):
                    raise training.TrainingDiverged(f"the loss became {loss} at step {self.step}: try a smaller lr "
                                                    f"than {self.lr}")
                loss_sum += loss * len(yb)
                correct += int(np.count_nonzero(predictions == yb))
                seen += len(yb)
                last = self.step == self.steps
                if self.batch_size is None or self.step % LOG_MINIBATCH == 0 or last:
                    entry = {"step": self.step, "loss": loss_sum / seen, "train_accuracy": correct / seen}
                    if len(self.history) % EVALUATE_EVERY == 0 or last:
                        with lab.lock:
                            entry["test_accuracy"] = training.accuracy(net, lab.test_inputs(), lab.y_test)
                    self.history.append(entry)
                    loss_sum = correct = seen = 0
                time.sleep(0.0005)   # NOTE: lets request threads take the lock between steps
            self.state = "done"
        except training.TrainingDiverged as e:
            self.error, self.state = str(e), "done"
        except Exception as e:   # NOTE: a bug of ours: said on the server's terminal, and the run ends
            sys.stderr.write(f"lab: training stopped: {type(e).__name__}: {e}\n")
            self.error, self.state = "training stopped by an error (see the server's output)", "done"
