"""Times the vectorised erf (ops.erf) against math.erf per element (np.frompyfunc, what Erf used before).

    python benchmarks/erf.py                  # one 768×512 activation (a GPT MLP's, 12×64 tokens × 512), float32
    python benchmarks/erf.py --dtype float64 --rounds 21

Rounds are interleaved (old, new, old, new, ...), so drift on a shared machine hits both alike; it prints each
one's median time and the median of the per-round ratios old/new, with the load average it ran at. First, though,
each alone, its rounds in a row, the vectorised one before math.erf has ever run (math.erf's 393,216 Python
floats per call fragment the heap; ops.erf works in blocks whose scratch arrays stay in the cache, so that
should not matter, and the two lines show whether it does).
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import numpy as np

from tinygrad_edu import ops

_math_erf = np.frompyfunc(math.erf, 1, 1)


def old_erf(x: np.ndarray) -> np.ndarray:
    return np.asarray(_math_erf(x), dtype=x.dtype)


def seconds(f, x: np.ndarray, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        f(x)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=768)
    parser.add_argument("--cols", type=int, default=512)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    # the erf argument of an exact GELU: x/√2 for activations x ~ N(0, 1)
    x = (np.random.default_rng(0).standard_normal((args.rows, args.cols)) / math.sqrt(2)).astype(args.dtype)
    alone = {"new": statistics.median(seconds(ops.erf, x, args.repeat) for _ in range(args.rounds))}
    alone["old"] = statistics.median(seconds(old_erf, x, args.repeat) for _ in range(args.rounds))
    if np.abs(ops.erf(x) - old_erf(x)).max() > 2 * np.finfo(x.dtype).eps:
        raise SystemExit("erf.py: the two disagree by more than rounding")
    old, new, ratio = [], [], []
    for _ in range(args.rounds):
        a, b = seconds(old_erf, x, args.repeat), seconds(ops.erf, x, args.repeat)
        old.append(a)
        new.append(b)
        ratio.append(a / b)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"erf of a {args.rows}×{args.cols} {args.dtype} array (load {load:.2f})")
    print(f"each alone, {args.rounds} rounds in a row, ops.erf first: math.erf {alone['old'] * 1e3:.2f} ms, ops.erf "
          f"{alone['new'] * 1e3:.2f} ms, ratio {alone['old'] / alone['new']:.1f}×")
    print(f"median of {args.rounds} interleaved rounds:")
    print(f"  math.erf per element (np.frompyfunc)  {statistics.median(old) * 1e3:8.2f} ms")
    print(f"  ops.erf (vectorised)                  {statistics.median(new) * 1e3:8.2f} ms")
    print(f"  ratio                                 {statistics.median(ratio):8.1f}×")


if __name__ == "__main__":
    main()
