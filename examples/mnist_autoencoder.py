"""An autoencoder on MNIST trained with mse_loss: 784 pixels squeezed through 32 numbers and back, pictured.

    python examples/mnist_autoencoder.py [--epochs 5] [--code 32] [--seed 0] [--plot reconstructions.png] [--quick]

Encoder 784-128-code with ReLU, decoder code-128-784 with ReLU and a sigmoid at the end (pixels p/255 lie in
[0, 1]); the loss is F.mse_loss(reconstruction, pixels), the mean over pixels and images; Adam at lr 1e-3 on
minibatches of 128. It prints the test images' mean squared error each epoch, beside the error of always
answering the mean training image (what a net that ignores its input can do at best). --plot FILE draws test
digits (top row) over their reconstructions (bottom row). --quick trains one epoch on 5,000 images in batches
of 32 and tests on 2,000 (for CI).
"""
import argparse
import sys
import time

import numpy as np

import tinygrad_edu.nn.functional as F
from tinygrad_edu import datasets, nn, no_grad, optim
from tinygrad_edu.cli.common import check_picture, non_negative_int, positive_int


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=positive_int, default=5)
    parser.add_argument("--code", type=positive_int, default=32, help="the size of the code (the bottleneck)")
    parser.add_argument("--batch-size", type=positive_int, default=128)
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--plot", metavar="FILE", help="write originals over reconstructions to this PNG")
    parser.add_argument("--force", action="store_true", help="overwrite the --plot file if it exists")
    parser.add_argument("--quick", action="store_true",
                        help="one epoch on 5,000 images in batches of 32, tested on 2,000 (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.batch_size = 1, 32
    if args.code > 784:
        parser.error(f"--code {args.code} is larger than the 784 pixels it should compress")
    if args.batch_size > 60000:
        parser.error(f"--batch-size {args.batch_size} is more than the 60000 images of the MNIST training set")
    if args.plot is not None and (problem := check_picture("--plot", args.plot, args.force)):
        parser.error(problem)
    return args


def autoencoder(code: int, seed: int) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(784, 128, seed=rng), nn.ReLU(), nn.Linear(128, code, seed=rng), nn.ReLU(),
                         nn.Linear(code, 128, seed=rng), nn.ReLU(), nn.Linear(128, 784, seed=rng), nn.Sigmoid())


def plot(path, originals, reconstructions, mse: float) -> None:
    from tinygrad_edu.viz import plots

    n = len(originals)
    fig = plots.figure((1.0 * n, 2.4))
    axes = fig.subplots(2, n)
    for j in range(n):
        for row, images in enumerate((originals, reconstructions)):
            axes[row, j].imshow(images[j].reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
            axes[row, j].set_axis_off()
    fig.suptitle(f"test digits (top) and their reconstructions (bottom); test MSE {mse:.4f}")
    plots.save_png(fig, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    (X_train, _), (X_test, y_test) = datasets.load_mnist()
    if args.quick:
        X_train, X_test, y_test = X_train[:5000], X_test[:2000], y_test[:2000]
    X_train, X_test = datasets.to_float(X_train), datasets.to_float(X_test)
    model = autoencoder(args.code, args.seed)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    shuffle = np.random.default_rng([args.seed, 1])
    baseline = float(np.mean((X_test - X_train.mean(axis=0)) ** 2))

    @no_grad()
    def test_mse() -> float:
        return F.mse_loss(model(X_test), X_test).item()

    print(f"autoencoder 784-128-{args.code}-128-784, Adam lr 1e-3, batches of {args.batch_size}, "
          f"{len(X_train)} training images, {len(X_test)} test images, seed {args.seed}")
    print(f"the mean training image as every answer: test MSE {baseline:.4f}")
    print(f"{'epoch':>5}  {'train MSE':>9}  {'test MSE':>8}  {'time':>6}")
    for epoch in range(1, args.epochs + 1):
        total = 0.0
        for Xb, _ in datasets.minibatches(X_train, None, args.batch_size, seed=shuffle):
            loss = F.mse_loss(model(Xb), Xb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(Xb)
        mse = test_mse()
        print(f"{epoch:5d}  {total / len(X_train):9.4f}  {mse:8.4f}  {time.perf_counter() - start:5.1f}s")
    print(f"test MSE {mse:.4f}, {mse / baseline:.2f} of the mean image's {baseline:.4f}")
    if args.plot is not None:
        first = [int(np.flatnonzero(y_test == d)[0]) for d in range(10)]   # one test image of each digit
        with no_grad():
            plot(args.plot, X_test[first], model(X_test[first]).numpy(), mse)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
