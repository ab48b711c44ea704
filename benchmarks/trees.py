"""Times the tutorial's autograd step in two source trees (e.g. a branch against main), interleaved, as a ratio.

    python benchmarks/trees.py /work/main              # this tree against /work/main, m = 64, float32
    python benchmarks/trees.py /work/main --m 1000 --rounds 12

Each round runs one child process per tree, alternating which goes first; a child imports tinygrad_edu from
its tree (PYTHONPATH), warms up, then times `tutorial.gradient_descent_step` in blocks of at least
--block-seconds and reports the median ms per step. The ratio candidate/baseline is taken within each round, so
drift on a shared machine hits both alike; the table shows the median over rounds and the min–max.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import statistics, sys, time
import numpy as np
from tinygrad_edu import tutorial
m, dtype, blocks, seconds = int(sys.argv[1]), np.dtype(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
rng = np.random.default_rng(0)
X, Y = rng.random((784, m)).astype(dtype), rng.integers(0, 10, m)
params = tutorial.init_params(0, dtype)

def block(seconds):
    n, start = 0, time.perf_counter()
    while True:
        tutorial.gradient_descent_step(params, X, Y, 0.10)
        n += 1
        elapsed = time.perf_counter() - start
        if n >= 3 and elapsed >= seconds:
            return elapsed / n * 1e3

block(seconds / 2)
print("RESULT", statistics.median(block(seconds) for _ in range(blocks)), tutorial.__file__)
"""


def time_tree(root: Path, args) -> float:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(args.m), args.dtype, str(args.blocks),
                          str(args.block_seconds)], capture_output=True, text=True, env=env, cwd=root, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"timing {root} failed:\n{out.stderr[-2000:]}")
    _, ms, module = lines[-1].split(maxsplit=2)
    if not Path(module).resolve().is_relative_to(root.resolve()):
        raise SystemExit(f"the child for {root} imported {module}: is the package installed over PYTHONPATH?")
    return float(ms)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path, help="the other tree (its root holds tinygrad_edu/)")
    parser.add_argument("--candidate", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the tree to measure (default: this one)")
    parser.add_argument("--m", type=int, default=64, help="batch size (default 64, the issue's budget: ≤ 5%%)")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds (default 8)")
    parser.add_argument("--blocks", type=int, default=3, help="timed blocks per child (default 3)")
    parser.add_argument("--block-seconds", type=float, default=0.4, help="minimum block length (default 0.4)")
    args = parser.parse_args(argv)

    times = {"baseline": [], "candidate": []}
    for r in range(args.rounds):
        order = ["baseline", "candidate"] if r % 2 == 0 else ["candidate", "baseline"]
        for which in order:
            times[which].append(time_tree(getattr(args, which), args))
        print(f"round {r + 1}: baseline {times['baseline'][-1]:.3f} ms, candidate {times['candidate'][-1]:.3f} ms",
              flush=True)
    ratios = [c / b for c, b in zip(times["candidate"], times["baseline"])]
    print(f"\nm = {args.m}, {args.dtype}, {args.rounds} interleaved rounds: baseline ({args.baseline}) "
          f"{statistics.median(times['baseline']):.3f} ms, candidate ({args.candidate}) "
          f"{statistics.median(times['candidate']):.3f} ms per step (medians); ratio candidate/baseline "
          f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
