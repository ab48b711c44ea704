"""`exercises start`: writes a fresh workbook (ops.py, tutorial.py, README.md) that the learner owns, in their language.

The language chosen is remembered in the README's first line, `<!-- tinygrad-edu workbook: lang=vi -->`, which
`exercises check` reads (its own --lang overrides it).
"""
from __future__ import annotations

import os
import re
import shutil
import uuid
from importlib import resources
from pathlib import Path

from tinygrad_edu import messages

FILES = ("ops.py", "tutorial.py", "README.md")
LANGUAGES = messages.LANGUAGES
MARKER = re.compile(r"<!-- tinygrad-edu workbook: lang=(\w+) -->")


class WorkbookError(Exception):
    """The workbook cannot be written (it exists, or the folder cannot be written); the message says which."""


def template(name: str, lang: str = "en") -> str:
    """A workbook file's text as shipped, in the chosen language: README.md, and the code's comments."""
    stem, ext = name.rsplit(".", 1)
    if name == "README.md" or lang != "en":
        name = f"{stem}.{lang}.{ext}"
    return (resources.files("tinygrad_edu.exercises") / "templates" / name).read_text(encoding="utf-8")


def language(folder) -> str:
    """The language the workbook was started in (its README's marker), else English."""
    try:
        with open(Path(folder) / "README.md", encoding="utf-8", errors="replace") as f:
            first = f.readline(1000)
    except OSError:
        return messages.DEFAULT_LANGUAGE
    found = MARKER.search(first)
    return found.group(1) if found and found.group(1) in LANGUAGES else messages.DEFAULT_LANGUAGE


def start(folder, lang: str = "en") -> Path:
    """Writes the workbook into folder (new, or existing without any workbook file), whole or not at all."""
    if lang not in LANGUAGES:
        raise WorkbookError(f"no workbook in language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise WorkbookError(messages.text("exercises.is-file", lang, folder=folder))
    present = [f for f in FILES if os.path.lexists(folder / f)]   # NOTE: a link, even broken, is the user's
    if present:
        raise WorkbookError(messages.text("exercises.exists", lang, folder=folder, files=", ".join(present)))
    texts = {f: template(f, lang).encode("utf-8") for f in FILES}
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
        for f in FILES:
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
