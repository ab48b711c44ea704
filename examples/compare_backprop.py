"""The tutorial's backprop by hand and by autograd on one batch of MNIST, compared gradient by gradient.

Run it with `python examples/compare_backprop.py`: it reads the MNIST bundled with the package (synthetic digits
when MNIST is nowhere to be found). `python -m tinygrad_edu compare` does the same
as a command, with options and the published code's bugs (`--as-published`).
"""
import argparse

import numpy as np

from tinygrad_edu import comparison, manual, tutorial

argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()   # no options: refuse any

# 1. One batch in the tutorial's layout: X is 784×m (one column per image, pixels/255), Y the m labels.
#    float64, so the only differences left between the two computations are round-off.
images, labels, source, note = comparison.load_digits()
if note:
    print(note)
X, Y = comparison.draw_batch(images, labels, batch_size=1000, seed=0, dtype=np.float64)
m = X.shape[1]

# 2. By hand: the tutorial's forward pass and its hand-derived backward pass, in numpy.
W1, b1, W2, b2 = manual.init_params(seed=0, dtype=np.float64)
Z1, A1, Z2, A2 = manual.forward_prop(W1, b1, W2, b2, X)
hand = manual.backward_prop(Z1, A1, Z2, A2, W1, W2, X, Y)     # dW1, db1, dW2, db2, dZ1, dZ2

# 3. By autograd: the same network with Tensor ops, from the same weights (same seed, same draw order).
#    Only the forward pass is written; loss.backward() derives every gradient.
params = tutorial.init_params(seed=0, dtype=np.float64)
fwd = tutorial.forward_prop(params, X, Y)                     # Z1, A1, Z2 and the mean loss L
fwd.loss.backward()

# The factor m: L is the mean loss over the m columns, so ∂L/∂Z2 = (A2 − Y)/m, the tutorial's dZ2 divided
# by m (its dZ's are gradients of the summed loss; it divides by m only in dW and db). Hence m·Z2.grad.
autograd = {
    "dZ2": m * fwd.Z2.grad,
    "dW2": params.W2.grad,
    "db2": params.b2.grad,
    "dZ1": m * fwd.Z1.grad,
    "dW1": params.W1.grad,
    "db1": params.b1.grad,
}

# 4. Side by side. The error is normwise, max|hand − autograd| / max|autograd|: an elementwise relative
#    error would divide by the exact zeros of dW1 (pixels that are 0 in every image of the batch).
print(f"{m} columns of the {source}, float64\n")
print(f"{'':4} {'formula':26} {'shape':11} {'max|hand − autograd|':>21} {'normwise rel. error':>20}")
worst = 0.0
for name, (formula, _) in comparison.QUANTITIES.items():
    a, b = getattr(hand, name), autograd[name]
    error = comparison.normwise_relative_error(a, b)
    worst = max(worst, error)
    print(f"{name:4} {formula:26} {str(a.shape):11} {np.max(np.abs(a - b)):21.2e} {error:20.2e}")
print("the hand derivation and autograd agree" if worst <= 1e-10 else "MISMATCH: some row is above 1e-10")

# 5. What the comparison catches: the published code summed db over the whole layer (no axis=1), one number
#    for all ten units. It is nowhere near the true per-unit db2.
db2_published = 1 / m * np.sum(hand.dZ2)
print(f"\npublished db2 = 1/m * np.sum(dZ2) = {db2_published:.2e}; normwise error against b2.grad: "
      f"{comparison.normwise_relative_error(db2_published, params.b2.grad):.2f}")
raise SystemExit(0 if worst <= 1e-10 else 1)
