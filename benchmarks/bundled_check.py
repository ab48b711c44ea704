"""What checking the bundled MNIST's SHA-256s costs: load_mnist() (bundled, checked) against the same files read
without the check (root= the bundled folder), interleaved, medians, and the ratio of the two.

    python benchmarks/bundled_check.py [--rounds 7]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import time

from tinygrad_edu import datasets


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    os.environ.pop(datasets.ENV_VAR, None)
    os.environ.pop(datasets.NO_BUNDLED_VAR, None)
    folder = datasets.BUNDLED_MNIST

    def hash_only():
        for name in datasets.MNIST_FILES:
            hashlib.sha256((folder / name).read_bytes()).hexdigest()

    checked, unchecked, hashing = [], [], []
    for _ in range(args.rounds):            # interleaved, so a busy machine slows all three alike
        checked.append(seconds(lambda: datasets.load_mnist(download=False, progress=False)))
        unchecked.append(seconds(lambda: datasets.load_mnist(folder, download=False, progress=False)))
        hashing.append(seconds(hash_only))
    c, u, h = (statistics.median(t) for t in (checked, unchecked, hashing))
    size = sum((folder / n).stat().st_size for n in datasets.MNIST_FILES) / 1e6
    print(f"load_mnist, bundled and checked   {c * 1e3:7.1f} ms   (median of {args.rounds})")
    print(f"the same files, unchecked (root=) {u * 1e3:7.1f} ms")
    print(f"hashing the {size:.1f} MB alone       {h * 1e3:7.1f} ms")
    print(f"checked / unchecked               {c / u:7.3f}")


if __name__ == "__main__":
    main()
