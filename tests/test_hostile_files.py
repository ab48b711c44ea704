"""Hostile files: weights and data files whose claims are checked before anything is allocated (issue 12, class 5).

Memory is measured in a subprocess (its peak resident set, from os.wait4), never time; the subprocess also runs
under an address-space limit, so a regression fails with a MemoryError instead of taking the shared machine's
memory.
"""
import gzip
import io
import json
import math
import os
import resource
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.lib import format as npy

from tinygrad_edu import checkpoint, datasets, nn, optim
from tinygrad_edu.checkpoint import CheckpointError
from tinygrad_edu.mlp import MLP

ROOT = Path(__file__).parents[1]
NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MB = 2**20


# --- crafting files -------------------------------------------------------------------------------------------


def npy_bytes(shape, dtype, data: bytes = b"") -> bytes:
    """An .npy member whose header claims `shape` of `dtype`, followed by whatever `data` is."""
    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, {"descr": npy.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                                     "shape": tuple(shape)})
    return buf.getvalue() + data


def array_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def write_npz(path, members: dict[str, bytes], architecture: dict | None = None, deflate: bool = False):
    """A zip of .npy members, with the architecture entry when given."""
    if architecture is not None:
        members = {**members, "__architecture__": array_bytes(np.array(json.dumps(architecture)))}
    mode = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", mode) as zf:
        for name, data in members.items():
            zf.writestr(name + ".npy", data)
    return path


def gzip_bomb(prefix: bytes, mib: int) -> bytes:
    """A valid gzip file of `prefix` then `mib` MiB of zeros, built block by block (the zeros never exist whole):
    each MiB compresses, after a full flush, to the same deflate block."""
    chunk = bytes(MB)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = co.compress(prefix) + co.flush(zlib.Z_FULL_FLUSH)
    block = co.compress(chunk) + co.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(prefix)
    for _ in range(mib):
        crc = zlib.crc32(chunk, crc)
    size = len(prefix) + mib * MB
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + head + block * mib + co.flush()
            + struct.pack("<II", crc, size & 0xFFFFFFFF))


def idx(a: np.ndarray) -> bytes:
    return bytes([0, 0, 8, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def run_measured(argv, tmp_path) -> tuple[int, str, float]:
    """(exit code, stderr, peak resident MB) of `python -m tinygrad_edu ARGV` in a subprocess limited to 4 GB of
    address space."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with open(tmp_path / "stderr", "w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "tinygrad_edu", *argv], stdout=subprocess.DEVNULL,
                                stderr=err, env=env, preexec_fn=limit)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        return proc.returncode, err.read(), usage.ru_maxrss / 1024   # ru_maxrss is in KB on Linux


# --- weights files ----------------------------------------------------------------------------------------------

TUTORIAL = {"model": "tutorial", "sizes": [784, 10, 10], "dtype": "float32", "init": "tutorial"}


def tutorial_members(hidden=10, dtype="<f4"):
    return {"W1": npy_bytes((hidden, 784), dtype, bytes(hidden * 784 * 4)),
            "b1": npy_bytes((hidden, 1), dtype, bytes(hidden * 4)),
            "W2": npy_bytes((10, hidden), dtype, bytes(10 * hidden * 4)), "b2": npy_bytes((10, 1), dtype, bytes(40))}


def test_a_member_whose_header_claims_terabytes_is_refused_before_reading(tmp_path):
    path = write_npz(tmp_path / "w.npz", {**tutorial_members(), "W1": npy_bytes((10**9, 784), "<f4", bytes(64))},
                     TUTORIAL)
    with pytest.raises(CheckpointError, match=r"w.npz: W1: its header claims float32 \(1000000000, 784\) "
                                              r"\(3136000000000 bytes\), which takes the file's arrays past"):
        checkpoint.load(path)
    fits = write_npz(tmp_path / "fits.npz", {"x": npy_bytes((100,), "<f8", bytes(64))}, TUTORIAL)
    with pytest.raises(CheckpointError, match=r"x: its header claims float64 \(100,\) \(800 bytes\), but the member "
                                              "holds 64 bytes"):
        checkpoint.load(fits)


@given(shape=st.lists(st.integers(0, 2**40), max_size=4),
       dtype=st.sampled_from(["<f4", ">f8", "|u1", "<i8", "|b1", "<U3", "|O", "|V8", "<c8", "<M8[s]"]),
       extra=st.integers(-8, 8), deflate=st.booleans())
def test_any_header_is_checked_against_the_members_size(tmp_path_factory, shape, dtype, extra, deflate):
    """Whatever an .npy header claims, load reads the array exactly or refuses the file by name: never a
    MemoryError, never an object array."""
    dtype = np.dtype(dtype)
    claimed = math.prod(shape) * dtype.itemsize
    data = bytes(max(0, min(claimed, 4096) + extra))
    path = write_npz(tmp_path_factory.mktemp("h") / "w.npz", {"a": npy_bytes(shape, dtype, data)}, {}, deflate)
    try:
        arrays, _ = checkpoint.load(path)
    except CheckpointError as e:
        assert str(e).startswith(f"{path}: ")
        return
    assert len(data) == claimed and arrays["a"].shape == tuple(shape) and arrays["a"].dtype == dtype
    assert not dtype.hasobject and dtype.kind in "biufU"


def test_limits_on_the_whole_file(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "MAX_BYTES", 1000)
    with pytest.raises(CheckpointError, match="the arrays hold 1600 bytes, more than a weights file's limit of 1000"):
        checkpoint.save(tmp_path / "big.npz", {"a": np.zeros(100), "b": np.zeros(100)}, {})
    assert not (tmp_path / "big.npz").exists()
    write_npz(tmp_path / "big.npz", {"a": array_bytes(np.zeros(100)), "b": array_bytes(np.zeros(100))}, {})
    with pytest.raises(CheckpointError, match="b: its header claims float64 \\(100,\\) \\(800 bytes\\), which takes "
                                              "the file's arrays past the limit of 1000 bytes"):
        checkpoint.load(tmp_path / "big.npz")


def test_save_refuses_object_arrays_so_files_stay_pickle_free(tmp_path):
    path = tmp_path / "w.npz"
    for bad in (np.array([{"a": 1}], dtype=object), np.zeros(2, dtype=[("x", "<f4"), ("y", "<i4")])):
        with pytest.raises(CheckpointError, match=r"w.npz: cannot save 'W1': .*pickle-free"):
            checkpoint.save(path, {"W1": bad}, {"model": "x"})
        assert not path.exists()
    checkpoint.save(path, {"W1": np.arange(3.0)}, {"model": "x"})
    with zipfile.ZipFile(path) as zf:
        assert all(npy.read_magic(f := zf.open(n)) and not npy.read_array_header_1_0(f)[2].hasobject
                   for n in zf.namelist())


def test_an_architecture_bigger_than_its_arrays_is_refused_before_the_model_is_built(tmp_path, monkeypatch):
    """The sizes are checked against the arrays' headers: the model is never built, no array but the
    architecture is read."""
    from tinygrad_edu import training

    def never(*args, **kwargs):
        raise AssertionError("the model was built before its architecture was checked")

    model = MLP((784, 16, 10), seed=0)
    path = checkpoint.save(tmp_path / "m.npz", model.state_dict(), {**model.architecture(), "sizes": [784, 20000, 10]})
    read, original = [], checkpoint._read_array
    monkeypatch.setattr(checkpoint, "_read_array", lambda zf, m: read.append(m[0].filename) or original(zf, m))
    monkeypatch.setattr(MLP, "from_architecture", classmethod(never))
    message = r"m.npz: layers.0.weight is float32 \(16, 784\), the architecture says float32 \(20000, 784\)"
    with pytest.raises(CheckpointError, match=message):
        nn.load(path)
    with pytest.raises(CheckpointError, match=message):
        training.load_model(path)
    assert read == ["__architecture__.npy"] * 2


@pytest.mark.parametrize("architecture, message", [
    ({"model": "mlp", "sizes": [784, 10**6, 10], "dtype": "float32"}, "more than the 16777216 a weights file"),
    ({"model": "tutorial", "sizes": [784, 10**6, 10], "dtype": "float32"}, "the architecture makes 795000010 "),
    ({"model": "mlp", "sizes": [784, 10.5, 10], "dtype": "float32"}, "sizes must be two or more positive integers"),
    ({"model": "mlp", "sizes": [784, 16, 10], "dtype": "object"}, "dtype must be float32 or float64"),
])
def test_claims_beyond_the_limits_are_refused_by_name(tmp_path, architecture, message):
    path = write_npz(tmp_path / "w.npz", {}, architecture)
    from tinygrad_edu import training
    with pytest.raises(CheckpointError, match=message):
        training.load_model(path)


def test_sequential_claims_are_checked_without_building(tmp_path):
    huge = {"model": "sequential", "layers": [{"type": "Linear", "in_features": 10**6, "out_features": 10**6}]}
    path = write_npz(tmp_path / "s.npz", {}, huge)
    with pytest.raises(CheckpointError, match="s.npz: cannot rebuild the model from its architecture: the "
                                              "architecture makes 1000001000000 parameters, more than the"):
        nn.load(path)
    odd = {"model": "sequential", "layers": [{"type": "Linear", "in_features": True, "out_features": 3}]}
    with pytest.raises(CheckpointError, match="layer 0: Linear: in_features must be an integer ≥ 1, got True"):
        nn.load(write_npz(tmp_path / "odd.npz", {}, odd))


@given(sizes=st.lists(st.integers(1, 6), min_size=2, max_size=5), dropout=st.sampled_from([0.0, 0.3]),
       dtype=st.sampled_from(["float32", "float64"]))
def test_parameter_shapes_are_the_shapes_the_model_has(sizes, dropout, dtype):
    model = MLP(sizes, dropout=dropout, dtype=dtype, seed=0)
    assert MLP.parameter_shapes(model.architecture()) == {n: (p.shape, str(p.dtype))
                                                          for n, p in model.named_parameters()}


def test_evaluate_on_a_weights_file_claiming_a_huge_model_stays_small(tmp_path):
    """An mlp of 784-1000000-10 (3 GB of float32, 6 GB drawn in float64) and a tutorial W1 claiming 3 TB: both
    refused in one line, exit 2, without allocating them."""
    mlp = write_npz(tmp_path / "mlp.npz", {}, {"model": "mlp", "sizes": [784, 10**6, 10], "dtype": "float32"})
    claim = write_npz(tmp_path / "claim.npz", {**tutorial_members(), "W1": npy_bytes((10**9, 784), "<f4")},
                      {**TUTORIAL, "sizes": [784, 10**9, 10]})
    for path, message in ((mlp, "a weights file can hold"), (claim, "W1: its header claims float32 (1000000000, 784)")):
        code, err, peak = run_measured(["evaluate", "--weights", str(path), "--data", str(tmp_path)], tmp_path)
        assert code == 2 and err.startswith(f"tinygrad-edu evaluate: error: {path}") and message in err, err
        assert err.count("\n") == 1 and peak < 1500


def test_a_gzip_bomb_in_the_data_costs_no_more_than_its_header_claims(tmp_path):
    """A 700 KB train-images file whose header claims 100 images but that inflates to 640 MB: refused as trailing
    data after reading 100 images' bytes (plus one), with the peak memory far below the inflated size."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    images, labels = np.zeros((100, 28, 28), np.uint8), np.zeros(100, np.uint8)
    for name, a in zip(NAMES, (images, labels, images, labels)):
        (folder / f"{name}.gz").write_bytes(gzip.compress(idx(a), mtime=0))
    bomb = folder / f"{NAMES[0]}.gz"
    bomb.write_bytes(gzip_bomb(idx(images), 640))
    assert bomb.stat().st_size < MB
    code, err, peak = run_measured(["train", "--data", str(folder), "--no-download", "--quiet", "--iterations", "1"],
                                   tmp_path)
    assert code == 2 and "trailing bytes: header says 100×28×28 = 78400 bytes of uint8 data, file has more" in err
    assert peak < 600, peak


def test_a_header_claiming_more_than_the_limit_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", 60000, 280, 28) + bytes(100)))
    monkeypatch.setattr(datasets, "MAX_IDX_BYTES", 2**26)
    with pytest.raises(datasets.DatasetError, match="header says 60000×280×28 = 470400000 bytes of uint8 data, more "
                                                    "than the limit of 67108864 bytes"):
        datasets.read_idx(path)


# --- optimizer state --------------------------------------------------------------------------------------------


@pytest.fixture
def resumable(tmp_path):
    """A saved MLP with Adam and a cosine schedule after one step; returns (path, arrays, architecture)."""
    model = MLP((6, 5, 3), seed=0)
    opt = optim.Adam(model.parameters(), lr=0.01)
    sched = optim.CosineAnnealingLR(opt, T_max=6)
    from tinygrad_edu.nn import functional as F
    F.cross_entropy(model(np.ones((2, 6), np.float32)), np.array([0, 1])).backward()
    opt.step()
    sched.step()
    path = nn.save(model, tmp_path / "ckpt.npz", opt, sched)
    arrays, architecture = checkpoint.load(path)
    return path, arrays, architecture


def meta_with(arrays, **change):
    meta = json.loads(str(arrays["optim/meta"]))
    return {**arrays, "optim/meta": np.array(json.dumps({**meta, **change}))}


CORRUPT = [
    (lambda a: {**a, "optim/meta": np.array("{not json")}, "the 'optim/meta' entry is not valid JSON"),
    (lambda a: {**a, "optim/meta": np.array("[]")}, "corrupt optimizer state: the meta entry must be an object"),
    (lambda a: {**a, "optim/meta": np.zeros(3)}, "the 'optim/meta' entry must be a JSON string"),
    (lambda a: {**a, "optim/meta": np.array('{"optimizer": "Adam"}')},
     "must be an object with optimizer, param_groups and scheduler"),
    (lambda a: meta_with(a, param_groups="all"), "param_groups must be a list of 1 groups"),
    (lambda a: meta_with(a, param_groups=[{"lr": 0.1}]), "param group 0 must have the keys"),
    (lambda a: meta_with(a, param_groups=[{**json.loads(str(a["optim/meta"]))["param_groups"][0], "lr": "fast"}]),
     "param group 0: lr is 'fast'"),
    (lambda a: {**a, "optim/state.x.exp_avg": np.zeros(3)}, "'optim/state.x.exp_avg' is not optim/state.<i>.<name>"),
    (lambda a: {**a, "optim/state.99.exp_avg": np.zeros(3)}, "with i < 4"),
    (lambda a: {**a, "optim/junk": np.zeros(3)}, "'optim/junk' is not optim/state"),
    (lambda a: {**a, "optim/state.0.exp_avg": np.array("text")}, "'optim/state.0.exp_avg' is <U4, not numbers"),
    (lambda a: {**a, "optim/state.0.exp_avg": np.zeros((2, 2))}, "has shape (2, 2), the parameter (5, 6)"),
    (lambda a: meta_with(a, scheduler={**json.loads(str(a["optim/meta"]))["scheduler"], "optimizer": 1}),
     "corrupt optimizer state: the CosineAnnealingLR state must have"),
    (lambda a: meta_with(a, scheduler={**json.loads(str(a["optim/meta"]))["scheduler"], "last_epoch": "one"}),
     "corrupt optimizer state: the CosineAnnealingLR state must have"),
]


@pytest.mark.parametrize("corrupt, message", CORRUPT)
def test_corrupt_optimizer_state_is_one_clear_error_and_changes_nothing(resumable, corrupt, message):
    path, arrays, architecture = resumable
    checkpoint.save(path, corrupt(dict(arrays)), architecture)
    model = nn.load(path)
    opt = optim.Adam(model.parameters(), lr=0.01)
    sched = optim.CosineAnnealingLR(opt, T_max=6)
    before = (json.dumps(opt.state_dict(), default=str), json.dumps(sched.state_dict(), default=str))
    with pytest.raises(CheckpointError) as e:
        nn.load_optimizer_state(path, opt, sched)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value)
    assert (json.dumps(opt.state_dict(), default=str), json.dumps(sched.state_dict(), default=str)) == before


@given(code=st.sampled_from([0x08, 0x0B, 0x0E]), dims=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=3),
       body=st.integers(0, 8 * MB), gz=st.booleans())
def test_read_idx_allocates_no_more_than_the_header_claims(tmp_path_factory, code, dims, body, gz):
    """Whatever the header claims and however much data follows, read_idx holds at most the claimed bytes (within
    MAX_IDX_BYTES) plus its reading buffers: a file that inflates past its claim is never held whole."""
    import tracemalloc

    content = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + bytes(body)
    path = tmp_path_factory.mktemp("idx") / "f"
    path.write_bytes(gzip.compress(content, compresslevel=1) if gz else content)
    claimed = math.prod(dims) * {0x08: 1, 0x0B: 2, 0x0E: 8}[code]
    tracemalloc.start()
    try:
        a = datasets.read_idx(path)
        assert a.shape == tuple(dims) and claimed == body
    except datasets.DatasetError as e:
        assert str(e).startswith(f"{path}: ")
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak <= min(claimed, datasets.MAX_IDX_BYTES) + 4 * MB, (peak, claimed)


def test_train_refuses_a_model_too_big_for_a_weights_file_before_it_starts():
    from tinygrad_edu.training import ConfigError, TrainConfig
    with pytest.raises(ConfigError, match="--model mlp --hidden 4096,4096 makes 20037642 parameters, more than the "
                                          "16777216 a weights file can hold"):
        TrainConfig(model="mlp", hidden=(4096, 4096), iterations=None, epochs=1, optimizer="adam")
    fits = TrainConfig(model="mlp", hidden=(2048, 2048), iterations=None, epochs=1, optimizer="adam")
    assert fits.hidden == (2048, 2048)
    # the cnn's count is its own: 8·26 + 70000·201 for the kernels, then 1120000 features into 16 units
    with pytest.raises(ConfigError, match="--model cnn --channels 8,70000 --hidden 16 makes 31990394 parameters"):
        TrainConfig(model="cnn", channels=(8, 70000), hidden=(16,), iterations=None, epochs=1)
    wide = TrainConfig(model="cnn", hidden=(30000,), iterations=None, epochs=1)   # 256·30000 + …: fits
    assert wide.hidden == (30000,)
