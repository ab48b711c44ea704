"""The tutorial's training loop in Tensor ops: 784-10-10 on MNIST, full-batch gradient descent, backward() for dW, db.

Run: python examples/train_tutorial.py [iterations] [seed]
It does what `tinygrad-edu train` does by default, and ends with the same numbers for the same seed.
"""
import argparse

import numpy as np

from tinygrad_edu import no_grad, tutorial
from tinygrad_edu.cli.common import non_negative_int, positive_int
from tinygrad_edu.datasets import load_mnist, to_float

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("iterations", nargs="?", type=positive_int, default=500, help="update steps (default 500)")
parser.add_argument("seed", nargs="?", type=non_negative_int, default=0, help="seed of init_params (default 0)")
args = parser.parse_args()
iterations, seed = args.iterations, args.seed
alpha = 0.10

(X_train, Y_train), (X_test, Y_test) = load_mnist()
X = to_float(X_train, layout="columns")            # 784×60000, pixels/255, one column per image
X_dev = to_float(X_test, layout="columns")         # 784×10000

W1, b1, W2, b2 = tutorial.init_params(seed)        # each rand − 0.5, requires_grad=True

for i in range(1, iterations + 1):
    Z1 = W1 @ X + b1                               # forward_prop
    A1 = Z1.relu()
    Z2 = W2 @ A1 + b2
    loss = Z2.softmax_cross_entropy(Y_train, axis=0)   # mean of −log softmax(Z2)[Y] over the m columns

    loss.backward()                                # W1.grad = dW1, b1.grad = db1, W2.grad = dW2, b2.grad = db2
    with no_grad():                                # update_params: W := W − α·dW
        for p in (W1, b1, W2, b2):
            p -= alpha * p.grad
            p.grad = None

    if i % 10 == 0 or i == iterations:
        predictions = Z2.argmax(axis=0).numpy()     # get_predictions (before this step's update)
        print(f"iteration {i}: loss {loss.item():.4f}, accuracy {np.mean(predictions == Y_train):.4f}")


def accuracy(X, Y):
    with no_grad():
        Z2 = W2 @ (W1 @ X + b1).relu() + b2
    return np.mean(Z2.argmax(axis=0).numpy() == Y)


print(f"train accuracy {accuracy(X, Y_train):.4f}")
print(f"test accuracy  {accuracy(X_dev, Y_test):.4f}")
