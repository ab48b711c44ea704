"""Tests of tinygrad_edu.mlp: the MLP's configuration, training loop, metrics, checkpoint, and a short real-data run."""
import json
import math
import os

import numpy as np
import pytest

from tinygrad_edu import datasets, nn, optim
from tinygrad_edu.mlp import MLP, MLPConfig, build, evaluate, train_mlp


def synthetic(n_train=300, n_test=100, seed=0):
    """10 classes of 28×28 uint8 images: class k lights up rows 2k..2k+3, plus noise. Easy, but not trivial."""
    rng = np.random.default_rng(seed)

    def split(n):
        y = rng.integers(0, 10, n).astype(np.uint8)
        X = rng.integers(0, 120, (n, 28, 28))
        for i, k in enumerate(y):
            X[i, 2 * k:2 * k + 4] += 120
        return X.astype(np.uint8), y

    return split(n_train), split(n_test)


def test_config_checks_its_choices():
    assert MLPConfig(hidden=128).hidden == (128,)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'; choose one of sgd, adam, adamw"):
        MLPConfig(optimizer="rmsprop")
    with pytest.raises(ValueError, match="unknown schedule 'linear'; choose one of none, step, cosine"):
        MLPConfig(schedule="linear")
    with pytest.raises(ValueError, match="momentum applies to sgd only"):
        MLPConfig(momentum=0.9)
    with pytest.raises(ValueError, match="epochs and batch_size must be ≥ 1"):
        MLPConfig(epochs=0)
    with pytest.raises(ValueError, match="sizes must be two or more positive integers"):
        MLP((784,))


def test_build_follows_the_config():
    model, opt, sched = build(MLPConfig(), steps_per_epoch=469)
    assert [n for n, _ in model.named_parameters()] == ["layers.0.weight", "layers.0.bias", "layers.2.weight",
                                                        "layers.2.bias"]
    assert model.layers[0].weight.shape == (256, 784) and model.layers[0].weight.dtype == np.float32
    assert type(opt) is optim.Adam and opt.param_groups[0]["lr"] == 1e-3 and opt.param_groups[0]["weight_decay"] == 0
    assert type(sched) is optim.CosineAnnealingLR and sched.T_max == 15 * 469
    _, opt, sched = build(MLPConfig(optimizer="sgd", momentum=0.9, lr=0.1, schedule="step"), steps_per_epoch=10)
    assert type(opt) is optim.SGD and opt.param_groups[0]["momentum"] == 0.9
    assert type(sched) is optim.StepLR and sched.step_size == 50 and sched.gamma == 0.1
    _, opt, sched = build(MLPConfig(optimizer="adamw", schedule="none"))
    assert type(opt) is optim.AdamW and opt.param_groups[0]["weight_decay"] == 0.01 and sched is None
    model, _, _ = build(MLPConfig(hidden=(32, 16), dropout=0.5, dtype="float64"))
    assert [type(m).__name__ for m in model.layers] == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout",
                                                        "Linear"]
    assert model.layers[-1].weight.dtype == np.float64


def test_train_mlp_metrics_history_and_determinism():
    data = synthetic()
    lines = []
    config = dict(hidden=(32,), epochs=3, batch_size=32, lr=0.01, seed=1)
    metrics = train_mlp(config, data, progress=lines.append)
    json.dumps(metrics)                                  # the --metrics-out file
    assert metrics["iterations"] == 3 * math.ceil(300 / 32)
    assert [h["step"] for h in metrics["history"]] == [10, 20, 30] and [h["epoch"] for h in metrics["history"]] == \
        [1, 2, 3]
    assert set(metrics["history"][0]) == {"step", "epoch", "loss", "train_accuracy", "test_accuracy", "lr", "seconds"}
    assert metrics["history"][-1]["lr"] == pytest.approx(0, abs=1e-12)   # cosine annealing ends at 0
    assert metrics["test_accuracy"] == metrics["history"][-1]["test_accuracy"] >= 0.9
    assert metrics["history"][-1]["loss"] < metrics["history"][0]["loss"]
    assert metrics["config"]["hidden"] == [32] and metrics["config"]["optimizer"] == "adam"
    assert len(lines) == 5 and lines[1].startswith("epoch   1/3  loss ") and "test acc" in lines[1]
    again = train_mlp(config, data, progress=None)
    strip = lambda m: {**m, "seconds": 0, "history": [{**h, "seconds": 0} for h in m["history"]]}  # noqa: E731
    assert strip(again) == strip(metrics)


def test_train_mlp_saves_a_checkpoint_that_loads(tmp_path):
    (X, y), (Xt, yt) = data = synthetic()
    metrics = train_mlp(dict(hidden=(16,), epochs=2, batch_size=50, optimizer="sgd", momentum=0.9, lr=0.05),
                        data, progress=None, save=tmp_path / "mlp.npz")
    assert metrics["weights"] == str(tmp_path / "mlp.npz")
    model = nn.load(tmp_path / "mlp.npz")
    assert isinstance(model, MLP) and model.sizes == [784, 16, 10]
    loss, acc = evaluate(model, datasets.to_float(X), y.astype(np.int64))
    assert acc == metrics["train_accuracy"] and loss == pytest.approx(metrics["final_loss"], rel=1e-6)
    assert evaluate(model, datasets.to_float(Xt), yt.astype(np.int64))[1] == metrics["test_accuracy"]
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = optim.CosineAnnealingLR(opt, T_max=12)
    nn.load_optimizer_state(tmp_path / "mlp.npz", opt, sched)
    assert sched.last_epoch == 12 and opt.state[model.layers[0].weight]["momentum_buffer"].shape == (16, 784)


def test_short_run_on_real_mnist():
    """2 epochs on the first 20,000 training images: already above 90% on the real test set (91.6%, about 3 s)."""
    if not os.environ.get(datasets.ENV_VAR):
        pytest.skip(f"{datasets.ENV_VAR} is not set; point it at a folder with the four MNIST files")
    try:
        (X, y), test = datasets.load_mnist(download=False, progress=False)
    except datasets.DatasetNotFoundError as e:
        pytest.skip(f"{datasets.ENV_VAR} does not hold MNIST: {e}")
    metrics = train_mlp(dict(epochs=2), ((X[:20000], y[:20000]), test), progress=None)
    assert metrics["test_accuracy"] >= 0.90
    assert metrics["history"][1]["test_accuracy"] > metrics["history"][0]["test_accuracy"]
