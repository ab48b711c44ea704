"""Helpers shared by the commands (this module is not a command): argument types, tables, errors, output checks."""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

# NOTE: the commands' plain-text tables are viz's, which also shows them as HTML in notebooks: one formatter.
from tinygrad_edu.files import folder_problem, output_problem
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


def digit(text: str) -> int:
    """An argparse type: one MNIST class, 0..9 (the two-digit examples' --digits)."""
    if text not in list("0123456789"):
        raise argparse.ArgumentTypeError(f"expected a digit 0..9, got {text!r}")
    return int(text)


def fail(command: str, message, code: int = 2) -> int:
    """Prints `tinygrad-edu COMMAND: error: message` to stderr and returns the exit code."""
    from tinygrad_edu.datasets import DatasetError

    if isinstance(message, DatasetError):   # in the command line's words (--data DIR), not Python's (root=)
        message = message.cli
    print(f"tinygrad-edu {command}: error: {message}", file=sys.stderr)
    return code


def check_picture(what: str, path, force: bool) -> str | None:
    """Why a picture cannot be drawn to path (None if it can): check_outputs' reasons, or no matplotlib. NOTE: the
    package is found, not imported (an import writes matplotlib's config folder, and nothing may appear on error)."""
    if problem := check_outputs([(what, path)], force):
        return problem
    if importlib.util.find_spec("matplotlib") is None:
        return f'{what} needs matplotlib, which is not installed: pip install "tinygrad_edu[plot]"'
    return None


def check_outputs(outputs, force: bool, inputs=()) -> str | None:
    """Why a command's outputs cannot all be written (None if they can), for checking before any work starts.

    outputs and inputs are (what, path) pairs such as ("--save", "w.npz"); a path of None is an output not asked
    for. Refused: an output that is a folder, that exists (unless force: user files are never overwritten
    without --force) or whose folder can be neither made nor written (a regular file in its path, no write
    permission); two outputs that are one file (where they land, so sub/../w.npz is w.npz, also through
    symbolic or hard links); an output that is one of the inputs, or that is not a regular file (a symbolic
    link, a device, a FIFO: files.output_problem, which write_atomic checks too), even with force. Whether a
    folder can be written in is found by making a nameless file there (root may not write in /proc either).
    Creates nothing.
    """
    planned = []
    for what, path in outputs:
        if path is None:
            continue
        path = Path(path)
        target, problem = _landing(path)
        if problem:
            return f"{what} {path}: {problem}"
        if target.is_dir():
            return f"{what} {path} is a folder"
        if problem := output_problem(target):   # NOTE: files.write_atomic's own check, refused even with --force
            return f"{what} {path} {problem}"
        if os.path.lexists(target) and not force:
            return f"{what} {path} exists; pass --force to overwrite it"
        planned.append((what, path, target))
    for i, (what, path, target) in enumerate(planned):
        for other, other_path, other_target in planned[i + 1:]:
            if _same_file(target, other_target):
                return f"{what} {path} and {other} {other_path} are the same file"
        for source, source_path in inputs:
            if source_path is not None and _same_file(target, Path(source_path)):
                return f"{what} {path} would overwrite {source} {source_path}, which this command reads"
    return None


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same resolved path, or, when both exist, the same inode."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.samefile(b)
    except OSError:   # one of them does not exist (yet)
        return False


def _landing(path: Path) -> tuple[Path, str | None]:
    """Where writing path puts the file, its missing folders made first (as files.write_atomic does), and why it
    cannot be written there (None if it can). Makes nothing.

    The path is walked as the system walks it, one name at a time from the root: an existing name must be a
    folder (a link to one counts), a missing one is a folder to make (in a writable folder), and '..' steps
    back from where the walk is, so missing/../f is f and sub/../w.npz is w.npz.
    """
    path = path.absolute()
    if path.name in ("", ".."):
        return path, "this names a folder, not a file"
    current, made = Path(path.anchor), set()

    def writable(folder: Path) -> str | None:
        if folder in made:
            return None
        return None if os.access(folder, os.W_OK | os.X_OK) and not folder_problem(folder) else \
            f"cannot write in {folder}"

    for part in path.parent.parts[1:]:
        if part == "..":
            current = current.parent
            continue
        step = current / part
        if step not in made and os.path.lexists(step):
            if not step.is_dir():
                return step, f"{step} is {'a broken symbolic link' if step.is_symlink() else 'not a folder'}"
            current = step.resolve()
            continue
        if problem := writable(current):
            return step, problem
        made.add(step)
        current = step
    target = current / path.name
    if target in made:
        return target, f"making its folders would put the folder {target} in its place"
    return target, writable(current)
