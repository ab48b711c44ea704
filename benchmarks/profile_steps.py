"""Where a training step's time goes: the profiler's tables for the tutorial, MLP and CNN steps, roofline-style.

    python benchmarks/profile_steps.py            # about 2 minutes: the four profiles and the roofline table
    python benchmarks/profile_steps.py --quick    # a smoke run of a few seconds (few steps, small data)

Each case is what `python -m tinygrad_edu train --model M ... --profile N` profiles (the same TrainConfig, from
the command line's own defaults; steps 2 to N + 1 of the real MNIST): the tutorial's network at m = 64
(minibatches) and at m = 60000 (the tutorial's full batch), the default MLP and the default CNN. Then the
machine's peaks, measured in the same run: a float32 matmul's GFLOP/s (the best of 2048×2048 products) and a
large copy's GB/s. The roofline-style table puts each row that computes FLOPs against them: compute-bound when
it reaches a quarter of the matmul peak, Python-bound when one call takes under 15 µs (an op's recording and
dispatch cost about 3–5 µs), memory-bound otherwise (little arithmetic per byte it moves).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

from tinygrad_edu import training
from tinygrad_edu.cli import build_parser
from tinygrad_edu.cli.train import resolve

CASES = [   # (title, the train command's options, steps to profile)
    ("tutorial step, m = 64 (minibatches of 64)", ["--batch-size", "64"], 200),
    ("tutorial step, m = 60000 (the tutorial's full batch)", [], 10),
    ("mlp step (its defaults: 784-256-10, Adam, minibatches of 128)", ["--model", "mlp"], 100),
    ("cnn step (its defaults: 16,32 channels, Adam, minibatches of 128)", ["--model", "cnn"], 20),
]


def matmul_peak(seconds: float) -> float:
    """The best GFLOP/s of float32 2048×2048 products (2n³ FLOPs each) over about `seconds`."""
    n = 2048
    a, b = np.ones((n, n), np.float32), np.ones((n, n), np.float32)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def copy_bandwidth(seconds: float) -> float:
    """The best GB/s of copying a 256 MB float32 array (each byte read once and written once)."""
    src = np.ones(64 * 2**20, np.float32)
    dst = np.empty_like(src)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        np.copyto(dst, src)
        best = max(best, 2 * src.nbytes / (time.perf_counter() - t) / 1e9)
    return best


def profile_case(options: list[str], steps: int, data):
    config = resolve(build_parser().parse_args(["train", *options, "--iterations", str(steps + 1)]))
    return training.train(config, data, profile=steps).profile.key_averages()


def bound(row, peak: float) -> str:
    rate = row.flops / row.self_cpu_time_total / 1e3   # GFLOP/s
    if rate >= peak / 4:
        return "compute-bound"
    return "Python-bound" if row.cpu_time < 15 else "memory-bound"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: a few steps on 2,000 images")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, "
          f"Python {platform.python_version()}; load average {load:.2f} at start")
    if load >= 1:
        print("warning: the 1-minute load is 1 or more: these timings are not those of an idle machine",
              file=sys.stderr)
    (X, y), test = training.load_data("mnist", None, download=False, progress=False)
    if args.quick:
        X, y = X[:2000], y[:2000]
    data = ((X, y), test)
    peak, bandwidth = matmul_peak(0.3 if args.quick else 3), copy_bandwidth(0.3 if args.quick else 3)
    print(f"machine: float32 matmul peak {peak:.1f} GFLOP/s, copy bandwidth {bandwidth:.1f} GB/s\n")
    roofline = []
    for title, options, steps in CASES:
        steps = 2 if args.quick else steps
        averages = profile_case(options, steps, data)
        print(f"{title}, {steps} steps:\n{averages.table(row_limit=12)}\n")
        roofline += [(title.split(" (")[0], r) for r in averages if r.flops]
    print("roofline: each row with FLOPs against the machine's peaks")
    print(f"{'step':<28} {'row':<32} {'mean µs':>9} {'GFLOP/s':>8} {'of peak':>8}  bound")
    for step, r in roofline:
        rate = r.flops / r.self_cpu_time_total / 1e3
        print(f"{step:<28} {r.key:<32} {r.cpu_time:>9.1f} {rate:>8.2f} {100 * rate / peak:>7.1f}%  {bound(r, peak)}")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
