"""`exercises`: a workbook of backward rules to derive (`start`), and the gradient doctor that grades it (`check`)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tinygrad_edu.cli.common import fail, positive_float

HELP = "write a workbook of backward rules to derive, and check it with a gradient doctor"
DESCRIPTION = """\
start DIR writes a workbook you own: ops.py (the ops Add, Mul, MatMul, ReLU, Exp, Log, Sum, Mean and
SoftmaxCrossEntropy, each with its forward given and its backward to write), tutorial.py (the tutorial's
dZ2, dW2, db2, dZ1, dW1, db1, each to write) and README.md (the order, hints, how to check). It never
writes into an existing workbook.

check DIR [NAME ...] grades each exercise (or the named ones) on float64 examples drawn by hypothesis,
against the library's autograd and finite differences, and prints ✓ or ✗ per exercise. A ✗ names the
mistake when it is a known one (a factor m, transposed, sign, the ReLU mask, the axis of a sum, a broadcast
not summed back, the one-hot not subtracted), else the first wrong element. Your code runs in a separate
process with a time limit per exercise, and nothing is written into your folder. Exits 1 while any
exercise fails; --json prints one JSON list of {"name", "passed", "diagnosis", "message"}.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    start = sub.add_parser("start", help="write a new workbook into DIR")
    start.add_argument("dir", metavar="DIR")
    start.add_argument("--lang", choices=["en", "vi"], default="en", help="the README's language (default en)")
    check = sub.add_parser("check", help="grade the workbook in DIR (all exercises, or the named ones)")
    check.add_argument("dir", metavar="DIR")
    check.add_argument("names", nargs="*", metavar="NAME", help="exercises to check, e.g. Add db2 (default: all)")
    check.add_argument("--json", action="store_true", help="print one JSON list with a record per exercise")
    check.add_argument("--timeout", type=positive_float, default=10.0, metavar="SECONDS",
                       help="time limit per exercise (default 10)")


def run(args) -> int:
    return _start(args) if args.action == "start" else _check(args)


def _start(args) -> int:
    from tinygrad_edu.exercises.workbook import WorkbookError, start

    try:
        folder = start(args.dir, args.lang)
    except WorkbookError as e:
        return fail("exercises", e)
    print(f"wrote a workbook in {folder}: ops.py, tutorial.py and README.md (start with the README)")
    print(f"check it with: tinygrad-edu exercises check {folder}")
    return 0


def _check(args) -> int:
    import importlib.util

    from tinygrad_edu.exercises.grading import BY_NAME, EXERCISES
    from tinygrad_edu.exercises.runner import check
    from tinygrad_edu.exercises.workbook import FILES

    folder = Path(args.dir)
    if not folder.is_dir() or not any((folder / f).is_file() for f in FILES[:2]):
        return fail("exercises", f"no workbook in {folder} (ops.py and tutorial.py); "
                                 f"make one with: tinygrad-edu exercises start {folder}")
    unknown = [n for n in args.names if n not in BY_NAME]
    if unknown:
        return fail("exercises", f"no exercise named {', '.join(unknown)}; the exercises are "
                                 f"{', '.join(e.name for e in EXERCISES)}")
    if importlib.util.find_spec("hypothesis") is None:
        return fail("exercises", "the checker draws its examples with hypothesis, which is not installed: "
                                 "pip install hypothesis (or the package's [exercises] extra)")
    names = list(dict.fromkeys(args.names)) or [e.name for e in EXERCISES]
    records = check(folder, names, args.timeout)
    if args.json:
        print(json.dumps(records, ensure_ascii=False, indent=1))
    else:
        width = max(len(n) for n in names)
        for r in records:
            mark = "✓" if r["passed"] else "✗"
            print(f"{mark} {r['name']:<{width}}  {'' if r['passed'] else r['message']}".rstrip())
        done = sum(r["passed"] for r in records)
        advice = "" if done == len(records) else " Fix the first ✗ and check again."
        print(f"\n{done} of {len(records)} done.{advice}")
    sys.stdout.flush()
    return 0 if all(r["passed"] for r in records) else 1
