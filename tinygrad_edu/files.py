"""Writing a user's files whole or not at all: a temporary file beside the target, then a rename."""
from __future__ import annotations

import os
import stat
import tempfile
import uuid
from pathlib import Path


class OutputError(OSError):
    """An output path names something a written file must not replace (a link, a device, a FIFO, a folder)."""


def output_problem(path) -> str | None:
    """Why a file written to path (replacing what is there) would do harm, or None: the one check of an output's
    path, made by write_atomic and by the commands before any work starts (cli.common.check_outputs).

    Only a regular file (or nothing) may be replaced: a rename onto a symbolic link replaces the link, not the
    file it leads to, and one onto a device node (/dev/full, as root) or a FIFO would put a file in its place."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as e:
        return f"cannot look at it ({e.strerror or e})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return "is a symbolic link; name the file it leads to instead (an output never replaces a link)"
    if stat.S_ISDIR(mode):
        return "is a folder"
    kind = "a FIFO (a named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else \
        "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"
    return f"is {kind}, not a regular file; an output is only ever written to a regular file"


def folder_problem(folder) -> str | None:
    """Why no file can be made in an existing folder (None if one can), found by making one: a file that has no
    name (or is removed at once), so nothing appears. os.access alone says yes to root on /proc or /sys."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        return f"cannot write in {folder} ({e.strerror or e})"
    return None


def write_atomic(path, data: bytes) -> Path:
    """Writes data to path through a temporary file in the same folder, so a crash leaves no half-written file.

    The temporary file is opened like any new file (mode "xb"), so the result gets the usual permissions. A path
    that is not a regular file (output_problem) is refused with OutputError, an OSError.
    """
    path = Path(path)
    if problem := output_problem(path):
        raise OutputError(f"{path} {problem}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
