"""Helpers shared by the commands (this module is not a command): argument types, tables, errors, outputs."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# NOTE: the commands' plain-text tables are viz's, which also shows them as HTML in notebooks: one formatter.
from tinygrad_edu.viz.display import format_table, sci  # noqa: F401


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected an integer ≥ {low}, got {text!r}")
        return value
    return parse


def _float(accept, expected: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse


# argparse types; a bad value gives "argument --lr: expected a positive number, got '-1'"
positive_int = _int_at_least(1)          # batch sizes, counts
non_negative_int = _int_at_least(0)      # seeds
positive_float = _float(lambda v: 0 < v < float("inf"), "a positive number")
non_negative_float = _float(lambda v: 0 <= v < float("inf"), "a number ≥ 0")
probability = _float(lambda v: 0 <= v < 1, "a probability in [0, 1)")


def fail(command: str, message, code: int = 2) -> int:
    """Prints `tinygrad-edu COMMAND: error: message` to stderr and returns the exit code."""
    from tinygrad_edu.datasets import DatasetNotFoundError

    if isinstance(message, DatasetNotFoundError):   # its message speaks of root=<folder>, the Python argument
        message = f"{message}\n(on the command line: --data DIR names the folder)"
    print(f"tinygrad-edu {command}: error: {message}", file=sys.stderr)
    return code


def check_output(path, force: bool, what: str) -> str | None:
    """Why path cannot be written (None if it can): user files are never overwritten without --force."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        return f"{what} {path} is a folder"
    if path.exists() and not force:
        return f"{what} {path} exists; pass --force to overwrite it"
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is None or not os.access(parent, os.W_OK):
        return f"{what} {path}: cannot write in {parent}"
    return None
