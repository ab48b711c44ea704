"""`explain`: the tutorial's network on a tiny batch, its backward pass traced rule by rule in the graph's names."""
from __future__ import annotations

from pathlib import Path

from tinygrad_edu.cli.common import non_negative_int, positive_int

HELP = "trace the backward pass of the tutorial's 784-10-10 network on a tiny batch"
DESCRIPTION = """\
Runs the tutorial's network (Z1 = W1·X + b1, A1 = ReLU(Z1), Z2 = W2·A1 + b2, L = mean cross-entropy) on a few
MNIST training images and prints each node backward visits, with the rule it applies, the gradient's shape
and norm. Real MNIST is read from $TINYGRAD_EDU_DATA or the copy bundled with the package (never
downloaded); without it the images are random pixels, and the command says so. At the end, autograd's
gradients are checked against the tutorial's hand-derived backward_prop.

In your own code: `with tinygrad_edu.viz.trace(): loss.backward()`."""

_TEXT_SUFFIXES = (".dot", ".gv")


def add_arguments(parser) -> None:
    parser.add_argument("--batch-size", type=positive_int, default=4, metavar="M",
                        help="number of images m (default 4)")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the weights (manual.init_params) and of the images drawn (default 0)")
    parser.add_argument("--hidden", type=positive_int, default=10, help="hidden units (default 10, the tutorial's)")
    parser.add_argument("--graph", action="store_true", help="also print the graph as an indented tree")
    parser.add_argument("--dot", metavar="FILE", type=Path,
                        help="write the graph to FILE: DOT text for .dot/.gv, a picture for .svg/.png/.pdf "
                             "(needs Graphviz)")
    parser.add_argument("--force", action="store_true", help="overwrite FILE of --dot if it exists")


def _batch(m: int, seed: int):
    """m training images and labels drawn by seed: real MNIST when on disk, else random pixels (with a note)."""
    import numpy as np

    from tinygrad_edu.datasets import DatasetNotFoundError, load_mnist

    rng = np.random.default_rng(seed)
    try:
        (X_train, y_train), _ = load_mnist(download=False, progress=False)
    except DatasetNotFoundError:
        print("note: MNIST is not on disk (the bundled copy is hidden or missing; set TINYGRAD_EDU_DATA to a folder "
              "with it), so the images are random pixels "
              "and the labels random digits; the trace is the same in form.\n")
        return rng.integers(0, 256, (m, 28, 28), dtype=np.uint8), rng.integers(0, 10, m).astype(np.uint8), None
    if m > len(X_train):
        raise ValueError(f"--batch-size {m} is larger than the {len(X_train)} training images")
    idx = np.sort(rng.choice(len(X_train), m, replace=False))
    return X_train[idx], y_train[idx], idx


def run(args) -> int:
    import numpy as np

    from tinygrad_edu import manual, tutorial, viz
    from tinygrad_edu.cli.common import check_outputs, fail
    from tinygrad_edu.datasets import to_float
    from tinygrad_edu.tensor import Tensor
    from tinygrad_edu.viz.graph import dot_available

    if args.dot is not None:
        if args.dot.suffix.lower() not in (*_TEXT_SUFFIXES, ".svg", ".png", ".pdf"):
            return fail("explain", f"--dot {args.dot}: the suffix must be .dot, .gv, .svg, .png or .pdf")
        if problem := check_outputs([("--dot", args.dot)], args.force):
            return fail("explain", problem)
        if args.dot.suffix.lower() not in _TEXT_SUFFIXES and not dot_available():
            return fail("explain", f"--dot {args.dot}: drawing a picture needs Graphviz (its `dot` program), which "
                                   "is not installed; write DOT text (.dot) instead, or install Graphviz")
    try:
        images, labels, idx = _batch(args.batch_size, args.seed)
    except ValueError as e:
        return fail("explain", e)
    m = len(labels)
    where = f"MNIST training images {idx.tolist()}" if idx is not None else "random images"
    print(f"m = {m} {where}, labels {labels.tolist()}; weights manual.init_params(seed={args.seed}), "
          f"{args.hidden} hidden units.\n")

    params = tutorial.init_params(args.seed, hidden=args.hidden)
    X = Tensor(to_float(images, layout="columns"), name="X")
    Y = Tensor(labels.astype(np.int64), name="Y")
    fwd = tutorial.forward_prop(params, X, Y)
    print(f"forward: L = {fwd.loss.item():.6f}\n")
    if args.graph:
        viz.print_graph(fwd.loss)
        print()
    with viz.trace():
        fwd.loss.backward()

    # The same batch by the tutorial's hand-derived formulas: autograd must agree.
    W1, b1, W2, b2 = (p.data for p in params)
    Z1, A1, Z2, A2 = manual.forward_prop(W1, b1, W2, b2, X.data)
    hand = manual.backward_prop(Z1, A1, Z2, A2, W1, W2, X.data, labels)
    checks = [(f"{p.name}.grad − d{p.name}", p.grad, getattr(hand, "d" + p.name)) for p in params]
    checks += [(f"m·{z.name}.grad − d{z.name}", m * z.grad, getattr(hand, "d" + z.name)) for z in (fwd.Z1, fwd.Z2)]
    print("\nagainst the tutorial's hand-derived backward_prop, max |difference|:")
    for row in (checks[:4], checks[4:]):
        print("  " + ", ".join(f"{name} {np.max(np.abs(a - b)):.1e}" for name, a, b in row))

    if args.dot is not None:
        from tinygrad_edu.files import write_atomic
        try:
            if args.dot.suffix.lower() in _TEXT_SUFFIXES:
                write_atomic(args.dot, viz.to_dot(fwd.loss).encode())
            else:
                viz.render(fwd.loss, args.dot)
        except (OSError, RuntimeError) as e:
            return fail("explain", f"cannot write --dot {args.dot}: {e}")
        print(f"wrote {args.dot}")
    return 0
