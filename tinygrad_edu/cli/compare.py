"""`compare`: the tutorial's hand-derived gradients beside autograd's on one batch, one row per quantity."""
from __future__ import annotations

import argparse
import sys

from tinygrad_edu.cli.common import format_table, non_negative_int, positive_int, sci

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

TOLERANCE = {"float64": 1e-10, "float32": 1e-5}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=positive_int, default=1000, metavar="M",
                        help="columns (images) in the batch: the tutorial's m (default 1000)")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of init_params and of the batch (default 0)")
    parser.add_argument("--dtype", choices=sorted(TOLERANCE), default="float64",
                        help="precision of both computations (default float64)")
    parser.add_argument("--as-published", action="store_true",
                        help="add rows for the tutorial's code as published, and how far each is from the truth")


def run(args) -> int:
    import numpy as np

    from tinygrad_edu import comparison as cmp
    from tinygrad_edu.datasets import DatasetError

    try:
        images, labels, source, note = cmp.load_digits(n_synthetic=2 * args.batch_size, seed=args.seed)
    except DatasetError as e:
        print(f"compare: {e}", file=sys.stderr)
        return 1
    if args.batch_size > len(labels):
        print(f"compare: --batch-size {args.batch_size} is more than the {len(labels)} images of the {source}",
              file=sys.stderr)
        return 2
    if note:
        print(note)
    X, Y = cmp.draw_batch(images, labels, args.batch_size, args.seed, args.dtype)
    tol = TOLERANCE[args.dtype]

    hand, auto = cmp.hand_and_autograd(X, Y, args.seed)
    rows, failed = [], []
    for name, (formula, autograd_name) in cmp.QUANTITIES.items():
        a, b = getattr(hand, name), getattr(auto, name)
        err = cmp.normwise_relative_error(a, b)
        if not err <= tol:   # NaN fails too
            failed.append(name)
        rows.append([name, formula, autograd_name, str(a.shape), sci(np.max(np.abs(a - b))), sci(err),
                     "ok" if err <= tol else "FAIL"])
    print(f"The tutorial's gradients by hand and by autograd: {args.dtype}, {X.shape[1]} columns of the {source}, "
          f"seed {args.seed}")
    print()
    print(format_table(["quantity", "hand formula (manual.py)", "autograd (tutorial.py)", "shape",
                        "max|hand − autograd|", "normwise rel. error", "check"], rows))
    print()
    print("normwise rel. error = max|hand − autograd| / max|autograd|")
    print(f"FAIL: {', '.join(failed)} above {tol:g}: the hand derivation and autograd disagree." if failed
          else f"All {len(rows)} rows within {tol:g}: the hand derivation and autograd agree.")

    if args.as_published:
        X_no9, Y_no9 = cmp.draw_batch(images, labels, args.batch_size, args.seed, args.dtype, without=9)
        pub_rows, raised = [], []
        for name, code, value, true in cmp.published_rows(X, Y, X_no9, Y_no9, args.seed):
            if isinstance(value, Exception):
                pub_rows.append([name, code, "-", "-", f"{type(value).__name__}, below"])
                raised.append(f"{name}, {code} ({X_no9.shape[1]} columns), raises:\n"
                              f"    {type(value).__name__}: {str(value).strip()}")
            else:
                pub_rows.append([name, code, str(np.shape(value)), sci(np.max(np.abs(value - true))),
                                 sci(cmp.normwise_relative_error(value, true))])
        print()
        print("The tutorial's code as published, against the true gradient (reported, not failures):")
        print()
        print(format_table(["quantity", "published code", "shape", "max|published − true|",
                            "normwise rel. error"], pub_rows))
        for line in raised:
            print(line)
        print()
        print(f"Comparing with autograd is the instrument that catches such bugs: every published row is far "
              f"above {tol:g}.")
    return 1 if failed else 0
