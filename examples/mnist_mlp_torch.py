"""examples/mnist_mlp.py's run written in PyTorch, for docs/mlp.md's reference row: the same recipe, torch's own RNG.

    python examples/mnist_mlp_torch.py [--seed 0] [--epochs 15]

The same data (standardised by the training pixels' mean and std, loaded by tinygrad_edu.datasets), model,
optimizer, schedule and batches of 128 as `python -m tinygrad_edu train --model mlp`. torch draws the weights
and the shuffles from torch.manual_seed(seed), so a seed here is not the same run as the same seed there: the
two agree in distribution, not run for run. Without torch it says how to install it and exits 0.
"""
import argparse
import sys
import time

import numpy as np

from tinygrad_edu import datasets
from tinygrad_edu.cli.common import non_negative_int, positive_int

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seed", type=non_negative_int, default=0)
parser.add_argument("--epochs", type=positive_int, default=15)
args = parser.parse_args()

try:
    import torch
    from torch import nn, optim
    from torch.nn import functional as F
except ModuleNotFoundError:
    print("PyTorch is not installed (pip install torch): nothing to compare with.")
    sys.exit(0)

start = time.perf_counter()

(X_train, y_train), (X_test, y_test) = datasets.load_mnist()
mean, std = datasets.pixel_stats(X_train)
X_train, X_test = (torch.from_numpy(datasets.to_float(X, mean=mean, std=std)) for X in (X_train, X_test))
y_train, y_test = (torch.from_numpy(y.astype(np.int64)) for y in (y_train, y_test))

torch.manual_seed(args.seed)
model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
batch_size = 128
steps = args.epochs * -(-len(X_train) // batch_size)
optimizer = optim.Adam(model.parameters(), lr=1e-3)
scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)   # stepped every iteration


@torch.no_grad()
def accuracy(X, y):
    return (model(X).argmax(dim=1) == y).double().mean().item()


for epoch in range(1, args.epochs + 1):
    order = torch.randperm(len(X_train))
    for i in range(0, len(X_train), batch_size):
        batch = order[i:i + batch_size]
        loss = F.cross_entropy(model(X_train[batch]), y_train[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    print(f"epoch {epoch:2d}/{args.epochs}  test acc {accuracy(X_test, y_test):.4f}  "
          f"{time.perf_counter() - start:5.1f}s")

print(f"train accuracy {accuracy(X_train, y_train):.4f}  test accuracy {accuracy(X_test, y_test):.4f}  "
      f"torch {torch.__version__}  {time.perf_counter() - start:.1f}s in all")
