"""Times one training step of the tutorial's 784-10-10 network: autograd against the hand-written numpy baseline.

    python benchmarks/step.py            # m = 64, 1000, 60000; float32 and float64; plus the whole train run
    python benchmarks/step.py --quick    # a smoke run, well under 30 s
    python benchmarks/step.py --against dcf3ce5          # the tutorial step at revision dcf3ce5 against this tree's
    python benchmarks/step.py --against HEAD~3 --quick   # a smoke run of that: a few seconds

Every implementation starts from the same weights (manual.init_params) and has its gradients checked against
the hand-derived ones before any timing. Timing runs in interleaved blocks (manual, autograd, torch, manual,
...), each at least --block-seconds long, so drift on a shared machine hits all alike; the table shows medians
over blocks, the ratio to the manual step (median of the per-block ratios) and the spread of that ratio.
PyTorch joins when it is importable, with the same thread count as numpy's BLAS (--threads).

--against REV times tutorial.gradient_descent_step (float32, params from tutorial.init_params(0)) of the package
at git revision REV (old: `git archive REV tinygrad_edu` into a temporary folder, removed at the end) against
the working tree's (new: the folder that holds benchmarks/), each in its own worker process
(benchmarks/step_worker.py, imported through PYTHONPATH alike, same BLAS thread settings as ours). Both are fed
the same data; one step's loss, gradients and updated weights must agree to 1e-6 (relative) before any timing.
Blocks alternate old, new, new, old, ... (--blocks pairs, default 20); per m: each one's median, the median of
the per-pair new/old ratios, their min–max and quartiles. The target at m = 64 and 1000 is a median new/old
≤ 1.03 on an idle machine (the load average is printed at start and end); m = 60000 is reported only.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


# ---- --against REV: the tutorial step of another revision of the package against the working tree's ----

ROOT = Path(__file__).resolve().parent.parent   # the working tree: the folder that holds benchmarks/
WORKER = Path(__file__).resolve().parent / "step_worker.py"
AGAINST_TARGET = 1.03   # median new/old at m = 64 and 1000, on an idle machine; m = 60000 is reported only
# NOTE: OpenBLAS's threads spin for a while (~0.1 s) after a call before they sleep; a worker timed while the
# other's threads still spin loses its BLAS threads' cores on 2 cores (blocks of 70 ms per 1 ms step were seen)
SETTLE_SECONDS = 0.2
CHECK_TOL = 1e-6        # one step's loss, gradients and updated params: relative difference allowed


class AgainstError(Exception):
    """A failure of --against that ends the run with one error line and exit status 2."""


def _git(*args) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, check=False)
    except FileNotFoundError:
        raise AgainstError("git is not installed (needed to check out the revision)") from None


def resolve_revision(rev: str) -> str:
    """REV's full commit id, or AgainstError when this is no git checkout or REV names no commit of it."""
    top = _git("rev-parse", "--show-toplevel")
    if top.returncode != 0 or Path(top.stdout.decode().strip()).resolve() != ROOT:
        raise AgainstError(f"{ROOT} is not a git checkout")
    out = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if rev.startswith("-") or out.returncode != 0:
        raise AgainstError(f"unknown revision {rev!r} (not a commit of {ROOT})")
    commit = out.stdout.decode().strip()
    if _git("cat-file", "-e", f"{commit}:tinygrad_edu/tutorial.py").returncode != 0:
        raise AgainstError(f"revision {rev!r} ({commit[:10]}) has no tinygrad_edu/tutorial.py")
    return commit


def extract_package(commit: str, dest: Path) -> None:
    """`git archive COMMIT tinygrad_edu | tar -x -C dest`, in Python (tarfile's safe 'data' filter when present)."""
    import io
    import tarfile
    out = _git("archive", "--format=tar", commit, "tinygrad_edu")
    if out.returncode != 0:
        raise AgainstError(f"git archive {commit[:10]} failed: {out.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
        tar.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))


class StepWorker:
    """One version of the package in its own process (benchmarks/step_worker.py), driven over pipes."""

    def __init__(self, label: str, package_root: Path):
        self.label = label
        env = dict(os.environ)   # the same BLAS thread settings as ours: only PYTHONPATH changes
        env["PYTHONPATH"] = os.pathsep.join([str(package_root), *filter(None, [env.get("PYTHONPATH")])])
        self.proc = subprocess.Popen([sys.executable, str(WORKER), str(package_root)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.info = self._answer()

    def _answer(self):
        try:
            status, value = pickle.load(self.proc.stdout)
        except (EOFError, pickle.UnpicklingError):
            raise AgainstError(f"the {self.label} worker died (exit status {self.proc.wait()})") from None
        if status != "ok":
            raise AgainstError(f"{self.label}: {value}")
        return value

    def request(self, *message):
        try:
            pickle.dump(message, self.proc.stdin)
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise AgainstError(f"the {self.label} worker died (exit status {self.proc.wait()})") from None
        return self._answer()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.request("quit")
            except (AgainstError, OSError):
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _relative(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), np.finfo(np.float64).tiny))


def compare_steps(old: dict, new: dict) -> list[str]:
    """What differs by more than CHECK_TOL between the two versions' one step (empty: the same step)."""
    diffs = []
    if old["dtypes"] != new["dtypes"]:
        diffs.append(f"parameter dtypes {old['dtypes']} against {new['dtypes']}")
    for name in ("loss", "step_loss"):
        err = _relative(new[name], old[name])
        if not err <= CHECK_TOL:
            diffs.append(f"{name} {new[name]!r} against {old[name]!r} ({err:.2e} relative)")
    for kind in ("grads", "after"):
        for p, got, want in zip(("W1", "b1", "W2", "b2"), new[kind], old[kind]):
            err = _relative(got, want) if got.shape == want.shape else float("inf")
            if not err <= CHECK_TOL:
                diffs.append(f"{'d' + p if kind == 'grads' else p + ' after the step'} by {err:.2e} "
                             "(normwise relative)")
    return diffs


def format_against_row(m, old_s, new_s, judge: bool = True) -> str:
    """One table row; `judge` False (a smoke run, or fewer than 20 pairs): the target is named, not judged."""
    ratios = [n / o for n, o in zip(new_s, old_s)]
    q1, med, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    if m in (64, 1000) and not judge:
        verdict = f"target ≤ {AGAINST_TARGET}: no verdict (smoke run or < 20 pairs)"
    elif m in (64, 1000):
        verdict = f"target ≤ {AGAINST_TARGET}: {'met' if med <= AGAINST_TARGET else 'NOT met'}"
    else:
        verdict = "reported only (no target)"
    return (f"{m:>6} | float32 | {statistics.median(old_s) * 1e3:9.3f} | {statistics.median(new_s) * 1e3:9.3f} | "
            f"{med:5.3f}× | {min(ratios):.3f}–{max(ratios):.3f} | {q1:.3f}–{q3:.3f} | {verdict}")


def _load(stamp: str) -> tuple[float, float, float]:
    load = os.getloadavg()
    print(f"load average (1, 5, 15 min) at {stamp}: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    return load


def against(args, sizes) -> int:
    """`--against REV`: old (REV) and new (the working tree) alternately, one worker process each."""
    if args.blocks < 2:
        print("step.py: error: --against needs at least 2 blocks (--blocks)", file=sys.stderr)
        return 2
    workers = []
    try:
        commit = resolve_revision(args.against)
        with tempfile.TemporaryDirectory(prefix="step-against-") as tmp:
            tmp = Path(tmp)
            extract_package(commit, tmp / "old")
            head = _git("rev-parse", "--short", "HEAD").stdout.decode().strip()
            dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", "tinygrad_edu").stdout.strip())
            print(f"old: {args.against} = {commit[:10]} (tinygrad_edu from git archive); new: the working tree "
                  f"{ROOT} (HEAD {head}{', with uncommitted changes to tinygrad_edu' if dirty else ''})")
            old = StepWorker(f"old ({args.against})", tmp / "old")
            workers.append(old)
            new = StepWorker("new (working tree)", ROOT)
            workers.append(new)
            threads = thread_settings_line(old.info["threads"], new.info["threads"])
            print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; numpy {old.info['numpy']}; "
                  f"python {platform.python_version()}; {threads}")
            load_start = _load("start")
            if load_start[0] >= 1:
                print(f"WARNING: the 1-minute load average is {load_start[0]:.2f} (≥ 1): timings on a loaded machine "
                      "are not comparable", flush=True)
            print(f"\n{args.blocks} pairs of blocks, old and new alternately (the order swapped every pair), each "
                  f"≥ {args.block_seconds} s;\nms per step (median over blocks); the per-pair ratio new/old: median, "
                  f"min–max, quartiles.\nTarget: median new/old ≤ {AGAINST_TARGET} at m = 64 and 1000 on an idle "
                  "machine; m = 60000 is reported only.\n")
            print("     m |   dtype |    old ms |    new ms | new/old | min–max     | quartiles   | target")
            results = []
            for m in sizes:
                results.append(against_size(m, old, new, args, tmp, commit))
                print(format_against_row(m, results[-1]["old_s"], results[-1]["new_s"],
                                         judge=not args.quick and args.blocks >= 20), flush=True)
            print()
            load_end = _load("end")
    except AgainstError as e:
        print(f"step.py: error: --against {args.against}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("step.py: interrupted", file=sys.stderr)
        return 130
    finally:
        for w in workers:
            w.close()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"against": {"rev": args.against, "commit": commit, "new": str(ROOT), "head": head,
                                   "uncommitted_changes": dirty, "cpu": cpu_name(), "numpy": old.info["numpy"],
                                   "threads": old.info["threads"], "blocks": args.blocks,
                                   "block_seconds": args.block_seconds, "load_start": load_start,
                                   "load_end": load_end, "target": AGAINST_TARGET, "steps": results}}, f, indent=1)
    return 0


def thread_settings_line(old: dict, new: dict) -> str:
    if old != new or old != {k: os.environ.get(k) for k in old}:
        raise AgainstError(f"the workers' BLAS thread settings differ: {old} against {new}")
    given = [f"{k}={v}" for k, v in old.items() if v is not None]
    return "BLAS threads: " + (", ".join(given) if given else "the library's default (no *_NUM_THREADS set)")


def against_size(m, old, new, args, tmp: Path, commit: str) -> dict:
    X, Y, source = load_data(m, np.float32)
    paths = [str(tmp / f"X{m}.npy"), str(tmp / f"Y{m}.npy")]
    np.save(paths[0], X)
    np.save(paths[1], Y)
    del X, Y
    checks = [w.request("setup", m, "float32", *paths) for w in (old, new)]
    for p in paths:
        os.remove(p)
    diffs = compare_steps(*checks)
    if diffs:
        raise AgainstError(f"at m = {m} float32 one step differs from {commit[:10]}'s: " + "; ".join(diffs)
                           + f" (above {CHECK_TOL:g}): a changed step is not a speed comparison")
    for w in (old, new):
        w.request("block", args.block_seconds / 4)   # warm-up
    times = {"old": [], "new": []}
    for i in range(args.blocks):
        for label, w in ((("old", old), ("new", new)) if i % 2 == 0 else (("new", new), ("old", old))):
            time.sleep(SETTLE_SECONDS)
            times[label].append(w.request("block", args.block_seconds)[0])
    ratios = [n / o for n, o in zip(times["new"], times["old"])]
    return {"m": m, "dtype": "float32", "data": source, "old_s": times["old"], "new_s": times["new"],
            "ratios": ratios, "median_ratio": statistics.median(ratios),
            "target": AGAINST_TARGET if m in (64, 1000) else None}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sizes, short blocks")
    parser.add_argument("--blocks", type=int,
                        help="interleaved blocks per implementation (default 5; 20 with --against)")
    parser.add_argument("--block-seconds", type=float, help="minimum length of a block (default 0.5)")
    parser.add_argument("--sizes", help="batch sizes m (default 64,1000,60000)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch's threads (default: all cores)")
    parser.add_argument("--train-pairs", type=int, default=3, help="interleaved pairs of whole train runs (default 3)")
    parser.add_argument("--no-train", action="store_true", help="skip timing the whole train command")
    parser.add_argument("--against", metavar="REV",
                        help="time the tutorial step of the package at git revision REV against the working tree's")
    parser.add_argument("--json", help="also write the measurements to this JSON file")
    args = parser.parse_args(argv)
    # NOTE: --quick sets only what was not given: `--quick --sizes 64` runs m = 64 alone
    quick = (3, 0.05, "64,1000") if args.against else (2, 0.1, "64,1000")
    full = (20 if args.against else 5, 0.5, "64,1000,60000")
    for name, value in zip(("blocks", "block_seconds", "sizes"), quick if args.quick else full):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.quick:
        args.train_pairs = 1
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.against is not None:
        return against(args, sizes)
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
    sys.exit(main())
