"""Runs the docs' measurement blocks and records their outputs into the page: `python scripts/record_docs.py`.

A page's blocks run in order as the tests run them (tests/doc_blocks.py: one temporary folder and one Python
namespace per page; its run blocks run too, for what they set up), and each `<!-- measurement -->` block gets its
new output: a console command's output lines, a doctest's expected output. Nothing else in the page changes; a `~`
that marked a number machine-dependent stays on the new number; the page is written atomically. CI never runs this.

    python scripts/record_docs.py --page docs/conv.md            # record one page (default: every page)
    python scripts/record_docs.py --page docs/conv.md --dry-run  # print the change, write nothing
    python scripts/record_docs.py --check                        # exit 1 if a shown output no longer matches
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import doctest
import io
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]
from doc_blocks import (  # noqa: E402
    CommandFailed,
    Document,
    blocks,
    doc_pages,
    keep_machine_marks,
    matches,
    run_session,
)

from tinygrad_edu.files import write_atomic  # noqa: E402

_EXAMPLE = doctest.DocTestParser._EXAMPLE_RE


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def recorded(want: str, got: str) -> str:
    """got as it goes into the page: lines stripped at the right, `~` kept where want had it on the same line."""
    old, new = _lines(want), _lines(got)
    if len(old) == len(new):
        new = [keep_machine_marks(w, g) for w, g in zip(old, new)]
    return "".join(line + "\n" for line in new)


def run_python(source: str, namespace: dict, mode: str = "exec") -> str:
    """What a doctest shows for source: stdout, and for an expression its repr; an exception as doctest shows it."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(source, "<doc>", mode), namespace)
    except Exception as e:
        if mode != "single":   # NOTE: a block's code failing is the page's error, never an output to record
            raise
        return out.getvalue() + "Traceback (most recent call last):\n  ...\n" + \
            traceback.format_exception_only(type(e), e)[-1]
    return out.getvalue()


def doctest_outputs(source: str, namespace: dict) -> list[tuple[int, int, str, str]]:
    """(start, end, want, got) of each example's expected output within a doctest block's source."""
    results = []
    for m in _EXAMPLE.finditer(source):
        indent = len(m.group("indent"))
        code = "\n".join(line[indent + 4:] for line in m.group("source").splitlines()) + "\n"
        results.append((m.start("want"), m.end("want"), m.group("want"), run_python(code, namespace, "single")))
    return results


def record_page(page: Path) -> tuple[str, list[str]]:
    """The page's text with its measurement blocks' outputs recorded, and what no longer matched."""
    text = page.read_text(encoding="utf-8")
    edits, stale, namespace = [], [], {"__name__": "__docs__"}
    cwd = Path(tempfile.mkdtemp(prefix="record-docs-"))
    old_cwd = os.getcwd()
    try:
        os.chdir(cwd)
        for block in blocks(Document(text, str(page))):
            if block.mark not in ("run", "measurement"):
                continue
            if block.mark == "measurement":
                print(f"{page.name}:{block.line}: running its measurement", file=sys.stderr)
            if text[block.source_start:block.source_start + len(block.source)] != block.source:
                raise SystemExit(f"{page}:{block.line}: an indented block cannot be recorded")
            if block.language == "console":
                try:
                    session = run_session(block.source, cwd, timeout=None)
                except CommandFailed as e:
                    raise SystemExit(f"{page}:{block.line}: {e}") from None
                outputs = [(c.offset, c.end, c.want, got) for c, got in session]
            elif block.language == "python" and block.source.lstrip().startswith(">>>"):
                outputs = doctest_outputs(block.source, namespace)
            elif block.language == "python":
                run_python(block.source, namespace)
                outputs = []
            else:
                raise SystemExit(f"{page}:{block.line}: a {block.mark} block is console or python")
            if block.mark != "measurement":
                continue
            for start, end, want, got in outputs:
                if got.startswith("Traceback (most recent call last):") and not want.startswith("Traceback"):
                    raise SystemExit(f"{page}:{block.line}: a measurement raised, where its shown output is not an "
                                     f"error:\n{got}")
                if not matches(want, got):
                    stale.append(f"{page.name}:{block.line}: expected\n{want}got\n{got}")
                edits.append((block.source_start + start, block.source_start + end, recorded(want, got)))
    finally:
        os.chdir(old_cwd)
        shutil.rmtree(cwd, ignore_errors=True)
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text, stale


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else str(page)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", type=Path, action="append", help="a page to record (repeatable; default: all)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")
    what.add_argument("--check", action="store_true", help="write nothing; exit 1 if an output no longer matches")
    args = parser.parse_args(argv)
    pages = [p.resolve() for p in args.page] if args.page else doc_pages()
    missing = [str(p) for p in pages if not p.is_file()]
    if missing:
        parser.error(f"no such page: {', '.join(missing)}")
    all_stale = []
    for page in pages:
        old = page.read_text(encoding="utf-8")
        new, stale = record_page(page)
        all_stale += stale
        if args.check or new == old:
            continue
        if args.dry_run:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                       _name(page), _name(page)))
        else:
            write_atomic(page, new.encode("utf-8"))
            print(f"recorded {_name(page)}")
    if args.check:
        print("\n".join(all_stale) or "every measurement's shown output matches a new run")
        return 1 if all_stale else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
