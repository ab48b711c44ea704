"""Times one training step of the text models (char-mlp, char-rnn) against the same models written in PyTorch.

    python benchmarks/text_step.py            # 20 interleaved pairs of blocks of ≥ 0.5 s each: about 1 minute
    python benchmarks/text_step.py --quick    # a smoke run: a few seconds

Each step is the default recipe's: forward on a batch of the names' training split, the cross-entropy, backward,
Adam's update. The torch twins have the same parameters (copied in before timing, and one step's loss must agree
to 1e-5) and the same thread count as numpy's BLAS. The RNN's twin is `UnfusedRNN`: the same per-step Python loop
(h_t = tanh(x_t·W_ihᵀ + b_ih + h_{t−1}·W_hhᵀ + b_hh)) written with torch ops, not torch.nn.RNN's fused C++
kernel, so the ratio compares the frameworks' per-op costs on the same graph. Blocks alternate (ours, torch,
torch, ours, ...); the table shows each one's median step time and the median of the per-pair ratios. Run it on an
idle machine: it prints the load average at start and end.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from tinygrad_edu import optim, text
from tinygrad_edu.models.text import CharMLP, CharRNN
from tinygrad_edu.training.text import TEXT_DEFAULTS, batches, loss, take


def ours(model_name: str, data, tok, rng_seed=0):
    cfg = TEXT_DEFAULTS[model_name]
    model = CharMLP(tok, cfg["context"], cfg["embedding"], cfg["hidden"], seed=0) if model_name == "mlp" else \
        CharRNN(tok, cfg["embedding"], cfg["hidden"], seed=0)
    rows = batches(model, text.sequences(data.train, tok))
    opt = optim.Adam(model.parameters(), lr=cfg["lr"])
    rng = np.random.default_rng(rng_seed)
    n = len(rows[1]) if isinstance(rows, tuple) else len(rows)

    def step():
        value = loss(model, take(rows, rng.integers(0, n, cfg["batch_size"])))
        opt.zero_grad()
        value.backward()
        opt.step()
        return value.item()
    return model, rows, step


def twin(model_name: str, model, rows, torch, rng_seed=0):
    """The same model and step in torch, from the same parameters."""
    F = torch.nn.functional
    cfg = TEXT_DEFAULTS[model_name]
    params = {k: torch.tensor(v.data, requires_grad=True) for k, v in model.named_parameters()}
    opt = torch.optim.Adam(list(params.values()), lr=cfg["lr"])
    rng = np.random.default_rng(rng_seed)

    if model_name == "mlp":
        X, y = (torch.tensor(a) for a in rows)

        def forward(index):
            emb = params["C.weight"][X[index]].reshape(len(index), -1)
            h = torch.tanh(emb @ params["layer1.weight"].T + params["layer1.bias"])
            return F.cross_entropy(h @ params["layer2.weight"].T + params["layer2.bias"], y[index])
        n = len(y)
    else:
        inputs, targets, mask = (torch.tensor(a) for a in (rows.inputs, rows.targets, rows.mask))

        def forward(index):   # UnfusedRNN: the per-step loop of nn/recurrent.py, in torch ops
            x = params["C.weight"][inputs[index]]                            # N × T × E
            xw = x @ params["rnn.weight_ih_l0"].T + (params["rnn.bias_ih_l0"] + params["rnn.bias_hh_l0"])
            h = torch.zeros(len(index), params["rnn.weight_hh_l0"].shape[0])
            out = []
            for t in range(x.shape[1]):
                h = torch.tanh(xw[:, t] + h @ params["rnn.weight_hh_l0"].T)
                out.append(h)
            logits = torch.stack(out, 1) @ params["head.weight"].T + params["head.bias"]
            m = mask[index].reshape(-1)
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1])[m], targets[index].reshape(-1)[m])
        n = len(inputs)

    def step():
        value = forward(torch.tensor(rng.integers(0, n, cfg["batch_size"])))
        opt.zero_grad()
        value.backward()
        opt.step()
        return value.item()
    return step


def block(step, seconds: float) -> float:
    """The median step time (ms) of steps run for at least `seconds`."""
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 3:
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 pairs of short blocks")
    parser.add_argument("--blocks", type=int, default=20, help="pairs of blocks (default: 20)")
    args = parser.parse_args(argv)
    import torch
    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
    torch.set_num_threads(threads)
    print(f"{os.cpu_count()} CPUs, numpy {np.__version__}, torch {torch.__version__} ({threads} threads); load "
          f"average {os.getloadavg()[0]:.2f} at start")
    data = text.load_text("names")
    tok = text.CharTokenizer.from_data(data)
    pairs, seconds = (2, 0.1) if args.quick else (args.blocks, 0.5)
    print(f"{'model':<10} {'ours ms':>9} {'torch ms':>9} {'ours/torch':>11}  (median of {pairs} pairs)")
    for name in ("mlp", "rnn"):
        model, rows, step_ours = ours(name, data, tok)
        step_torch = twin(name, model, rows, torch)
        first_ours, first_torch = step_ours(), step_torch()    # the same batch, the same parameters
        if abs(first_ours - first_torch) > 1e-5 * abs(first_torch):
            raise SystemExit(f"{name}: the first step's losses differ ({first_ours} against {first_torch})")
        a, b, ratios = [], [], []
        for i in range(pairs):
            order = ((step_ours, a), (step_torch, b)) if i % 2 == 0 else ((step_torch, b), (step_ours, a))
            for step, into in order:
                into.append(block(step, seconds))
            ratios.append(a[-1] / b[-1])
        twin_name = "" if name == "mlp" else " (UnfusedRNN)"
        print(f"{name:<10} {statistics.median(a):>9.3f} {statistics.median(b):>9.3f} "
              f"{statistics.median(ratios):>10.2f}×{twin_name}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
