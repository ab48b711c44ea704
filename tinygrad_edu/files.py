"""Writing a user's files whole or not at all: a temporary file beside the target, then a rename."""
from __future__ import annotations

import os
import uuid
from pathlib import Path


def write_atomic(path, data: bytes) -> Path:
    """Writes data to path through a temporary file in the same folder, so a crash leaves no half-written file.

    The temporary file is opened like any new file (mode "xb"), so the result gets the usual permissions.
    """
    path = Path(path)
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
