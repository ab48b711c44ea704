"""Times the tutorial's autograd step in two source trees (e.g. a branch against main) in one process, as a ratio.

    python benchmarks/trees.py /work/main                   # this tree against /work/main: m = 64, float32
    python benchmarks/trees.py /work/main --m 1000 --rounds 40

Both trees' packages are imported into this process (each under its own modules, one after the other), so
their steps run on the same data, alternating block by block: baseline, candidate, candidate, baseline, ...
Each block times `tutorial.gradient_descent_step` for at least --block-seconds of this process's CPU time
(time.process_time, which a busy shared machine inflates less than wall time; BLAS runs on one thread so the
two are comparable). The ratio candidate/baseline is taken within each round, so drift hits both alike; the
summary gives the median over rounds with its min–max, and the ratio of the fastest blocks.
"""
from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402 - after the thread settings, which BLAS reads when it loads


def load_tutorial(root: Path):
    """tinygrad_edu.tutorial imported from root; earlier imports of the package stay alive under their objects."""
    for name in [m for m in sys.modules if m == "tinygrad_edu" or m.startswith("tinygrad_edu.")]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        tutorial = importlib.import_module("tinygrad_edu.tutorial")
    finally:
        sys.path.remove(str(root))
    if not Path(tutorial.__file__).resolve().is_relative_to(root.resolve()):
        raise SystemExit(f"importing from {root} gave {tutorial.__file__}")
    return tutorial


def time_block(step, seconds: float) -> float:
    """CPU milliseconds per step over as many steps as fill `seconds` of CPU time (at least 3)."""
    n, start = 0, time.process_time()
    while True:
        step()
        n += 1
        elapsed = time.process_time() - start
        if n >= 3 and elapsed >= seconds:
            return elapsed / n * 1e3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path, help="the other tree (its root holds tinygrad_edu/)")
    parser.add_argument("--candidate", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the tree to measure (default: this one)")
    parser.add_argument("--m", type=int, default=64, help="batch size (default 64, the issue's budget: ≤ 5%%)")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds (default 30)")
    parser.add_argument("--block-seconds", type=float, default=0.3, help="CPU seconds per block (default 0.3)")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    dtype = np.dtype(args.dtype)
    X, Y = rng.random((784, args.m)).astype(dtype), rng.integers(0, 10, args.m)
    steps = {}
    for which in ("baseline", "candidate"):
        tutorial = load_tutorial(getattr(args, which))
        params = tutorial.init_params(0, dtype)
        steps[which] = (lambda tutorial=tutorial, params=params:
                        tutorial.gradient_descent_step(params, X, Y, 0.10))
        time_block(steps[which], args.block_seconds)   # warm-up
    times = {"baseline": [], "candidate": []}
    for r in range(args.rounds):
        for which in (("baseline", "candidate") if r % 2 == 0 else ("candidate", "baseline")):
            times[which].append(time_block(steps[which], args.block_seconds))
    ratios = [c / b for c, b in zip(times["candidate"], times["baseline"])]
    base, cand = (statistics.median(times[w]) for w in ("baseline", "candidate"))
    print(f"m = {args.m}, {dtype.name}, {args.rounds} interleaved rounds of ≥ {args.block_seconds} CPU s per block")
    print(f"baseline  {args.baseline}: {base:.4f} ms per step (median), fastest block {min(times['baseline']):.4f}")
    print(f"candidate {args.candidate}: {cand:.4f} ms per step (median), fastest block {min(times['candidate']):.4f}")
    print(f"ratio candidate/baseline: median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, "
          f"max {max(ratios):.3f}); fastest blocks {min(times['candidate']) / min(times['baseline']):.3f}")


if __name__ == "__main__":
    main()
