"""Times one training step of the tutorial's 784-10-10 network: autograd against the hand-written numpy baseline.

    python benchmarks/step.py            # m = 64, 1000, 60000; float32 and float64; plus the whole train run
    python benchmarks/step.py --quick    # a smoke run, well under 30 s

Every implementation starts from the same weights (manual.init_params) and has its gradients checked against
the hand-derived ones before any timing. Timing runs in interleaved blocks (manual, autograd, torch, manual,
...), each at least --block-seconds long, so drift on a shared machine hits all alike; the table shows medians
over blocks, the ratio to the manual step (median of the per-block ratios) and the spread of that ratio.
PyTorch joins when it is importable, with the same thread count as numpy's BLAS (--threads).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

from tinygrad_edu import manual, tutorial
from tinygrad_edu.comparison import normwise_relative_error


def load_data(m: int, dtype):
    """The first m MNIST training images in the tutorial's layout (784×m, pixels/255), or random ones."""
    try:
        from tinygrad_edu.datasets import DatasetError, load_mnist, to_float
        (X, y), _ = load_mnist(download=False, progress=False)
        return np.ascontiguousarray(to_float(X[:m], dtype, layout="columns")), y[:m].astype(np.int64), "MNIST"
    except (ImportError, DatasetError):
        rng = np.random.default_rng(0)
        return rng.random((784, m)).astype(dtype), rng.integers(0, 10, m), "random"


class Manual:
    name = "manual"

    def __init__(self, X, Y):
        self.X, self.Y = X, Y
        self.params = manual.init_params(0, X.dtype)

    def gradients(self):
        W1, b1, W2, b2 = self.params
        Z1, A1, Z2, A2 = manual.forward_prop(W1, b1, W2, b2, self.X)
        return manual.backward_prop(Z1, A1, Z2, A2, W1, W2, self.X, self.Y)[:4]

    def step(self):
        W1, b1, W2, b2 = self.params
        Z1, A1, Z2, A2 = manual.forward_prop(W1, b1, W2, b2, self.X)
        dW1, db1, dW2, db2, _, _ = manual.backward_prop(Z1, A1, Z2, A2, W1, W2, self.X, self.Y)
        self.params = manual.update_params(W1, b1, W2, b2, dW1, db1, dW2, db2, 0.10)


class Autograd:
    name = "autograd"

    def __init__(self, X, Y):
        self.X, self.Y = X, Y
        self.params = tutorial.init_params(0, X.dtype)

    def gradients(self):
        tutorial.forward_prop(self.params, self.X, self.Y).loss.backward()
        grads = [p.grad.copy() for p in self.params]
        for p in self.params:
            p.grad = None
        return grads

    def step(self):
        tutorial.gradient_descent_step(self.params, self.X, self.Y, 0.10)


class Torch:
    name = "torch"

    def __init__(self, X, Y):
        import torch
        self.torch = torch
        self.X, self.Y = torch.from_numpy(X), torch.from_numpy(Y)
        self.params = [torch.from_numpy(p.copy()).requires_grad_() for p in manual.init_params(0, X.dtype)]

    def _loss(self):
        W1, b1, W2, b2 = self.params
        Z2 = W2 @ (W1 @ self.X + b1).relu() + b2
        return self.torch.nn.functional.cross_entropy(Z2.T, self.Y)

    def gradients(self):
        self._loss().backward()
        grads = [p.grad.numpy().copy() for p in self.params]
        for p in self.params:
            p.grad = None
        return grads

    def step(self):
        self._loss().backward()
        with self.torch.no_grad():
            for p in self.params:
                p -= 0.10 * p.grad
                p.grad = None


def implementations(threads: int):
    impls = [Manual, Autograd]
    try:
        import torch
        torch.set_num_threads(threads)
        impls.append(Torch)
    except ImportError:
        pass
    return impls


def time_block(step, seconds: float) -> float:
    """Milliseconds per step, over as many steps as fill `seconds` (at least 3)."""
    n, start = 0, time.perf_counter()
    while True:
        step()
        n += 1
        elapsed = time.perf_counter() - start
        if n >= 3 and elapsed >= seconds:
            return elapsed / n * 1e3


def bench_size(m, dtype, impl_classes, blocks, seconds):
    X, Y, source = load_data(m, dtype)
    impls = [cls(X, Y) for cls in impl_classes]
    reference = impls[0].gradients()
    tol = 1e-10 if dtype == np.float64 else 1e-4
    for impl in impls[1:]:
        for name, got, want in zip(["dW1", "db1", "dW2", "db2"], impl.gradients(), reference):
            err = normwise_relative_error(got, want)
            if err > tol:
                raise SystemExit(f"{impl.name} at m={m} {np.dtype(dtype).name}: {name} differs from the hand-derived "
                                 f"gradient by {err:.2e} (normwise relative), above {tol:g}")
    for impl in impls:
        time_block(impl.step, seconds / 4)   # warm-up
    times = {impl.name: [] for impl in impls}
    for _ in range(blocks):
        for impl in impls:
            times[impl.name].append(time_block(impl.step, seconds))
    return times, source


def format_row(m, dtype, times):
    base = times["manual"]
    cells = [f"{m:>6}", f"{np.dtype(dtype).name:>8}", f"{statistics.median(base):9.3f}"]
    for name in [n for n in times if n != "manual"]:
        ratios = [t / b for t, b in zip(times[name], base)]
        cells.append(f"{statistics.median(times[name]):9.3f}  {statistics.median(ratios):5.2f}× "
                     f"({min(ratios):.2f}–{max(ratios):.2f})")
    return " | ".join(cells)


# NOTE: peak RSS is read from /proc/self/status (VmHWM, this process's own high-water mark): getrusage's
# ru_maxrss survives exec on Linux, so a child started from this (large) benchmark process would report ours.
TRAIN_CHILD = """
import sys, time
from tinygrad_edu.cli import main
start = time.perf_counter()
code = main(sys.argv[1:])
seconds = time.perf_counter() - start
try:
    with open("/proc/self/status") as f:
        peak_mb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    import resource
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT", seconds, peak_mb, code)
"""


def run_train(args):
    """One `train` run in a fresh process: (seconds inside main, peak RSS in MB)."""
    out = subprocess.run([sys.executable, "-c", TRAIN_CHILD, "train", "--quiet", *args],
                         capture_output=True, text=True, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"train {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    _, seconds, rss, _ = lines[-1].split()
    return float(seconds), float(rss)


def bench_train(pairs: int, iterations: int):
    runs = {"manual": [], "autograd": []}
    rss = {}
    for _ in range(pairs):
        for backprop in ("manual", "autograd"):
            seconds, peak = run_train(["--backprop", backprop, "--iterations", str(iterations)])
            runs[backprop].append(seconds)
            rss[backprop] = max(rss.get(backprop, 0), peak)
    return runs, rss


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sizes, short blocks")
    parser.add_argument("--blocks", type=int, default=5, help="interleaved blocks per implementation (default 5)")
    parser.add_argument("--block-seconds", type=float, default=0.5, help="minimum length of a block (default 0.5)")
    parser.add_argument("--sizes", default="64,1000,60000", help="batch sizes m (default 64,1000,60000)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch's threads (default: all cores)")
    parser.add_argument("--train-pairs", type=int, default=3, help="interleaved pairs of whole train runs (default 3)")
    parser.add_argument("--no-train", action="store_true", help="skip timing the whole train command")
    parser.add_argument("--json", help="also write the measurements to this JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.blocks, args.block_seconds, args.sizes, args.train_pairs = 2, 0.1, "64,1000", 1
    sizes = [int(s) for s in args.sizes.split(",")]
    impl_classes = implementations(args.threads)

    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; numpy {np.__version__}; "
          f"python {platform.python_version()}")
    print(f"{args.blocks} interleaved blocks of ≥ {args.block_seconds} s each; ms per step (median), ratio to manual "
          "(median, min–max over blocks)\n")
    header = ["     m", "   dtype", "manual ms"] + [f"{cls.name} ms, ratio" for cls in impl_classes[1:]]
    print(" | ".join(header))
    results = []
    for m in sizes:
        for dtype in (np.float32, np.float64):
            times, source = bench_size(m, dtype, impl_classes, args.blocks, args.block_seconds)
            print(format_row(m, dtype, times), flush=True)
            results.append({"m": m, "dtype": np.dtype(dtype).name, "data": source, "ms": times})

    train = None
    if not args.no_train:
        iterations = 20 if args.quick else 500
        runs, rss = bench_train(args.train_pairs, iterations)
        ratios = [a / b for a, b in zip(runs["autograd"], runs["manual"])]
        med = {k: statistics.median(v) for k, v in runs.items()}
        print(f"\nwhole `train --iterations {iterations}` (float32, full batch), {args.train_pairs} interleaved pairs: "
              f"manual {med['manual']:.2f} s, autograd {med['autograd']:.2f} s, "
              f"ratio {statistics.median(ratios):.3f}× ({min(ratios):.3f}–{max(ratios):.3f}); peak RSS manual "
              f"{rss['manual']:.0f} MB, autograd {rss['autograd']:.0f} MB")
        train = {"iterations": iterations, "seconds": runs, "peak_rss_mb": rss}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"steps": results, "train": train}, f, indent=1)


if __name__ == "__main__":
    main()
