"""Times one training step of the LeNet-style CNN three ways: autograd, a hand-written numpy step, PyTorch.

    python benchmarks/conv.py            # batch 128, float32, 7 interleaved blocks of ≥ 1 s
    python benchmarks/conv.py --quick    # a smoke run, well under 30 s
    python benchmarks/conv.py --train    # also the whole `train --model cnn` against the same recipe in PyTorch

The network is `train --model cnn`'s family: conv 5×5 (C1) → ReLU → max-pool 2 → conv 5×5 (C2) → ReLU → max-pool 2
→ Linear(C2·16, 128) → ReLU → Linear(128, 10), cross-entropy, one Adam step. All three start from the same weights
and their gradients are checked against the hand-written ones before any timing. Timing runs in interleaved
blocks (manual, autograd, torch, manual, ...), so drift on a shared machine hits all alike; the table shows
medians over blocks and the ratio to the manual step (median of per-block ratios, and its spread). numpy's BLAS
and torch get the same number of threads: set OPENBLAS_NUM_THREADS (or --threads for torch) to the same value.
Then it shows where the manual step's time goes (im2col, the products, col2im, pooling, elementwise and loss,
the optimizer) and the peak RSS of this process. With --train it also runs the whole `train --model cnn` command
(its default recipe, or --train-args) and the same recipe written in PyTorch (TORCH_RECIPE below: the same data,
standardisation, model, init ranges, batches, Adam and cosine schedule, and the same final evaluations), each in a
fresh process, interleaved, and reports their times, CPU times and peak RSS.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections import defaultdict

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from step import time_block  # NOTE: benchmarks/ is this script's folder, so its sibling imports as `step`

from tinygrad_edu import optim
from tinygrad_edu.cnn import CNN
from tinygrad_edu.nn import functional as F

NAMES = ("features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias",
         "classifier.0.weight", "classifier.0.bias", "classifier.2.weight", "classifier.2.bias")


def load_batch(m: int, dtype):
    """The first m MNIST training images, standardised, as m×1×28×28 (random pixels without MNIST)."""
    try:
        from tinygrad_edu.datasets import DatasetError, load_mnist, to_float
        (X, y), _ = load_mnist(download=False, progress=False)
        X = to_float(X[:m], dtype, mean=0.1307, std=0.3081)
        return np.ascontiguousarray(X.reshape(m, 1, 28, 28)), y[:m].astype(np.int64), "MNIST"
    except (ImportError, DatasetError):
        rng = np.random.default_rng(0)
        return rng.standard_normal((m, 1, 28, 28)).astype(dtype), rng.integers(0, 10, m), "random"


# --- the hand-written step -------------------------------------------------------------------------------------


class Sections:
    """Adds up the time spent in named sections when on; costs one call when off."""

    def __init__(self):
        self.on, self.seconds, self._name, self._start = False, defaultdict(float), None, 0.0

    def __call__(self, name):
        if self.on:
            now = time.perf_counter()
            if self._name:
                self.seconds[self._name] += now - self._start
            self._name, self._start = name, now

    def stop(self):
        self("")
        self._name = None


T = Sections()


def im2col(A, k):
    """A (N×H×W×C, channels last) as rows of k×k patches: (N·Ho·Wo) × (C·k·k), columns in (c, p, q) order."""
    N, H, W, C = A.shape
    Ho, Wo = H - k + 1, W - k + 1
    return sliding_window_view(A, (k, k), axis=(1, 2)).reshape(N * Ho * Wo, C * k * k), (N, Ho, Wo)


def col2im(dcolsT, shape, k):
    """The adjoint of im2col: ∂L/∂cols, given transposed (C·k·k × N·Ho·Wo, so that each (p, q) slice is one
    contiguous block), added back onto an N×H×W×C array (returned as a channels-last view)."""
    N, H, W, C = shape
    Ho, Wo = H - k + 1, W - k + 1
    d = dcolsT.reshape(C, k, k, N, Ho, Wo)
    dA = np.zeros((C, N, H, W), dcolsT.dtype)
    for p in range(k):
        for q in range(k):
            dA[:, :, p:p + Ho, q:q + Wo] += d[:, p, q]
    return dA.transpose(1, 2, 3, 0)


def pool(A):
    """2×2 max-pooling of N×H×W×C: the running maximum of the four strided views A[:, p::2, q::2]."""
    P = A[:, 0::2, 0::2].copy()
    for p, q in ((0, 1), (1, 0), (1, 1)):
        np.maximum(P, A[:, p::2, q::2], out=P)
    return P


def unpool(dP, A, P):
    """∂L/∂A of pool: ∂L/∂P at each window's maximum, shared equally by tied maxima (as autograd's max_pool2d).

    Ties are common on MNIST: every 5×5 patch of the blank background is the same, so are its convolutions.
    """
    masks = [A[:, p::2, q::2] == P for p in (0, 1) for q in (0, 1)]
    share = dP / np.sum(masks, axis=0, dtype=dP.dtype)
    dA = np.empty(A.shape, dP.dtype)
    for (p, q), mask in zip(((0, 0), (0, 1), (1, 0), (1, 1)), masks):
        np.multiply(mask, share, out=dA[:, p::2, q::2])
    return dA


class Manual:
    """forward_prop, backward_prop and the Adam update written out, activations channels-last (N×H×W×C), as
    the tutorial writes its step: W1 (C1×1×5×5), b1, W2 (C2×C1×5×5), b2, W3 (128×C2·16), b3, W4 (10×128), b4."""

    name = "manual"

    def __init__(self, X, y, params):
        self.X, self.y = X.transpose(0, 2, 3, 1), y   # N×28×28×1, a view
        self.params = [p.copy() for p in params]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def gradients(self):
        W1, b1, W2, b2, W3, b3, W4, b4 = self.params
        X, y, N, k = self.X, self.y, len(self.y), W1.shape[-1]
        # forward_prop
        T("im2col")
        cols1, (_, H1, W1o) = im2col(X, k)
        T("products")
        Z1 = cols1 @ W1.reshape(len(W1), -1).T + b1                     # (N·24·24) × C1
        T("elementwise and loss")
        A1 = np.maximum(Z1, 0).reshape(N, H1, W1o, -1)
        T("pooling")
        P1 = pool(A1)
        T("im2col")
        cols2, (_, H2, W2o) = im2col(P1, k)
        T("products")
        Z2 = cols2 @ W2.reshape(len(W2), -1).T + b2                     # (N·8·8) × C2
        T("elementwise and loss")
        A2 = np.maximum(Z2, 0).reshape(N, H2, W2o, -1)
        T("pooling")
        P2 = pool(A2)
        F2 = P2.transpose(0, 3, 1, 2).reshape(N, -1)                     # flattened as c, h, w (PyTorch's order)
        T("products")
        Z3 = F2 @ W3.T + b3
        T("elementwise and loss")
        A3 = np.maximum(Z3, 0)
        T("products")
        Z4 = A3 @ W4.T + b4
        T("elementwise and loss")
        E = np.exp(Z4 - Z4.max(axis=1, keepdims=True))
        S = E / E.sum(axis=1, keepdims=True)
        loss = -np.log(S[np.arange(N), y]).mean()
        # backward_prop
        dZ4 = S
        dZ4[np.arange(N), y] -= 1
        dZ4 /= N                                                         # (softmax − Y)/m
        T("products")
        dW4, db4 = dZ4.T @ A3, dZ4.sum(axis=0)
        dA3 = dZ4 @ W4
        T("elementwise and loss")
        dZ3 = dA3 * (Z3 > 0)
        T("products")
        dW3, db3 = dZ3.T @ F2, dZ3.sum(axis=0)
        dF2 = dZ3 @ W3
        T("pooling")
        dA2 = unpool(dF2.reshape(P2.shape[0], P2.shape[3], *P2.shape[1:3]).transpose(0, 2, 3, 1), A2, P2)
        T("elementwise and loss")
        dZ2 = (dA2 * (A2 > 0)).reshape(-1, A2.shape[-1])
        T("products")
        dW2, db2 = (dZ2.T @ cols2).reshape(W2.shape), dZ2.sum(axis=0)
        dcols2T = W2.reshape(len(W2), -1).T @ dZ2.T                       # (∂L/∂cols2)ᵀ = W2ᵀ·dZ2ᵀ
        T("col2im")
        dP1 = col2im(dcols2T, P1.shape, k)
        T("pooling")
        dA1 = unpool(dP1, A1, P1)
        T("elementwise and loss")
        dZ1 = (dA1 * (A1 > 0)).reshape(-1, A1.shape[-1])
        T("products")
        dW1, db1 = (dZ1.T @ cols1).reshape(W1.shape), dZ1.sum(axis=0)
        T("")
        return loss, [dW1, db1, dW2, db2, dW3, db3, dW4, db4]

    def step(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        _, grads = self.gradients()
        T("optimizer")
        self.t += 1
        c1, c2 = 1 - beta1 ** self.t, 1 - beta2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            p -= lr / c1 * m / (np.sqrt(v / c2) + eps)
        T.stop()


class Autograd:
    name = "autograd"

    def __init__(self, X, y, params):
        c1, c2 = params[0].shape[0], params[2].shape[0]
        self.model = CNN((c1, c2), (params[4].shape[0],), dtype=X.dtype)
        self.model.load_state_dict(dict(zip(NAMES, params)))
        self.optimizer = optim.Adam(self.model.parameters(), lr=1e-3)
        self.X, self.y = X, y

    def gradients(self):
        loss = F.cross_entropy(self.model(self.X), self.y)
        self.optimizer.zero_grad()
        loss.backward()
        return loss.item(), [p.grad for p in self.model.parameters()]

    def step(self):
        self.gradients()
        self.optimizer.step()


class Torch:
    name = "torch"

    def __init__(self, X, y, params):
        import torch
        from torch import nn
        c1, c2, h = params[0].shape[0], params[2].shape[0], params[4].shape[0]
        self.torch = torch
        self.model = nn.Sequential(nn.Conv2d(1, c1, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(c1, c2, 5), nn.ReLU(),
                                   nn.MaxPool2d(2), nn.Flatten(), nn.Linear(c2 * 16, h), nn.ReLU(), nn.Linear(h, 10))
        names = [n for n, _ in self.model.named_parameters()]
        self.model.load_state_dict({n: torch.from_numpy(p.copy()) for n, p in zip(names, params)})
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)

    def gradients(self):
        loss = self.torch.nn.functional.cross_entropy(self.model(self.X), self.y)
        self.optimizer.zero_grad()
        loss.backward()
        return loss.item(), [p.grad.numpy() for p in self.model.parameters()]

    def step(self):
        self.gradients()
        self.optimizer.step()


# --- timing ------------------------------------------------------------------------------------------------------


def check_gradients(classes, params):
    """Every implementation's loss and gradients against the manual step's, before anything is timed, on random
    images: on MNIST, tied maxima in a pooling window get all the gradient in PyTorch (the first of them) but
    share it here, both valid subgradients; random pixels have no ties."""
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((16, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 16)
    impls = [cls(X, y, params) for cls in classes]
    loss0, ref = impls[0].gradients()
    for impl in impls[1:]:
        loss, grads = impl.gradients()
        worst = max(np.linalg.norm(g - r) / np.linalg.norm(r) for g, r in zip(grads, ref))
        if abs(loss - loss0) > 1e-4 * abs(loss0) or worst > 1e-4:
            raise SystemExit(f"{impl.name}: loss {loss} vs {loss0}, gradients differ by {worst:.1e} (relative)")
        print(f"{impl.name:9s} loss and gradients agree with the manual step (worst relative difference {worst:.1e})")


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the whole run --------------------------------------------------------------------------------------------

# Each child prints "RESULT wall_seconds cpu_seconds peak_rss_mb accuracy". Peak RSS is VmHWM, the process's own.
CHILD_END = """
import resource
cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
with open("/proc/self/status") as f:
    peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
print("RESULT", time.perf_counter() - start, cpu, peak, accuracy)
"""

OURS = """
import sys, time, io, contextlib
from tinygrad_edu.cli import main
start = time.perf_counter()
out = io.StringIO()
with contextlib.redirect_stdout(out):
    assert main(["train", "--model", "cnn", "--quiet", *sys.argv[1:]]) == 0
accuracy = float(next(l.split()[-1] for l in out.getvalue().splitlines() if l.startswith("test accuracy")))
""" + CHILD_END

TORCH_RECIPE = """
import math, sys, time
import numpy as np, torch
from torch import nn
from tinygrad_edu.datasets import load_mnist, pixel_stats, to_float
start = time.perf_counter()
torch.set_num_threads(int(sys.argv[1])); epochs = int(sys.argv[2]); torch.manual_seed(0)
(Xtr, ytr), (Xte, yte) = load_mnist(download=False, progress=False)
mean, std = pixel_stats(Xtr)
prep = lambda X: torch.from_numpy(to_float(X, np.float32, mean=mean, std=std).reshape(-1, 1, 28, 28))
labels = lambda y: torch.from_numpy(y.astype(np.int64))
Xtr, Xte, ytr, yte = prep(Xtr), prep(Xte), labels(ytr), labels(yte)
c1, c2 = (int(c) for c in sys.argv[3].split(","))
model = nn.Sequential(nn.Conv2d(1, c1, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(c1, c2, 5), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(c2 * 16, 128), nn.ReLU(), nn.Linear(128, 10))
steps = epochs * math.ceil(len(ytr) / 128)
opt = torch.optim.Adam(model.parameters(), lr=float(sys.argv[4]))
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
@torch.no_grad()
def predict(X):
    return torch.cat([model(X[i:i + 256]).argmax(1) for i in range(0, len(X), 256)])
for epoch in range(epochs):
    for idx in torch.randperm(len(ytr)).split(128):
        loss = nn.functional.cross_entropy(model(Xtr[idx]), ytr[idx])
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    predict(Xte)                                 # as train evaluates after each epoch
train_accuracy = float((predict(Xtr) == ytr).float().mean())
accuracy = float((predict(Xte) == yte).float().mean())
""" + CHILD_END


def run_child(code: str, args) -> tuple[float, float, float, float]:
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"a whole run failed:\n{out.stderr[-2000:]}")
    return tuple(float(v) for v in lines[-1].split()[1:])


def bench_train(pairs: int, train_args: list[str], threads: int, epochs: int, channels: str, lr: float) -> None:
    runs = {"tinygrad_edu": [], "torch": []}
    for _ in range(pairs):
        runs["tinygrad_edu"].append(run_child(OURS, train_args))
        runs["torch"].append(run_child(TORCH_RECIPE, [threads, epochs, channels, lr]))
    print(f"\nwhole run, {pairs} interleaved pair(s): `train --model cnn {shlex.join(train_args)}` and the same recipe "
          "in PyTorch\n  (wall s, CPU s, peak RSS MB, test accuracy; medians)")
    for name, rs in runs.items():
        wall, cpu, rss, acc = (statistics.median(r[i] for r in rs) for i in range(4))
        print(f"  {name:13s} {wall:8.1f} s  {cpu:8.1f} s CPU  {rss:6.0f} MB  {acc:.4f}")
    ratios = [a[0] / b[0] for a, b in zip(runs["tinygrad_edu"], runs["torch"])]
    print(f"  wall-time ratio tinygrad_edu / torch: {statistics.median(ratios):.2f}×")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 short blocks")
    parser.add_argument("--blocks", type=int, default=7, help="interleaved blocks per implementation (default 7)")
    parser.add_argument("--block-seconds", type=float, default=1.0, help="minimum length of a block (default 1)")
    parser.add_argument("--batch", type=int, default=128, help="images per step (default 128)")
    parser.add_argument("--channels", default="16,32",
                        help="the two convolutions' widths (default 16,32: train --model cnn's)")
    parser.add_argument("--threads", type=int, help="PyTorch's threads (default: OPENBLAS_NUM_THREADS, else 1)")
    parser.add_argument("--train", action="store_true", help="also time whole runs: train --model cnn against torch")
    parser.add_argument("--train-epochs", type=int, default=5,
                        help="epochs of the whole runs (default 5, as train --model cnn)")
    parser.add_argument("--train-pairs", type=int, default=1, help="interleaved pairs of whole runs (default 1)")
    parser.add_argument("--train-lr", type=float, default=2e-3, help="Adam's lr in the whole runs (default 2e-3)")
    args = parser.parse_args(argv)
    if args.quick:
        args.blocks, args.block_seconds = 2, 0.2
    threads = args.threads or int(os.environ.get("OPENBLAS_NUM_THREADS", "1"))
    c1, c2 = (int(c) for c in args.channels.split(","))
    X, y, source = load_batch(args.batch, np.float32)
    params = list(CNN((c1, c2), (128,), seed=0).state_dict().values())

    classes = [Manual, Autograd]
    try:
        import torch
        torch.set_num_threads(threads)
        classes.append(Torch)
        torch_version = torch.__version__
    except ImportError:
        torch_version = "not installed"
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}, "
          f"torch {torch_version}, {threads} thread(s); batch {args.batch} {source} images, float32, "
          f"channels {c1},{c2}")
    check_gradients(classes, params)
    impls = [cls(X, y, params) for cls in classes]
    for impl in impls:
        time_block(impl.step, args.block_seconds / 4)   # warm-up
    times = {impl.name: [] for impl in impls}
    for _ in range(args.blocks):
        for impl in impls:
            times[impl.name].append(time_block(impl.step, args.block_seconds))

    print(f"\n{args.blocks} interleaved blocks of ≥ {args.block_seconds} s; ms per step (median over blocks), ratio to "
          "the manual step (median, min–max over blocks)")
    base = times["manual"]
    for name, ts in times.items():
        ratios = [t / b for t, b in zip(ts, base)]
        print(f"  {name:9s} {statistics.median(ts):8.1f} ms   {statistics.median(ratios):5.2f}× "
              f"({min(ratios):.2f}–{max(ratios):.2f})")
    if "torch" in times:
        ratios = [a / t for a, t in zip(times["autograd"], times["torch"])]
        print(f"  autograd / torch: {statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})")

    manual = impls[0]
    T.on = True
    n = max(3, math.ceil(args.blocks * args.block_seconds * 1e3 / statistics.median(base) / 2))
    for _ in range(n):
        manual.step()
    T.on = False
    total = sum(T.seconds.values())
    print(f"\nwhere the manual step's time goes ({n} steps):")
    for name, s in sorted(T.seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {name:22s} {s / n * 1e3:7.1f} ms  {s / total:5.1%}")
    print(f"\npeak RSS of this process: {peak_rss_mb():.0f} MB")
    if args.train:
        bench_train(args.train_pairs, ["--epochs", str(args.train_epochs), "--channels", args.channels, "--lr",
                                       str(args.train_lr)], threads, args.train_epochs, args.channels, args.train_lr)


if __name__ == "__main__":
    main()
