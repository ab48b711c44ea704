"""The same MLP, CNN and normalised net in tinygrad_edu and in PyTorch, side by side; checks they compute the same.

    python examples/port_to_pytorch.py

Porting is renaming: `tinygrad_edu.nn` ↔ `torch.nn`, `tinygrad_edu.optim` ↔ `torch.optim`, numpy arrays ↔
tensors. From the same weights and the same batch, the two give the same loss, the same gradients and the
same parameters after an Adam step (to float64 rounding), BatchNorm the same running statistics. Uses a batch of
the MNIST bundled with the package (random pixels if MNIST is nowhere to be found). Without torch it prints how to
install it and exits 0.
"""
import argparse
import sys

import numpy as np

import tinygrad_edu.nn.functional as F
from tinygrad_edu import datasets, nn, optim

# The models, written once for both libraries: porting is renaming, so the same code builds either, given its `nn`
# module and its float64 dtype.


def mlp(nn, dtype):
    return nn.Sequential(nn.Linear(784, 256, dtype=dtype), nn.ReLU(), nn.Linear(256, 10, dtype=dtype))


def cnn(nn, dtype):
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5, padding=1, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 10, dtype=dtype))


def batchnorm_mlp(nn, dtype):
    return nn.Sequential(
        nn.Linear(784, 64, bias=False, dtype=dtype), nn.BatchNorm1d(64, dtype=dtype), nn.ReLU(),
        nn.Linear(64, 10, dtype=dtype))


def embedding_net(nn, dtype):
    return nn.Sequential(
        nn.Embedding(16, 4, dtype=dtype), nn.Flatten(),
        nn.Linear(784 * 4, 64, dtype=dtype), nn.LayerNorm(64, dtype=dtype), nn.ReLU(),
        nn.Linear(64, 10, dtype=dtype))


# One Adam step in each library. The two functions are the same code line for line: only the imports and the
# numpy <-> tensor edges differ.


def tinygrad_edu_step(build, inputs, y, state):
    model = build(nn, np.float64)
    model.load_state_dict(state)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    logits = model(inputs)
    loss = F.cross_entropy(logits, y)
    optimizer.zero_grad()
    loss.backward()
    grads = {n: p.grad.copy() for n, p in model.named_parameters()}
    optimizer.step()
    return loss.item(), grads, model.state_dict()


def pytorch_step(build, inputs, y, state):
    import torch
    from torch import nn, optim
    from torch.nn import functional as F

    model = build(nn, torch.float64)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    logits = model(torch.from_numpy(inputs))
    loss = F.cross_entropy(logits, torch.from_numpy(y))
    optimizer.zero_grad()
    loss.backward()
    grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    optimizer.step()
    return loss.item(), grads, {k: v.numpy() for k, v in model.state_dict().items()}


def levels(X):
    """Each pixel's grey level in 16 steps (0..15): the indices the Embedding looks up."""
    return np.minimum((X * 16).astype(np.int64), 15)


def batch(m=128):
    try:
        (X, y), _ = datasets.load_mnist(download=False, progress=False)
        print(f"a batch of {m} real MNIST training images")
    except datasets.DatasetError:
        rng = np.random.default_rng(0)
        X, y = rng.integers(0, 256, (m, 28, 28), dtype=np.uint8), rng.integers(0, 10, m)
        print(f"a batch of {m} random images (set {datasets.ENV_VAR} to a folder with MNIST for real digits)")
    return datasets.to_float(X[:m], np.float64), y[:m].astype(np.int64)


def compare(title, build, inputs, y, start) -> float:
    """Runs both steps from the same weights and batch, prints each quantity's difference; the worst relative one."""
    loss_a, grads_a, after_a = tinygrad_edu_step(build, inputs, y, start)
    loss_b, grads_b, after_b = pytorch_step(build, inputs, y, start)
    rows = [("loss", np.array(loss_a), np.array(loss_b))]
    rows += [(f"∂L/∂{n}", grads_a[n], grads_b[n]) for n in grads_a]
    rows += [(f"{n} after Adam" if n in grads_a else f"{n} after the step", after_a[n], after_b[n]) for n in after_a]
    print(f"\n{title}\n{'quantity':38s} {'shape':>14s} {'max |ours − torch|':>19s} {'relative':>10s}")
    worst = 0.0
    for name, a, b in rows:
        diff = float(np.max(np.abs(a - b)))
        rel = diff / max(float(np.max(np.abs(b))), 1e-300)
        worst = max(worst, rel)
        print(f"{name:38s} {str(a.shape):>14s} {diff:19.3e} {rel:10.1e}")
    return worst


def main() -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed, so there is nothing to compare against; read the two versions side by side\n"
              "in this file, or install it (pip install torch) and run this script again.")
        return 0
    X, y = batch()
    rng = np.random.default_rng(3)
    start = {   # the same weights for both: drawn by tinygrad_edu's own init
        "mlp": nn.Sequential(nn.Linear(784, 256, dtype=np.float64, seed=0), nn.ReLU(),
                             nn.Linear(256, 10, dtype=np.float64, seed=0)).state_dict(),
        "cnn": nn.Sequential(nn.Conv2d(1, 8, 5, dtype=np.float64, seed=0), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(8, 16, 5, padding=1, dtype=np.float64, seed=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(16 * 5 * 5, 10, dtype=np.float64, seed=2)).state_dict(),
        "batchnorm": nn.Sequential(nn.Linear(784, 64, bias=False, dtype=np.float64, seed=rng),
                                   nn.BatchNorm1d(64, dtype=np.float64), nn.ReLU(),
                                   nn.Linear(64, 10, dtype=np.float64, seed=rng)).state_dict(),
        "embedding": nn.Sequential(nn.Embedding(16, 4, dtype=np.float64, seed=rng), nn.Flatten(),
                                   nn.Linear(784 * 4, 64, dtype=np.float64, seed=rng),
                                   nn.LayerNorm(64, dtype=np.float64), nn.ReLU(),
                                   nn.Linear(64, 10, dtype=np.float64, seed=rng)).state_dict()}
    worst = max(compare("MLP 784-256-10", mlp, X, y, start["mlp"]),
                compare("CNN conv5(8)-pool-conv5(16, padding 1)-pool-linear(400, 10)", cnn,
                        X.reshape(-1, 1, 28, 28), y, start["cnn"]),
                compare("MLP linear(784, 64, no bias)-batchnorm-relu-linear(64, 10)", batchnorm_mlp, X, y,
                        start["batchnorm"]),
                compare("grey levels: embedding(16, 4)-flatten-linear(3136, 64)-layernorm-relu-linear(64, 10)",
                        embedding_net, levels(X), y, start["embedding"]))
    same = worst <= 1e-10
    print("\nsame loss, gradients and step (float64)" if same else "\nMISMATCH: the two versions differ")
    return 0 if same else 1


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()   # no options: refuse any
    sys.exit(main())
