"""Weights files: named numpy arrays plus the model's architecture as JSON, in an .npz that needs no pickle.

Layout of the file:
    "__architecture__"  a 0-d unicode array holding JSON (e.g. {"model": "tutorial", "dtype": "float32", ...})
    "<name>"            one array per parameter (e.g. "W1", "layers.0.weight")
    "optim/<name>"      optimizer state, if saved (read only by whoever resumes training)

Writing is atomic (a temporary file in the same folder, then a rename), so a crash never leaves a half-written
file in place of one the user saved before. Arrays of Python objects are refused, so a file never holds a pickle.

Reading treats the file as hostile: every member's .npy header is read first and its claim (shape × dtype) is
checked against the member's size in the zip and against MAX_BYTES; then the architecture is read and, through
load's `check`, compared with those headers; only then is any array's data read. So a file that claims more
than it holds, or an architecture bigger than its arrays, is refused before anything of that size is allocated.
"""
from __future__ import annotations

import io
import json
import math
import stat
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.lib import format as npy

from tinygrad_edu.files import write_atomic

ARCHITECTURE_KEY = "__architecture__"
OPTIM_PREFIX = "optim/"

# Hard limits of a weights file, checked before anything is allocated.
MAX_BYTES = 512 * 2**20        # the data of all its arrays together
MAX_MEMBERS = 4096             # arrays in one file
MAX_JSON_CHARS = 2**20         # the architecture and the optimizer's meta entry
MAX_PARAMETERS = 2**24         # numbers in a model's state (check_parameter_count)
_KINDS = "biufU"               # bool, integers, floats and text (the JSON entries): no objects, no records


class CheckpointError(ValueError):
    """A weights file is missing, unreadable, or does not fit the architecture it claims; the message says which."""


class Header(NamedTuple):
    """What an .npy member's header claims: the array's shape and dtype (its data is not read)."""
    shape: tuple[int, ...]
    dtype: np.dtype


def _refuse_dtype(dtype: np.dtype) -> str | None:
    """Why arrays of this dtype cannot be in a weights file (None if they can)."""
    if dtype.hasobject:
        return "an array of Python objects, which only a pickle can hold"
    if dtype.kind not in _KINDS or dtype.names is not None or dtype.shape != ():
        return f"dtype {dtype}, not a plain number or text dtype"
    return None


def save(path, arrays: dict[str, np.ndarray], architecture: dict) -> Path:
    """Writes arrays and the architecture (a JSON-able dict) to path atomically; returns the path.

    Refuses what load would refuse: arrays of objects (a pickle) or of record dtypes, and more than MAX_BYTES."""
    path = Path(path)
    if ARCHITECTURE_KEY in arrays:
        raise CheckpointError(f"{path}: {ARCHITECTURE_KEY!r} is reserved for the architecture")
    payload = {name: np.asarray(a) for name, a in arrays.items()}
    for name, a in payload.items():
        if problem := _refuse_dtype(a.dtype):
            raise CheckpointError(f"{path}: cannot save {name!r}: {problem} (weights files are pickle-free)")
    if (total := sum(a.nbytes for a in payload.values())) > MAX_BYTES:
        raise CheckpointError(f"{path}: the arrays hold {total} bytes, more than a weights file's limit of "
                              f"{MAX_BYTES} bytes")
    payload[ARCHITECTURE_KEY] = np.array(json.dumps(architecture, sort_keys=True))
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **payload)
    write_atomic(path, buffer.getvalue())
    return path


def load(path, check=None, *, optimizer: bool = True) -> tuple[dict[str, np.ndarray], dict]:
    """Reads a file written by save: (arrays by name, architecture). Raises CheckpointError on any defect.

    check(architecture, headers), if given, is called once the architecture and every array's Header (name ->
    shape and dtype) are read and checked, before any array's data is read; it raises CheckpointError for a
    file whose arrays do not fit its architecture. optimizer=False leaves the optim/ arrays unread.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode   # NOTE: through symlinks: the file they lead to is what is read
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such weights file") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read it ({e.strerror or e})") from None
    if stat.S_ISDIR(mode):
        raise CheckpointError(f"{path} is a folder, not a weights file (an .npz written by train --save)")
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"{path} is {_file_kind(mode)}, not a weights file (an .npz written by train --save)")
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                raise CheckpointError(f"{path}: not an .npz weights file (it does not start with a zip header)")
        with zipfile.ZipFile(path) as zf:
            members = _read_headers(path, zf)
            if ARCHITECTURE_KEY not in members:
                raise CheckpointError(f"{path}: has no {ARCHITECTURE_KEY!r} entry, so the model cannot be rebuilt "
                                      "from it")
            architecture = read_json(path, ARCHITECTURE_KEY, _read_array(zf, members.pop(ARCHITECTURE_KEY)))
            if not isinstance(architecture, dict):
                raise CheckpointError(f"{path}: the architecture entry must be a JSON object")
            if check is not None:
                check(architecture, {name: header for name, (_, header) in members.items()})
            arrays = {name: _read_array(zf, member) for name, member in members.items()
                      if optimizer or not name.startswith(OPTIM_PREFIX)}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{path}: not a readable .npz weights file ({e})") from None
    return arrays, architecture


def _file_kind(mode: int) -> str:
    """What a file that is not a regular file or a folder is, for the messages: "a FIFO", "a device", ..."""
    if stat.S_ISFIFO(mode):
        return "a FIFO (a named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_json(path, name: str, entry: np.ndarray):
    """The JSON value a 0-d text entry of the file holds (the architecture, the optimizer's meta)."""
    if entry.dtype.kind != "U" or entry.shape != ():
        raise CheckpointError(f"{path}: the {name!r} entry must be a JSON string, it is {entry.dtype} "
                              f"{entry.shape}")
    try:
        return json.loads(str(entry))
    except (json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"{path}: the {name!r} entry is not valid JSON ({e})") from None


def _read_headers(path, zf: zipfile.ZipFile) -> dict[str, tuple[zipfile.ZipInfo, Header]]:
    """name -> (its zip member, its Header) for every array, each claim checked; no array data is read."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise CheckpointError(f"{path}: holds {len(infos)} arrays, more than the limit of {MAX_MEMBERS}")
    members, total = {}, 0
    for info in infos:
        name = info.filename.removesuffix(".npy")
        if name == info.filename or name in members:
            what = "a second" if name in members else "not an .npy"
            raise CheckpointError(f"{path}: member {info.filename!r} is {what} array")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 1:
            raise CheckpointError(f"{path}: member {info.filename!r} is encrypted or compressed in a way numpy "
                                  "never writes")
        with zf.open(info) as f:
            version = npy.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                raise CheckpointError(f"{path}: {name}: .npy format version {version} is not 1.0 or 2.0")
            read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, _, dtype = read(f)
            start = f.tell()
        if problem := _refuse_dtype(dtype):
            raise CheckpointError(f"{path}: {name} is {problem}; refused (weights files are pickle-free)")
        if any(n < 0 for n in shape):
            raise CheckpointError(f"{path}: {name}: its header gives the negative shape {shape}")
        claimed = math.prod(shape) * dtype.itemsize
        total += claimed
        if total > MAX_BYTES:
            raise CheckpointError(f"{path}: {name}: its header claims {dtype} {shape} ({claimed} bytes), which "
                                  f"takes the file's arrays past the limit of {MAX_BYTES} bytes")
        if info.file_size - start != claimed:
            raise CheckpointError(f"{path}: {name}: its header claims {dtype} {shape} ({claimed} bytes), but the "
                                  f"member holds {info.file_size - start} bytes of data")
        if name == ARCHITECTURE_KEY and claimed > 4 * MAX_JSON_CHARS:
            raise CheckpointError(f"{path}: the architecture entry is {claimed} bytes, more than the limit of "
                                  f"{4 * MAX_JSON_CHARS}")
        members[name] = (info, Header(tuple(shape), dtype))
    return members


def _read_array(zf: zipfile.ZipFile, member: tuple[zipfile.ZipInfo, Header]) -> np.ndarray:
    with zf.open(member[0]) as f:
        return npy.read_array(f, allow_pickle=False)


def check_parameter_count(shapes: dict[str, tuple[tuple, str]], what: str) -> int:
    """The numbers a model's state of these shapes (name -> (shape, dtype)) holds; ValueError naming `what` (e.g.
    "--model mlp --hidden 4096,4096") when they are more than MAX_PARAMETERS. The loader checks a file's
    architecture with it, and `train` its configuration before it starts."""
    count = sum(math.prod(shape) for shape, _ in shapes.values())
    if count > MAX_PARAMETERS:
        raise ValueError(f"{what} makes {count} parameters, more than the {MAX_PARAMETERS} a weights file can hold")
    return count


def check_arrays(path, arrays: dict, expected: dict[str, tuple[tuple, str]]) -> None:
    """Refuses a file whose model arrays differ from `expected` (name -> (shape, dtype)) in name, shape or dtype.

    `arrays` maps names to arrays or to their Headers (anything with .shape and .dtype). Keys under optim/ are
    optimizer state and are not checked here.
    """
    model = {k: a for k, a in arrays.items() if not k.startswith(OPTIM_PREFIX)}
    missing = sorted(set(expected) - set(model))
    extra = sorted(set(model) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{path}: arrays do not match the architecture: missing {missing}, unexpected {extra}")
    for name, (shape, dtype) in expected.items():
        a = model[name]
        if a.shape != tuple(shape) or a.dtype != np.dtype(dtype):
            raise CheckpointError(f"{path}: {name} is {a.dtype} {a.shape}, the architecture says {np.dtype(dtype)} "
                                  f"{tuple(shape)}")
