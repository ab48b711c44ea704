"""The BatchNorm, logistic-regression and autoencoder examples, each run in quick mode in a subprocess: real figures."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tinygrad_edu import datasets

ROOT = Path(__file__).parents[1]


def run(script: str, *args: str, cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in (datasets.ENV_VAR, datasets.NO_BUNDLED_VAR)}
    env["PYTHONPATH"] = str(ROOT)   # this checkout's package, whatever is installed
    env["XDG_CACHE_HOME"] = str(cwd)   # the bundled MNIST, not a cached copy
    return subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_batchnorm_example_beats_the_plain_mlp_after_one_quick_epoch(tmp_path):
    pytest.importorskip("matplotlib")
    proc = run("mnist_batchnorm.py", "--quick", "--plot", "curves.png", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = re.findall(r"^\s+1\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s", proc.stdout, re.M)
    assert len(rows) == 1, proc.stdout
    loss_plain, loss_bn, acc_plain, acc_bn = map(float, rows[0])
    assert 0 < loss_bn < loss_plain < 2.5          # both learn; BatchNorm faster at this learning rate
    assert acc_bn > 0.7 and acc_bn > acc_plain > 0.2
    assert f"final test accuracy: plain {acc_plain:.4f}, batchnorm {acc_bn:.4f}" in proc.stdout
    assert is_png(tmp_path / "curves.png") and "wrote curves.png" in proc.stdout


def test_logistic_regression_example_separates_3_from_8(tmp_path):
    proc = run("mnist_logistic.py", "--quick", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "2000 training images, 1984 test images" in proc.stdout   # 1984 = the test set's 3s and 8s
    test_acc = float(re.search(r"test accuracy ([\d.]+)", proc.stdout).group(1))
    assert test_acc > 0.9


def test_autoencoder_example_beats_the_mean_image_and_pictures_its_reconstructions(tmp_path):
    pytest.importorskip("matplotlib")
    proc = run("mnist_autoencoder.py", "--quick", "--plot", "rec.png", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    found = re.search(r"test MSE ([\d.]+), ([\d.]+) of the mean image's ([\d.]+)", proc.stdout)
    mse, _, baseline = map(float, found.groups())
    assert 0 < mse < 0.95 * baseline and 0.05 < baseline < 0.09
    assert is_png(tmp_path / "rec.png")


@pytest.mark.parametrize("script, args, message", [
    ("mnist_batchnorm.py", ["--epochs", "0"], "argument --epochs: expected an integer ≥ 1, got '0'"),
    ("mnist_batchnorm.py", ["--train-size", "60001"], "--train-size 60001 is more than the 60000 images"),
    ("mnist_batchnorm.py", ["--plot", "exists.png"], "--plot exists.png exists; pass --force to overwrite it"),
    ("mnist_logistic.py", ["--digits", "3", "3"], "--digits must be two different digits, got 3 twice"),
    ("mnist_logistic.py", ["--lr", "0"], "argument --lr: expected a positive number, got '0'"),
    ("mnist_autoencoder.py", ["--code", "1000"], "--code 1000 is larger than the 784 pixels"),
    ("mnist_autoencoder.py", ["--plot", "."], "--plot . is a folder"),
])
def test_examples_refuse_bad_arguments_like_the_cli(tmp_path, script, args, message):
    (tmp_path / "exists.png").write_bytes(b"keep me")
    proc = run(script, *args, cwd=tmp_path)
    assert proc.returncode == 2 and f"{script}: error: {message}" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and (tmp_path / "exists.png").read_bytes() == b"keep me"
