"""`compare`: the tutorial's hand-derived gradients beside autograd's on one batch, one row per quantity."""
from __future__ import annotations

import argparse

from tinygrad_edu.cli.common import fail, non_negative_int, positive_int

HELP = "compare the tutorial's hand-derived gradients with autograd's on a batch of MNIST"
DESCRIPTION = """\
Runs the tutorial's 784-10-10 network on one batch twice from the same init_params(seed): by hand
(tinygrad_edu.manual: the tutorial's formulas in numpy) and by autograd (tinygrad_edu.tutorial: Tensor ops
and loss.backward()). Prints one row per quantity (dZ2, dW2, db2, dZ1, dW1, db1): its formula, shape,
max |hand - autograd| and the normwise relative error max|a - b| / max|b|. Exits 1 if any row exceeds the
tolerance (1e-10 in float64, 1e-5 in float32), else 0.

Uses real MNIST (training images) when load_mnist finds it (the copy bundled with the package, unless hidden); otherwise
synthetic digits, with a note. --as-published adds rows for the tutorial's code as it was published (db
summed over the whole layer, m from the whole data set, one_hot sized by Y.max() + 1): they are reported,
not failures.
"""

DTYPES = ("float32", "float64")   # comparison.TOLERANCE's keys (not imported here: the help stays fast)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=positive_int, default=1000, metavar="M",
                        help="columns (images) in the batch: the tutorial's m (default 1000)")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of init_params and of the batch (default 0)")
    parser.add_argument("--dtype", choices=DTYPES, default="float64",
                        help="precision of both computations (default float64)")
    parser.add_argument("--as-published", action="store_true",
                        help="add rows for the tutorial's code as published, and how far each is from the truth")


def run(args) -> int:
    from tinygrad_edu import comparison as cmp
    from tinygrad_edu.datasets import DatasetError

    try:
        images, labels, source, note = cmp.load_digits(n_synthetic=2 * args.batch_size, seed=args.seed)
    except DatasetError as e:
        return fail("compare", e)
    if args.batch_size > len(labels):
        return fail("compare", f"--batch-size {args.batch_size} is more than the {len(labels)} images of the {source}")
    report = cmp.compare(images, labels, args.batch_size, args.seed, args.dtype, args.as_published, source, note)
    print(report)
    return 1 if report.failed else 0
