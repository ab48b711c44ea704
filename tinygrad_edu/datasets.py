"""Find, download, verify and read MNIST, Fashion-MNIST and Kaggle digit CSVs as numpy arrays; batch them."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import math
import os
import struct
import sys
import tempfile
import urllib.request
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "DatasetError",
    "DatasetNotFoundError",
    "Loaded",
    "read_idx",
    "download",
    "load_mnist",
    "load_fashion_mnist",
    "load_kaggle_csv",
    "to_float",
    "pixel_stats",
    "minibatches",
    "load_text",
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "FASHION_MNIST_FILES",
    "FASHION_MNIST_MIRRORS",
    "FASHION_MNIST_SYSTEM_DIRS",
    "ENV_VAR",
    "MAX_IDX_BYTES",
    "BUNDLED_MNIST",
    "NO_BUNDLED_VAR",
]

ENV_VAR = "TINYGRAD_EDU_DATA"
# MNIST ships inside the package (its NOTICE beside the files gives their source and licence). The files are read
# in place and checked against MNIST_FILES on every load. Setting NO_BUNDLED_VAR to anything but "" or "0" hides
# them (for tests of the not-found and download paths); tests may also point BUNDLED_MNIST elsewhere.
BUNDLED_MNIST = Path(__file__).parent / "data" / "mnist"
NO_BUNDLED_VAR = "TINYGRAD_EDU_NO_BUNDLED"
BUNDLED = "bundled with tinygrad_edu"

# One table per data set: file name -> SHA-256 of the original .gz, in the order
# train images, train labels, test images, test labels.
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# The files Zalando publishes (their MD5s are the ones in the Fashion-MNIST README). Debian's
# dataset-fashion-mnist holds the same deflate streams under a normalised gzip header, so its
# .gz files hash differently; local files are checked by content, only downloads by hash.
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
FASHION_MNIST_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
FASHION_MNIST_SYSTEM_DIRS = ("/usr/share/datasets/fashion-mnist",)  # Debian: dataset-fashion-mnist

_MNIST_DIR, _FASHION_DIR = "mnist", "fashion-mnist"

# IDX type code -> big-endian dtype of the data.
_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_MAX_NDIM = 32
MAX_IDX_BYTES = 2**28   # 256 MiB of data in one IDX file; MNIST's largest, the training images, holds 47 MB


class DatasetError(Exception):
    """A data file is malformed or a data set cannot be loaded; the message names the file and the defect.

    `cli` is the same message in the command line's words (--data DIR, --no-download) where the message names
    the loaders' arguments (root=, download=False); otherwise it is the message."""

    def __init__(self, message: str, cli: str | None = None):
        super().__init__(message)
        self.cli = message if cli is None else cli


# The loaders' arguments as their messages name them: in Python, and on the command line (DatasetError.cli).
_PYTHON_WORDS = {"DATA": "root=", "DATA_FOLDER": "root=<folder>", "NO_DOWNLOAD": "download=False",
                 "DOWNLOAD": "pass download=True"}
_CLI_WORDS = {"DATA": "--data DIR", "DATA_FOLDER": "--data <folder>", "NO_DOWNLOAD": "--no-download",
              "DOWNLOAD": "leave out --no-download"}


def _error(cls, template: str, **fields) -> DatasetError:
    """cls(message, cli): template (with {DATA}, {NO_DOWNLOAD}, ... and the fields) in both sets of words."""
    return cls(template.format(**_PYTHON_WORDS, **fields), template.format(**_CLI_WORDS, **fields))


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The data set's files are not on disk and could not be downloaded."""


class Loaded(tuple):
    """What the loaders return: the pair `((X_train, y_train), (X_test, y_test))`, plus `source`, which copy was
    read (e.g. "bundled with tinygrad_edu", "cache ~/.cache/tinygrad_edu/mnist"), and `folder`, where it is."""

    def __new__(cls, train, test, source: str, folder: Path):
        loaded = super().__new__(cls, (train, test))
        loaded.source, loaded.folder = source, folder
        return loaded


# ----------------------------------------------------------------------------------------------- IDX


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzipped or raw (gzip is told by its magic bytes 1f 8b), into a native-endian array.

    Supports the IDX type codes 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32 and 0x0E float64.
    Any malformed content (bad magic, unknown type, truncated data, trailing bytes, corrupt gzip stream, a
    header claiming more than MAX_IDX_BYTES) raises DatasetError naming the file and the defect. A missing file
    raises FileNotFoundError.

    The file is treated as hostile: the header is read and checked first, then exactly the bytes it promises
    (plus one, to detect trailing data) are read into the array, so a small gzip file that inflates to
    gigabytes costs no more memory than its header's claim, which is at most MAX_IDX_BYTES.
    """
    path = Path(path)
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        try:
            if gz:
                with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                    return _read_idx_stream(path, f, None)
            return _read_idx_stream(path, raw, os.fstat(raw.fileno()).st_size)
        except (OSError, EOFError, zlib.error) as e:
            if not gz:
                raise
            raise DatasetError(f"{path}: corrupt gzip stream ({e or type(e).__name__})") from None


def _read_into(f, buffer: memoryview) -> int:
    """Fills buffer from f as far as f goes (a megabyte at a time, so no second copy is made); the bytes read."""
    got = 0
    while got < len(buffer):
        n = f.readinto(buffer[got:got + (1 << 20)])
        if not n:
            break
        got += n
    return got


def _read_idx_stream(path: Path, f, size: int | None) -> np.ndarray:
    """read_idx on an open stream; size is the file's size in bytes when known (a raw file), None for gzip."""
    magic = f.read(4)
    if len(magic) < 4:
        raise DatasetError(f"{path}: not an IDX file: {len(magic)} bytes, too short for the 4-byte magic")
    zero, code, ndim = magic[:2], magic[2], magic[3]
    if zero != b"\x00\x00":
        raise DatasetError(f"{path}: not an IDX file: magic starts with {zero.hex(' ')}, expected 00 00")
    if code not in _IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_TYPES)
        raise DatasetError(f"{path}: unknown IDX type code 0x{code:02X} (known: {known})")
    if not 1 <= ndim <= _MAX_NDIM:
        raise DatasetError(f"{path}: IDX header gives {ndim} dimensions, expected 1..{_MAX_NDIM}")
    header = 4 + 4 * ndim
    packed = f.read(4 * ndim)
    if len(packed) < 4 * ndim:
        raise DatasetError(
            f"{path}: truncated header: {ndim} dimensions need {header} bytes, file has {4 + len(packed)}"
        )
    dims = struct.unpack(f">{ndim}I", packed)
    dtype = _IDX_TYPES[code]
    count = math.prod(dims)
    expected = count * dtype.itemsize
    size_text = "×".join(map(str, dims)) + ("" if dtype.itemsize == 1 else f" × {dtype.itemsize}")
    if expected > MAX_IDX_BYTES:
        raise DatasetError(
            f"{path}: header says {size_text} = {expected} bytes of {dtype.name} data, more than the limit of "
            f"{MAX_IDX_BYTES} bytes"
        )
    # NOTE: a zero dimension makes the count 0 whatever the others say, but numpy cannot shape even an empty
    # array whose other dimensions multiply past its index range: those are held to the same limit
    described = math.prod(d for d in dims if d) * dtype.itemsize
    if count == 0 and described > MAX_IDX_BYTES:
        raise DatasetError(
            f"{path}: header says {size_text}: no data, but its non-zero dimensions describe {described} bytes, "
            f"more than the limit of {MAX_IDX_BYTES} bytes"
        )

    def wrong_size(have: int, more: bool = False):
        defect = "truncated" if have < expected else (
            "trailing bytes" if more else f"{have - expected} trailing bytes")
        has = f"more than {expected}" if more else have
        raise DatasetError(
            f"{path}: {defect}: header says {size_text} = {expected} bytes of {dtype.name} data, file has {has}"
        )

    if size is not None and size - header != expected:   # a raw file: its size is known before reading
        wrong_size(size - header)
    data = np.empty(expected, np.uint8)
    have = _read_into(f, memoryview(data))
    if have < expected:
        wrong_size(have)
    if f.read(1):
        wrong_size(expected + 1, more=True)
    a = data.view(dtype)
    if not dtype.isnative:
        a = a.byteswap(inplace=True).view(dtype.newbyteorder("="))   # in place: no second copy
    return a.reshape(dims)


# ------------------------------------------------------------------------------------------ download


def download(
    urls: Sequence[str],
    dest: str | os.PathLike,
    sha256: str,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Download the first of `urls` that works and whose SHA-256 is `sha256` to `dest`, atomically.

    Each URL is streamed into a temporary file beside `dest`, hashed, and moved to `dest` with os.replace
    only when the hash matches; on any failure (HTTP error, timeout, short transfer, wrong checksum,
    interruption) the temporary file is deleted and the next URL is tried. `timeout` (seconds) applies to
    each request. With `progress`, a bar is drawn on stderr. If every URL fails, DatasetNotFoundError
    lists each URL's failure. Returns `dest` as a Path.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        try:
            _fetch(url, dest, sha256.lower(), timeout, progress)
            return dest
        except (OSError, http.client.HTTPException, ValueError, DatasetError) as e:
            failures.append(f"{url}: {e or type(e).__name__}")
    tried = "".join(f"\n  {f}" for f in failures) or " (no mirrors given)"
    raise DatasetNotFoundError(f"{dest.name}: could not download it, every mirror failed:{tried}")


def _fetch(url: str, dest: Path, sha256: str, timeout: float, progress: bool) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    digest, got, total = hashlib.sha256(), 0, None
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            while chunk := resp.read(1 << 16):
                out.write(chunk)
                digest.update(chunk)
                got += len(chunk)
                if progress:
                    _draw_progress(dest.name, got, total)
        if total is not None and got != total:
            raise DatasetError(f"transfer cut short: {got} of {total} bytes")
        if digest.hexdigest() != sha256:
            raise DatasetError(
                f"checksum mismatch: sha256 is {digest.hexdigest()}, expected {sha256}; refused"
            )
        os.replace(tmp, dest)
    finally:
        if progress and got:
            sys.stderr.write("\n")
        if os.path.exists(tmp):
            os.unlink(tmp)


def _draw_progress(name: str, got: int, total: int | None) -> None:
    def size(n: int) -> str:
        return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"

    if total:
        done = min(got, total) * 30 // total
        sys.stderr.write(f"\r{name} [{'#' * done}{'.' * (30 - done)}] {size(got)} / {size(total)}")
    else:
        sys.stderr.write(f"\r{name} {size(got)}")
    sys.stderr.flush()


# ------------------------------------------------------------------------------------------- loaders


def _cache_dir(subdir: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tinygrad_edu" / subdir


def _bundled_hidden() -> bool:
    return os.environ.get(NO_BUNDLED_VAR, "") not in ("", "0")


def _search_dirs(subdir: str, system_dirs: Sequence[str], bundled: Path | None) -> dict[Path, str]:
    """{folder: how it was found}, in lookup order: $TINYGRAD_EDU_DATA, `bundled`, the cache, system dirs.

    $TINYGRAD_EDU_DATA may be the folder of the files or a parent holding mnist/ and fashion-mnist/. The
    folder itself is taken for a data set when it is named after it, or, for MNIST, when it is not named
    after another data set.
    """
    dirs = {}
    if env := os.environ.get(ENV_VAR):
        env = Path(env)
        if env.name == subdir or (subdir == _MNIST_DIR and env.name != _FASHION_DIR):
            dirs[env] = f"{env}, from ${ENV_VAR}"
        dirs.setdefault(env / subdir, f"{env / subdir}, from ${ENV_VAR}")
    if bundled is not None:
        dirs.setdefault(bundled, BUNDLED)
    dirs.setdefault(_cache_dir(subdir), f"cache {_cache_dir(subdir)}")
    for d in map(Path, system_dirs):
        dirs.setdefault(d, str(d))
    return dirs


def _find(folder: Path, name: str) -> Path | None:
    """The file `name` (x.gz) in `folder`: as x.gz or raw x, also spelled train-images.idx3-ubyte(.gz)."""
    stem = name.removesuffix(".gz")
    dotted = stem.replace("-idx", ".idx")
    for candidate in (f"{stem}.gz", stem, f"{dotted}.gz", dotted):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def _verify(title: str, path: Path, sha256: str) -> None:
    """A bundled file is the one the package shipped, SHA-256 `sha256`, or DatasetError says how to repair it."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != sha256:
        raise _error(
            DatasetError,
            "{path}: this {title} file bundled with tinygrad_edu is damaged: its SHA-256 is {digest}, expected "
            "{sha256}. Reinstall tinygrad_edu (pip install --force-reinstall; in a git clone, git checkout -- "
            "{path}), or point {DATA} at a folder holding good {title} files",
            path=path, title=title, digest=digest.hexdigest(), sha256=sha256,
        )


def _load_set(
    title: str,
    subdir: str,
    files: Mapping[str, str],
    mirrors: Sequence[str],
    system_dirs: Sequence[str],
    root,
    download_: bool,
    progress: bool,
    timeout: float,
    bundled: tuple[Path, Mapping[str, str]] | None = None,
) -> Loaded:
    """The one loader behind load_mnist and load_fashion_mnist. `bundled` is (folder, SHA-256 table) of a copy
    shipped with the package: searched after $TINYGRAD_EDU_DATA and read in place, each file checked first
    (a damaged one is an error, never skipped for another copy)."""
    names = list(files)
    if len(names) != 4:
        raise ValueError(f"{title}: the file table needs 4 entries (train/test images/labels), got {names}")
    if root is not None:
        root = Path(root)
        if not root.is_dir():
            raise _error(
                DatasetNotFoundError,
                "{title}: {root}: no such folder. {DATA} names the folder that holds the files, or the folder to "
                "download them into: it must exist (it is never created)",
                title=title, root=root,
            )
        dirs = {root: str(root)}
    else:
        dirs = _search_dirs(subdir, system_dirs, None if bundled is None else bundled[0])
    shipped = bundled[0] if root is None and bundled is not None and dirs.get(bundled[0]) == BUNDLED else None
    hidden = shipped is not None and _bundled_hidden()
    found = {d: {n: _find(d, n) for n in names} for d in dirs if not (hidden and d == shipped)}
    folder = next((d for d, f in found.items() if all(f.values())), None)
    if folder is not None:
        paths, source = found[folder], dirs[folder]
        if folder == shipped:
            for name, path in paths.items():
                _verify(title, path, bundled[1][name])
    else:
        searched = ""
        for d in dirs:
            if d not in found:
                what = f"hidden by ${NO_BUNDLED_VAR}"
            elif not d.is_dir():
                what = "no such folder"
            else:
                what = "missing " + ", ".join(n for n, p in found[d].items() if p is None)
            searched += f"\n  {d}{' (the bundled copy)' if d == shipped else ''}: {what}"
        hint = (
            "Searched:{searched}\nPut {names} (gzipped or not) in one folder and pass {DATA_FOLDER}, or set "
            "{env} to that folder (or to a parent holding {subdir}/)"
        )
        fields = dict(searched=searched, names=", ".join(names), env=ENV_VAR, subdir=subdir, title=title)
        if not download_:
            raise _error(DatasetNotFoundError, "{title} not found ({NO_DOWNLOAD}). " + hint + ", or {DOWNLOAD}.",
                         **fields)
        target = root if root is not None else _cache_dir(subdir)
        made = [d for d in (target, *target.parents) if not d.exists()]   # by download(), unless it fails
        paths = found.get(target) or {n: _find(target, n) for n in names}
        for name in names:
            if paths[name] is None:
                urls = [m.rstrip("/") + "/" + name for m in mirrors]
                try:
                    paths[name] = download(
                        urls, target / name, files[name], timeout=timeout, progress=progress
                    )
                except DatasetNotFoundError as e:
                    for d in made:   # a failed download leaves no empty folder behind (deepest first)
                        with contextlib.suppress(OSError):
                            d.rmdir()
                    raise _error(DatasetNotFoundError, "{title}: {e}\n" + hint + ".", e=e, **fields) from None
        folder, source = target, f"downloaded into {target}"
    p = [paths[n] for n in names]
    return Loaded(_read_split(p[0], p[1]), _read_split(p[2], p[3]), source, folder)


def _read_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    X, y = read_idx(images_path), read_idx(labels_path)
    if X.dtype != np.uint8 or X.ndim != 3 or X.shape[1:] != (28, 28):
        raise DatasetError(
            f"{images_path}: expected uint8 images N×28×28 (IDX magic 2051), "
            f"found {X.dtype} of shape {X.shape}"
        )
    if y.dtype != np.uint8 or y.ndim != 1:
        raise DatasetError(
            f"{labels_path}: expected uint8 labels N (IDX magic 2049), found {y.dtype} of shape {y.shape}"
        )
    if len(y) != len(X):
        raise DatasetError(f"{labels_path} has {len(y)} labels but {images_path} has {len(X)} images")
    if len(y) and y.max() > 9:
        i = int(np.argmax(y > 9))
        raise DatasetError(f"{labels_path}: label {y[i]} at index {i} is out of range 0..9")
    return X, y


def load_mnist(
    root: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
    *,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Loaded:
    """Load MNIST as `(X_train, y_train), (X_test, y_test)`: uint8 images N×28×28 and uint8 labels N.

    `root`, when given, is the only folder searched: it must exist, and the missing files are downloaded
    into it (with `download`). Otherwise the first folder holding all four files (each .gz or raw) is read:
    $TINYGRAD_EDU_DATA (the folder itself or its mnist/ subfolder), then the copy bundled with the package
    (BUNDLED_MNIST, read in place, each file checked against MNIST_FILES; $TINYGRAD_EDU_NO_BUNDLED=1 hides
    it), then the cache `$XDG_CACHE_HOME/tinygrad_edu/mnist` (default ~/.cache/...). Failing those, with
    `download`, the files are fetched into the cache from `mirrors` (default MNIST_MIRRORS) and checked
    against `checksums` (default MNIST_FILES, name -> SHA-256). The result also says which copy it read
    (Loaded.source, Loaded.folder). Raises DatasetNotFoundError when the files can be neither found nor
    downloaded, DatasetError when a file is malformed or a bundled file is damaged.
    """
    mirrors = MNIST_MIRRORS if mirrors is None else mirrors
    files = MNIST_FILES if checksums is None else checksums
    bundled = (BUNDLED_MNIST, MNIST_FILES)
    return _load_set("MNIST", _MNIST_DIR, files, mirrors, (), root, download, progress, timeout, bundled)


def load_fashion_mnist(
    root: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
    *,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Loaded:
    """Load Fashion-MNIST as `(X_train, y_train), (X_test, y_test)`, in MNIST's format and file names.

    Looks in `root` if given; else in $TINYGRAD_EDU_DATA/fashion-mnist (or $TINYGRAD_EDU_DATA itself when
    it is named fashion-mnist), the cache `.../tinygrad_edu/fashion-mnist`, then FASHION_MNIST_SYSTEM_DIRS
    (/usr/share/datasets/fashion-mnist, where Debian's dataset-fashion-mnist installs it); it is not bundled.
    `root` and downloads work as in load_mnist, from FASHION_MNIST_MIRRORS checked against FASHION_MNIST_FILES.
    """
    mirrors = FASHION_MNIST_MIRRORS if mirrors is None else mirrors
    files = FASHION_MNIST_FILES if checksums is None else checksums
    system_dirs = FASHION_MNIST_SYSTEM_DIRS
    return _load_set(
        "Fashion-MNIST", _FASHION_DIR, files, mirrors, system_dirs, root, download, progress, timeout
    )


# ---------------------------------------------------------------------------------------- Kaggle CSV

_PIXELS = [f"pixel{i}" for i in range(784)]


def load_kaggle_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Read Kaggle's digit-recognizer CSV into `(X, y)`: X uint8 N×28×28, y uint8 N.

    train.csv has the header `label,pixel0,…,pixel783`; test.csv has no label column (`pixel0,…`), and
    then y is None. Every value must be a plain decimal integer in 0..255 (labels 0..9); any defect
    raises DatasetError naming the file and the line. The body is parsed with vectorised numpy.
    """
    path = Path(path)
    text = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    head, _, body = text.partition(b"\n")
    got = head.rstrip(b"\r").decode("latin-1").split(",")
    if got not in (["label", *_PIXELS], _PIXELS):
        want = ["label", *_PIXELS] if got[:1] == ["label"] else _PIXELS
        col = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
        found = repr(got[col][:20]) if col < len(got) else "end of line"
        expected = want[col] if col < len(want) else "end of line"
        raise DatasetError(
            f"{path}: line 1: header must be label,pixel0,…,pixel783 (train.csv) or pixel0,…,pixel783 "
            f"(test.csv); column {col + 1} is {found}, expected {expected}"
        )
    ncols, labelled = len(got), got[0] == "label"

    b = np.frombuffer(body.rstrip(b"\r\n") + b"\n", np.uint8)
    is_cr = b == ord("\r")
    if (stray := is_cr[:-1] & (b[1:] != ord("\n"))).any():   # a CR belongs only in a CRLF line ending
        pos = int(np.argmax(stray))
        line = int(np.count_nonzero(b[:pos] == ord("\n"))) + 2
        raise DatasetError(f"{path}: line {line}: unexpected character b'\\r' inside the line (a carriage return "
                           "may only end a line, as CRLF); values must be plain integers 0..255")
    b = b[~is_cr]
    if len(b) == 1:  # header only
        return np.zeros((0, 28, 28), np.uint8), (np.zeros(0, np.uint8) if labelled else None)
    is_nl, is_comma = b == ord("\n"), b == ord(",")
    is_digit = (b >= ord("0")) & (b <= ord("9"))
    line_of = np.cumsum(is_nl) - is_nl + 2  # file line number of every byte

    def fail(pos: int, what: str):
        raise DatasetError(f"{path}: line {line_of[pos]}: {what}")

    if not (ok := is_digit | is_comma | is_nl).all():
        pos = int(np.argmin(ok))
        fail(pos, f"unexpected character {bytes([b[pos]])!r}; values must be plain integers 0..255")
    ends = np.flatnonzero(is_comma | is_nl)  # one end per value
    line_ends = np.flatnonzero(is_nl)
    per_line = np.diff(np.cumsum(is_comma)[line_ends], prepend=0) + 1
    if (bad := per_line != ncols).any():
        i = int(np.argmax(bad))
        fail(line_ends[i], f"{per_line[i]} values, the header has {ncols}")
    lengths = np.diff(ends, prepend=-1) - 1
    if (bad := (lengths == 0) | (lengths > 3)).any():
        k = int(np.argmax(bad))
        value = bytes(b[ends[k] - lengths[k] : ends[k]]).decode()
        fail(ends[k], f"column {k % ncols + 1}: {value or 'empty value'!r} is not an integer in 0..255")
    d = b.astype(np.int16) - ord("0")
    values = d[ends - 1]
    values += np.where(lengths >= 2, 10 * d[np.maximum(ends - 2, 0)], 0)
    values += np.where(lengths >= 3, 100 * d[np.maximum(ends - 3, 0)], 0)
    rows = values.reshape(-1, ncols)
    if (bad := rows > 255).any():
        k = int(np.argmax(bad))
        fail(ends[k], f"column {k % ncols + 1}: {values[k]} is out of range 0..255")
    if labelled and (bad := rows[:, 0] > 9).any():
        r = int(np.argmax(bad))
        fail(ends[r * ncols], f"label {rows[r, 0]} is out of range 0..9")
    X = rows[:, -784:].astype(np.uint8).reshape(-1, 28, 28)
    return X, (rows[:, 0].astype(np.uint8) if labelled else None)


# ------------------------------------------------------------------------------------- preprocessing


def to_float(images: np.ndarray, dtype=np.float32, layout: str = "rows", *, mean: float = 0.0,
             std: float = 1.0) -> np.ndarray:
    """Pixels p (uint8, N×28×28 or N×784) as (p/255 − mean)/std in `dtype`: N×784 for layout="rows", 784×N
    for "columns". The defaults give the tutorial's inputs, p/255; pixel_stats gives a standardising pair.

    The division is done once, straight from uint8 in the target dtype (no float64 intermediate), so it
    is exact: each value is p/255 correctly rounded to `dtype` (0 -> 0.0, 255 -> 1.0). A mean and std are
    then applied in place, in `dtype`. layout="columns" (one column per image, the tutorial's layout) is the
    transposed view of the rows array, so the 784 pixels of an image stay contiguous and gathering columns
    stays cheap.
    """
    images = np.asarray(images)
    dtype = np.dtype(dtype)
    if images.dtype != np.uint8:
        raise TypeError(f"to_float expects uint8 pixels, got {images.dtype}")
    if dtype.kind != "f":
        raise TypeError(f"to_float needs a floating dtype, got {dtype}")
    if layout not in ("rows", "columns"):
        raise ValueError(f"layout must be 'rows' or 'columns', got {layout!r}")
    if images.ndim < 2:
        raise ValueError(f"to_float expects N images (N×28×28 or N×784), got shape {images.shape}")
    shift, scale = check_scaling(mean, std, dtype)
    rows = np.divide(images.reshape(len(images), math.prod(images.shape[1:])), dtype.type(255), dtype=dtype)
    if (mean, std) != (0.0, 1.0):
        rows -= shift
        rows /= scale
    return rows if layout == "rows" else rows.T


def check_scaling(mean: float, std: float, dtype=np.float32) -> tuple:
    """(mean, std) in dtype, if (p/255 − mean)/std is finite in dtype for every pixel p; ValueError otherwise (a
    std of 1e-320 is 0 in float32, and 1e-30 would turn pixels into ±inf). to_float and the weights files'
    inputs entry (training.read_inputs) are checked by it."""
    dtype = np.dtype(dtype)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        shift, scale = dtype.type(mean), dtype.type(std)
        ends = (np.array([0, 1], dtype) - shift) / scale
    if not (np.isfinite(shift) and np.isfinite(scale) and scale > 0):
        raise ValueError(f"to_float needs a mean and a std > 0 that are finite in {dtype}, got mean {mean!r}, "
                         f"std {std!r}")
    if not np.isfinite(ends).all():
        raise ValueError(f"to_float: mean {mean!r} and std {std!r} scale pixels (p/255 − mean)/std beyond the "
                         f"range of {dtype}")
    return shift, scale


def pixel_stats(images: np.ndarray, chunk: int = 10000) -> tuple[float, float]:
    """The mean and standard deviation of p/255 over every pixel of `images` (uint8), exactly, in float64.

    For MNIST's 60,000 training images they are 0.1307 and 0.3081, the constants of PyTorch's MNIST example
    (transforms.Normalize((0.1307,), (0.3081,))). The sums Σp and Σp² are exact integers, taken chunk images
    at a time so that no float copy of the images is made.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"pixel_stats expects uint8 pixels, got {images.dtype}")
    if images.ndim < 1 or images.size == 0:
        raise ValueError(f"pixel_stats needs at least one pixel, got shape {images.shape}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"pixel_stats: chunk must be a number of images ≥ 1, got {chunk!r}")
    n, total, squares = images.size, 0, 0
    for i in range(0, len(images), chunk):
        p = images[i:i + chunk].astype(np.uint16)
        total += int(np.sum(p, dtype=np.uint64))
        squares += int(np.sum(p * p, dtype=np.uint64))
    # NOTE: mean = Σp/(255n), variance = (nΣp² − (Σp)²)/(255n)², both from integers: no cancellation.
    return total / (255 * n), math.sqrt(n * squares - total * total) / (255 * n)


def minibatches(
    X: np.ndarray,
    y: np.ndarray | None,
    batch_size: int,
    *,
    seed: int | np.random.Generator | None = None,
    shuffle: bool = True,
    axis: int = 0,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Yield `(X_batch, y_batch)` pairs covering the data set once, in an order shuffled by default_rng(seed).

    `axis` is the examples axis of X (0 for N×784 rows, 1 for the tutorial's 784×N columns); y (or None)
    is indexed along its axis 0. `seed` is an int, None or a np.random.Generator. The last batch is
    smaller when batch_size does not divide N, unless `drop_last`. Arguments are checked at the call.
    """
    X = np.asarray(X)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer ≥ 1, got {batch_size!r}")
    if not -X.ndim <= axis < X.ndim:
        raise ValueError(f"axis {axis} is out of range for X of shape {X.shape}")
    n = X.shape[axis]
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 0 or len(y) != n:
            raise ValueError(
                f"X has {n} examples along axis {axis} (shape {X.shape}) but y has "
                f"{len(y) if y.ndim else 'no axis 0'} (shape {y.shape})"
            )
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n

    # NOTE: plain indexing, not np.take: on the tutorial's 784×N view of the row-major pixels np.take would
    # copy the whole array for every batch; X[:, idx] gathers just the batch's columns.
    leading = (slice(None),) * (axis % X.ndim)

    def batches():
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            yield X[leading + (idx,)], (None if y is None else y[idx])

    return batches()


def load_text(name_or_path, kind: str | None = None):
    """A text corpus split for the sequence models: tinygrad_edu.text.load_text (its docstring says how)."""
    from tinygrad_edu import text  # NOTE: text builds on this module (DatasetError), so it is imported here

    return text.load_text(name_or_path, kind)
