"""What the checker and its child exchange: JSON lines whose arrays are float64 bytes in base64, never pickles.

The parent parses everything the child sends with `decode` and `read_message`, which accept only plain JSON and
arrays of float64 of a bounded size: nothing the learner's code writes into the pipe can run code or make an
object in the checker.
"""
from __future__ import annotations

import base64
import json
import math

import numpy as np

MAX_ELEMENTS = 1 << 20   # far above any exercise's array; a bigger one is refused, not read
MAX_LINE = 1 << 24       # bytes in one message line


class WireError(ValueError):
    """A message or an array from the child that is not in the format; the parent treats it as not sent."""


def encode(array) -> dict:
    """A float64 array as {"shape": [...], "data": base64 of its little-endian bytes}."""
    a = np.array(array, dtype="<f8", order="C")   # NOTE: not ascontiguousarray, which makes a 0-d array 1-d
    return {"shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def decode(obj) -> np.ndarray:
    """The float64 array that encode wrote, or a WireError; nothing but a shape and bytes is read."""
    if not isinstance(obj, dict) or set(obj) != {"shape", "data"}:
        raise WireError("not an array")
    shape, data = obj["shape"], obj["data"]
    if (not isinstance(shape, list) or len(shape) > 8
            or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_ELEMENTS for n in shape)):
        raise WireError("not a shape")
    size = math.prod(shape)
    if size > MAX_ELEMENTS or not isinstance(data, str):
        raise WireError("too big")
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise WireError("not base64") from None
    if len(raw) != 8 * size:
        raise WireError("the bytes do not fit the shape")
    return np.frombuffer(raw, dtype="<f8").reshape(shape).astype(np.float64)


def write_message(stream, **msg) -> None:
    stream.write(json.dumps(msg, ensure_ascii=False) + "\n")
    stream.flush()


def read_message(line: bytes) -> dict | None:
    """One line as a JSON object, or None if it is not one (the learner's code may write anything)."""
    if len(line) > MAX_LINE:
        return None
    try:
        msg = json.loads(line.decode("utf-8"))
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else None
