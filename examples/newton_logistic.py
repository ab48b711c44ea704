"""Newton's method against gradient descent: L2-regularised logistic regression on two MNIST digits (3 against 8).

    python examples/newton_logistic.py [--digits 3 8] [--images 2000] [--l2 0.01] [--seed 0] [--quick]

The images are 14×14 (each 2×2 block of pixels averaged, /255), so the weights w (196) and the bias b make 197
parameters, and the loss is L(w, b) = mean BCE-with-logits(X·w + b, y) + (λ/2)·‖w‖². Its Hessian is computed by
differentiating the gradient (autograd.functional.hessian, a backward recorded with create_graph=True); the L2
term makes it positive definite, so each Newton step θ ← θ − H⁻¹·∇L is defined. Newton stops when ‖∇L‖ < 1e-10;
then gradient descent with the best constant step for this problem (1/β, β the largest Hessian eigenvalue at the
start, a bound for the logistic loss's curvature everywhere) runs until its loss is within 1e-6 of Newton's, or
up to --gd-steps. --quick uses 500 images and at most 300 gradient-descent steps (for CI).
"""
import argparse
import sys
import time

import numpy as np

import tinygrad_edu as tg
import tinygrad_edu.nn.functional as F
from tinygrad_edu import Tensor, datasets
from tinygrad_edu.autograd import functional
from tinygrad_edu.cli.common import digit, non_negative_int, positive_float, positive_int


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=digit, nargs=2, default=[3, 8], metavar=("NEGATIVE", "POSITIVE"))
    parser.add_argument("--images", type=positive_int, default=2000, help="training images used (default 2000)")
    parser.add_argument("--l2", type=positive_float, default=0.01, help="the L2 weight λ (default 0.01)")
    parser.add_argument("--gd-steps", type=positive_int, default=5000, help="gradient descent's cap (default 5000)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="which images are drawn (default 0)")
    parser.add_argument("--quick", action="store_true", help="500 images, at most 300 gradient-descent steps")
    args = parser.parse_args(argv)
    if args.digits[0] == args.digits[1]:
        parser.error(f"--digits must be two different digits, got {args.digits[0]} twice")
    if args.quick:
        args.images, args.gd_steps = 500, 300
    return args


def small_images(images, labels, digits, n, seed):
    """n images of the two digits, as rows of 14×14 block means in [0, 1], and y = 1.0 for the second digit."""
    keep = np.flatnonzero(np.isin(labels, digits))
    keep = np.random.default_rng(seed).permutation(keep)[:n]
    x = images[keep].reshape(-1, 14, 2, 14, 2).astype(np.float64).mean(axis=(2, 4)).reshape(-1, 196) / 255
    return x, (labels[keep] == digits[1]).astype(np.float64)


def main(argv=None) -> int:
    args = parse_args(argv)
    (X, y), _ = datasets.load_mnist()
    X, y = small_images(X, y, args.digits, args.images, args.seed)
    X, y, lam = Tensor(X), Tensor(y), args.l2

    def loss(theta):
        w, b = theta[:196], theta[196]
        return F.binary_cross_entropy_with_logits(X @ w + b, y) + (lam / 2) * (w * w).sum()

    def gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        t = Tensor(theta, requires_grad=True)
        value = loss(t)
        (g,) = tg.grad(value, t)
        return float(value.data), g.data

    print(f"L2-regularised logistic regression, {args.digits[1]} (y = 1) against {args.digits[0]}: {len(y.data)} "
          f"images of 14×14, 197 parameters, λ = {lam:g}")
    print("Newton's method: θ ← θ − H⁻¹·∇L, H by autograd.functional.hessian (a recorded backward, differentiated)")
    print(f"{'step':>4}  {'loss':>20}  {'‖∇L‖':>10}  {'time':>6}")
    theta, start = np.zeros(197), time.perf_counter()
    beta = None
    for step in range(1, 51):
        value, g = gradient(theta)
        H = functional.hessian(loss, Tensor(theta)).data
        if beta is None:
            beta = float(np.linalg.eigvalsh(H)[-1])   # the curvature bound: at θ = 0 every σ′ is ¼, its largest
        print(f"{step - 1:4d}  {value:20.15f}  {np.linalg.norm(g):10.3e}  {time.perf_counter() - start:5.2f}s")
        if np.linalg.norm(g) < 1e-10:
            break
        theta = theta - np.linalg.solve(H, g)
    newton_loss, newton_steps = value, step - 1
    print(f"Newton converged in {newton_steps} steps to loss {newton_loss:.15f}")

    print(f"\ngradient descent: θ ← θ − ∇L/β, β = {beta:.4g} (the largest Hessian eigenvalue at the start)")
    theta, reached = np.zeros(197), None
    for step in range(args.gd_steps + 1):
        value, g = gradient(theta)
        if step in (0, 1, 10, 100, 1000) or step % 1000 == 0:
            print(f"{step:5d}  {value:.15f}  ‖∇L‖ {np.linalg.norm(g):.3e}")
        if value - newton_loss < 1e-6:
            reached = step
            break
        theta = theta - g / beta
    if reached is None:
        print(f"gradient descent is still {value - newton_loss:.2e} above Newton's loss after {args.gd_steps} steps")
    else:
        print(f"gradient descent came within 1e-6 of Newton's loss after {reached} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
