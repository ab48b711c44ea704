"""Helpers shared by the commands (this module is not a command): argument types and plain-text tables."""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1 (batch sizes, counts)."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer ≥ 0 (seeds)."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ {low}, got {text!r}")
    return value


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
