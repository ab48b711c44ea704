"""`gradcheck`: every differentiable op's backward against central finite differences, in float64."""
from __future__ import annotations

import argparse

from tinygrad_edu.cli.common import fail, format_table, non_negative_int, positive_int, sci

HELP = "check each op's backward against finite differences (all ops, or the named ones)"
DESCRIPTION = """\
For people who write or change an op. For every op in tinygrad_edu.opspecs.REGISTRY (or the named ones),
draws a few random examples from the op's input domain (random shapes, broadcasting pairs, axes), runs
tinygrad_edu.gradcheck on each in float64, and prints one row per op: PASS or FAIL, the largest absolute
error |backward - finite differences|, the largest normwise relative error max|a - b| / max|b|, and the
input shapes tried. Exits 1 if any op fails. The tests check the same ops on the same domains.

With --second-order, each op's second derivatives instead: a backward recorded with create_graph=True,
differentiated again, against finite differences of the first-order gradient (tinygrad_edu.gradgradcheck),
for the inputs and for the incoming gradient.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ops", nargs="*", metavar="OP", help="ops to check, by registry name (default: all)")
    parser.add_argument("--trials", type=positive_int, default=5, metavar="N",
                        help="random examples per op (default 5)")
    parser.add_argument("--second-order", action="store_true",
                        help="check second derivatives (backward of a recorded backward) instead of first ones")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the examples; an op gets the same ones whichever others run (default 0)")


def check_op(spec, trials: int, seed: int = 0, second_order: bool = False):
    """(passed, max abs error, max normwise relative error, shapes tried, first failure message or None)."""
    import zlib

    import numpy as np

    from tinygrad_edu.comparison import normwise_relative_error
    from tinygrad_edu.gradcheck import GradcheckError, check_gradients, compare_gradients, compare_second_derivatives
    from tinygrad_edu.opspecs import NumpyChooser
    from tinygrad_edu.tensor import Tensor

    chooser = NumpyChooser([seed, zlib.crc32(spec.name.encode())])
    max_abs = max_rel = 0.0
    shapes, failure = [], None
    for _ in range(trials):
        f, arrays, _ = spec.example(chooser)
        inputs = [Tensor(a, requires_grad=True) for a in arrays]
        shapes.append(", ".join(str(np.shape(a)).replace(" ", "") for a in arrays))
        try:
            results = (compare_second_derivatives if second_order else compare_gradients)(f, inputs)
            for _, analytic, numeric in results:
                max_abs = max(max_abs, float(np.max(np.abs(analytic - numeric), initial=0.0)))
                max_rel = max(max_rel, normwise_relative_error(analytic, numeric))
            named = [*inputs, Tensor(0.0, name="the incoming gradient")] if second_order else inputs
            check_gradients(results, named)
        except GradcheckError as e:
            failure = failure or str(e)
        except Exception as e:   # a broken backward may raise instead of returning wrong numbers
            failure = failure or f"{type(e).__name__}: {e}"
            max_abs = max_rel = float("nan")   # no error to measure; nan stays through max()
    return failure is None, max_abs, max_rel, shapes, failure


def run(args) -> int:
    import inspect

    from tinygrad_edu.gradcheck import gradcheck
    from tinygrad_edu.opspecs import REGISTRY

    unknown = [name for name in args.ops if name not in REGISTRY]
    if unknown:
        return fail("gradcheck", f"unknown op{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                                 f"the ops are: {', '.join(REGISTRY)}")
    names = list(dict.fromkeys(args.ops)) or list(REGISTRY)

    rows, failures = [], []
    for name in names:
        passed, max_abs, max_rel, shapes, failure = check_op(REGISTRY[name], args.trials, args.seed, args.second_order)
        rows.append([name, "PASS" if passed else "FAIL", sci(max_abs), sci(max_rel), "; ".join(shapes)])
        if not passed:
            failures.append(f"{name}: {failure}")

    what = ("second derivatives (a backward recorded with create_graph=True, differentiated again)"
            if args.second_order else "backward")
    print(f"gradcheck: each op's {what} against central finite differences, float64, {args.trials} random "
          f"examples per op (seed {args.seed})")
    print()
    print(format_table(["op", "result", "max abs error", "normwise rel. error", "input shapes tried"], rows))
    print()
    if failures:
        print(f"FAIL: {len(failures)} of {len(rows)} ops; the first mismatch of each:")
        for line in failures:
            print(f"  {line}")
        return 1
    tolerance = inspect.signature(gradcheck).parameters
    twice = " twice differentiated" if args.second_order else ""
    print(f"All {len(rows)} ops pass{twice}: |backward − numeric| ≤ {tolerance['atol'].default:g} + "
          f"{tolerance['rtol'].default:g}·|numeric| for every element (gradcheck's default tolerance).")
    return 0
