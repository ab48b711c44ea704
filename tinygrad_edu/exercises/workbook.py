"""`exercises start`: writes a fresh workbook (ops.py, tutorial.py, README.md) that the learner owns."""
from __future__ import annotations

import os
import shutil
import uuid
from importlib import resources
from pathlib import Path

FILES = ("ops.py", "tutorial.py", "README.md")
LANGUAGES = ("en", "vi")


class WorkbookError(Exception):
    """The workbook cannot be written (it exists, or the folder cannot be written); the message says which."""


def template(name: str, lang: str = "en") -> str:
    """A workbook file's text as shipped: README.md in the chosen language, the code in English."""
    if name == "README.md":
        name = f"README.{lang}.md"
    return (resources.files("tinygrad_edu.exercises") / "templates" / name).read_text(encoding="utf-8")


def start(folder, lang: str = "en") -> Path:
    """Writes the workbook into folder (new, or existing without any workbook file), whole or not at all."""
    if lang not in LANGUAGES:
        raise WorkbookError(f"no workbook in language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise WorkbookError(f"{folder} is a file, not a folder")
    present = [f for f in FILES if os.path.lexists(folder / f)]   # NOTE: a link, even broken, is the user's
    if present:
        raise WorkbookError(f"{folder} already holds a workbook ({', '.join(present)}); your work there is kept. "
                            "Start a new one in another folder")
    texts = {f: template(f, lang).encode("utf-8") for f in FILES}
    # NOTE: written into a hidden folder beside the target, then moved in, so a failure leaves nothing behind.
    parent = folder.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = parent / f".{folder.name}.{uuid.uuid4().hex[:12]}.tmp"
        staging.mkdir()
    except OSError as e:
        raise WorkbookError(f"cannot write in {parent}: {e.strerror or e}") from None
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
        raise WorkbookError(f"cannot write the workbook in {folder}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
