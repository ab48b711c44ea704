"""Times a training step of nanoGPT's CPU recipe on tiny Shakespeare: tinygrad_edu's GPT against the same in torch.

    python benchmarks/gpt_step.py              # 4 layers, 4 heads, embedding 128, block 64, batch 12, float32
    python benchmarks/gpt_step.py --quick      # a smoke run: 2 rounds of 2 steps

A step is what `train --data shakespeare --model gpt` runs: forward, cross-entropy, backward, clip_grad_norm_ to
1.0, AdamW (β₂ 0.99, weight decay 0.1 on the matrices) and the warm-up + cosine schedule. The torch twin is the
one examples/port_to_pytorch.py checks to float64 rounding, started from the same weights, fed the same batches,
with torch's threads set to numpy's cores (--threads). Rounds are interleaved (ours, torch, torch, ours, ...), so
drift hits both alike; it prints each one's median ms/step, the median of the per-round ratios ours/torch, and
the load average at start and end (publish only figures taken below 1). The issue's goal is ≤ 1.5× torch.
"""
from __future__ import annotations

import argparse
import os
import platform
import runpy
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from tinygrad_edu import Tensor, optim, text
from tinygrad_edu.models.gpt import GPT
from tinygrad_edu.nn import functional as F
from tinygrad_edu.nn.utils import clip_grad_norm_

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "port_to_pytorch.py"


def batches(ids, block, batch, count, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        starts = rng.integers(0, len(ids) - block - 1, batch)
        out.append((np.stack([ids[s:s + block] for s in starts]),
                    np.stack([ids[s + 1:s + block + 1] for s in starts])))
    return out


def ours_stepper(model, V):
    opt = optim.AdamW(param_groups(model), lr=1e-3, betas=(0.9, 0.99))
    schedule = optim.WarmupCosineLR(opt, 100, 2000, 1e-4)

    def step(x, y):
        loss = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        schedule.step()
        return loss.item()
    return step


def torch_stepper(torch, model, V):
    opt = torch.optim.AdamW(param_groups(model), lr=1e-3, betas=(0.9, 0.99))
    # the same lr at every step: the factor LambdaLR wants, read off our schedule (on a stand-in optimizer)
    ours = optim.WarmupCosineLR(optim.SGD([Tensor([0.0], requires_grad=True)], lr=1e-3), 100, 2000, 1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: ours.lr_at(1e-3, t) / 1e-3)

    def step(x, y):
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)).reshape(-1, V),
                                                 torch.from_numpy(y).reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        schedule.step()
        return loss.item()
    return step


def param_groups(model):
    params = list(model.parameters())
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.1},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def timed(step, data) -> float:
    start = time.perf_counter()
    for x, y in data:
        step(x, y)
    return (time.perf_counter() - start) / len(data) * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="interleaved pairs of rounds (default 10)")
    parser.add_argument("--steps", type=int, default=10, help="steps per round (default 10)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch's threads (default: all cores)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 rounds of 2 steps")
    args = parser.parse_args()
    rounds, steps = (2, 2) if args.quick else (args.rounds, args.steps)
    try:
        import torch
    except ImportError:
        print("gpt_step.py: PyTorch is not installed, so there is no twin to time against (pip install torch)")
        return 0
    torch.set_num_threads(args.threads)
    data = text.load_text("shakespeare")
    tokenizer = text.CharTokenizer.from_data(data)
    V, ids = tokenizer.vocab_size, tokenizer.encode(data.train)
    ours = GPT(tokenizer, 4, 4, 128, 64, seed=0)
    theirs = runpy.run_path(str(EXAMPLE))["torch_gpt"](torch, V, 4, 4, 128, 64)
    theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()}, strict=False)
    step_a, step_b = ours_stepper(ours, V), torch_stepper(torch, theirs, V)
    warm = batches(ids, 64, 12, 3, seed=1)
    for x, y in warm:   # the same first losses, to float32 rounding, before any timing (and the first steps)
        a, b = step_a(x, y), step_b(x, y)
        if abs(a - b) > 1e-4 * abs(b):
            print(f"gpt_step.py: the two models disagree (loss {a} against torch's {b})", file=sys.stderr)
            return 1
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}, "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads; python {platform.python_version()}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ms_a, ms_b, ratio = [], [], []
    for r in range(rounds):
        data_r = batches(ids, 64, 12, steps, seed=10 + r)
        if r % 2 == 0:
            a = timed(step_a, data_r)
            b = timed(step_b, data_r)
        else:   # the order swapped every round
            b = timed(step_b, data_r)
            a = timed(step_a, data_r)
        ms_a.append(a)
        ms_b.append(b)
        ratio.append(a / b)
    print(f"{rounds} interleaved rounds of {steps} steps (4 layers, 4 heads, embedding 128, block 64, batch 12, "
          "float32)")
    print(f"tinygrad_edu  {statistics.median(ms_a):7.1f} ms/step (median)")
    print(f"torch         {statistics.median(ms_b):7.1f} ms/step (median)")
    print(f"ours/torch    {statistics.median(ratio):7.2f}× (median of the rounds' ratios; min {min(ratio):.2f}, "
          f"max {max(ratio):.2f}); goal ≤ 1.5×")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
