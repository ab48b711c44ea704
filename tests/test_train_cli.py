"""The `train`, `predict` and `evaluate` commands and the training loop: options, outputs, files, errors."""
import gzip
import io
import json
import re
import runpy
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu import checkpoint, manual, nn, training
from tinygrad_edu.cli import build_parser, main
from tinygrad_edu.cli import train as train_command
from tinygrad_edu.cli.evaluate import confusion_matrix
from tinygrad_edu.cli.predict import digit_art
from tinygrad_edu.cli.train import resolve
from tinygrad_edu.datasets import pixel_stats, to_float
from tinygrad_edu.tensor import Tensor
from tinygrad_edu.training import ConfigError, TrainConfig

NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")




# --- a tiny MNIST folder ------------------------------------------------------------------------------------


def idx(a: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: 00 00 08 ndim, big-endian dims, the bytes."""
    return bytes([0, 0, 8, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def synthetic_digits(n: int, seed: int):
    """n 28×28 images, label k drawn as a bright 6×6 square at a place of its own over faint noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.uint8)
    X = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(y):
        r, c = 2 + 12 * (k // 5), 1 + 5 * (k % 5)
        X[i, r:r + 6, c:c + 6] = 255
    return X, y


@pytest.fixture(scope="module")
def digits():
    return synthetic_digits(300, 0), synthetic_digits(100, 1)


@pytest.fixture
def data_dir(tmp_path, digits):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name, a in zip(NAMES, (*digits[0], *digits[1])):
        (folder / f"{name}.gz").write_bytes(gzip.compress(idx(a), mtime=0))
    return folder


def train_args(data_dir, *more):
    return ["train", "--data", str(data_dir), "--no-download", "--quiet", *more]


# --- options ------------------------------------------------------------------------------------------------


def parse(*argv):
    return build_parser().parse_args(["train", *argv])


def test_defaults_are_the_tutorials():
    config = resolve(parse())
    assert config == TrainConfig()
    assert (config.model, config.hidden, config.init, config.lr, config.batch_size, config.iterations,
            config.epochs, config.backprop, config.seed, config.dtype) == (
        "tutorial", (10,), "tutorial", 0.1, None, 500, None, "autograd", 0, "float32")


def test_options_resolve():
    config = resolve(parse("--hidden", "32", "--init", "he", "--lr", "0.05", "--batch-size", "64", "--epochs", "5",
                           "--seed", "3", "--dtype", "float64", "--backprop", "manual"))
    assert (config.hidden, config.init, config.lr, config.batch_size, config.iterations, config.epochs,
            config.seed, config.dtype, config.backprop) == ((32,), "he", 0.05, 64, None, 5, 3, "float64", "manual")
    assert resolve(parse("--batch-size", "full")).batch_size is None
    assert resolve(parse("--iterations", "7")).iterations == 7


@pytest.mark.parametrize("argv, message", [
    (["--iterations", "5", "--epochs", "2"], "argument --epochs: not allowed with argument --iterations"),
    (["--hidden", "0"], "argument --hidden: expected widths ≥ 1"),
    (["--hidden", "10,x"], "argument --hidden: expected widths ≥ 1"),
    (["--lr", "-1"], "argument --lr: expected a positive number, got '-1'"),
    (["--lr", "nan"], "argument --lr: expected a positive number, got 'nan'"),
    (["--batch-size", "0"], "argument --batch-size: expected an integer ≥ 1, got '0'"),
    (["--seed", "-2"], "argument --seed: expected an integer ≥ 0, got '-2'"),
    (["--init", "kaiming"], "argument --init: invalid choice: 'kaiming'"),
    (["--momentum", "-1"], "argument --momentum: expected a number ≥ 0, got '-1'"),
    (["--weight-decay", "x"], "argument --weight-decay: expected a number ≥ 0, got 'x'"),
    (["--optimizer", "rmsprop"], "argument --optimizer: invalid choice: 'rmsprop'"),
    (["--schedule", "linear"], "argument --schedule: invalid choice: 'linear'"),
    (["--dropout", "1"], "argument --dropout: expected a probability in [0, 1), got '1'"),
])
def test_bad_options_exit_2_with_the_reason(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", *argv])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_two_hidden_layers_in_the_tutorial_model_is_a_clear_error(data_dir, capsys):
    assert main(train_args(data_dir, "--hidden", "256,128")) == 2
    err = capsys.readouterr().err
    assert "error: the tutorial model has exactly one hidden layer (784-H-10); got --hidden 256,128" in err


def test_mlp_defaults_and_options_resolve(capsys):
    assert resolve(parse("--model", "mlp")) == TrainConfig(
        model="mlp", hidden=(256,), init="torch", lr=1e-3, batch_size=128, iterations=None, epochs=15,
        optimizer="adam", schedule="cosine", momentum=0.0, weight_decay=None, dropout=0.0, normalize="standard",
        validation=0, seed=0, dtype="float32")
    config = resolve(parse("--model", "mlp", "--iterations", "100", "--optimizer", "sgd", "--momentum", "0.9",
                           "--weight-decay", "1e-4", "--schedule", "step", "--hidden", "64,32", "--dropout", "0.2"))
    assert (config.iterations, config.epochs, config.optimizer, config.momentum, config.weight_decay,
            config.schedule, config.hidden, config.dropout) == (100, None, "sgd", 0.9, 1e-4, "step", (64, 32), 0.2)
    assert train_command.OPTIMIZERS == tuple(training.OPTIMIZERS) and train_command.SCHEDULES == training.SCHEDULES
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: sgd for tutorial, adam for mlp, adam for cnn)" in text
    assert "(default: 15 for mlp, 5 for cnn)" in text
    assert "(default: none for tutorial, cosine for mlp, cosine for cnn)" in text


@pytest.mark.parametrize("argv, message", [
    (["--optimizer", "adam"], "error: --optimizer adam needs --model mlp"),
    (["--schedule", "cosine"], "error: --schedule cosine needs --model mlp"),
    (["--momentum", "0.9"], "error: --momentum 0.9 needs --model mlp"),
    (["--weight-decay", "0.1"], "error: --weight-decay 0.1 needs --model mlp"),
    (["--dropout", "0.2"], "error: --dropout 0.2 needs --model mlp"),
    (["--model", "mlp", "--backprop", "manual"], "error: --backprop manual needs --model tutorial"),
    (["--model", "mlp", "--momentum", "0.9"], "error: momentum is for --optimizer sgd, not adam"),
])
def test_options_of_the_other_model_exit_2_with_the_reason(data_dir, capsys, argv, message):
    assert main(train_args(data_dir, *argv)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_config_checks():
    with pytest.raises(ConfigError, match="either iterations or epochs"):
        TrainConfig(iterations=5, epochs=5)
    with pytest.raises(ConfigError, match="unknown model 'resnet'"):
        TrainConfig(model="resnet")
    with pytest.raises(ConfigError, match="batch_size must be an integer ≥ 1, got 0"):
        TrainConfig(batch_size=0)


# --- the loop -----------------------------------------------------------------------------------------------


def test_history_entries_full_batch(digits):
    result = training.train(TrainConfig(iterations=25, log_every=10), digits)
    assert [e["step"] for e in result.history] == [1, 10, 20, 25]
    assert all("test_accuracy" in e for e in result.history)        # every full-batch step ends an epoch
    assert result.history[-1]["test_accuracy"] == result.test_accuracy
    assert result.iterations == 25 and result.epochs == 25
    # In full batch an entry holds its own step's numbers: step 1's are those of the initial weights.
    (X, y), _ = digits
    W1, b1, W2, b2 = manual.init_params(0)
    Z2 = manual.forward_prop(W1, b1, W2, b2, to_float(X, layout="columns"))[2]
    assert result.history[0]["loss"] == pytest.approx(training.cross_entropy(Z2, y), rel=1e-6)
    assert result.history[0]["train_accuracy"] == np.mean(Z2.argmax(axis=0) == y)


def test_history_entries_minibatches(digits):
    # 300 images in batches of 128: 3 steps an epoch (128, 128, 44), 2 epochs.
    result = training.train(TrainConfig(batch_size=128, iterations=None, epochs=2, log_every=2), digits)
    steps = [(e["step"], e["epoch"], "test_accuracy" in e) for e in result.history]
    assert steps == [(1, 1, False), (2, 1, False), (3, 1, True), (4, 2, False), (6, 2, True)]
    assert result.iterations == 6 and result.epochs == 2


def test_window_averages_are_the_steps_own_numbers(digits, monkeypatch):
    """An entry's loss averages the losses of its steps' forward passes, weighted by batch size."""
    losses = []
    step = training.TutorialNet.train_step

    def spy(self, X, Y):
        loss, predictions = step(self, X, Y)
        losses.append((loss, len(Y), int(np.sum(predictions == Y))))
        return loss, predictions

    monkeypatch.setattr(training.TutorialNet, "train_step", spy)
    result = training.train(TrainConfig(batch_size=128, iterations=None, epochs=1, log_every=100), digits)
    assert [e["step"] for e in result.history] == [1, 3]
    (l1, n1, c1), *rest = losses
    assert result.history[0]["loss"] == pytest.approx(l1) and result.history[0]["train_accuracy"] == c1 / n1
    assert result.history[1]["loss"] == pytest.approx(sum(l * n for l, n, _ in rest) / sum(n for _, n, _ in rest))
    assert result.history[1]["train_accuracy"] == sum(c for *_, c in rest) / sum(n for _, n, _ in rest)


def test_autograd_equals_the_tutorial_by_hand(digits):
    """Full batch, float32: the autograd loop ends with the weights of manual.gradient_descent (the tutorial)."""
    (X, y), _ = digits
    result = training.train(TrainConfig(iterations=30), digits)
    expected = manual.gradient_descent(to_float(X, layout="columns"), y, 0.1, 30, seed=0)
    for got, want in zip(result.model.arrays, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch_size", [None, 64])
def test_manual_and_autograd_agree_in_float64(digits, batch_size):
    length = {"iterations": 40} if batch_size is None else {"iterations": None, "epochs": 3}
    runs = [training.train(TrainConfig(dtype="float64", batch_size=batch_size, backprop=b, seed=4, **length), digits)
            for b in ("autograd", "manual")]
    auto, by_hand = runs
    assert auto.train_accuracy == by_hand.train_accuracy and auto.test_accuracy == by_hand.test_accuracy
    assert auto.final_loss == pytest.approx(by_hand.final_loss, rel=1e-12)
    for a, b in zip(auto.model.arrays, by_hand.model.arrays):
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("init", ["tutorial", "he", "xavier", "torch"])
def test_each_init_learns_the_synthetic_digits(digits, init):
    result = training.train(TrainConfig(init=init, batch_size=32, iterations=None, epochs=10, lr=0.1), digits)
    assert result.model.init == init
    assert result.test_accuracy >= 0.9


def test_divergence_is_an_error(digits, recwarn):
    with pytest.raises(training.TrainingDiverged, match="try a smaller --lr than 1e\\+30"):
        training.train(TrainConfig(lr=1e30, iterations=20), digits)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]   # the error says it all


def test_same_seed_same_run(digits):
    a, b = (training.train(TrainConfig(batch_size=50, iterations=None, epochs=2, seed=9), digits) for _ in range(2))
    assert [{k: v for k, v in e.items() if k != "seconds"} for e in a.history] == \
           [{k: v for k, v in e.items() if k != "seconds"} for e in b.history]
    for x, y in zip(a.model.arrays, b.model.arrays):
        np.testing.assert_array_equal(x, y)


# --- progress -----------------------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_on_a_terminal_redraws_in_place():
    out = Terminal()
    p = training.Progress(out, min_interval=0.0)
    p.update("step 1")
    p.update("step 2", log=True)
    p.update("epoch 1 done", keep=True)
    p.update("step 3")
    p.close()
    assert out.getvalue() == "\rstep 1\x1b[K\rstep 2\x1b[K\repoch 1 done\x1b[K\n\rstep 3\x1b[K\n"


def test_progress_to_a_file_prints_only_log_lines():
    out = io.StringIO()
    p = training.Progress(out)
    p.update("step 1")
    p.update("step 2", log=True)
    p.close()
    assert out.getvalue() == "step 2\n"


def test_train_progress_lines_and_quiet(data_dir, capsys):
    assert main(["train", "--data", str(data_dir), "--no-download", "--iterations", "20", "--log-every", "10"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert re.fullmatch(rf"mnist \({re.escape(str(data_dir))}\): 300 training and 100 test images \(\d+\.\d s\)",
                        err[0])
    lines = [line for line in err if line.startswith("iteration")]
    assert [line.split(" | ")[0] for line in lines] == ["iteration 1/20", "iteration 10/20", "iteration 20/20"]
    assert all(re.search(r"\| loss \d+\.\d{4} \| train acc \d\.\d{4} \|.* \d+\.\d s$", line) for line in lines)
    assert main(train_args(data_dir, "--iterations", "3")) == 0
    assert capsys.readouterr().err == ""


# --- train, then predict and evaluate from the file alone -----------------------------------------------


METRIC_KEYS = {"train_accuracy", "test_accuracy", "final_loss", "iterations", "epochs", "seconds", "cpu_count",
               "config", "weights", "warning", "history"}


def test_train_writes_metrics_and_weights_that_predict_and_evaluate_read(data_dir, tmp_path, capsys):
    weights, metrics = tmp_path / "out" / "w.npz", tmp_path / "m.json"
    assert main(train_args(data_dir, "--init", "he", "--batch-size", "32", "--epochs", "3", "--hidden", "16",
                           "--save", str(weights), "--metrics-out", str(metrics))) == 0
    out = capsys.readouterr().out
    m = json.loads(metrics.read_text())
    assert set(m) == METRIC_KEYS
    assert m["weights"] == str(weights) and m["iterations"] == 30 and m["epochs"] == 3
    assert m["config"] == {"model": "tutorial", "hidden": [16], "channels": None, "init": "he", "lr": 0.1,
                           "batch_size": 32,
                           "iterations": None, "epochs": 3, "backprop": "autograd", "optimizer": "sgd",
                           "momentum": 0.0, "weight_decay": None, "schedule": "none", "dropout": 0.0,
                           "normalize": "none", "validation": 0, "seed": 0, "dtype": "float32", "dataset": "mnist",
                           "log_every": None, "data": str(data_dir)}
    assert all({"step", "epoch", "loss", "train_accuracy", "seconds"} <= set(e) for e in m["history"])
    assert f"test accuracy   {m['test_accuracy']:.4f}" in out and f"weights         {weights}" in out

    arrays, arch = checkpoint.load(weights)
    assert {k: (a.shape, a.dtype) for k, a in arrays.items()} == {
        "W1": ((16, 784), np.float32), "b1": ((16, 1), np.float32), "W2": ((10, 16), np.float32),
        "b2": ((10, 1), np.float32)}
    assert arch["model"] == "tutorial" and arch["sizes"] == [784, 16, 10] and arch["init"] == "he"
    assert arch["dataset"] == "mnist" and arch["config"] == m["config"]

    assert main(["evaluate", "--weights", str(weights), "--data", str(data_dir), "--no-download"]) == 0
    out = capsys.readouterr().out
    right = round(m["test_accuracy"] * 100)
    assert f"mnist test set: accuracy {m['test_accuracy']:.4f} ({right} of 100)" in out
    rows = [line for line in out.splitlines() if re.match(r"  \d  ", line)]
    matrix = np.array([[int(c) for c in row.split()[1:11]] for row in rows])
    assert matrix.sum() == 100 and matrix.trace() == right

    assert main(["predict", "--weights", str(weights), "--index", "7", "--data", str(data_dir), "--no-download"]) == 0
    out = capsys.readouterr().out.splitlines()
    (X_test, y_test) = synthetic_digits(100, 1)
    assert out[0] == "mnist test image 7"
    assert out[1:31] == digit_art(X_test[7])
    assert out[31] == f"true label  {y_test[7]}"
    probabilities = [float(line.split()[1]) for line in out[33:43]]
    assert sum(probabilities) == pytest.approx(1, abs=1e-3)
    assert out[32].startswith(f"prediction  {int(np.argmax(probabilities))} (")


def test_digit_art_and_confusion_matrix():
    image = np.zeros((28, 28), np.uint8)
    image[0, 0], image[0, 1], image[27, 26], image[27, 27] = 255, 128, 25, 26   # p·10 // 256: 9, 5, 0, 1
    art = digit_art(image)
    assert len(art) == 30 and art[0] == art[-1] == "+" + "-" * 56 + "+"
    assert art[1] == "|@@++" + " " * 52 + "|" and art[28] == "|" + " " * 54 + "..|"
    C = confusion_matrix(np.array([0, 0, 1, 9]), np.array([0, 1, 1, 0]))
    assert C.shape == (10, 10) and C[0, 0] == C[0, 1] == C[1, 1] == C[9, 0] == 1 and C.sum() == 4


def test_outputs_are_not_overwritten_without_force(data_dir, tmp_path, capsys):
    weights = tmp_path / "w.npz"
    weights.write_bytes(b"precious")
    assert main(train_args(data_dir, "--iterations", "2", "--save", str(weights))) == 2
    assert f"error: --save {weights} exists; pass --force to overwrite it" in capsys.readouterr().err
    assert weights.read_bytes() == b"precious"
    assert main(train_args(data_dir, "--iterations", "2", "--save", str(weights), "--force")) == 0
    assert checkpoint.load(weights)[1]["model"] == "tutorial"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist", "w.npz"]   # no temporary file left


def test_manual_and_autograd_same_accuracy_through_the_command(data_dir, tmp_path):
    results = []
    for backprop in ("autograd", "manual"):
        out = tmp_path / f"{backprop}.json"
        assert main(train_args(data_dir, "--iterations", "30", "--dtype", "float64", "--backprop", backprop,
                               "--metrics-out", str(out))) == 0
        results.append(json.loads(out.read_text()))
    assert results[0]["test_accuracy"] == results[1]["test_accuracy"]
    assert results[0]["train_accuracy"] == results[1]["train_accuracy"]


def test_train_mlp_then_predict_and_evaluate_read_its_weights(data_dir, tmp_path, capsys):
    weights, metrics = tmp_path / "mlp.npz", tmp_path / "m.json"
    assert main(train_args(data_dir, "--model", "mlp", "--epochs", "1", "--hidden", "16", "--save", str(weights),
                           "--metrics-out", str(metrics))) == 0
    m = json.loads(metrics.read_text())
    assert set(m) == METRIC_KEYS and m["iterations"] == 3 and m["epochs"] == 1     # 300 images in batches of 128
    assert m["config"] == {"model": "mlp", "hidden": [16], "channels": None, "init": "torch", "lr": 0.001,
                           "batch_size": 128,
                           "iterations": None, "epochs": 1, "backprop": "autograd", "optimizer": "adam",
                           "momentum": 0.0, "weight_decay": None, "schedule": "cosine", "dropout": 0.0,
                           "normalize": "standard", "validation": 0, "seed": 0, "dtype": "float32",
                           "dataset": "mnist", "log_every": None, "data": str(data_dir)}
    assert [e["step"] for e in m["history"]] == [1, 3] and m["history"][-1]["test_accuracy"] == m["test_accuracy"]

    arrays, arch = checkpoint.load(weights)
    assert {k: a.shape for k, a in arrays.items() if not k.startswith("optim/")} == {
        "layers.0.weight": (16, 784), "layers.0.bias": (16,), "layers.2.weight": (10, 16), "layers.2.bias": (10,)}
    assert arrays["optim/state.0.exp_avg"].shape == (16, 784) and arrays["optim/state.0.step"] == 3
    meta = json.loads(str(arrays["optim/meta"]))
    assert meta["optimizer"] == "Adam" and meta["scheduler"]["type"] == "CosineAnnealingLR"
    assert meta["scheduler"]["last_epoch"] == meta["scheduler"]["T_max"] == 3
    assert arch["model"] == "mlp" and arch["sizes"] == [784, 16, 10] and arch["config"] == m["config"]

    capsys.readouterr()
    assert main(["evaluate", "--weights", str(weights), "--data", str(data_dir), "--no-download"]) == 0
    out = capsys.readouterr().out
    mean, std = pixel_stats(synthetic_digits(300, 0)[0])                  # the training images' pixels
    assert out.startswith(f"{weights}: mlp 784-16-10, init torch, float32, inputs (p/255 − {mean:.4f})/{std:.4f}\n")
    assert arch["inputs"] == {"mean": mean, "std": std}
    assert f"mnist test set: accuracy {m['test_accuracy']:.4f} ({round(m['test_accuracy'] * 100)} of 100)" in out
    assert main(["predict", "--weights", str(weights), "--index", "7", "--data", str(data_dir), "--no-download"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[31] == f"true label  {synthetic_digits(100, 1)[1][7]}"
    probabilities = [float(line.split()[1]) for line in out[33:43]]
    assert sum(probabilities) == pytest.approx(1, abs=1e-3)
    assert out[32].startswith(f"prediction  {int(np.argmax(probabilities))} (")


def test_validation_reports_held_out_images_in_place_of_the_test_set(data_dir, tmp_path, capsys):
    metrics = tmp_path / "m.json"
    assert main(["train", "--data", str(data_dir), "--no-download", "--model", "mlp", "--epochs", "2", "--hidden",
                 "16", "--validation", "100", "--metrics-out", str(metrics)]) == 0
    captured = capsys.readouterr()
    m = json.loads(metrics.read_text())
    assert set(m) == METRIC_KEYS - {"test_accuracy"} | {"validation_accuracy"} and m["config"]["validation"] == 100
    assert m["iterations"] == 4                                             # 200 images in batches of 128
    assert f"mnist ({data_dir}): 200 training and 100 validation images (the last 100 training images; the test set " \
           "is not used)" in captured.err
    assert " | validation acc " in captured.err and "test acc" not in captured.err
    assert f"validation accuracy  {m['validation_accuracy']:.4f}\nfinal loss           " in captured.out
    assert "test accuracy" not in captured.out
    assert [e.get("validation_accuracy") for e in m["history"]][-1] == m["validation_accuracy"]


def test_validation_too_large_and_normalize_choices(data_dir, capsys):
    assert main(train_args(data_dir, "--validation", "300")) == 2
    assert "train: error: --validation 300 leaves no images to train on: the training set has 300" in \
        capsys.readouterr().err
    assert resolve(parse("--model", "mlp", "--normalize", "none")).normalize == "none"
    assert resolve(parse("--normalize", "standard")).normalize == "standard"      # the tutorial model can take it
    assert resolve(parse()).normalize == "none"
    with pytest.raises(SystemExit):
        parse("--normalize", "minmax")
    assert "argument --normalize: invalid choice: 'minmax'" in capsys.readouterr().err


def test_plot_draws_a_validation_run_from_its_held_out_images(data_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    weights, metrics = tmp_path / "w.npz", tmp_path / "m.json"
    assert main(train_args(data_dir, "--model", "mlp", "--epochs", "1", "--hidden", "16", "--validation", "50",
                           "--save", str(weights), "--metrics-out", str(metrics))) == 0

    m = json.loads(metrics.read_text())
    X, y = training.evaluated_set(m)                                       # what `plot metrics.json` draws from
    np.testing.assert_array_equal(X, synthetic_digits(300, 0)[0][-50:])
    np.testing.assert_array_equal(y, synthetic_digits(300, 0)[1][-50:])
    assert main(["plot", str(metrics), "--out", str(tmp_path / "pics")]) == 0
    assert sorted(p.name for p in (tmp_path / "pics").iterdir()) == ["confusion.png", "curves.png",
                                                                     "misclassified.png", "weights.png"]


def test_predict_evaluate_and_plot_scale_images_as_the_weights_were_trained(data_dir, tmp_path, capsys):
    """A standardised model held out 100 images: evaluate --split validation reproduces its validation accuracy,
    and predict and plot feed it (p/255 − mean)/std, not p/255 (which gives other probabilities)."""
    weights, metrics = tmp_path / "w.npz", tmp_path / "m.json"
    assert main(train_args(data_dir, "--model", "mlp", "--epochs", "3", "--hidden", "16", "--validation", "100",
                           "--save", str(weights), "--metrics-out", str(metrics))) == 0
    m = json.loads(metrics.read_text())
    capsys.readouterr()
    evaluate = ["evaluate", "--weights", str(weights), "--data", str(data_dir), "--no-download", "--split"]
    assert main([*evaluate, "validation"]) == 0
    assert f"mnist validation set: accuracy {m['validation_accuracy']:.4f} " \
           f"({round(m['validation_accuracy'] * 100)} of 100)" in capsys.readouterr().out
    assert main([*evaluate, "train"]) == 0
    assert f"mnist train set: accuracy {m['train_accuracy']:.4f} ({round(m['train_accuracy'] * 200)} of 200)" in \
        capsys.readouterr().out

    model, _ = training.load_model(weights)
    X, y = synthetic_digits(300, 0)
    scaled = model.probabilities(training.as_input(X[-100:], model))
    unscaled = model.probabilities(to_float(X[-100:]))
    i = int(np.argmax(np.abs(scaled - unscaled).max(axis=1)))           # the image where scaling matters most
    assert np.abs(scaled[i] - unscaled[i]).max() > 0.01
    assert main(["predict", "--weights", str(weights), "--index", str(i), "--split", "validation", "--data",
                 str(data_dir), "--no-download"]) == 0
    printed = [float(line.split()[1]) for line in capsys.readouterr().out.splitlines()[33:43]]
    np.testing.assert_allclose(printed, scaled[i], atol=5e-5)

    from tinygrad_edu.viz import plots
    np.testing.assert_array_equal(plots.predict(training.load_model(weights)[0], X[-100:]), scaled.argmax(axis=1))
    assert (scaled.argmax(axis=1) != unscaled.argmax(axis=1)).any()


def test_split_validation_needs_weights_that_held_images_out(data_dir, tmp_path, capsys):
    weights = tmp_path / "w.npz"
    assert main(train_args(data_dir, "--iterations", "2", "--save", str(weights))) == 0
    capsys.readouterr()
    assert main(["evaluate", "--weights", str(weights), "--data", str(data_dir), "--no-download", "--split",
                 "validation"]) == 2
    assert f"evaluate: error: {weights}: its model was trained without --validation, so it has no validation " \
           "images; use --split test or train" in capsys.readouterr().err
    arrays, architecture = checkpoint.load(weights)
    architecture["config"]["validation"] = 400
    checkpoint.save(tmp_path / "more.npz", arrays, architecture)
    assert main(["predict", "--weights", str(tmp_path / "more.npz"), "--data", str(data_dir), "--no-download"]) == 2
    assert f"{tmp_path / 'more.npz'} held out the last 400 training images, but the mnist training set here has 300" \
        in capsys.readouterr().err


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mnist_mlp.py"


def test_the_example_script_prints_the_numbers_of_train_model_mlp(data_dir, tmp_path, monkeypatch, capsys):
    """examples/mnist_mlp.py writes the loop out; on the same data and seed it ends where `train --model mlp` does."""
    metrics = tmp_path / "m.json"
    assert main(train_args(data_dir, "--model", "mlp", "--epochs", "2", "--seed", "1", "--metrics-out",
                           str(metrics))) == 0
    m = json.loads(metrics.read_text())
    capsys.readouterr()
    monkeypatch.setenv("TINYGRAD_EDU_DATA", str(data_dir))
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE), "--epochs", "2", "--seed", "1"])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    epoch_ends = [e for e in m["history"] if e["step"] % 3 == 0]          # 3 steps an epoch
    assert lines[1].startswith("epoch  2/2  loss ")                        # its loss averages the whole epoch, as
    assert f"loss {epoch_ends[1]['loss']:.4f}  train acc {epoch_ends[1]['train_accuracy']:.4f}" in lines[1]   # here
    assert [line.split("test acc ")[1].split()[0] for line in lines[:2]] == \
        [f"{e['test_accuracy']:.4f}" for e in epoch_ends]
    assert lines[2].startswith(f"train accuracy {m['train_accuracy']:.4f}  test accuracy {m['test_accuracy']:.4f}  "
                               f"final loss {m['final_loss']:.4f}")


def test_the_pytorch_example_trains_the_same_recipe(data_dir, monkeypatch, capsys):
    """examples/mnist_mlp_torch.py: torch's own RNG, so only the form and a learned model are checked."""
    pytest.importorskip("torch")
    monkeypatch.setenv("TINYGRAD_EDU_DATA", str(data_dir))
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE.with_name("mnist_mlp_torch.py")), "--epochs", "3", "--seed", "1"])
    runpy.run_path(str(EXAMPLE.with_name("mnist_mlp_torch.py")), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[:3]] == [["epoch", "1/3"], ["epoch", "2/3"], ["epoch", "3/3"]]
    final = re.fullmatch(r"train accuracy (\S+)  test accuracy (\S+)  torch \S+  \S+s in all", lines[3])
    assert final and float(final[1]) >= 0.9 and float(final[2]) >= 0.9     # the synthetic digits are easy


# --- errors: a clear line and exit code 2, never a traceback -----------------------------------------------


def test_train_says_which_copy_it_read(data_dir, tmp_path, monkeypatch, capsys):
    """The first line names the copy: bundled with the package unless $TINYGRAD_EDU_DATA holds one (read from
    the files, not the session's copy)."""
    monkeypatch.delenv("TINYGRAD_EDU_DATA", raising=False)
    monkeypatch.delenv("TINYGRAD_EDU_NO_BUNDLED", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert main(["train", "--iterations", "1", "--no-download"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert re.fullmatch(r"mnist \(bundled with tinygrad_edu\): 60000 training and 10000 test images \(\d+\.\d s\)",
                        first)
    monkeypatch.setenv("TINYGRAD_EDU_DATA", str(data_dir))
    assert main(["train", "--iterations", "1", "--no-download"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith(f"mnist ({data_dir}, from $TINYGRAD_EDU_DATA): 300 training and 100 test images (")
    assert not (tmp_path / "xdg").exists()                  # the bundled copy is read in place, never cached


def test_data_must_be_an_existing_folder(tmp_path, capsys):
    missing = tmp_path / "not-there"
    assert main(["train", "--data", str(missing)]) == 2         # downloading is allowed, yet nothing is fetched
    err = capsys.readouterr().err
    assert err.startswith(f"tinygrad-edu train: error: MNIST: {missing}: no such folder. --data DIR names the folder")
    assert "it must exist (it is never created)" in err and not missing.exists()


def test_missing_data_is_the_loaders_message(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path), "--no-download", "--metrics-out", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinygrad-edu train: error: MNIST not found (--no-download)")
    assert "train-images-idx3-ubyte.gz" in err and "Traceback" not in err
    assert err.endswith("pass --data <folder>, or set TINYGRAD_EDU_DATA to that folder (or to a parent holding "
                        "mnist/), or leave out --no-download.\n")
    assert "root=" not in err and "download=" not in err   # the command line's words, not Python's
    assert not (tmp_path / "m.json").exists()


def write_npz(path, arrays, architecture):
    return checkpoint.save(path, arrays, architecture)


def good_arrays(dtype=np.float32):
    return {"W1": np.zeros((10, 784), dtype), "b1": np.zeros((10, 1), dtype), "W2": np.zeros((10, 10), dtype),
            "b2": np.zeros((10, 1), dtype)}


ARCH = {"model": "tutorial", "sizes": [784, 10, 10], "dtype": "float32", "init": "tutorial"}


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "no such weights file"),
    (lambda p: p.write_bytes(b"not a zip at all"), "not an .npz weights file"),
    (lambda p: np.savez(p, W1=np.zeros(3)), "has no '__architecture__' entry"),
    (lambda p: write_npz(p, good_arrays(), {**ARCH, "model": "resnet"}), "unknown model 'resnet'"),
    (lambda p: write_npz(p, good_arrays(), {**ARCH, "sizes": [784, 10]}), "sizes must be [784, H, 10]"),
    (lambda p: write_npz(p, good_arrays(), {**ARCH, "dtype": "int8"}), "dtype must be float32 or float64"),
    (lambda p: write_npz(p, {**good_arrays(), "W2": np.zeros((10, 9), np.float32)}, ARCH),
     "W2 is float32 (10, 9), the architecture says float32 (10, 10)"),
    (lambda p: write_npz(p, good_arrays(np.float64), ARCH), "W1 is float64 (10, 784), the architecture says float32"),
    (lambda p: write_npz(p, {k: v for k, v in good_arrays().items() if k != "b2"}, ARCH), "missing ['b2']"),
])
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_bad_weights_files_exit_2_with_one_line(tmp_path, capsys, command, make, message):
    path = tmp_path / "w.npz"
    make(path)
    assert main([command, "--weights", str(path), "--data", str(tmp_path), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tinygrad-edu {command}: error: {path}") and message in err
    assert err.count("\n") == 1


def test_predict_index_out_of_range(data_dir, tmp_path, capsys):
    weights = tmp_path / "w.npz"
    write_npz(weights, good_arrays(), ARCH)
    assert main(["predict", "--weights", str(weights), "--index", "100", "--data", str(data_dir), "--no-download"]) == 2
    assert "error: --index 100 is out of range: the test set has 100 images (0..99)" in capsys.readouterr().err


# --- real MNIST ---------------------------------------------------------------------------------------------


def test_short_real_run_then_predict_and_evaluate(mnist, tmp_path, capsys):
    weights, metrics = tmp_path / "w.npz", tmp_path / "m.json"
    assert main(["train", "--no-download", "--quiet", "--batch-size", "128", "--iterations", "200",
                 "--init", "he", "--save", str(weights), "--metrics-out", str(metrics)]) == 0
    m = json.loads(metrics.read_text())
    assert set(m) == METRIC_KEYS and m["iterations"] == 200
    assert m["test_accuracy"] > 0.8          # 200 steps of 128 images with He's init: 0.875
    capsys.readouterr()
    assert main(["evaluate", "--weights", str(weights), "--no-download"]) == 0
    assert f"accuracy {m['test_accuracy']:.4f} ({round(m['test_accuracy'] * 10000)} of 10000)" in \
        capsys.readouterr().out
    assert main(["predict", "--weights", str(weights), "--index", "0", "--no-download"]) == 0
    assert "true label  7" in capsys.readouterr().out      # the first test image is a 7


def test_short_real_mlp_run_then_evaluate(mnist, tmp_path, capsys):
    """One epoch of a 784-32-10 MLP, the rest of the defaults (standardised inputs, Adam, cosine, batches of 128):
    0.9167 for seed 0."""
    weights, metrics = tmp_path / "w.npz", tmp_path / "m.json"
    assert main(["train", "--model", "mlp", "--epochs", "1", "--hidden", "32", "--no-download", "--quiet",
                 "--save", str(weights), "--metrics-out", str(metrics)]) == 0
    m = json.loads(metrics.read_text())
    assert m["iterations"] == 469 and m["test_accuracy"] >= 0.89
    capsys.readouterr()
    assert main(["evaluate", "--weights", str(weights), "--no-download"]) == 0
    assert f"accuracy {m['test_accuracy']:.4f} ({round(m['test_accuracy'] * 10000)} of 10000)" in \
        capsys.readouterr().out


def test_real_data_manual_and_autograd_same_accuracy_in_float64(mnist):
    (X, y), (Xt, yt) = mnist
    data = (X[:3000], y[:3000]), (Xt[:2000], yt[:2000])
    auto, by_hand = (training.train(TrainConfig(dtype="float64", iterations=40, backprop=b), data)
                     for b in ("autograd", "manual"))
    assert auto.test_accuracy == by_hand.test_accuracy and auto.train_accuracy == by_hand.train_accuracy
    for a, b in zip(auto.model.arrays, by_hand.model.arrays):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("model, options", [("tutorial", ["--hidden", "8"]), ("mlp", ["--hidden", "8"]),
                                            ("cnn", ["--hidden", "8", "--channels", "2,3"])])
def test_every_model_train_saves_loads_with_nn_load_and_the_commands(data_dir, tmp_path, capsys, model, options):
    weights = tmp_path / f"{model}.npz"
    assert main(train_args(data_dir, "--model", model, "--iterations", "2", *options, "--save", str(weights))) == 0
    module = nn.load(weights)
    net, architecture = training.load_model(weights)
    assert architecture["model"] == model and type(module) is type(net.module)
    assert module.architecture() == net.module.architecture()
    for (name, a), (again, b) in zip(module.state_dict().items(), net.module.state_dict().items()):
        assert name == again and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    X_test, y_test = synthetic_digits(100, 1)
    X = net.as_input(X_test[:5])
    module.eval()
    logits = module(X).data if model != "tutorial" else module(X).data.T
    np.testing.assert_allclose(net.probabilities(X), Tensor(logits).softmax(axis=1).data, rtol=1e-5, atol=1e-7)
    capsys.readouterr()
    assert main(["evaluate", "--weights", str(weights), "--data", str(data_dir), "--no-download"]) == 0
    right = int(np.sum(net.probabilities(net.as_input(X_test)).argmax(axis=1) == y_test))
    assert f"mnist test set: accuracy {right / 100:.4f} ({right} of 100)" in capsys.readouterr().out
    assert main(["predict", "--weights", str(weights), "--index", "3", "--data", str(data_dir), "--no-download"]) == 0
    prediction = int(net.probabilities(net.as_input(X_test[3:4]))[0].argmax())
    assert capsys.readouterr().out.splitlines()[32].startswith(f"prediction  {prediction} (")
