"""A command's output files: planned once, before any work, so they never clobber each other or fail late (issue 12,
class 6)."""
import gzip
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu.cli import main
from tinygrad_edu.cli.common import check_outputs
from tinygrad_edu.files import write_atomic

NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@pytest.fixture
def data_dir(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, shape in zip(NAMES, ((50, 28, 28), (50,), (20, 28, 28), (20,))):
        a = rng.integers(0, 10, shape).astype(np.uint8)
        (folder / f"{name}.gz").write_bytes(gzip.compress(bytes([0, 0, 8, a.ndim]) +
                                                          struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()))
    return folder


def train(data_dir, *more):
    return main(["train", "--data", str(data_dir), "--no-download", "--quiet", "--iterations", "2", *more])


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_save_and_metrics_naming_one_file_through_dot_dot_are_refused_before_training(data_dir, tmp_path, monkeypatch,
                                                                                      capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    before = listing(tmp_path)
    assert train(data_dir, "--save", "sub/../w.npz", "--metrics-out", "w.npz") == 2
    captured = capsys.readouterr()
    assert captured.err == ("tinygrad-edu train: error: --save sub/../w.npz and --metrics-out w.npz are the same "
                            "file\n")
    assert captured.out == "" and listing(tmp_path) == before     # nothing trained, nothing written


def test_save_into_the_plot_folder_under_a_picture_name_is_refused(data_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    pictures = tmp_path / "pictures"
    assert train(data_dir, "--save", str(pictures / "curves.png"), "--plot", str(pictures)) == 2
    assert (f"error: --save {pictures / 'curves.png'} and --plot picture {pictures / 'curves.png'} are the same file"
            in capsys.readouterr().err)
    assert not pictures.exists()


def test_metrics_under_a_regular_file_is_refused_before_training(data_dir, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    for out in (afile / "m.json", afile / ".." / "m.json", afile / "deeper" / "m.json"):
        assert train(data_dir, "--metrics-out", str(out)) == 2
        captured = capsys.readouterr()
        assert captured.err == f"tinygrad-edu train: error: --metrics-out {out}: {afile} is not a folder\n"
        assert captured.out == ""
    assert afile.read_text() == "keep me" and not (tmp_path / "m.json").exists()


def test_the_same_file_through_links_is_caught(tmp_path):
    real = tmp_path / "w.npz"
    real.write_bytes(b"x")
    (tmp_path / "soft.npz").symlink_to(real)
    os.link(real, tmp_path / "hard.npz")
    (tmp_path / "dir").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "dir")
    assert check_outputs([("--save", real), ("--metrics-out", tmp_path / "hard.npz")], force=True) == \
        f"--save {real} and --metrics-out {tmp_path / 'hard.npz'} are the same file"
    # a symbolic link is never an output (files.output_problem), so it is refused before the comparison
    assert check_outputs([("--save", real), ("--metrics-out", tmp_path / "soft.npz")], force=True) == \
        f"--metrics-out {tmp_path / 'soft.npz'} is a symbolic link; name the file it leads to instead (an output " \
        "never replaces a link)"
    assert check_outputs([("--save", tmp_path / "dir" / "a"), ("--plot picture", tmp_path / "alias" / "a")],
                         force=False) == (f"--save {tmp_path / 'dir' / 'a'} and --plot picture "
                                          f"{tmp_path / 'alias' / 'a'} are the same file")
    assert check_outputs([("--save", tmp_path / "dir" / "a"), ("--metrics-out", tmp_path / "dir" / "b")], False) is None


def test_other_refusals_and_what_is_allowed(tmp_path):
    (tmp_path / "old.json").write_text("{}")
    (tmp_path / "broken").symlink_to(tmp_path / "nowhere")
    assert check_outputs([("--save", tmp_path)], True) == f"--save {tmp_path} is a folder"
    assert check_outputs([("--save", tmp_path / "old.json")], False) == \
        f"--save {tmp_path / 'old.json'} exists; pass --force to overwrite it"
    assert check_outputs([("--save", tmp_path / "old.json")], True) is None
    assert check_outputs([("--save", tmp_path / "broken" / "w.npz")], True) == \
        f"--save {tmp_path / 'broken' / 'w.npz'}: {tmp_path / 'broken'} is a broken symbolic link"
    assert check_outputs([("picture", tmp_path / "old.json")], True, [("the metrics file", tmp_path / "old.json")]) \
        == f"picture {tmp_path / 'old.json'} would overwrite the metrics file {tmp_path / 'old.json'}, which this " \
           "command reads"
    assert check_outputs([("--save", tmp_path / "new" / "deeper" / "w.npz"), ("--metrics-out", None)], False) is None
    assert not (tmp_path / "new").exists()                          # the check creates nothing


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_folder_without_write_permission_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert check_outputs([("--save", locked / "sub" / "w.npz")], False) == \
        f"--save {locked / 'sub' / 'w.npz'}: cannot write in {locked}"


COMPONENTS = st.sampled_from(["d", "f", "l", "missing", "..", "."])


@given(parts=st.lists(COMPONENTS, max_size=4), name=st.sampled_from(["w.npz", "f", "d", "l"]))
def test_the_check_agrees_with_writing(parts, name):
    """For any path made of an existing folder d, a regular file f, a link l to d, a missing name, '..' and '.':
    the check passes exactly when write_atomic (which makes missing folders) succeeds, except that it also refuses
    a folder, even where the write would replace a link to one."""
    with tempfile.TemporaryDirectory() as base:
        base = Path(base) / "base"
        (base / "d").mkdir(parents=True)
        (base / "f").write_text("keep")
        (base / "l").symlink_to(base / "d")
        path = base.joinpath(*parts, name)
        problem = check_outputs([("--save", path)], force=True)
        try:
            write_atomic(path, b"new")
            written = True
        except OSError:
            written = False
        if not (name == "l" and problem == f"--save {path} is a folder"):   # the write would replace the link
            assert (problem is None) == written, (path, problem)
        assert (base / "f").read_text() == "keep" or path.resolve() == (base / "f").resolve()


def test_explain_and_plot_check_their_outputs_first(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TINYGRAD_EDU_DATA", str(tmp_path / "nothing"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    assert main(["explain", "--dot", str(afile / "g.dot")]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"tinygrad-edu explain: error: --dot {afile / 'g.dot'}: {afile} is not a folder\n"
    assert captured.out == ""                                     # nothing traced
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"history": [{"step": 1, "loss": 1.0}]}')
    assert main(["plot", str(metrics), "--out", str(afile)]) == 2
    assert capsys.readouterr().err == (f"tinygrad-edu plot: error: --out picture {afile / 'curves.png'}: {afile} is "
                                       "not a folder\n")
    named = tmp_path / "curves.png"                              # a metrics file the pictures would replace
    named.write_text(metrics.read_text())
    assert main(["plot", str(named), "--force"]) == 2
    assert "would overwrite the metrics file" in capsys.readouterr().err and named.read_text() == metrics.read_text()


def test_train_plot_without_matplotlib_is_refused_before_training(data_dir, tmp_path, capsys, monkeypatch):
    import importlib.util
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else
                        find_spec(name, *a))
    assert train(data_dir, "--plot", str(tmp_path / "pictures"), "--save", str(tmp_path / "w.npz")) == 2
    captured = capsys.readouterr()
    assert captured.err == ('tinygrad-edu train: error: --plot needs matplotlib, which is not installed: '
                            'pip install "tinygrad_edu[plot]"\n')
    assert captured.out == "" and not (tmp_path / "w.npz").exists()
