"""Logistic regression on two MNIST digits (3 against 8) with binary_cross_entropy_with_logits: its test accuracy.

    python examples/mnist_logistic.py [--digits 3 8] [--epochs 10] [--lr 0.1] [--seed 0] [--quick]

One Linear(784, 1): the logit x = w·p + b of "this image is the second digit", trained on the training images of
the two digits only (pixels p/255) by SGD on minibatches of 64. The loss is F.binary_cross_entropy_with_logits,
max(x, 0) − x·y + log(1 + e^−|x|), stable for any logit, whose gradient is σ(x) − y: no sigmoid is taken in the
forward pass. The test accuracy is on the test images of the two digits (x > 0 predicts the second). --quick
trains one epoch on 2,000 images (for CI).
"""
import argparse
import sys
import time

import numpy as np

import tinygrad_edu.nn.functional as F
from tinygrad_edu import datasets, nn, no_grad, optim
from tinygrad_edu.cli.common import digit, non_negative_int, positive_float, positive_int


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=digit, nargs=2, default=[3, 8], metavar=("NEGATIVE", "POSITIVE"))
    parser.add_argument("--epochs", type=positive_int, default=10)
    parser.add_argument("--lr", type=positive_float, default=0.1, help="SGD's learning rate")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--quick", action="store_true", help="one epoch on 2,000 images (a smoke run)")
    args = parser.parse_args(argv)
    if args.digits[0] == args.digits[1]:
        parser.error(f"--digits must be two different digits, got {args.digits[0]} twice")
    return args


def two_digits(images, labels, digits):
    """The images of the two digits as N×784 rows, and y = 1.0 for the second digit, 0.0 for the first."""
    keep = np.isin(labels, digits)
    return datasets.to_float(images[keep]), (labels[keep] == digits[1]).astype(np.float32)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    (X_train, y_train), (X_test, y_test) = datasets.load_mnist()
    X_train, y_train = two_digits(X_train, y_train, args.digits)
    X_test, y_test = two_digits(X_test, y_test, args.digits)
    if args.quick:
        X_train, y_train = X_train[:2000], y_train[:2000]
        args.epochs = 1
    if args.batch_size > len(X_train):
        print(f"mnist_logistic.py: error: --batch-size {args.batch_size} is more than the {len(X_train)} training "
              "images", file=sys.stderr)
        return 2
    model = nn.Linear(784, 1, seed=args.seed)
    optimizer = optim.SGD(model.parameters(), lr=args.lr)
    shuffle = np.random.default_rng([args.seed, 1])

    @no_grad()
    def evaluate(X, y):
        logits = model(X).reshape(-1)
        return F.binary_cross_entropy_with_logits(logits, y).item(), float(np.mean((logits.numpy() > 0) == (y == 1)))

    neg, pos = args.digits
    print(f"logistic regression, {pos} (y = 1) against {neg} (y = 0): {len(X_train)} training images, "
          f"{len(X_test)} test images, SGD lr {args.lr}, batches of {args.batch_size}, seed {args.seed}")
    print(f"{'epoch':>5}  {'train loss':>10}  {'test loss':>9}  {'test acc':>8}  {'time':>6}")
    for epoch in range(1, args.epochs + 1):
        total = 0.0
        for Xb, yb in datasets.minibatches(X_train, y_train, args.batch_size, seed=shuffle):
            loss = F.binary_cross_entropy_with_logits(model(Xb).reshape(-1), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(yb)
        test_loss, test_acc = evaluate(X_test, y_test)
        print(f"{epoch:5d}  {total / len(X_train):10.4f}  {test_loss:9.4f}  {test_acc:8.4f}  "
              f"{time.perf_counter() - start:5.1f}s")
    train_acc = evaluate(X_train, y_train)[1]
    print(f"train accuracy {train_acc:.4f}  test accuracy {test_acc:.4f}  "
          f"({round((1 - test_acc) * len(X_test))} of {len(X_test)} test images wrong)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
