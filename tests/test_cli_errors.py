"""One table of bad invocations of every command and example: exit code, first stderr line, no traceback, no file.

Each row runs as a real process in a temp folder (HOME and the cache inside it); the first line is the one after
argparse's usage lines, and the folder's tree must be the same after the run as before."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu import checkpoint, training
from tinygrad_edu.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NO_SUCH = "nowhere"   # a folder or file that does not exist in the temp cwd

# (argv, exit code, first line of stderr after argparse's usage: a string it starts with, or a compiled regex).
# argv starting with an examples/*.py name runs that script; otherwise it is `python -m tinygrad_edu ARGV`.
TABLE = [
    # train
    (["train", "--lr", "-1"], 2, "tinygrad-edu train: error: argument --lr: expected a positive number, got '-1'"),
    (["train", "--data", NO_SUCH], 2, f"tinygrad-edu train: error: MNIST: {NO_SUCH}: no such folder. --data DIR "
                                      "names the folder that holds the files, or the folder to download them into: "
                                      "it must exist (it is never created)"),
    (["train", "--data", "empty", "--no-download"], 2,
     "tinygrad-edu train: error: MNIST not found (--no-download). Searched:"),
    (["train", "--dataset", "fashion-mnist"], 2,   # the downloads fail (no network): no empty cache folder is left
     "tinygrad-edu train: error: Fashion-MNIST: train-images-idx3-ubyte.gz: could not download it, every mirror "
     "failed:"),
    (["train", "--hidden", "10,10"], 2, "tinygrad-edu train: error: the tutorial model has exactly one hidden layer"),
    (["train", "--save", "kept.npz"], 2, "tinygrad-edu train: error: --save kept.npz exists; pass --force to "
                                         "overwrite it"),
    (["train", "--metrics-out", "empty"], 2, "tinygrad-edu train: error: --metrics-out empty is a folder"),
    (["train", "--validation", "60000"], 2, "tinygrad-edu train: error: --validation 60000 leaves no images to train "
                                            "on: the training set has 60000"),
    (["train", "--data", "names", "--model", "tutorial"], 2,
     "tinygrad-edu train: error: --model tutorial trains on MNIST images; on text choose one of bigram, mlp, rnn"),
    (["train", "--model", "rnn"], 2, "tinygrad-edu train: error: --model rnn is a text model: give it text, e.g. "
                                     "--data names"),
    (["train", "--data", "names", "--normalize", "standard"], 2,
     "tinygrad-edu train: error: --normalize does not apply to text models (it is for MNIST)"),
    (["train", "--data", "notes.txt", "--model", "bigram"], 2,
     "tinygrad-edu train: error: notes.txt: 1 words are too few to split into train, val and test (10 at least)"),
    # sample
    (["sample"], 2, "tinygrad-edu sample: error: the following arguments are required: --weights"),
    (["sample", "--weights", "w.npz"], 2, "tinygrad-edu sample: error: w.npz holds a tutorial model, not a text "
                                          "model: sample needs one of bigram, char-mlp, char-rnn"),
    (["sample", "--weights", "notes.txt"], 2, "tinygrad-edu sample: error: notes.txt: not an .npz weights file"),
    (["sample", "--weights", "w.npz", "--temperature", "0"], 2,
     "tinygrad-edu sample: error: argument --temperature: expected a positive number, got '0'"),
    # predict
    (["predict"], 2, "tinygrad-edu predict: error: the following arguments are required: --weights"),
    (["predict", "--weights", "empty"], 2, "tinygrad-edu predict: error: empty is a folder, not a weights file"),
    (["predict", "--weights", "notes.txt"], 2, "tinygrad-edu predict: error: notes.txt: not an .npz weights file"),
    (["predict", "--weights", "w.npz", "--index", "10000"], 2,
     "tinygrad-edu predict: error: --index 10000 is out of range: the test set has 10000 images (0..9999)"),
    # evaluate
    (["evaluate", "--weights", "empty"], 2, "tinygrad-edu evaluate: error: empty is a folder, not a weights file "
                                            "(an .npz written by train --save)"),
    (["evaluate", "--weights", f"{NO_SUCH}.npz"], 2, f"tinygrad-edu evaluate: error: {NO_SUCH}.npz: no such weights "
                                                     "file"),
    (["evaluate", "--weights", "w.npz", "--data", NO_SUCH], 2, f"tinygrad-edu evaluate: error: MNIST: {NO_SUCH}: no "
                                                               "such folder. --data DIR names the folder"),
    (["evaluate", "--weights", "w.npz", "--split", "validation"], 2,
     "tinygrad-edu evaluate: error: w.npz: its model was trained without --validation, so it has no validation "
     "images; use --split test or train"),
    # compare
    (["compare", "--batch-size", "0"], 2,
     "tinygrad-edu compare: error: argument --batch-size: expected an integer ≥ 1, got '0'"),
    (["compare", "--batch-size", "100000"], 2,
     "tinygrad-edu compare: error: --batch-size 100000 is more than the 60000 images of the MNIST training set"),
    # gradcheck
    (["gradcheck", "softmaxx"], 2, "tinygrad-edu gradcheck: error: unknown op 'softmaxx'; the ops are: add, "),
    (["gradcheck", "--trials", "0"], 2,
     "tinygrad-edu gradcheck: error: argument --trials: expected an integer ≥ 1, got '0'"),
    # explain
    (["explain", "--batch-size", "0"], 2,
     "tinygrad-edu explain: error: argument --batch-size: expected an integer ≥ 1, got '0'"),
    (["explain", "--hidden", "-3"], 2, "tinygrad-edu explain: error: argument --hidden: expected an integer ≥ 1, "
                                       "got '-3'"),
    (["explain", "--batch-size", "100000"], 2,
     "tinygrad-edu explain: error: --batch-size 100000 is larger than the 60000 training images"),
    (["explain", "--dot", "graph.txt"], 2,
     "tinygrad-edu explain: error: --dot graph.txt: the suffix must be .dot, .gv, .svg, .png or .pdf"),
    (["explain", "--dot", "kept.dot"], 2, "tinygrad-edu explain: error: --dot kept.dot exists; pass --force to "
                                          "overwrite it"),
    (["explain", "--dot", "notes.txt/g.dot", "--force"], 2,
     re.compile(r"tinygrad-edu explain: error: --dot notes\.txt/g\.dot: .*notes\.txt is not a folder$")),
    # plot
    (["plot", "w.npz"], 2, "tinygrad-edu plot: error: w.npz is a weights file (train --save), not a metrics file: "
                           "plot reads the JSON written by train --metrics-out, and takes the weights as --weights "
                           "w.npz"),
    (["plot", "empty"], 2, "tinygrad-edu plot: error: empty is a folder, not a metrics file"),
    (["plot", f"{NO_SUCH}.json"], 2, f"tinygrad-edu plot: error: {NO_SUCH}.json: no such metrics file"),
    (["plot", "m.json", "--out", "pictures"], 2,
     "tinygrad-edu plot: error: --out picture pictures/curves.png exists; pass --force to overwrite it"),
    (["plot", "m.json", "--weights", "notes.txt", "--out", "empty"], 2,   # read before drawing: no curves.png
     "tinygrad-edu plot: error: notes.txt: not an .npz weights file"),
    # exercises
    (["exercises"], 2, "tinygrad-edu exercises: error: the following arguments are required: ACTION"),
    (["exercises", "check", NO_SUCH], 2, f"tinygrad-edu exercises: error: no workbook in {NO_SUCH}"),
    (["exercises", "start", "notes.txt"], 2, "tinygrad-edu exercises: error: notes.txt is a file, not a folder"),
    # lab
    (["lab", "--port", "70000"], 2, "tinygrad-edu lab: error: argument --port: expected a port number 0-65535, "
                                    "got '70000'"),
    (["lab", "--save", "kept.npz", "--no-browser"], 2, "tinygrad-edu lab: error: --save kept.npz exists; pass "
                                                       "--force to overwrite it"),
    (["lab", "--data", NO_SUCH, "--no-browser"], 2, f"tinygrad-edu lab: error: MNIST: {NO_SUCH}: no such folder."),
    (["lab", "--weights", "notes.txt", "--no-browser"], 2, "tinygrad-edu lab: error: notes.txt: not an .npz weights "
                                                           "file"),
    # no command of that name
    (["trian"], 2, "tinygrad-edu: error: argument COMMAND: invalid choice: 'trian'"),
    # the examples
    (["train_tutorial.py", "-5"], 2, "train_tutorial.py: error: argument iterations: expected an integer ≥ 1, "
                                     "got '-5'"),
    (["train_tutorial.py", "10", "x"], 2, "train_tutorial.py: error: argument seed: expected an integer ≥ 0, "
                                          "got 'x'"),
    (["mnist_mlp.py", "--epochs", "0"], 2, "mnist_mlp.py: error: argument --epochs: expected an integer ≥ 1, "
                                           "got '0'"),
    (["mnist_mlp_torch.py", "--seed", "-1"], 2, "mnist_mlp_torch.py: error: argument --seed: expected an integer "
                                                "≥ 0, got '-1'"),
    (["compare_backprop.py", "--seed", "1"], 2, "compare_backprop.py: error: unrecognized arguments: --seed 1"),
    (["port_to_pytorch.py", "extra"], 2, "port_to_pytorch.py: error: unrecognized arguments: extra"),
    (["mnist_batchnorm.py", "--epochs", "0"], 2, "mnist_batchnorm.py: error: argument --epochs: expected an integer "
                                                 "≥ 1, got '0'"),
    (["mnist_logistic.py", "--digits", "3", "3"], 2, "mnist_logistic.py: error: --digits must be two different "
                                                     "digits, got 3 twice"),
    (["newton_logistic.py", "--images", "0"], 2, "newton_logistic.py: error: argument --images: expected an integer "
                                                 "≥ 1, got '0'"),
    (["mnist_autoencoder.py", "--plot", "notes.txt"], 2, "mnist_autoencoder.py: error: --plot notes.txt exists; "
                                                         "pass --force to overwrite it"),
]


def _id(row) -> str:
    return " ".join(row[0])


def test_the_table_covers_every_command_and_example():
    firsts = {argv[0] for argv, _, _ in TABLE}
    assert set(COMMANDS) <= firsts
    assert {p.name for p in EXAMPLES.glob("*.py")} <= firsts


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """The temp cwd the rows run in: a tutorial weights file, a metrics file, a text file, an empty folder,
    files that exist (kept.*), a folder already holding a picture, and an empty home."""
    cwd = tmp_path_factory.mktemp("cwd")
    config = training.TrainConfig()
    model = training.TutorialNet.create(config, np.random.default_rng(0), 1, training.PIXELS)
    checkpoint.save(cwd / "w.npz", model.state_dict(),
                    {**model.architecture(), "dataset": "mnist", "config": config.as_dict()})
    (cwd / "m.json").write_text('{"history": [{"step": 1, "epoch": 1, "loss": 2.3, "train_accuracy": 0.1}], '
                                '"weights": null}\n')
    (cwd / "notes.txt").write_text("not weights\n")
    for name in ("kept.npz", "kept.dot"):
        (cwd / name).write_text("a file the user keeps\n")
    (cwd / "empty").mkdir()
    (cwd / "pictures").mkdir()
    (cwd / "pictures" / "curves.png").write_text("an older picture\n")
    (cwd / "home").mkdir()
    return cwd


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under folder."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in folder.rglob("*")}


def _env(cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYGRAD_EDU_")}
    env.update(HOME=str(cwd / "home"), XDG_CACHE_HOME=str(cwd / "home" / ".cache"), PYTHONPATH=str(ROOT),
               COLUMNS="200")
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):   # downloads fail at once
        env[proxy] = "http://127.0.0.1:9"
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    return env


def first_line(stderr: str) -> str:
    """stderr's first line after argparse's usage (a "usage:" line and its indented continuation)."""
    lines = stderr.splitlines()
    while lines and (lines[0].startswith("usage:") or lines[0].startswith(" ")):
        lines.pop(0)
    return lines[0] if lines else ""


@pytest.mark.parametrize("argv, code, expected", TABLE, ids=[_id(r) for r in TABLE])
def test_bad_invocation(workdir, argv, code, expected):
    script = EXAMPLES / argv[0]
    command = [sys.executable, str(script), *argv[1:]] if script.suffix == ".py" else \
        [sys.executable, "-m", "tinygrad_edu", *argv]
    before = tree(workdir)
    proc = subprocess.run(command, cwd=workdir, env=_env(workdir), capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert "Traceback" not in proc.stderr, proc.stderr
    line = first_line(proc.stderr)
    if isinstance(expected, re.Pattern):
        assert expected.match(line), line
    else:
        assert line.startswith(expected), line
    assert proc.returncode == code, proc.stderr
    assert tree(workdir) == before   # nothing created, changed or removed
