"""What a run shows while it goes: live progress on stderr (Progress), and the early signs of divergence."""
from __future__ import annotations

import math
import sys
import time


class Progress:
    """Live status on a stream (stderr): redrawn in place on a terminal, one line per log entry otherwise."""

    def __init__(self, stream=None, quiet: bool = False, min_interval: float = 0.1, prefix: str = ""):
        self.stream = sys.stderr if stream is None else stream
        self.prefix = prefix   # of warnings, e.g. "tinygrad-edu train: "
        self.quiet = quiet
        self.tty = not quiet and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.min_interval, self._last, self._open = min_interval, -math.inf, False

    def message(self, text: str) -> None:
        """A line of its own (e.g. what is about to be trained)."""
        if not self.quiet:
            self._end_line()
            print(text, file=self.stream, flush=True)

    def update(self, text: str, log: bool = False, keep: bool = False) -> None:
        """The current status. Terminal: redrawn at most every min_interval (always when log or keep), and kept
        as a line of its own when keep. Otherwise: printed only when log or keep."""
        if self.quiet:
            return
        if not self.tty:
            if log or keep:
                print(text, file=self.stream, flush=True)
            return
        now = time.perf_counter()
        if log or keep or now - self._last >= self.min_interval:
            self.stream.write(f"\r{text}\x1b[K")
            self.stream.flush()
            self._last, self._open = now, True
            if keep:
                self._end_line()

    def warn(self, text: str) -> None:
        """A warning: a line of its own, printed even when quiet (quiet silences progress, not warnings)."""
        self._end_line()
        print(f"{self.prefix}warning: {text}", file=self.stream, flush=True)

    def close(self) -> None:
        self._end_line()

    def _end_line(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


# A run is called diverging, early and without stopping it, when its history shows either (docs/cli.md):
LOSS_FACTOR = 2.0      # the logged loss above LOSS_FACTOR × the first logged loss (step 1's, before any update)
LOSS_POINTS = 3        # ... at LOSS_POINTS log points in a row, or
ACCURACY_FLOOR = 0.2   # the logged train accuracy below ACCURACY_FLOOR (chance is 0.1) at a log point at or after
ACCURACY_AFTER = 50    # max(one epoch, ACCURACY_AFTER steps)
# When the accuracy is that low but the logged loss has fallen at every log point, the run is not diverging but
# learning slowly (an lr too small): the warning says so, and suggests a larger --lr instead.
SLOW = "the run is learning slowly"


def divergence(history: list[dict], steps_per_epoch: int) -> str | None:
    """What the newest entry of a run's history shows of divergence, in words (None if nothing), by the rules
    above. A pure function of the entries' step, loss and train_accuracy (the accuracy rule only where entries have
    one: a text model's have not): calling it on each prefix of a recorded history replays what `train` saw."""
    if not history:
        return None
    first, last = history[0], history[-1]
    recent = history[1:][-LOSS_POINTS:]
    if len(recent) == LOSS_POINTS and all(e["loss"] > LOSS_FACTOR * first["loss"] for e in recent):
        return (f"the loss is {last['loss']:.4g} at step {last['step']}, above {LOSS_FACTOR:g} × its first value "
                f"({first['loss']:.4g} at step {first['step']}) at {LOSS_POINTS} log points in a row")
    if "train_accuracy" in last and last["step"] >= max(steps_per_epoch, ACCURACY_AFTER) and \
            last["train_accuracy"] < ACCURACY_FLOOR:
        seen = (f"train accuracy is {last['train_accuracy']:.4f} at step {last['step']}, below {ACCURACY_FLOOR:g} "
                f"(chance is 0.1)")
        if len(history) > 1 and all(b["loss"] < a["loss"] for a, b in zip(history, history[1:])):
            seen += (f" while the loss falls at every log point ({first['loss']:.4g} at step {first['step']}, "
                     f"{last['loss']:.4g} now): {SLOW}")
        return seen
    return None


def divergence_advice(seen: str, lr: float) -> str:
    """The warning train prints once for what divergence() saw: what, and what to try."""
    if seen.endswith(SLOW):
        return f"{seen}; try a larger --lr, e.g. --lr {lr * 10:g} (this run goes on)"
    return (f"{seen}: the run looks like it is diverging; try a smaller --lr, e.g. --lr {lr / 10:g} "
            f"(this run goes on)")
