"""Times forward + backward of each activation on one hidden layer's batch, as a ratio to relu's (same run).

    python benchmarks/activations.py              # a 64×256 float32 batch, 15 interleaved rounds
    python benchmarks/activations.py --rows 1000 --rounds 9

The question it answers: what the exact gelu costs, whose erf runs math.erf per element (np.frompyfunc), next to
its tanh form and the other activations. Rounds are interleaved (relu, elu, ..., relu, elu, ...), so drift on a
shared machine hits all alike; each cell is the median over rounds of (time of the activation)/(time of relu in
the same round).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import tinygrad_edu.nn.functional as F
from tinygrad_edu import Tensor

ACTIVATIONS = {
    "relu": F.relu, "sigmoid": F.sigmoid, "tanh": F.tanh, "leaky_relu": F.leaky_relu, "elu": F.elu,
    "silu": F.silu, "softplus": F.softplus, "log_sigmoid": F.log_sigmoid,
    "gelu (tanh)": lambda x: F.gelu(x, approximate="tanh"), "gelu (exact, erf)": F.gelu,
}


def seconds(f, x: np.ndarray, repeat: int) -> float:
    """The best of `repeat` forward + backward passes of f on a fresh leaf."""
    best = float("inf")
    g = np.ones_like(x)
    for _ in range(repeat):
        t = Tensor(x, requires_grad=True)
        start = time.perf_counter()
        f(t).backward(g)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--cols", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    x = np.random.default_rng(0).standard_normal((args.rows, args.cols)).astype(np.float32)
    ratios = {name: [] for name in ACTIVATIONS}
    times = {name: [] for name in ACTIVATIONS}
    for _ in range(args.rounds):
        base = seconds(F.relu, x, args.repeat)
        for name, f in ACTIVATIONS.items():
            t = seconds(f, x, args.repeat)
            times[name].append(t)
            ratios[name].append(t / base)
    print(f"forward + backward on a {args.rows}×{args.cols} float32 batch, median of {args.rounds} interleaved rounds")
    print(f"{'activation':<20}{'median time':>14}{'× relu':>10}")
    for name in ACTIVATIONS:
        print(f"{name:<20}{statistics.median(times[name]) * 1e6:>11.0f} µs{statistics.median(ratios[name]):>10.1f}")


if __name__ == "__main__":
    main()
