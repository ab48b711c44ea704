"""Helpers shared by the commands (this module is not a command): argument types and plain-text tables."""
from __future__ import annotations

import argparse


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


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell, a dashed rule under the headers; the last column is not padded
    (its rule is as wide as its header), so one long cell there does not widen the whole table."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells) -> str:
        padded = [str(c).ljust(w) for c, w in zip(cells[:-1], widths)] + [str(cells[-1])]
        return "  ".join(padded).rstrip()

    rule = ["-" * w for w in widths[:-1]] + ["-" * len(headers[-1])]
    return "\n".join([line(headers), line(rule), *(line(r) for r in rows)])


def sci(x: float) -> str:
    """A float in the tables' format: 1.67e-16."""
    return f"{x:.2e}"
