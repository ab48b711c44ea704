"""The worker of `benchmarks/step.py --against`: one version of tinygrad_edu, in its own process.

    PYTHONPATH=DIR python benchmarks/step_worker.py DIR      # started by step.py, which talks to it over pipes

It imports the tinygrad_edu found in DIR (and refuses any other), then answers step.py's requests, pickled on
stdin, with pickles on stdout (anything the package prints goes to stderr):

    ("setup", m, dtype, x_path, y_path)  loads X and Y (.npy written by step.py, the same for both versions) and
                                          fresh params (init_params(0, dtype)); answers one step's loss, the
                                          gradients and the parameters after the update, for step.py to compare
    ("block", seconds)                    times gradient_descent_step for at least `seconds` (at least one step);
                                          answers (seconds per step, steps)
    ("quit",)                             exits

Only the tutorial's API is used (init_params, forward_prop, gradient_descent_step), which every revision has.
"""
from __future__ import annotations

import os
import pickle
import sys
import time
from pathlib import Path

# NOTE: the script's folder (benchmarks/) comes first on sys.path; nothing of it is needed here
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def thread_settings() -> dict:
    """The BLAS thread variables this process sees (None: unset, the library's default)."""
    return {k: os.environ.get(k) for k in THREAD_VARS}


class Worker:
    def __init__(self, tutorial, np):
        self.tutorial, self.np = tutorial, np
        self.X = self.Y = self.params = None

    def setup(self, m, dtype, x_path, y_path):
        np, tutorial = self.np, self.tutorial
        self.X, self.Y = np.load(x_path), np.load(y_path)
        if self.X.shape[1] != m:
            raise ValueError(f"X has {self.X.shape[1]} columns, expected m = {m}")
        dtype = np.dtype(dtype)
        params = tutorial.init_params(0, dtype)
        fwd = tutorial.forward_prop(params, self.X, self.Y)
        fwd.loss.backward()
        check = {"loss": float(np.asarray(fwd.loss.data)),
                 "grads": [np.array(p.grad, dtype=np.float64) for p in params]}
        params = tutorial.init_params(0, dtype)
        fwd = tutorial.gradient_descent_step(params, self.X, self.Y, 0.10)
        check["step_loss"] = float(np.asarray(fwd.loss.data))
        check["after"] = [np.array(p.data, dtype=np.float64) for p in params]
        check["dtypes"] = [str(p.data.dtype) for p in params]
        self.params = tutorial.init_params(0, dtype)
        return check

    def block(self, seconds):
        step, params, X, Y = self.tutorial.gradient_descent_step, self.params, self.X, self.Y
        n, start = 0, time.perf_counter()
        while True:
            step(params, X, Y, 0.10)
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return elapsed / n, n


def main(argv) -> int:
    out, inp = sys.stdout.buffer, sys.stdin.buffer
    sys.stdout = sys.stderr

    def send(answer):
        pickle.dump(answer, out)
        out.flush()

    root = Path(argv[0]).resolve()
    try:
        import numpy as np

        import tinygrad_edu
        from tinygrad_edu import tutorial
        where = Path(tinygrad_edu.__file__).resolve().parent
        if where.parent != root:
            raise ImportError(f"tinygrad_edu was imported from {where}, not from {root} (PYTHONPATH)")
        worker = Worker(tutorial, np)
        send(("ok", {"numpy": np.__version__, "package": str(where), "threads": thread_settings()}))
    except Exception as e:   # noqa: BLE001 (any failure of the old package is reported, not raised)
        send(("error", f"importing tinygrad_edu from {root}: {type(e).__name__}: {e}"))
        return 1
    while True:
        try:
            request = pickle.load(inp)
        except EOFError:
            return 0
        if request[0] == "quit":
            return 0
        try:
            answer = ("ok", getattr(worker, request[0])(*request[1:]))
        except Exception as e:   # noqa: BLE001
            answer = ("error", f"{request[0]}: {type(e).__name__}: {e}")
        send(answer)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (KeyboardInterrupt, BrokenPipeError):
        sys.exit(130)
