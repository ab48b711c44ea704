"""Weights files: round trip, atomic writes with ordinary permissions, and every defect refused by name."""
import os
import zipfile

import numpy as np
import pytest

from tinygrad_edu import checkpoint
from tinygrad_edu.checkpoint import CheckpointError


def test_round_trip_keeps_arrays_architecture_and_optimizer_state(tmp_path):
    path = tmp_path / "w.npz"
    arrays = {"W1": np.arange(6, dtype=np.float32).reshape(2, 3), "optim/state.0.step": np.array(3)}
    checkpoint.save(path, arrays, {"model": "tutorial", "sizes": [3, 2, 1]})
    loaded, arch = checkpoint.load(path)
    assert arch == {"model": "tutorial", "sizes": [3, 2, 1]}
    assert set(loaded) == set(arrays) and all(np.array_equal(loaded[k], arrays[k]) for k in arrays)
    assert loaded["W1"].dtype == np.float32
    assert os.listdir(tmp_path) == ["w.npz"]                        # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask        # an ordinary file, not owner-only


def test_check_arrays_names_what_differs(tmp_path):
    arrays = {"W1": np.zeros((2, 3), np.float32), "optim/x": np.zeros(1)}
    checkpoint.check_arrays("w.npz", arrays, {"W1": ((2, 3), "float32")})   # optim/ keys are not the model's
    with pytest.raises(CheckpointError, match=r"w.npz: W1 is float32 \(2, 3\), the architecture says float64 \(2, 3\)"):
        checkpoint.check_arrays("w.npz", arrays, {"W1": ((2, 3), "float64")})
    with pytest.raises(CheckpointError, match=r"missing \['b1'\], unexpected \[\]"):
        checkpoint.check_arrays("w.npz", arrays, {"W1": ((2, 3), "float32"), "b1": ((2, 1), "float32")})


def test_defective_files_are_refused_by_name(tmp_path):
    with pytest.raises(CheckpointError, match="no such weights file"):
        checkpoint.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(CheckpointError, match="junk.npz: not an .npz weights file"):
        checkpoint.load(junk)
    bare = tmp_path / "bare.npz"
    np.savez(bare, W1=np.zeros(2))
    with pytest.raises(CheckpointError, match="has no '__architecture__' entry"):
        checkpoint.load(bare)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, W1=np.array([object()], dtype=object), __architecture__=np.array("{}"))
    with pytest.raises(CheckpointError, match="pickled.npz: W1 is an array of Python objects"):
        checkpoint.load(pickled)
    truncated = tmp_path / "cut.npz"
    checkpoint.save(truncated, {"W1": np.zeros(1000)}, {"model": "x"})
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(CheckpointError):
        checkpoint.load(truncated)
    with pytest.raises(CheckpointError, match="reserved"):
        checkpoint.save(tmp_path / "r.npz", {"__architecture__": np.zeros(1)}, {})
    assert zipfile.is_zipfile(tmp_path / "bare.npz")
