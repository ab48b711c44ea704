"""An MLP on MNIST with tinygrad_edu.nn and optim, written out as PyTorch users write it: about 98% in 15 s.

    python examples/mnist_mlp.py [--seed 0] [--epochs 15]

The same run as `python -m tinygrad_edu train --model mlp`, written out: same weights, same batches, same
numbers. Inputs standardised by the training pixels' mean and std, 784-256-10 with ReLU, PyTorch's Linear init,
minibatches of 128, Adam at lr 1e-3 annealed to 0 by a cosine over the whole run, 15 epochs, float32.
"""
import argparse
import time

import numpy as np

import tinygrad_edu.nn.functional as F
from tinygrad_edu import datasets, nn, no_grad, optim
from tinygrad_edu.cli.common import non_negative_int, positive_int

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seed", type=non_negative_int, default=0)
parser.add_argument("--epochs", type=positive_int, default=15)
args = parser.parse_args()
start = time.perf_counter()

# Data: uint8 images -> N×784 float32 rows (converted once), integer labels. The inputs are standardised,
# (pixels/255 − mean)/std, by the mean and std of the training pixels: 0.1307 and 0.3081, the numbers of
# transforms.Normalize((0.1307,), (0.3081,)) in PyTorch's MNIST example. The test images take the same pair.
(X_train, y_train), (X_test, y_test) = datasets.load_mnist()
mean, std = datasets.pixel_stats(X_train)
X_train, X_test = (datasets.to_float(X, mean=mean, std=std) for X in (X_train, X_test))
y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)

# The model: weights out×in as in PyTorch, drawn from one seeded generator (weight then bias, layer by layer).
rng = np.random.default_rng(args.seed)
model = nn.Sequential(nn.Linear(784, 256, seed=rng), nn.ReLU(), nn.Linear(256, 10, seed=rng))

batch_size = 128
steps = args.epochs * -(-len(X_train) // batch_size)
optimizer = optim.Adam(model.parameters(), lr=1e-3)
scheduler = optim.CosineAnnealingLR(optimizer, T_max=steps)   # stepped every iteration: lr → 0 at the end
shuffle = np.random.default_rng([args.seed, 1])


@no_grad()
def evaluate(X, y):
    """(mean cross-entropy, accuracy) of the model on X."""
    model.eval()                                 # as in PyTorch: switches Dropout off (this model has none)
    logits = model(X)
    model.train()
    return F.cross_entropy(logits, y).item(), float(np.mean(logits.numpy().argmax(axis=1) == y))


for epoch in range(1, args.epochs + 1):
    loss_sum, correct = 0.0, 0
    for Xb, yb in datasets.minibatches(X_train, y_train, batch_size, seed=shuffle):
        logits = model(Xb)                       # Xb @ W1.T + b1 -> ReLU -> @ W2.T + b2
        loss = F.cross_entropy(logits, yb)       # mean over the batch
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_sum += loss.item() * len(yb)
        correct += int(np.sum(logits.numpy().argmax(axis=1) == yb))
    print(f"epoch {epoch:2d}/{args.epochs}  loss {loss_sum / len(X_train):.4f}  "
          f"train acc {correct / len(X_train):.4f}  test acc {evaluate(X_test, y_test)[1]:.4f}  "
          f"{time.perf_counter() - start:5.1f}s")

final_loss, train_accuracy = evaluate(X_train, y_train)
print(f"train accuracy {train_accuracy:.4f}  test accuracy {evaluate(X_test, y_test)[1]:.4f}  "
      f"final loss {final_loss:.4f}  {time.perf_counter() - start:.1f}s in all")
