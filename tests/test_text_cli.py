"""`train --data TEXT`, `sample` and `evaluate`/`predict` on text models: results, files, and every refusal."""
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from processes import take_sigint

from tinygrad_edu import nn
from tinygrad_edu.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def names_mlp(tmp_path_factory):
    """A char-mlp trained on names for 1000 steps, saved with its metrics."""
    folder = tmp_path_factory.mktemp("names")
    code = main(["train", "--data", "names", "--model", "mlp", "--steps", "1000", "--quiet", "--save",
                 str(folder / "n.npz"), "--metrics-out", str(folder / "n.json")])
    assert code == 0
    return folder / "n.npz", json.loads((folder / "n.json").read_text())


def test_train_on_names_prints_losses_and_writes_its_metrics(names_mlp, capsys):
    path, metrics = names_mlp
    assert metrics["data"] == "names" and metrics["kind"] == "words" and metrics["model"] == "char-mlp"
    assert metrics["splits"] == {"train": 25626, "val": 3203, "test": 3204}
    assert metrics["steps"] == 1000 and metrics["parameters"] == 11897 and metrics["val_loss"] < 2.6
    assert {"train_loss", "val_loss", "seconds", "config", "history"} <= set(metrics)
    model = nn.load(path)
    assert model.kind == "char-mlp" and model.tokenizer.vocab_size == 27


def test_the_bigram_prints_its_count_model_beside_it(capsys):
    assert main(["train", "--data", "names", "--model", "bigram", "--steps", "5", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^count model +2\.4533 \(val; the bigram counts with add-one smoothing\)$", out, re.M)
    assert re.search(r"^parameters +729$", out, re.M) and "for 5 steps" in out


def test_samples_are_the_only_stdout_and_repeat_with_the_seed(names_mlp, capsys):
    path, _ = names_mlp
    assert main(["sample", "--weights", str(path), "--num", "7", "--seed", "3"]) == 0
    first = capsys.readouterr()
    assert main(["sample", "--weights", str(path), "--num", "7", "--seed", "3"]) == 0
    again = capsys.readouterr()
    words = first.out.splitlines()
    # (a sample may be empty: the model may end the word at once, as makemore's may)
    assert first.out == again.out and len(words) == 7 and all(re.fullmatch(r"[a-z]*", w) for w in words)
    assert re.fullmatch(r"in the training data: \d of 7.*\n", first.err)
    assert main(["sample", "--weights", str(path), "--num", "3", "--seed", "3", "--quiet", "--prompt", "ja"]) == 0
    out = capsys.readouterr()
    assert out.err == "" and all(w.startswith("ja") for w in out.out.splitlines())


def test_evaluate_prints_each_splits_loss_and_predict_points_to_sample(names_mlp, capsys):
    path, metrics = names_mlp
    assert main(["evaluate", "--weights", str(path)]) == 0
    out = capsys.readouterr().out
    val = re.search(r"^val loss +(\S+) nats per character \(22655 characters\)$", out, re.M)
    assert val and abs(float(val.group(1)) - metrics["val_loss"]) < 1e-4 and "test loss" in out
    assert main(["predict", "--weights", str(path)]) == 2
    assert f"is a text model, which draws characters rather than classifies images: use sample --weights {path}" \
        in capsys.readouterr().err


def test_running_text_samples_are_separated_by_an_empty_line(tmp_path, capsys):
    assert main(["train", "--data", "kieu", "--model", "rnn", "--steps", "20", "--hidden", "16", "--quiet",
                 "--save", str(tmp_path / "k.npz")]) == 0
    capsys.readouterr()
    assert main(["sample", "--weights", str(tmp_path / "k.npz"), "--num", "3", "--lines", "2", "--seed", "0"]) == 0
    samples = capsys.readouterr().out.rstrip("\n").split("\n\n")
    assert len(samples) == 3 and all(s.count("\n") == 1 for s in samples)


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "names", "--model", "cnn"], "--model cnn trains on MNIST images; on text choose one of "
                                                     "bigram, mlp, rnn"),
    (["train", "--model", "rnn"], "--model rnn is a text model: give it text, e.g. --data names"),
    (["train", "--model", "bigram", "--data", "mnist"], "--model bigram is a text model"),
    (["train", "--data", "names", "--dropout", "0.2"], "--dropout does not apply to text models (it is for MNIST)"),
    (["train", "--data", "names", "--epochs", "2"], "--epochs does not apply to text models"),
    (["train", "--context", "3"], "--context applies only to text (--data names, ...), not to mnist"),
    (["train", "--data", "names", "--model", "bigram", "--hidden", "10"],
     "--hidden does not apply to the bigram model"),
    (["train", "--data", "names", "--model", "mlp", "--hidden", "10,10"], "--hidden takes one width for a text model"),
    (["train", "--data", "names", "--model", "rnn", "--context", "3"], "--context does not apply to the rnn model"),
])
def test_a_model_or_option_that_does_not_fit_the_data_is_one_error_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("tinygrad-edu train: error: ")


def test_a_text_file_is_data_and_its_problems_are_named(tmp_path, capsys):
    words = tmp_path / "pets.txt"
    words.write_text("\n".join(["rex", "tom", "kitty", "fido", "max", "bella", "luna", "milo", "coco", "oscar",
                                "ruby", "leo"] * 3), encoding="utf-8")
    assert main(["train", "--data", str(words), "--model", "bigram", "--steps", "3", "--quiet"]) == 0
    assert "val loss" in capsys.readouterr().out
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café\n".encode("latin-1"))
    assert main(["train", "--data", str(latin1), "--quiet"]) == 2
    assert "latin1.txt: is not UTF-8 text" in capsys.readouterr().err


def test_sample_refuses_what_it_cannot_use(names_mlp, tmp_path, capsys):
    path, _ = names_mlp
    assert main(["sample", "--weights", str(path), "--lines", "2"]) == 2
    assert "--lines is for a model of running text" in capsys.readouterr().err
    assert main(["sample", "--weights", str(path), "--prompt", "Zoe"]) == 2
    assert "--prompt: the character 'Z' (U+005A) at position 0" in capsys.readouterr().err
    assert main(["sample", "--weights", str(tmp_path / "none.npz")]) == 2
    assert "none.npz" in capsys.readouterr().err
    mnist = tmp_path / "mnist.npz"
    nn.save(nn.Sequential(nn.Linear(784, 10)), mnist)
    assert main(["sample", "--weights", str(mnist)]) == 2
    assert "holds a sequential model, not a text model: sample needs one of bigram, char-mlp, char-rnn" \
        in capsys.readouterr().err


def test_ctrl_c_during_text_training_saves_the_weights_so_far(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYGRAD_EDU_")}
    env.update(PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "tinygrad_edu", "train", "--data", "names", "--model", "mlp",
                             "--steps", "1000000", "--log-every", "1", "--save", "W.npz"], cwd=tmp_path, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=take_sigint)
    try:
        for line in proc.stderr:
            if "step 3/" in line:
                proc.send_signal(signal.SIGINT)
                break
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err
    assert re.search(r"interrupted after step \d+ of 1000000; the weights so far are in W\.interrupted\.npz", err)
    model = nn.load(tmp_path / "W.interrupted.npz")
    assert model.kind == "char-mlp" and sorted(os.listdir(tmp_path)) == ["W.interrupted.npz"]


def test_train_profile_works_for_text_models_too(capsys):
    assert main(["train", "--data", "names", "--model", "mlp", "--steps", "4", "--batch-size", "32", "--quiet",
                 "--profile", "2"]) == 0
    out = capsys.readouterr().out
    assert "profile of 2 steps (mlp on names, batches of 32):" in out and "\nAdam.step " in out
    assert re.search(r"^train_step +2 ", out, re.M)
