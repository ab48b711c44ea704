"""The `tinygrad-edu` / `python -m tinygrad_edu` command line: one subcommand per module in this package."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# NOTE: each name is a module tinygrad_edu.cli.<name> with HELP, add_arguments(parser) and run(args) -> int.
# Modules import numpy-heavy code inside run(), so `--help` stays fast.
COMMANDS = ["train", "sample", "predict", "evaluate", "compare", "gradcheck", "explain", "plot", "exercises",
            "lab"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinygrad-edu",
        description="tinygrad_edu: the tutorial's 784-10-10 network, by hand and by autograd, on MNIST.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"tinygrad_edu.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"tinygrad_edu.cli.{name}":
                continue  # not written yet
            raise
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"tinygrad-edu {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:   # e.g. `tinygrad-edu evaluate ... | head`: stop quietly, as other commands do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
