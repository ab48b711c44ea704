"""`exercises start`: writes a fresh workbook that the learner owns, in their language: part one (ops.py,
tutorial.py, README.md) or part two (layers.py, README.md).

The language chosen is remembered in the README's first line, `<!-- tinygrad-edu workbook: lang=vi -->`, which
`exercises check` reads (its own --lang overrides it); a part-two workbook's says so too, `... lang=vi part=2 -->`.
"""
from __future__ import annotations

import os
import re
import shutil
import uuid
from importlib import resources
from pathlib import Path

from tinygrad_edu import messages

PART_FILES = {1: ("ops.py", "tutorial.py", "README.md"), 2: ("layers.py", "README.md")}
FILES = PART_FILES[1]
PARTS = tuple(PART_FILES)
LANGUAGES = messages.LANGUAGES
MARKER = re.compile(r"<!-- tinygrad-edu workbook: lang=(\w+)(?: part=(\d+))? -->")


class WorkbookError(Exception):
    """The workbook cannot be written (it exists, or the folder cannot be written); the message says which."""


def template(name: str, lang: str = "en", part: int = 1) -> str:
    """A workbook file's text as shipped, in the chosen language: README.md, and the code's comments."""
    stem, ext = name.rsplit(".", 1)
    if name == "README.md":
        name = f"{stem}.{lang}.{ext}" if part == 1 else f"{stem}.part{part}.{lang}.{ext}"
    elif lang != "en":
        name = f"{stem}.{lang}.{ext}"
    return (resources.files("tinygrad_edu.exercises") / "templates" / name).read_text(encoding="utf-8")


def _marker(folder):
    try:
        with open(Path(folder) / "README.md", encoding="utf-8", errors="replace") as f:
            return MARKER.search(f.readline(1000))
    except OSError:
        return None


def language(folder) -> str:
    """The language the workbook was started in (its README's marker), else English."""
    found = _marker(folder)
    return found.group(1) if found and found.group(1) in LANGUAGES else messages.DEFAULT_LANGUAGE


def part(folder) -> int:
    """The part the workbook holds: its README's marker says; without one, part two if its layers.py is there
    and no ops.py (the README deleted), else part one."""
    found = _marker(folder)
    if found and found.group(2) and int(found.group(2)) in PARTS:
        return int(found.group(2))
    if found:
        return 1
    folder = Path(folder)
    return 2 if (folder / "layers.py").is_file() and not (folder / "ops.py").is_file() else 1


def start(folder, lang: str = "en", part: int = 1) -> Path:
    """Writes the workbook of part `part` into folder (new, or existing without any workbook file of either
    part), whole or not at all."""
    if lang not in LANGUAGES:
        raise WorkbookError(f"no workbook in language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    if part not in PARTS:
        raise WorkbookError(f"no workbook part {part!r}; choose one of {', '.join(map(str, PARTS))}")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise WorkbookError(messages.text("exercises.is-file", lang, folder=folder))
    every = list(dict.fromkeys(f for files in PART_FILES.values() for f in files))
    present = [f for f in every if os.path.lexists(folder / f)]   # NOTE: a link, even broken, is the user's
    if present:
        raise WorkbookError(messages.text("exercises.exists", lang, folder=folder, files=", ".join(present)))
    files = PART_FILES[part]
    texts = {f: template(f, lang, part).encode("utf-8") for f in files}
    # NOTE: written into a hidden folder beside the target, then moved in, so a failure leaves nothing behind.
    parent = folder.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = parent / f".{folder.name}.{uuid.uuid4().hex[:12]}.tmp"
        staging.mkdir()
    except OSError as e:
        raise WorkbookError(messages.text("exercises.cannot-write", lang, folder=parent,
                                          reason=e.strerror or e)) from None
    moved = []
    try:
        for f, data in texts.items():
            (staging / f).write_bytes(data)
        if not folder.exists():
            os.rename(staging, folder)
            return folder
        for f in files:
            os.rename(staging / f, folder / f)
            moved.append(folder / f)
    except OSError as e:
        for p in moved:
            p.unlink(missing_ok=True)
        raise WorkbookError(messages.text("exercises.cannot-write", lang, folder=folder,
                                          reason=e.strerror or e)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
