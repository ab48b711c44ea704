"""The docs' code blocks, defined once: their marks, the expected-output matcher, and Sybil's evaluators for them.

Every fenced block in README.md and docs/**/*.md is preceded by `<!-- run -->` (CI runs it, in page order) or
`<!-- measurement -->` (scripts/record_docs.py runs it and records its output); ```text blocks need no mark.
A run block that needs an optional tool says so, `<!-- run needs=dot -->`: without the tool on PATH it skips with
the reason, except under CI=true, where it fails.
Run blocks are ```console (shell sessions: `$ command`, then its output) or ```python (one namespace per page;
with `>>> ` lines, a doctest session). Each page's blocks run in one temporary folder, the page's cwd.
In expected output: a line `...` alone stands for any lines, `...` inside a line for any text, and `~` before a
number (`~43.1 s`, `~0.8542`) for any number. docs/docs-tests.md explains this for writers.
"""
from __future__ import annotations

import doctest
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sybil import Document, Example, Region, Sybil
from sybil.evaluators.doctest import DocTestEvaluator
from sybil.evaluators.python import PythonEvaluator
from sybil.parsers.abstract.doctest import DocTestStringParser
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer

ROOT = Path(__file__).resolve().parent.parent
MARKS = ("run", "measurement")
UNMARKED = ("text",)                  # info strings that need no mark: diagrams, formulas, file listings
# a mark may name the optional tools its block needs: `<!-- run needs=dot -->` (several: needs=dot,jupyter)
MARK_RE = re.compile(r"^[ \t]*<!--\s*(\S+?)(?:\s+needs=([\w.,-]+))?\s*-->[ \t]*$")
ELISION = "..."
NUMBER = r"[-+]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
MACHINE_NUMBER = re.compile(r"~(" + NUMBER + r")")   # `~` right before a number: any number matches
SUITE_SIZE = __import__("pytest").StashKey[int | None]()   # the whole suite's test count (conftest.py sets it)
COMMAND_TIMEOUT = 600                 # seconds for one console command (a run block should take seconds)


def doc_pages(root: Path = ROOT) -> list[Path]:
    """The pages whose blocks are checked: README.md and every docs/**/*.md."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


# --- the blocks and their marks -------------------------------------------------------------------------------

_LEXER = RawFencedCodeBlockLexer(info_pattern=re.compile(r"(?P<info>[^\n]*)$\n", re.MULTILINE))


@dataclass
class Block:
    """One fenced block of a page: its mark (None if unmarked), language, source and where they are."""
    region: Region
    mark: str | None
    language: str
    source: str
    source_start: int     # offset of the source in the page's text
    line: int             # 1-based line of the opening fence
    needs: tuple[str, ...] = ()   # the optional tools (commands on PATH) the block needs: `needs=dot`

    @property
    def needs_mark(self) -> bool:
        return self.language not in UNMARKED


def mark_before(text: str, position: int) -> str | None:
    """The mark on the line just before the fence starting at `position` (blank lines between are allowed)."""
    return mark_and_needs(text, position)[0]


def mark_and_needs(text: str, position: int) -> tuple[str | None, tuple[str, ...]]:
    """The mark before the fence at `position` and the tools it says the block needs (`needs=dot,jupyter`)."""
    for line in reversed(text[:position].splitlines()):
        if line.strip():
            m = MARK_RE.match(line)
            if not m:
                return None, ()
            return m.group(1), tuple(m.group(2).split(",")) if m.group(2) else ()
    return None, ()


def blocks(document: Document) -> list[Block]:
    """Every fenced block of a page, in order."""
    found = []
    for region in _LEXER(document):
        source = region.lexemes["source"]
        info = region.lexemes["info"].strip()
        source_start = region.start + source.offset
        mark, needs = mark_and_needs(document.text, region.start)
        found.append(Block(region, mark, info.split()[0] if info else "", str(source), source_start,
                           document.text.count("\n", 0, region.start) + 1, needs))
    return sorted(found, key=lambda b: b.region.start)


def unmarked_blocks(path: Path) -> list[str]:
    """`page:line` of each block that needs a mark and has none (or has an unknown one)."""
    document = Document(path.read_text(encoding="utf-8"), str(path))
    return [f"{path.name}:{b.line} ```{b.language} has {'mark ' + repr(b.mark) if b.mark else 'no mark'}"
            for b in blocks(document) if b.needs_mark and b.mark not in MARKS]


# --- expected output ------------------------------------------------------------------------------------------

def _normalize(text: str) -> str:
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    return "".join(line + "\n" for line in lines)


def _line_pattern(line: str, group_numbers: bool = False) -> str:
    out = []
    for part in re.split(r"(\.\.\.|~" + NUMBER + ")", line):
        if part == ELISION:
            out.append(r"[^\n]*?")
        elif part.startswith("~") and MACHINE_NUMBER.fullmatch(part):
            out.append(f"({NUMBER}|[-+]?nan|[-+]?inf)" if group_numbers else f"(?:{NUMBER}|[-+]?nan|[-+]?inf)")
        else:
            out.append(re.escape(part))
    return "".join(out)


def output_pattern(want: str) -> re.Pattern:
    """The regular expression that `want` (with its `...` and `~number` markers) stands for."""
    pieces = []
    for line in _normalize(want).splitlines():
        pieces.append(r"(?:[^\n]*\n)*?" if line.strip() == ELISION else _line_pattern(line) + r"\n")
    return re.compile("".join(pieces))


def matches(want: str, got: str) -> bool:
    """Whether output `got` is what `want` shows (trailing spaces and blank lines at either end ignored)."""
    return output_pattern(want).fullmatch(_normalize(got)) is not None


def keep_machine_marks(want_line: str, got_line: str) -> str:
    """got_line with a `~` put back before each number that want_line marked machine-dependent (for recording)."""
    if "~" not in want_line:
        return got_line
    m = re.fullmatch(_line_pattern(want_line, group_numbers=True), got_line)
    if not m:
        return got_line
    for i in reversed(range(1, (m.lastindex or 0) + 1)):
        got_line = got_line[:m.start(i)] + "~" + got_line[m.start(i):]
    return got_line


def difference(want: str, got: str) -> str:
    return f"expected:\n{_normalize(want)}got:\n{_normalize(got)}"


# --- console sessions -----------------------------------------------------------------------------------------

@dataclass
class Command:
    command: str
    want: str
    offset: int = 0       # where the expected output starts in the block's source
    end: int = 0          # where it ends


def parse_session(source: str) -> list[Command]:
    """A console block's commands (`$ ` lines; a line ending in `\\` continues) and each one's expected output."""
    commands: list[Command] = []
    lines = source.splitlines(keepends=True)
    pos, i = 0, 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            command = line[2:].rstrip("\n")
            pos += len(line)
            i += 1
            while command.endswith("\\") and i < len(lines):
                command = command[:-1] + lines[i].rstrip("\n")
                pos += len(lines[i])
                i += 1
            start = pos
            while i < len(lines) and not lines[i].startswith("$ "):
                pos += len(lines[i])
                i += 1
            commands.append(Command(command, source[start:pos], start, pos))
        elif commands or line.strip():
            raise ValueError(f"a console block's first line must be a `$ ` command, not {line.rstrip()!r}")
        else:
            pos += len(line)
            i += 1
    return commands


def command_env(cwd: Path) -> dict:
    """The environment of the docs' commands: this checkout's package (as `python -m tinygrad_edu` and as
    `tinygrad-edu`), the bundled MNIST as a new user gets it, an empty cache, fixed terminal width."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TINYGRAD_EDU_DATA", "TINYGRAD_EDU_NO_BUNDLED", "PYTHONWARNINGS")}
    bin_dir = cwd / ".bin"
    if not bin_dir.exists():
        bin_dir.mkdir()
        python = Path(sys.executable)
        for name in ("python", "python3"):
            (bin_dir / name).symlink_to(python)
        shim = bin_dir / "tinygrad-edu"
        shim.write_text(f'#!/bin/sh\nexec "{python}" -m tinygrad_edu "$@"\n')
        shim.chmod(0o755)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["XDG_CACHE_HOME"] = str(cwd / ".cache")
    env["COLUMNS"] = "100"
    return env


def run_session(source: str, cwd: Path, timeout: float | None = COMMAND_TIMEOUT) -> list[tuple[Command, str]]:
    """Run a console block's commands in order with bash in cwd; each command's output (stdout and stderr).
    `$?` in a command is the previous command's exit status, as in a terminal. A command still running after
    `timeout` seconds is stopped with everything it started, and raises TimeoutError. A command that fails (a
    non-zero exit status) raises CommandFailed, unless the next command of the block reads its `$?`: a failure
    shown on purpose shows its status too."""
    env, status, results = command_env(cwd), 0, []
    commands = parse_session(source)
    for cmd in commands:
        if status and "$?" not in cmd.command:
            failed, out = results[-1]
            raise CommandFailed(f"$ {failed.command}\nexited with status {status} (show it on purpose with a "
                                f"following `$ echo $?`):\n{out}")
        with subprocess.Popen(["bash", "-c", f"(exit {status}); {cmd.command}"], cwd=cwd, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True) as p:
            try:
                out, _ = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
                p.communicate()
                raise TimeoutError(f"$ {cmd.command}: still running after {timeout} s (a run block must be quick; "
                                   "make it a measurement)") from None
        status = p.returncode
        results.append((cmd, out))
    if status:
        raise CommandFailed(f"$ {commands[-1].command}\nexited with status {status} (show it on purpose with a "
                            f"following `$ echo $?`):\n{results[-1][1]}")
    return results


class CommandFailed(Exception):
    """A run or measurement block's command exited with a non-zero status that the block does not show."""


# --- Sybil: evaluators and the parser ------------------------------------------------------------------------

PAGE_DIR = "__docs_page_dir__"


class _InPageDir:
    def __init__(self, namespace):
        self.dir = namespace[PAGE_DIR]

    def __enter__(self):
        self.old = os.getcwd()
        os.chdir(self.dir)

    def __exit__(self, *exc):
        os.chdir(self.old)


def evaluate_console(example: Example) -> str | None:
    failures = []
    try:
        session = run_session(example.parsed, Path(example.namespace[PAGE_DIR]))
    except CommandFailed as e:
        return str(e)
    for cmd, got in session:
        if not matches(cmd.want, got):
            failures.append(f"$ {cmd.command}\n{difference(cmd.want, got)}")
    return "\n".join(failures) or None


class _Checker(doctest.OutputChecker):
    def check_output(self, want, got, optionflags):
        return matches(want, got)


class _DocTestEvaluator(DocTestEvaluator):
    def __init__(self):
        super().__init__()
        self.runner._checker = _Checker()

    def __call__(self, example):
        with _InPageDir(example.namespace):
            return super().__call__(example)


class _PythonEvaluator(PythonEvaluator):
    def __call__(self, example):
        with _InPageDir(example.namespace):
            return super().__call__(example)


def _wrong_language(language):
    def evaluate(example):
        return f"a run block is ```console or ```python, not ```{language}"
    return evaluate


def missing_tools(needs: tuple[str, ...]) -> list[str]:
    """The tools of `needs` that are not on PATH."""
    return [tool for tool in needs if shutil.which(tool) is None]


def needing(tools: tuple[str, ...], evaluator):
    """evaluator, run only when every tool is on PATH: else the block skips, saying which is missing and how to
    get it; under CI=true (where .ci/run installs them) a missing tool fails the block instead."""
    import pytest

    def evaluate(example):
        missing = missing_tools(tools)
        if missing:
            reason = (f"this block needs {', '.join(missing)}, not on PATH (docs/docs-tests.md says how to "
                      "install the optional tools)")
            if os.environ.get("CI", "").lower() == "true":
                return f"{reason}: CI must run it"
            pytest.skip(reason)
        return evaluator(example)
    return evaluate


class RunBlockParser:
    """Sybil's parser for the run blocks of a page (measurement and text blocks are left alone)."""

    def __init__(self):
        self.doctest = DocTestStringParser(_DocTestEvaluator())
        self.python = _PythonEvaluator()

    def __call__(self, document: Document):
        for block in blocks(document):
            if block.mark != "run":
                continue
            region = block.region
            region.parsed = region.lexemes["source"]
            if block.language == "python" and block.source.lstrip().startswith(">>>"):
                for doctest_region in self.doctest(region.parsed, document.path):
                    doctest_region.adjust(region, region.parsed)
                    if block.needs:
                        doctest_region.evaluator = needing(block.needs, doctest_region.evaluator)
                    yield doctest_region
                continue
            region.evaluator = {"console": evaluate_console, "python": self.python}.get(
                block.language, _wrong_language(block.language))
            if block.needs:
                region.evaluator = needing(block.needs, region.evaluator)
            yield region


def _setup(namespace):
    namespace[PAGE_DIR] = tempfile.mkdtemp(prefix="docs-page-")


def _teardown(namespace):
    shutil.rmtree(namespace.pop(PAGE_DIR), ignore_errors=True)


def sybil() -> Sybil:
    """The docs' Sybil: README.md and docs/**/*.md, relative to the repository root."""
    return Sybil(parsers=[RunBlockParser()], path=str(ROOT), patterns=["README.md", "docs/*.md", "docs/**/*.md"],
                 setup=_setup, teardown=_teardown, name="docs")
