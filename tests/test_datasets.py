"""Tests for tinygrad_edu.datasets: IDX files, lookup, verified download (local server only), CSV, batches."""

import functools
import gzip
import hashlib
import http.server
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinygrad_edu import datasets as ds
from tinygrad_edu.datasets import DatasetError, DatasetNotFoundError

NAMES = list(ds.MNIST_FILES)  # train images, train labels, test images, test labels
TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 14}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ------------------------------------------------------------------------------------------- helpers


def idx_bytes(a: np.ndarray, code: int | None = None) -> bytes:
    """The IDX encoding of `a`: 00 00, type code, ndim, big-endian dims, big-endian data."""
    code = TYPE_CODES[a.dtype.type] if code is None else code
    header = bytes([0, 0, code, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.astype(a.dtype.newbyteorder(">")).tobytes()


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def fake_set(seed: int = 0, n_train: int = 5, n_test: int = 3):
    """A tiny MNIST-shaped data set: {file name: array}."""
    rng = np.random.default_rng(seed)
    return {
        NAMES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        NAMES[1]: rng.integers(0, 10, n_train, dtype=np.uint8),
        NAMES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        NAMES[3]: rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_set(folder: Path, arrays: dict, gz: bool = True) -> dict:
    """Write `arrays` as IDX files into `folder` (as x.gz, or raw x); returns {name: sha256 of the bytes}."""
    folder.mkdir(parents=True, exist_ok=True)
    sums = {}
    for name, a in arrays.items():
        path = write(folder / (name if gz else name.removesuffix(".gz")), idx_bytes(a), gz)
        sums[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def assert_loaded(result, arrays):
    (X, y), (Xt, yt) = result
    for got, name in zip((X, y, Xt, yt), NAMES):
        np.testing.assert_array_equal(got, arrays[name])
        assert got.dtype == np.uint8


@pytest.fixture
def clean_env(monkeypatch, tmp_path, no_bundled):
    """No TINYGRAD_EDU_DATA, the bundled MNIST hidden, a private empty cache, and no system Fashion-MNIST folder."""
    monkeypatch.delenv(ds.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(ds, "FASHION_MNIST_SYSTEM_DIRS", (str(tmp_path / "system"),))
    return tmp_path / "xdg" / "tinygrad_edu"


# ----------------------------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "a",
    [
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-128, -1, 0, 127], dtype=np.int8),
        np.array([[-32768, 1], [2, 32767]], dtype=np.int16),
        np.array([-(2**31), 0, 2**31 - 1], dtype=np.int32),
        np.array([[0.5, -1.25, np.inf]], dtype=np.float32),
        np.array([np.pi, -0.0, 1e300], dtype=np.float64),
        np.zeros((0, 28, 28), dtype=np.uint8),
    ],
)
def test_read_idx_round_trip(tmp_path, a, gz):
    path = write(tmp_path / "data.bin", idx_bytes(a), gz)  # gzip is found by magic bytes, not the name
    got = ds.read_idx(path)
    assert got.dtype == a.dtype.newbyteorder("=") and got.dtype.isnative
    assert got.shape == a.shape and got.flags.writeable
    np.testing.assert_array_equal(got, a)


@pytest.mark.parametrize(
    "data, defect",
    [
        (idx_bytes(np.zeros((60000, 28, 28), np.uint8))[: 16 + 1000],
         "truncated: header says 60000×28×28 = 47040000 bytes of uint8 data, file has 1000"),
        (idx_bytes(np.zeros(3, np.int32))[:-1],
         "truncated: header says 3 × 4 = 12 bytes of int32 data, file has 11"),
        (idx_bytes(np.zeros((2, 2), np.uint8)) + b"xyz", "3 trailing bytes: header says 2×2 = 4 bytes"),
        (gzip.compress(idx_bytes(np.zeros((2, 2), np.uint8)) + b"xyz"),
         "trailing bytes: header says 2×2 = 4 bytes of uint8 data, file has more than 4"),
        (gzip.compress(idx_bytes(np.zeros((2, 2), np.uint8))[:-1]),
         "truncated: header says 2×2 = 4 bytes of uint8 data, file has 3"),
        (b"\x00\x00\x0e\x03" + struct.pack(">3I", 2**16, 2**16, 2**16),
         "header says 65536×65536×65536 × 8 = 2251799813685248 bytes of float64 data, more than the limit"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x00", "not an IDX file: magic starts with 01 00, expected 00 00"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x00", "unknown IDX type code 0x07"),
        (b"\x00\x00\x08\x00", "IDX header gives 0 dimensions"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x05", "truncated header: 3 dimensions need 16 bytes, file has 8"),
        (b"\x00\x00", "not an IDX file: 2 bytes, too short"),
        (b"\x89PNG\r\n\x1a\n" + bytes(40), "not an IDX file: magic starts with 89 50"),
        (b"label,pixel0\n1,2\n", "not an IDX file: magic starts with 6c 61"),
        (gzip.compress(idx_bytes(np.ones(100, np.uint8)))[:30], "corrupt gzip stream"),
        (b"\x1f\x8b" + bytes(30), "corrupt gzip stream"),
    ],
)  # fmt: skip
def test_read_idx_defects_name_file_and_defect(tmp_path, data, defect):
    path = write(tmp_path / "train-images-idx3-ubyte.gz", data)
    with pytest.raises(DatasetError) as e:
        ds.read_idx(path)
    assert str(e.value).startswith(f"{path}: ") and defect in str(e.value)


def test_read_idx_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        ds.read_idx(tmp_path / "nope")


@st.composite
def idx_file(draw):
    """(valid IDX bytes, possibly gzipped) for a small array of any supported type."""
    dtype = np.dtype(draw(st.sampled_from(list(TYPE_CODES))))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=1, max_size=3)))
    a = np.frombuffer(draw(st.binary(min_size=dtype.itemsize * int(np.prod(shape)),
                                     max_size=dtype.itemsize * int(np.prod(shape)))), dtype)  # fmt: skip
    data = idx_bytes(a.reshape(shape))
    return gzip.compress(data, mtime=0) if draw(st.booleans()) else data


@st.composite
def mutated(draw, valid):
    """`valid` bytes with a few byte flips, truncations and insertions."""
    data = bytearray(draw(valid))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "truncate", "insert"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


def check_read_idx(path: Path, data: bytes):
    path.write_bytes(data)
    try:
        got = ds.read_idx(path)
    except DatasetError as e:
        assert str(e).startswith(f"{path}: ")
        return
    content = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    ndim = content[3]
    assert got.shape == struct.unpack(f">{ndim}I", content[4 : 4 + 4 * ndim])
    assert got.dtype.type in TYPE_CODES and TYPE_CODES[got.dtype.type] == content[2]


@FUZZ
@given(data=st.binary(max_size=200))
def test_read_idx_arbitrary_bytes(tmp_path, data):
    check_read_idx(tmp_path / "f", data)


@FUZZ
@given(data=st.one_of(idx_file(), mutated(idx_file())))
def test_read_idx_mutated_files(tmp_path, data):
    check_read_idx(tmp_path / "f", data)


# -------------------------------------------------------------------------------------- local lookup


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_from_root(tmp_path, clean_env, gz):
    arrays = fake_set()
    write_set(tmp_path / "m", arrays, gz=gz)
    assert_loaded(ds.load_mnist(root=tmp_path / "m", download=False), arrays)


def test_load_mnist_dotted_names(tmp_path, clean_env):
    arrays = fake_set()
    for name, a in arrays.items():
        write(tmp_path / name.removesuffix(".gz").replace("-idx", ".idx"), idx_bytes(a))
    assert_loaded(ds.load_mnist(root=tmp_path, download=False), arrays)


def test_load_fashion_mnist_from_root(tmp_path, clean_env):
    arrays = fake_set(7)
    write_set(tmp_path / "f", arrays)
    assert_loaded(ds.load_fashion_mnist(root=tmp_path / "f", download=False), arrays)


@pytest.fixture
def fake_bundled(tmp_path, clean_env, monkeypatch):
    """A tiny data set in place of the bundled MNIST, with MNIST_FILES holding its SHA-256s, and not hidden."""
    arrays = fake_set(9)
    monkeypatch.setattr(ds, "MNIST_FILES", write_set(tmp_path / "bundled", arrays))
    monkeypatch.setattr(ds, "BUNDLED_MNIST", tmp_path / "bundled")
    monkeypatch.delenv(ds.NO_BUNDLED_VAR)
    return arrays


def test_lookup_order_root_alone_else_env_bundled_cache(tmp_path, clean_env, fake_bundled, monkeypatch):
    sets = {where: fake_set(seed) for seed, where in enumerate(["root", "env", "cache"])}
    write_set(tmp_path / "root", sets["root"])
    write_set(tmp_path / "env", sets["env"])
    write_set(clean_env / "mnist", sets["cache"])
    got = ds.load_mnist(download=False)
    assert_loaded(got, fake_bundled)
    assert (got.source, got.folder) == ("bundled with tinygrad_edu", tmp_path / "bundled")
    monkeypatch.setenv(ds.NO_BUNDLED_VAR, "1")                 # hidden: the cache serves
    got = ds.load_mnist(download=False)
    assert_loaded(got, sets["cache"])
    assert (got.source, got.folder) == (f"cache {clean_env / 'mnist'}", clean_env / "mnist")
    monkeypatch.setenv(ds.NO_BUNDLED_VAR, "0")                 # "0" does not hide it
    assert_loaded(ds.load_mnist(download=False), fake_bundled)
    monkeypatch.setenv(ds.ENV_VAR, str(tmp_path / "env"))
    got = ds.load_mnist(download=False)
    assert_loaded(got, sets["env"])
    assert got.source == f"{tmp_path / 'env'}, from $TINYGRAD_EDU_DATA"
    got = ds.load_mnist(root=tmp_path / "root", download=False)
    assert_loaded(got, sets["root"])
    assert (got.source, got.folder) == (str(tmp_path / "root"), tmp_path / "root")
    monkeypatch.setenv(ds.ENV_VAR, str(tmp_path / "empty"))  # env without the files: the bundled copy serves
    assert_loaded(ds.load_mnist(download=False), fake_bundled)


def test_root_is_the_only_folder_searched(tmp_path, fake_bundled):
    (tmp_path / "root").mkdir()
    with pytest.raises(DatasetNotFoundError) as e:
        ds.load_mnist(root=tmp_path / "root", download=False)
    searched = str(e.value).split("Searched:")[1].split("\nPut ")[0]
    assert searched == f"\n  {tmp_path / 'root'}: missing {', '.join(NAMES)}"     # not the bundled copy


def test_root_must_exist_and_is_never_created(server, tmp_path, clean_env):
    www, url = server
    sums = write_set(www, fake_set())                          # a working mirror: still nothing is fetched
    missing = tmp_path / "no" / "such"
    with pytest.raises(DatasetNotFoundError) as e:
        ds.load_mnist(root=missing, mirrors=[url], checksums=sums, timeout=2, progress=False)
    assert str(e.value) == (f"MNIST: {missing}: no such folder. root= names the folder that holds the files, or "
                            f"the folder to download them into: it must exist (it is never created)")
    assert not (tmp_path / "no").exists()
    assert not (clean_env / "mnist").exists()


def test_bundled_copy_is_not_used_for_fashion_mnist(tmp_path, clean_env, fake_bundled):
    with pytest.raises(DatasetNotFoundError) as e:
        ds.load_fashion_mnist(download=False)
    assert "the bundled copy" not in str(e.value) and f"{tmp_path / 'bundled'}:" not in str(e.value)


def test_env_may_be_a_parent_of_mnist_and_fashion_mnist(tmp_path, clean_env, monkeypatch):
    mnist, fashion = fake_set(1), fake_set(2)
    write_set(tmp_path / "data" / "mnist", mnist)
    write_set(tmp_path / "data" / "fashion-mnist", fashion)
    monkeypatch.setenv(ds.ENV_VAR, str(tmp_path / "data"))
    assert_loaded(ds.load_mnist(download=False), mnist)
    assert_loaded(ds.load_fashion_mnist(download=False), fashion)
    monkeypatch.setenv(ds.ENV_VAR, str(tmp_path / "data" / "fashion-mnist"))  # named after its data set
    assert_loaded(ds.load_fashion_mnist(download=False), fashion)
    with pytest.raises(DatasetNotFoundError):  # ...and not taken for MNIST
        ds.load_mnist(download=False)


def test_env_holding_mnist_files_is_not_taken_for_fashion_mnist(tmp_path, clean_env, monkeypatch):
    write_set(tmp_path / "mnist", fake_set())
    monkeypatch.setenv(ds.ENV_VAR, str(tmp_path / "mnist"))
    ds.load_mnist(download=False)
    with pytest.raises(DatasetNotFoundError):
        ds.load_fashion_mnist(download=False)


def test_fashion_mnist_system_folder(tmp_path, clean_env):
    arrays = fake_set(3)
    write_set(tmp_path / "system", arrays)
    assert_loaded(ds.load_fashion_mnist(download=False), arrays)


def test_missing_files_without_download(tmp_path, clean_env, monkeypatch):
    arrays = fake_set()
    del arrays[NAMES[3]]
    write_set(tmp_path / "partial", arrays)
    monkeypatch.setenv(ds.ENV_VAR, str(tmp_path / "partial"))
    with pytest.raises(DatasetNotFoundError) as e:
        ds.load_mnist(download=False)
    msg = str(e.value)
    assert isinstance(e.value, FileNotFoundError)
    assert f"{tmp_path / 'partial'}: missing t10k-labels-idx1-ubyte.gz\n" in msg
    assert f"{tmp_path / 'partial' / 'mnist'}: no such folder" in msg
    assert f"{ds.BUNDLED_MNIST} (the bundled copy): hidden by $TINYGRAD_EDU_NO_BUNDLED\n" in msg
    assert f"{clean_env / 'mnist'}: no such folder" in msg
    assert "TINYGRAD_EDU_DATA" in msg and "root=" in msg and "download=True" in msg

    with pytest.raises(DatasetNotFoundError) as e:
        ds.load_fashion_mnist(download=False)
    msg = str(e.value)
    assert f"{tmp_path / 'system'}: no such folder" in msg and f"{clean_env / 'fashion-mnist'}" in msg
    assert "missing" not in msg or all(n in msg for n in NAMES)


def corrupt(tmp_path, name, array=None, data=None):
    arrays = fake_set()
    if array is not None:
        arrays[name] = array
    write_set(tmp_path, arrays)
    if data is not None:
        write(tmp_path / name, data)
    with pytest.raises(DatasetError) as e:
        ds.load_mnist(root=tmp_path, download=False)
    return str(e.value)


def test_load_rejects_images_of_wrong_shape(tmp_path):
    msg = corrupt(tmp_path, NAMES[0], np.zeros((5, 28, 27), np.uint8))
    assert f"{tmp_path / NAMES[0]}: expected uint8 images N×28×28 (IDX magic 2051)" in msg
    assert "uint8 of shape (5, 28, 27)" in msg


def test_load_rejects_images_with_wrong_ndim(tmp_path):
    msg = corrupt(tmp_path, NAMES[2], np.zeros((3, 784), np.uint8))
    assert f"{tmp_path / NAMES[2]}: expected uint8 images" in msg and "shape (3, 784)" in msg


def test_load_rejects_labels_of_wrong_type(tmp_path):
    msg = corrupt(tmp_path, NAMES[1], np.zeros(5, np.int32))
    assert f"{tmp_path / NAMES[1]}: expected uint8 labels N (IDX magic 2049), found int32" in msg


def test_load_rejects_count_mismatch(tmp_path):
    msg = corrupt(tmp_path, NAMES[1], np.zeros(4, np.uint8))
    assert msg == f"{tmp_path / NAMES[1]} has 4 labels but {tmp_path / NAMES[0]} has 5 images"


def test_load_rejects_label_over_9(tmp_path):
    msg = corrupt(tmp_path, NAMES[3], np.array([1, 10, 2], np.uint8))
    assert msg == f"{tmp_path / NAMES[3]}: label 10 at index 1 is out of range 0..9"


def test_load_rejects_corrupt_file(tmp_path):
    msg = corrupt(tmp_path, NAMES[0], data=b"\x1f\x8bnot really gzip")
    assert msg.startswith(f"{tmp_path / NAMES[0]}: corrupt gzip stream")


# -------------------------------------------------------------------------------- download (local)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; for x.short it promises 100 more bytes than it sends, then hangs up."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.endswith(".short"):
            body = b"abc"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 100))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    """(served folder, its base URL) on 127.0.0.1."""
    www = tmp_path / "www"
    www.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=www))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def dead_url():
    """A URL on a closed local port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_download_good_file(server, tmp_path, capsys):
    www, url = server
    (www / "f.gz").write_bytes(b"x" * 200_000)
    sha = hashlib.sha256(b"x" * 200_000).hexdigest()
    dest = ds.download([url + "f.gz"], tmp_path / "cache" / "f.gz", sha, timeout=2)
    assert dest == tmp_path / "cache" / "f.gz" and dest.read_bytes() == b"x" * 200_000
    assert os.listdir(dest.parent) == ["f.gz"]
    err = capsys.readouterr().err
    assert err.startswith("\rf.gz [") and err.count("\r") >= 2 and "195.3 KiB / 195.3 KiB" in err


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("f.gz", b"tampered", "checksum mismatch: sha256 is " + hashlib.sha256(b"tampered").hexdigest()),
        ("f.gz.short", None, "transfer cut short: 3 of 103 bytes"),
        ("absent.gz", None, "HTTP Error 404"),
    ],
)
def test_download_refuses_bad_transfers_and_leaves_nothing(server, tmp_path, name, content, reason):
    www, url = server
    if content is not None:
        (www / name).write_bytes(content)
    cache = tmp_path / "cache"
    with pytest.raises(DatasetNotFoundError) as e:
        ds.download([url + name], cache / "f.gz", "0" * 64, timeout=2, progress=False)
    assert f"f.gz: could not download it, every mirror failed:\n  {url}{name}: {reason}" in str(e.value)
    assert os.listdir(cache) == []  # neither the file nor a temporary


def test_load_mnist_downloads_into_cache_falling_through_dead_mirror(server, dead_url, clean_env):
    www, url = server
    arrays = fake_set()
    sums = write_set(www, arrays)
    result = ds.load_mnist(mirrors=[dead_url, url], checksums=sums, timeout=2, progress=False)
    assert_loaded(result, arrays)
    assert result.source == f"downloaded into {clean_env / 'mnist'}"
    assert sorted(os.listdir(clean_env / "mnist")) == sorted(NAMES)
    assert_loaded(ds.load_mnist(download=False), arrays)  # now cached


def test_load_mnist_downloads_only_missing_files_into_root(server, tmp_path, clean_env):
    www, url = server
    arrays = fake_set()
    sums = write_set(www, arrays)
    write_set(tmp_path / "root", {NAMES[0]: arrays[NAMES[0]]}, gz=False)  # one file already there, raw
    (www / NAMES[0]).unlink()  # so it cannot come from the server
    got = ds.load_mnist(tmp_path / "root", mirrors=[url], checksums=sums, timeout=2, progress=False)
    assert_loaded(got, arrays)
    assert sorted(os.listdir(tmp_path / "root")) == sorted([NAMES[0].removesuffix(".gz"), *NAMES[1:]])


def test_load_fashion_mnist_refuses_wrong_checksum(server, clean_env):
    www, url = server
    sums = write_set(www, fake_set())
    sums[NAMES[1]] = "f" * 64
    with pytest.raises(DatasetNotFoundError) as e:
        ds.load_fashion_mnist(mirrors=[url], checksums=sums, timeout=2, progress=False)
    msg = str(e.value)
    assert msg.startswith(f"Fashion-MNIST: {NAMES[1]}: could not download it, every mirror failed:\n")
    assert f"\n  {url}{NAMES[1]}: checksum mismatch" in msg
    assert f"checksum mismatch: sha256 is {hashlib.sha256((www / NAMES[1]).read_bytes()).hexdigest()}" in msg
    assert f"Searched:\n  {clean_env / 'fashion-mnist'}: no such folder\n" in msg and "TINYGRAD_EDU_DATA" in msg
    assert os.listdir(clean_env / "fashion-mnist") == [NAMES[0]]  # the good file before it; nothing else


def test_all_mirrors_failing_lists_each(server, dead_url, clean_env):
    www, url = server
    sums = write_set(www / "other", fake_set())
    with pytest.raises(DatasetNotFoundError) as e:
        ds.load_mnist(mirrors=[dead_url, url], checksums=sums, timeout=2, progress=False)
    msg = str(e.value)
    assert f"\n  {dead_url}{NAMES[0]}: <urlopen error" in msg
    assert f"\n  {url}{NAMES[0]}: HTTP Error 404" in msg
    assert not (clean_env / "mnist").exists()   # no partial file, and no empty cache folder it had to make


def test_default_tables_are_complete():
    for table in (ds.MNIST_FILES, ds.FASHION_MNIST_FILES):
        assert list(table) == NAMES and all(len(h) == 64 and int(h, 16) >= 0 for h in table.values())
    assert ds.MNIST_FILES[NAMES[0]] == "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"


# ------------------------------------------------------------------------------------------ real data


def test_real_mnist_is_the_bundled_copy_read_in_place(mnist_data, mnist_cache):
    (X, y), (Xt, yt) = mnist_data
    assert (mnist_data.source, mnist_data.folder) == ("bundled with tinygrad_edu", ds.BUNDLED_MNIST)
    assert list(mnist_cache.iterdir()) == []                    # nothing copied into the cache
    assert X.shape == (60000, 28, 28) and Xt.shape == (10000, 28, 28) and y.shape == (60000,)
    assert X.dtype == Xt.dtype == y.dtype == yt.dtype == np.uint8
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert X.min() == 0 and X.max() == 255


def test_bundled_files_are_the_canonical_ones():
    assert sorted(p.name for p in ds.BUNDLED_MNIST.iterdir()) == sorted([*NAMES, "NOTICE"])
    for name, sha in ds.MNIST_FILES.items():
        assert hashlib.sha256((ds.BUNDLED_MNIST / name).read_bytes()).hexdigest() == sha, name
    notice = (ds.BUNDLED_MNIST / "NOTICE").read_text()
    for credit in ("LeCun", "Cortes", "Burges", "NIST", "Creative Commons Attribution-Share Alike 3.0"):
        assert credit in notice


def test_bundled_files_are_tracked_by_git():
    root = Path(ds.__file__).parents[1]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "tinygrad_edu/data/mnist"], cwd=root, capture_output=True,
                             text=True, check=True).stdout.split()
    assert sorted(tracked) == sorted(f"tinygrad_edu/data/mnist/{n}" for n in [*NAMES, "NOTICE"])


def damage(data: bytes, how: str) -> bytes:
    if how == "flipped byte":
        return data[:1000] + bytes([data[1000] ^ 0x01]) + data[1001:]
    return data[: len(data) // 2]                               # truncated


@pytest.mark.parametrize("name", [NAMES[1], NAMES[2]])
@pytest.mark.parametrize("how", ["flipped byte", "truncated"])
def test_damaged_bundled_file_is_an_error_without_fallback(tmp_path, clean_env, monkeypatch, name, how):
    """A copy of the bundled files with one damaged (the installed files are never touched): an error naming the
    file, both SHA-256s and the repair, even when the cache holds a good data set."""
    bundled = tmp_path / "bundled"
    shutil.copytree(ds.BUNDLED_MNIST, bundled)
    (bundled / name).write_bytes(bad := damage((bundled / name).read_bytes(), how))
    monkeypatch.setattr(ds, "BUNDLED_MNIST", bundled)
    monkeypatch.delenv(ds.NO_BUNDLED_VAR)
    write_set(clean_env / "mnist", fake_set())                  # a good copy after it: not used
    with pytest.raises(DatasetError) as e:
        ds.load_mnist(download=False)
    assert not isinstance(e.value, DatasetNotFoundError)
    assert str(e.value) == (
        f"{bundled / name}: this MNIST file bundled with tinygrad_edu is damaged: its SHA-256 is "
        f"{hashlib.sha256(bad).hexdigest()}, expected {ds.MNIST_FILES[name]}. Reinstall tinygrad_edu (pip install "
        f"--force-reinstall; in a git clone, git checkout -- {bundled / name}), or point root= at a folder holding "
        f"good MNIST files")
    assert e.value.cli.endswith("or point --data DIR at a folder holding good MNIST files")   # the CLI's words


# ---------------------------------------------------------------------------------------- Kaggle CSV

HEADER = "label," + ",".join(f"pixel{i}" for i in range(784))


def csv_text(X, y=None, newline="\n") -> str:
    head = HEADER if y is not None else HEADER.removeprefix("label,")
    rows = [",".join(map(str, ([] if y is None else [y[i]]) + X[i].ravel().tolist())) for i in range(len(X))]
    return newline.join([head, *rows]) + newline


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_kaggle_csv_train_and_test_forms(tmp_path, newline):
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), np.array([0, 9, 3, 7], np.uint8)
    X[0, 0, :3] = [0, 255, 10]
    (tmp_path / "train.csv").write_text(csv_text(X, y, newline), newline="")
    (tmp_path / "test.csv").write_text(csv_text(X, None, newline), newline="")
    gotX, goty = ds.load_kaggle_csv(tmp_path / "train.csv")
    assert gotX.dtype == goty.dtype == np.uint8 and gotX.shape == (4, 28, 28)
    np.testing.assert_array_equal(gotX, X)
    np.testing.assert_array_equal(goty, y)
    gotX, goty = ds.load_kaggle_csv(tmp_path / "test.csv")
    np.testing.assert_array_equal(gotX, X)
    assert goty is None


def test_kaggle_csv_header_only(tmp_path):
    (tmp_path / "train.csv").write_text(HEADER + "\n")
    X, y = ds.load_kaggle_csv(tmp_path / "train.csv")
    assert X.shape == (0, 28, 28) and y.shape == (0,)


def row(label="5", pixels=None):
    pixels = ["0"] * 784 if pixels is None else pixels
    return ",".join(([label] if label is not None else []) + pixels)


@pytest.mark.parametrize(
    "text, defect",
    [
        ("lab,pixel0\n", "line 1: header must be label,pixel0,…,pixel783"),
        (HEADER.replace("pixel5,", "pixel6,") + "\n", "column 7 is 'pixel6', expected pixel5"),
        (HEADER.removesuffix(",pixel783") + "\n", "column 785 is end of line, expected pixel783"),
        (HEADER + ",extra\n", "column 786 is 'extra', expected end of line"),
        (f"{HEADER}\n{row()}\n{row()},0\n", "line 3: 786 values, the header has 785"),
        (f"{HEADER}\n{row()}\n\n{row()}\n", "line 3: 1 values, the header has 785"),
        (f"{HEADER}\n{row()}\n{row(pixels=['0'] * 783 + ['256'])}\n",
         "line 3: column 785: 256 is out of range 0..255"),
        (f"{HEADER}\n{row(pixels=['0'] * 10 + ['1000'] + ['0'] * 773)}\n",
         "line 2: column 12: '1000' is not an integer in 0..255"),
        (f"{HEADER}\n{row(pixels=['0', ''] + ['0'] * 782)}\n",
         "line 2: column 3: 'empty value' is not an integer"),
        (f"{HEADER}\n{row(pixels=['-1'] + ['0'] * 783)}\n", "line 2: unexpected character b'-'"),
        (f"{HEADER}\n{row(pixels=['1.5'] + ['0'] * 783)}\n", "line 2: unexpected character b'.'"),
        (f"{HEADER}\n{row()}\n{row()}\n{row(label='10')}\n", "line 4: label 10 is out of range 0..9"),
        ("\x89PNG\r\n", "line 1: header must be"),
    ],
)  # fmt: skip
def test_kaggle_csv_defects_name_file_and_line(tmp_path, text, defect):
    path = tmp_path / "train.csv"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(DatasetError) as e:
        ds.load_kaggle_csv(path)
    assert str(e.value).startswith(f"{path}: ") and defect in str(e.value)


@st.composite
def kaggle_csv(draw):
    n = draw(st.integers(0, 3))
    X = np.frombuffer(draw(st.binary(min_size=784 * n, max_size=784 * n)), np.uint8).reshape(n, 28, 28)
    y = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n)) if draw(st.booleans()) else None
    return csv_text(X, y, draw(st.sampled_from(["\n", "\r\n"]))).encode()


def check_kaggle_csv(path: Path, data: bytes):
    path.write_bytes(data)
    try:
        X, y = ds.load_kaggle_csv(path)
    except DatasetError as e:
        assert str(e).startswith(f"{path}: line ")
        return
    assert X.dtype == np.uint8 and X.ndim == 3 and X.shape[1:] == (28, 28)
    assert y is None or (y.dtype == np.uint8 and y.shape == (len(X),) and (y <= 9).all())


@FUZZ
@given(data=st.binary(max_size=300))
def test_kaggle_csv_arbitrary_bytes(tmp_path, data):
    check_kaggle_csv(tmp_path / "f.csv", data)


@FUZZ
@given(data=st.one_of(kaggle_csv(), mutated(kaggle_csv())))
def test_kaggle_csv_mutated_files(tmp_path, data):
    check_kaggle_csv(tmp_path / "f.csv", data)


# ---------------------------------------------------------------------------------------- to_float


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_float_exact(dtype):
    p = np.arange(256, dtype=np.uint8).reshape(4, 8, 8)
    got = ds.to_float(p, dtype)
    assert got.dtype == dtype and got.shape == (4, 64)
    want = np.array([dtype(v) / dtype(255) for v in range(256)], dtype).reshape(4, 64)
    assert np.array_equal(got, want)  # correctly rounded p/255 in dtype, bit for bit
    assert got[0, 0] == 0 and got[-1, -1] == 1


def test_to_float_layouts():
    X = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    rows, cols = ds.to_float(X), ds.to_float(X, layout="columns")
    assert rows.shape == (5, 784) and cols.shape == (784, 5)
    np.testing.assert_array_equal(cols, rows.T)
    assert cols.flags.f_contiguous and not cols.flags.owndata  # a transposed view: images stay contiguous
    np.testing.assert_array_equal(ds.to_float(X.reshape(5, 784)), rows)
    assert ds.to_float(np.zeros((0, 28, 28), np.uint8)).shape == (0, 784)


def test_to_float_allocates_no_float64_temporary():
    X = np.zeros((100, 28, 28), np.uint8)
    tracemalloc.start()
    try:
        ds.to_float(X, np.float32)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < X.size * 6  # the float32 result is 4 bytes/pixel; a float64 temporary would add 8


def test_to_float_rejects_bad_arguments():
    with pytest.raises(TypeError, match="uint8"):
        ds.to_float(np.zeros((2, 4)))
    with pytest.raises(TypeError, match="floating"):
        ds.to_float(np.zeros((2, 4), np.uint8), np.int32)
    with pytest.raises(ValueError, match="layout"):
        ds.to_float(np.zeros((2, 4), np.uint8), layout="cols")


def test_to_float_standardises_in_its_dtype():
    X = np.random.default_rng(1).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    for dtype in (np.float32, np.float64):
        got = ds.to_float(X, dtype, mean=0.1307, std=0.3081)
        pixels = ds.to_float(X, dtype)
        assert got.dtype == dtype
        # the same rounding as (p/255 − mean)/std done step by step in dtype
        np.testing.assert_array_equal(got, (pixels - dtype(0.1307)) / dtype(0.3081))
    cols = ds.to_float(X, layout="columns", mean=0.5, std=2.0)
    np.testing.assert_array_equal(cols, ((ds.to_float(X) - np.float32(0.5)) / np.float32(2)).T)
    for mean, std in ((0.0, 0.0), (0.0, -1.0), (float("nan"), 1.0), (0.0, float("inf")), (0.0, 1e-50), (1e300, 1.0)):
        with pytest.raises(ValueError, match=re.escape(f"to_float needs a mean and a std > 0 that are finite in "
                                                       f"float32, got mean {mean}, std {std}")):
            ds.to_float(X, mean=mean, std=std)
    assert np.isfinite(ds.to_float(X, np.float64, mean=0.0, std=1e-50)).all()    # 1e-50 is a float64 std


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 255), min_size=1, max_size=300), st.integers(1, 7))
def test_pixel_stats_are_the_mean_and_std_of_p_over_255(values, chunk):
    images = np.array(values, np.uint8).reshape(len(values), 1)
    mean, std = ds.pixel_stats(images, chunk=chunk)
    exact = np.array(values, np.float64) / 255
    assert mean == pytest.approx(exact.mean(), rel=1e-15, abs=1e-17)
    assert std == pytest.approx(exact.std(), rel=1e-12, abs=1e-15)


def test_pixel_stats_of_known_images():
    assert ds.pixel_stats(np.zeros((3, 28, 28), np.uint8)) == (0.0, 0.0)
    assert ds.pixel_stats(np.full((2, 4), 255, np.uint8)) == (1.0, 0.0)
    half = np.array([[0, 255]] * 5, np.uint8)        # half 0, half 1: mean 1/2, std 1/2
    assert ds.pixel_stats(half, chunk=2) == (0.5, 0.5)
    with pytest.raises(TypeError, match="pixel_stats expects uint8 pixels, got float64"):
        ds.pixel_stats(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"pixel_stats needs at least one pixel, got shape \(0, 784\)"):
        ds.pixel_stats(np.zeros((0, 784), np.uint8))
    with pytest.raises(ValueError, match=r"pixel_stats needs at least one pixel, got shape \(\)"):
        ds.pixel_stats(np.uint8(3))
    for chunk in (0, -1, 2.5):
        with pytest.raises(ValueError, match=f"pixel_stats: chunk must be a number of images ≥ 1, got {chunk}"):
            ds.pixel_stats(half, chunk=chunk)


# ------------------------------------------------------------------------------------- minibatches


def test_minibatches_cover_each_example_once():
    X, y = np.arange(10 * 3).reshape(10, 3), np.arange(10) * 10
    batches = list(ds.minibatches(X, y, 4, seed=1))
    assert [len(b) for b, _ in batches] == [4, 4, 2]
    Xs, ys = np.concatenate([b for b, _ in batches]), np.concatenate([t for _, t in batches])
    assert sorted(Xs[:, 0].tolist()) == list(range(0, 30, 3))
    np.testing.assert_array_equal(ys, Xs[:, 0] // 3 * 10)  # pairs stay together
    assert Xs[:, 0].tolist() != list(range(0, 30, 3))  # shuffled


def test_minibatches_seeds():
    X = np.arange(50)
    order = lambda seed: np.concatenate([b for b, _ in ds.minibatches(X, None, 7, seed=seed)]).tolist()  # noqa: E731
    assert order(3) == order(3) and order(3) != order(4)
    rng = np.random.default_rng(3)
    assert order(rng) == order(3)
    assert order(rng) != order(3)  # a Generator goes on with its stream
    unshuffled = [b.tolist() for b, _ in ds.minibatches(X, None, 20, shuffle=False)]
    assert unshuffled == [list(range(20)), list(range(20, 40)), list(range(40, 50))]


def test_minibatches_columns_axis_and_drop_last():
    X, y = np.arange(3 * 10).reshape(3, 10), np.arange(10)
    batches = list(ds.minibatches(X, y, 4, seed=0, axis=1, drop_last=True))
    assert len(batches) == 2
    for xb, yb in batches:
        assert xb.shape == (3, 4)
        np.testing.assert_array_equal(xb, X[:, yb])
    assert list(ds.minibatches(X, y, 11, axis=1, drop_last=True)) == []


def test_minibatches_errors():
    msg = r"X has 3 examples along axis 1 \(shape \(2, 3\)\) but y has 2 \(shape \(2,\)\)"
    with pytest.raises(ValueError, match=msg):
        ds.minibatches(np.zeros((2, 3)), np.zeros(2), 1, axis=1)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            ds.minibatches(np.zeros(3), None, bad)
    with pytest.raises(ValueError, match="axis 2"):
        ds.minibatches(np.zeros((2, 3)), None, 1, axis=2)
