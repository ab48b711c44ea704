"""`exercises`: a workbook of backward rules to derive (`start`), and the gradient doctor that grades it (`check`)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tinygrad_edu.cli.common import positive_float

HELP = "write a workbook of backward rules to derive, and check it with a gradient doctor"
DESCRIPTION = """\
start DIR writes a workbook you own: ops.py (the ops Add, Mul, MatMul, ReLU, Exp, Log, Sum, Mean and
SoftmaxCrossEntropy, each with its forward given and its backward to write), tutorial.py (the tutorial's
dZ2, dW2, db2, dZ1, dW1, db1, each to write) and README.md (the order, hints, how to check). It never
writes into an existing workbook. --lang vi writes it in Vietnamese, and check then speaks Vietnamese too.
--part 2 writes part two instead: layers.py (BatchNorm, LayerNorm, Softmax, Attention, Embedding, Conv2d,
MaxPool2d, RNN and Dropout, each with its forward given and its backward to write) and README.md; check
reads the part from the workbook.

check DIR [NAME ...] grades each exercise (or the named ones) on float64 examples drawn by hypothesis,
against the library's autograd and finite differences, and prints ✓ or ✗ per exercise. A ✗ names the
mistake when it is a known one (a factor m or any exact constant factor, transposed, a sign, a missing g,
the ReLU mask, the axis of a sum, a broadcast not summed back, the one-hot not subtracted, BatchNorm's batch
statistics held constant, attention's mask left out, the kernel not flipped, ...), explains
a wrong shape with the shape the gradient must have, else shows the first wrong element. Your code runs in
a separate process, which only computes your answers: the grading happens outside it, with a time limit per
exercise, and nothing is written into your folder. Exits 1 while any exercise fails; --json prints one JSON
list of {"name", "passed", "diagnosis", "message"}, with language-neutral diagnoses.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    start = sub.add_parser("start", help="write a new workbook into DIR")
    start.add_argument("dir", metavar="DIR")
    start.add_argument("--lang", choices=["en", "vi"], default="en",
                       help="the workbook's language: README, comments, and check's messages (default en)")
    start.add_argument("--part", type=int, choices=[1, 2], default=1,
                       help="1: the tutorial's ops and gradients (default); 2: the layers a course derives next")
    check = sub.add_parser("check", help="grade the workbook in DIR (all exercises, or the named ones)")
    check.add_argument("dir", metavar="DIR")
    check.add_argument("names", nargs="*", metavar="NAME", help="exercises to check, e.g. Add db2 (default: all)")
    check.add_argument("--json", action="store_true", help="print one JSON list with a record per exercise")
    check.add_argument("--timeout", type=positive_float, default=10.0, metavar="SECONDS",
                       help="time limit per exercise (default 10)")
    check.add_argument("--lang", choices=["en", "vi"], default=None,
                       help="the messages' language (default: the workbook's, from start --lang)")


def run(args) -> int:
    return _start(args) if args.action == "start" else _check(args)


def _fail(lang: str, message) -> int:
    from tinygrad_edu import messages

    print(f"tinygrad-edu exercises: {messages.text('common.error', lang, message=message)}", file=sys.stderr)
    return 2


def _start(args) -> int:
    from tinygrad_edu import messages
    from tinygrad_edu.exercises.workbook import WorkbookError, start

    try:
        folder = start(args.dir, args.lang, args.part)
    except WorkbookError as e:
        return _fail(args.lang, e)
    print(messages.text("exercises.wrote" if args.part == 1 else f"exercises.wrote-part{args.part}", args.lang,
                        folder=folder))
    print(messages.text("exercises.check-with", args.lang, folder=folder))
    return 0


def _check(args) -> int:
    import importlib.util

    from tinygrad_edu import messages
    from tinygrad_edu.exercises.grading import PARTS
    from tinygrad_edu.exercises.runner import check
    from tinygrad_edu.exercises.workbook import PART_FILES, language, part

    folder = Path(args.dir)
    lang = args.lang or language(folder)
    exercises = PARTS[part(folder)]
    code = {f for files in PART_FILES.values() for f in files if f.endswith(".py")}
    if not folder.is_dir() or not any((folder / f).is_file() for f in code):
        return _fail(lang, messages.text("exercises.no-workbook", lang, folder=folder))
    unknown = [n for n in args.names if n not in {e.name for e in exercises}]
    if unknown:
        return _fail(lang, messages.text("exercises.no-exercise", lang, names=", ".join(unknown),
                                         choices=", ".join(e.name for e in exercises)))
    if importlib.util.find_spec("hypothesis") is None:
        return _fail(lang, messages.text("exercises.no-hypothesis", lang))
    names = list(dict.fromkeys(args.names)) or [e.name for e in exercises]
    records = check(folder, names, args.timeout, lang)
    if args.json:
        print(json.dumps(records, ensure_ascii=False, indent=1))
    else:
        width = max(len(n) for n in names)
        for r in records:
            mark = "✓" if r["passed"] else "✗"
            print(f"{mark} {r['name']:<{width}}  {'' if r['passed'] else r['message']}".rstrip())
        done = sum(r["passed"] for r in records)
        summary = messages.text("exercises.summary", lang, done=done, total=len(records))
        advice = "" if done == len(records) else " " + messages.text("exercises.advice", lang)
        print(f"\n{summary}{advice}")
    sys.stdout.flush()
    return 0 if all(r["passed"] for r in records) else 1
