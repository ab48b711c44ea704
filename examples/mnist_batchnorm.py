"""An MLP with BatchNorm against the same MLP without, on MNIST: the two loss curves side by side.

    python examples/mnist_batchnorm.py [--epochs 3] [--lr 0.1] [--seed 0] [--plot curves.png] [--quick]

Both nets are 784-128-128-10 with ReLU, from the same initial weights (PyTorch's Linear init, one seed), trained
on the same minibatches of 64 by plain SGD at the same learning rate, on pixels p/255 (not standardised). The
second puts nn.BatchNorm1d after each hidden Linear: in train() it normalises each unit by the batch's mean and
variance and tracks running statistics, which eval() then uses for the test set. --quick trains one epoch on
2,000 images and tests on 2,000 (for CI); --plot FILE draws the per-step training loss of both nets and their
test accuracy.
"""
import argparse
import sys
import time

import numpy as np

import tinygrad_edu.nn.functional as F
from tinygrad_edu import datasets, nn, no_grad, optim
from tinygrad_edu.cli.common import check_picture, non_negative_int, positive_float, positive_int


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=positive_int, default=3)
    parser.add_argument("--lr", type=positive_float, default=0.1, help="SGD's learning rate (both nets)")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--train-size", type=positive_int, default=60000, help="the first N training images")
    parser.add_argument("--test-size", type=positive_int, default=10000, help="the first N test images")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--plot", metavar="FILE", help="write the curves to this PNG (needs matplotlib)")
    parser.add_argument("--force", action="store_true", help="overwrite the --plot file if it exists")
    parser.add_argument("--quick", action="store_true", help="one epoch on 2,000 images, tested on 2,000 (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.train_size, args.test_size = 1, min(args.train_size, 2000), min(args.test_size, 2000)
    if args.train_size > 60000:
        parser.error(f"--train-size {args.train_size} is more than the 60000 images of the MNIST training set")
    if args.test_size > 10000:
        parser.error(f"--test-size {args.test_size} is more than the 10000 images of the MNIST test set")
    if args.batch_size > args.train_size:
        parser.error(f"--batch-size {args.batch_size} is more than the {args.train_size} training images")
    if args.plot is not None and (problem := check_picture("--plot", args.plot, args.force)):
        parser.error(problem)
    return args


def mlp(batch_norm: bool, seed: int) -> nn.Sequential:
    """784-128-128-10; with batch_norm, a BatchNorm1d after each hidden Linear. The Linears draw the same weights
    either way (one generator per net, seeded alike)."""
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in ((784, 128), (128, 128)):
        layers += [nn.Linear(n_in, n_out, seed=rng)] + ([nn.BatchNorm1d(n_out)] if batch_norm else []) + [nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(128, 10, seed=rng))


@no_grad()
def evaluate(model, X, y) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) in eval(): BatchNorm normalises by its running statistics."""
    model.eval()
    logits = model(X)
    model.train()
    return F.cross_entropy(logits, y).item(), float(np.mean(logits.numpy().argmax(axis=1) == y))


def plot(path, steps: dict, tests: dict, epochs: int) -> None:
    from tinygrad_edu.viz import plots

    fig = plots.figure((10, 4))
    left, right = fig.subplots(1, 2)
    for name, losses in steps.items():
        k = max(1, len(losses) // 100)   # a moving average over about 1% of the run
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        left.plot(np.arange(k, len(losses) + 1) / (len(losses) / epochs), smooth, label=name)
        right.plot(range(1, epochs + 1), [100 * a for a in tests[name]], marker="o", label=name)
    left.set(xlabel="epoch", ylabel="training loss (per step, smoothed)", yscale="log", title="training loss")
    right.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy", xticks=range(1, epochs + 1))
    for ax in (left, right):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    plots.save_png(fig, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    (X_train, y_train), (X_test, y_test) = datasets.load_mnist()
    X_train, y_train = datasets.to_float(X_train[:args.train_size]), y_train[:args.train_size].astype(np.int64)
    X_test, y_test = datasets.to_float(X_test[:args.test_size]), y_test[:args.test_size].astype(np.int64)
    models = {"plain": mlp(False, args.seed), "batchnorm": mlp(True, args.seed)}
    optimizers = {name: optim.SGD(m.parameters(), lr=args.lr) for name, m in models.items()}
    steps = {name: [] for name in models}   # each step's mean loss over its batch
    sizes = []                                # each step's batch size
    epoch_loss = {name: [] for name in models}
    tests = {name: [] for name in models}
    print(f"MLP 784-128-128-10, SGD lr {args.lr}, batches of {args.batch_size}, {args.train_size} training images, "
          f"{args.epochs} epoch{'s' * (args.epochs > 1)}, {args.test_size} test images, seed {args.seed}")
    print(f"{'epoch':>5}  {'loss plain':>10}  {'loss BN':>8}  {'test acc plain':>14}  {'test acc BN':>11}  {'time':>6}")
    for epoch in range(1, args.epochs + 1):
        shuffle = np.random.default_rng([args.seed, epoch])
        for Xb, yb in datasets.minibatches(X_train, y_train, args.batch_size, seed=shuffle):
            for name, model in models.items():   # the same batch for both nets
                loss = F.cross_entropy(model(Xb), yb)
                optimizers[name].zero_grad()
                loss.backward()
                optimizers[name].step()
                steps[name].append(loss.item())
            sizes.append(len(yb))
        n = -(-args.train_size // args.batch_size)   # the epoch's steps: its mean loss over every image
        for name, model in models.items():
            epoch_loss[name].append(float(np.dot(steps[name][-n:], sizes[-n:]) / args.train_size))
            tests[name].append(evaluate(model, X_test, y_test)[1])
        print(f"{epoch:5d}  {epoch_loss['plain'][-1]:10.4f}  {epoch_loss['batchnorm'][-1]:8.4f}  "
              f"{tests['plain'][-1]:14.4f}  {tests['batchnorm'][-1]:11.4f}  {time.perf_counter() - start:5.1f}s")
    print(f"final test accuracy: plain {tests['plain'][-1]:.4f}, batchnorm {tests['batchnorm'][-1]:.4f}")
    if args.plot is not None:
        plot(args.plot, steps, tests, args.epochs)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
