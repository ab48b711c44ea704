"""Weights files: named numpy arrays plus the model's architecture as JSON, in an .npz that needs no pickle.

Layout of the file:
    "__architecture__"  a 0-d unicode array holding JSON (e.g. {"model": "tutorial", "dtype": "float32", ...})
    "<name>"            one array per parameter (e.g. "W1", "layers.0.weight")
    "optim/<name>"      optimizer state, if saved (read only by whoever resumes training)

Writing is atomic (a temporary file in the same folder, then a rename), so a crash never leaves a half-written
file in place of one the user saved before. Reading uses allow_pickle=False, so a file cannot run code.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from tinygrad_edu.files import write_atomic

ARCHITECTURE_KEY = "__architecture__"
OPTIM_PREFIX = "optim/"


class CheckpointError(ValueError):
    """A weights file is missing, unreadable, or does not fit the architecture it claims; the message says which."""


def save(path, arrays: dict[str, np.ndarray], architecture: dict) -> Path:
    """Writes arrays and the architecture (a JSON-able dict) to path atomically; returns the path."""
    path = Path(path)
    if ARCHITECTURE_KEY in arrays:
        raise CheckpointError(f"{path}: {ARCHITECTURE_KEY!r} is reserved for the architecture")
    payload = {name: np.asarray(a) for name, a in arrays.items()}
    payload[ARCHITECTURE_KEY] = np.array(json.dumps(architecture, sort_keys=True))
    buffer = io.BytesIO()
    np.savez(buffer, **payload)
    write_atomic(path, buffer.getvalue())
    return path


def load(path) -> tuple[dict[str, np.ndarray], dict]:
    """Reads a file written by save: (arrays by name, architecture). Raises CheckpointError on any defect."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise CheckpointError(f"{path}: not an .npz weights file (it does not start with a zip header)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise CheckpointError(f"{path}: not a readable .npz weights file ({e})") from None
    if ARCHITECTURE_KEY not in arrays:
        raise CheckpointError(f"{path}: has no {ARCHITECTURE_KEY!r} entry, so the model cannot be rebuilt from it")
    try:
        architecture = json.loads(str(arrays.pop(ARCHITECTURE_KEY)))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: the architecture entry is not valid JSON ({e})") from None
    if not isinstance(architecture, dict):
        raise CheckpointError(f"{path}: the architecture entry must be a JSON object")
    return arrays, architecture


def check_arrays(path, arrays: dict[str, np.ndarray], expected: dict[str, tuple[tuple, str]]) -> None:
    """Refuses a file whose model arrays differ from `expected` (name -> (shape, dtype)) in name, shape or dtype.

    Keys under optim/ are optimizer state and are not checked here.
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
