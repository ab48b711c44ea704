"""The built wheel holds the bundled MNIST and its NOTICE, and a non-editable install reads them from anywhere."""
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tinygrad_edu import datasets

ROOT = Path(__file__).parents[1]
DATA = "tinygrad_edu/data/mnist/"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built offline (pip wheel --no-build-isolation) from a copy of the sources, so the build leaves
    nothing in the checkout."""
    pytest.importorskip("setuptools", minversion="77")
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src)
    shutil.copytree(ROOT / "tinygrad_edu", src / "tinygrad_edu", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "--quiet", "-w", str(out), str(src)], check=True)
    [path] = out.glob("tinygrad_edu-*.whl")
    return path


def test_wheel_holds_the_mnist_files_and_their_notice(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert {DATA + n for n in [*datasets.MNIST_FILES, "NOTICE"]} <= names
        for n in datasets.MNIST_FILES:
            assert z.read(DATA + n) == (datasets.BUNDLED_MNIST / n).read_bytes()
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT AND CC-BY-SA-3.0" in metadata
    assert any(n.endswith(".dist-info/licenses/" + DATA + "NOTICE") for n in names)


def test_installed_wheel_trains_on_its_bundled_copy_from_anywhere(wheel, tmp_path):
    """pip install --target (a real, non-editable install) and `train` run from a folder outside the checkout,
    with nothing else on the path that holds tinygrad_edu first and no TINYGRAD_EDU_DATA."""
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", "--target",
                    str(site), str(wheel)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in (datasets.ENV_VAR, datasets.NO_BUNDLED_VAR)}
    env.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(tmp_path / "xdg"))
    run = subprocess.run([sys.executable, "-c", "import tinygrad_edu; print(tinygrad_edu.__file__)"], cwd=elsewhere,
                         env=env, capture_output=True, text=True, check=True)
    assert Path(run.stdout.strip()) == site / "tinygrad_edu" / "__init__.py"
    run = subprocess.run([sys.executable, "-m", "tinygrad_edu", "train", "--iterations", "2", "--no-download"],
                         cwd=elsewhere, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    first = run.stderr.splitlines()[0]
    assert re.fullmatch(r"mnist \(bundled with tinygrad_edu\): 60000 training and 10000 test images \(\d+\.\d s\)",
                        first)
    assert re.search(r"^test accuracy +0\.\d{4}$", run.stdout, re.M)
    assert not (tmp_path / "xdg").exists()


def test_wheel_holds_the_message_catalogue(wheel):
    from tinygrad_edu import messages
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert {f"tinygrad_edu/messages/{area}.json" for area in messages.areas()} <= names


def test_wheel_holds_the_text_corpora_and_their_notice(wheel):
    from tinygrad_edu import text
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for corpus in text.CORPORA.values():
            assert z.read(f"tinygrad_edu/data/text/{corpus.file}") == (text.BUNDLED_TEXT / corpus.file).read_bytes()
    assert {"tinygrad_edu/data/text/NOTICE", "tinygrad_edu/data/text/SHA256SUMS"} <= names
    assert any(n.endswith(".dist-info/licenses/tinygrad_edu/data/text/NOTICE") for n in names)


def test_wheel_holds_the_workbook_in_every_language(wheel):
    from tinygrad_edu import messages
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    folder = "tinygrad_edu/exercises/templates/"
    for lang in messages.LANGUAGES:
        code = {"ops.py", "tutorial.py"} if lang == "en" else {f"ops.{lang}.py", f"tutorial.{lang}.py"}
        assert {folder + f for f in code | {f"README.{lang}.md"}} <= names, lang
