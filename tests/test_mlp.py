"""Tests of the MLP (`train --model mlp`): the module, its optimizer and schedule, the shared loop, its files."""
import dataclasses
import math
import re

import numpy as np
import pytest

from tinygrad_edu import checkpoint, datasets, nn, optim, training
from tinygrad_edu.mlp import MLP
from tinygrad_edu.nn import functional as F
from tinygrad_edu.training import ConfigError, MLPNet, TrainConfig


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


def mlp_config(**kw):
    """The `--model mlp` defaults (cli/train.py's table), with changes."""
    defaults = dict(model="mlp", hidden=(256,), init="torch", lr=1e-3, batch_size=128, iterations=None, epochs=15,
                    optimizer="adam", schedule="cosine", normalize="standard")
    return TrainConfig(**{**defaults, **kw})


# --- the module and what create builds -----------------------------------------------------------------------


def test_mlp_layers_and_names():
    model = MLP((784, 256, 10), seed=0)
    assert [n for n, _ in model.named_parameters()] == ["layers.0.weight", "layers.0.bias", "layers.2.weight",
                                                        "layers.2.bias"]
    assert model.layers[0].weight.shape == (256, 784) and model.layers[0].weight.dtype == np.float32
    model = MLP((784, 32, 16, 10), dropout=0.5, dtype="float64")
    assert [type(m).__name__ for m in model.layers] == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout",
                                                        "Linear"]
    assert model.layers[-1].weight.dtype == np.float64
    with pytest.raises(ValueError, match="sizes must be two or more positive integers"):
        MLP((784,))


def test_create_builds_the_configured_optimizer_and_schedule():
    steps = 15 * 469
    net = MLPNet.create(mlp_config(), np.random.default_rng(0), steps, training.PIXELS)
    assert type(net.optimizer) is optim.Adam and net.optimizer.param_groups[0]["weight_decay"] == 0
    assert net.optimizer.param_groups[0]["lr"] == 1e-3
    assert type(net.scheduler) is optim.CosineAnnealingLR and net.scheduler.T_max == steps
    # The weights are those of MLP(seed=default_rng(seed)): the seed stream of the tutorial model too.
    same = MLP((784, 256, 10), seed=np.random.default_rng(0))
    for (name, a), (_, b) in zip(net.module.named_parameters(), same.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)

    net = MLPNet.create(mlp_config(optimizer="sgd", momentum=0.9, lr=0.1, schedule="step"), None, 30, training.PIXELS)
    assert type(net.optimizer) is optim.SGD and net.optimizer.param_groups[0]["momentum"] == 0.9
    assert type(net.scheduler) is optim.StepLR and net.scheduler.step_size == 10 and net.scheduler.gamma == 0.1
    net = MLPNet.create(mlp_config(optimizer="adamw", schedule="none"), None, 30, training.PIXELS)
    assert type(net.optimizer) is optim.AdamW and net.optimizer.param_groups[0]["weight_decay"] == 0.01
    assert net.scheduler is None
    net = MLPNet.create(mlp_config(optimizer="adamw", weight_decay=0.0, hidden=(8, 4), dtype="float64"), None, 30,
                        training.PIXELS)
    assert net.optimizer.param_groups[0]["weight_decay"] == 0.0
    assert net.module.sizes == [784, 8, 4, 10] and net.dtype == np.float64


def test_the_step_schedule_divides_the_lr_by_ten_after_each_third():
    net = MLPNet.create(mlp_config(schedule="step", hidden=(4,)), None, 9, training.PIXELS)
    X, y = np.zeros((2, 784), np.float32), np.array([0, 1])
    lrs = []
    for _ in range(9):
        lrs.append(net.optimizer.param_groups[0]["lr"])
        net.train_step(X, y)
    assert lrs == pytest.approx([1e-3] * 3 + [1e-4] * 3 + [1e-5] * 3)


@pytest.mark.parametrize("kw, message", [
    (dict(optimizer="adam"), "--optimizer adam needs --model mlp"),
    (dict(momentum=0.9), "--momentum 0.9 needs --model mlp"),
    (dict(weight_decay=0.01), "--weight-decay 0.01 needs --model mlp"),
    (dict(schedule="cosine"), "--schedule cosine needs --model mlp"),
    (dict(dropout=0.2), "--dropout 0.2 needs --model mlp"),
    (dict(model="mlp", backprop="manual"), "--backprop manual needs --model tutorial"),
    (dict(model="mlp", optimizer="adam", momentum=0.9), "momentum is for --optimizer sgd, not adam"),
    (dict(optimizer="rmsprop"), "unknown optimizer 'rmsprop'; choose one of sgd, adam, adamw"),
    (dict(schedule="linear"), "unknown schedule 'linear'; choose one of none, step, cosine"),
    (dict(model="mlp", momentum=-0.5), "momentum must be a number ≥ 0, got -0.5"),
    (dict(model="mlp", weight_decay=math.inf), "weight_decay must be a number ≥ 0, got inf"),
    (dict(model="mlp", dropout=1.0), "dropout must be a probability in [0, 1), got 1.0"),
])
def test_options_each_model_cannot_take_are_config_errors(kw, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**kw)


def test_the_tutorial_model_takes_the_plain_values():
    TrainConfig(optimizer="sgd", momentum=0, weight_decay=0, schedule="none", dropout=0)
    TrainConfig(model="mlp", optimizer="sgd", momentum=0.9, weight_decay=1e-4, dropout=0.5)


# --- the shared loop ---------------------------------------------------------------------------------------------


def reference_run(config: TrainConfig, data):
    """The run written out by hand, as examples/mnist_mlp.py writes it: inputs standardised by the training
    pixels' mean and std, weights from default_rng(seed), batches from default_rng([seed, 1]), Adam stepped and
    the cosine schedule after it, every iteration."""
    (X, y), _ = data
    mean, std = datasets.pixel_stats(X)
    X = datasets.to_float(X, mean=mean, std=std)
    rng = np.random.default_rng(config.seed)
    model = nn.Sequential(nn.Linear(784, config.hidden[0], seed=rng), nn.ReLU(), nn.Linear(config.hidden[0], 10,
                                                                                           seed=rng))
    steps = config.epochs * math.ceil(len(X) / config.batch_size)
    optimizer = optim.Adam(model.parameters(), lr=config.lr)
    scheduler = optim.CosineAnnealingLR(optimizer, T_max=steps)
    shuffle = np.random.default_rng([config.seed, 1])
    losses = []
    for _ in range(config.epochs):
        for Xb, yb in datasets.minibatches(X, y, config.batch_size, seed=shuffle):
            loss = F.cross_entropy(model(Xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
    return model, losses


def test_the_loop_trains_the_mlp_as_written_out_by_hand(monkeypatch):
    data = synthetic()
    config = mlp_config(hidden=(32,), epochs=3, batch_size=32, lr=0.01, seed=1, log_every=1)
    result = training.train(config, data)
    model, losses = reference_run(config, data)
    assert result.iterations == 3 * math.ceil(300 / 32) == len(losses) and result.epochs == 3
    for (name, a), (_, b) in zip(result.model.module.named_parameters(), model.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    assert [e["loss"] for e in result.history] == pytest.approx(losses, rel=1e-12)   # an entry per step: its loss
    assert result.model.optimizer.param_groups[0]["lr"] == pytest.approx(0, abs=1e-12)   # cosine ends at 0
    assert result.test_accuracy >= 0.9 and result.history[-1]["test_accuracy"] == result.test_accuracy
    (X, y), _ = data
    loss, predictions = result.model.evaluate(training.as_input(X, result.model), y)
    assert result.final_loss == loss and result.train_accuracy == np.mean(predictions == y)


def test_same_seed_same_run_with_dropout():
    data = synthetic()
    config = mlp_config(hidden=(16,), epochs=2, batch_size=50, dropout=0.3, seed=3)
    a, b = training.train(config, data), training.train(config, data)
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]   # noqa: E731
    assert strip(a.history) == strip(b.history)
    for x, y in zip(a.model.module.parameters(), b.model.module.parameters()):
        np.testing.assert_array_equal(x.data, y.data)
    assert a.model.module.training          # evaluation switched dropout off, then back on
    X = datasets.to_float(data[1][0])
    np.testing.assert_array_equal(a.model.probabilities(X), a.model.probabilities(X))   # no dropout in eval


def test_probabilities_are_the_softmax_of_the_logits():
    net = MLPNet.create(mlp_config(hidden=(8,), dtype="float64"), None, 10, training.PIXELS)
    X = datasets.to_float(synthetic(5, 1)[0][0], np.float64)
    W1, b1, W2, b2 = (p.data for p in net.module.parameters())
    Z = np.maximum(X @ W1.T + b1, 0) @ W2.T + b2
    expected = np.exp(Z - Z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(net.probabilities(X), expected / expected.sum(axis=1, keepdims=True), rtol=1e-12)
    assert net.evaluate(X, np.arange(5))[0] == pytest.approx(
        -np.mean(np.log(expected / expected.sum(axis=1, keepdims=True))[np.arange(5), np.arange(5)]), rel=1e-12)


def test_validation_holds_out_the_last_training_images_and_never_reads_the_test_set():
    (X, y), _ = synthetic()
    config = mlp_config(hidden=(16,), epochs=2, batch_size=50, normalize="standard", validation=60)
    result = training.train(config, ((X, y), (None, None)))              # no test set at all: it is not read
    held_out = training.train(dataclasses.replace(config, validation=0), ((X[:240], y[:240]), (X[240:], y[240:])))
    assert result.evaluated_on == "validation" and result.test_accuracy is None
    assert result.validation_accuracy == held_out.test_accuracy and result.iterations == 2 * 5   # 240 in 50s
    renamed = [{("test_accuracy" if k == "validation_accuracy" else k): v for k, v in e.items() if k != "seconds"}
               for e in result.history]
    assert renamed == [{k: v for k, v in e.items() if k != "seconds"} for e in held_out.history]
    assert all("test_accuracy" not in e for e in result.history)
    assert [e["step"] for e in result.history if "validation_accuracy" in e] == [5, 10]   # each epoch's end
    assert result.model.inputs == datasets.pixel_stats(X[:240])           # measured on the images it trains on


def test_validation_must_leave_images_to_train_on():
    data = synthetic()
    with pytest.raises(ConfigError, match="--validation 300 leaves no images to train on: the training set has 300"):
        training.train(mlp_config(validation=300), data)
    for bad in (-1, True, 2.5):
        with pytest.raises(ConfigError, match=f"validation must be a number of images ≥ 0, got {bad!r}"):
            mlp_config(validation=bad)
    assert training.split_validation(data, 0) is data


def test_standard_inputs_are_the_training_pixels_standardised():
    data = synthetic()
    result = training.train(mlp_config(hidden=(16,), epochs=1, batch_size=100, normalize="standard"), data)
    mean, std = result.model.inputs
    assert (mean, std) == datasets.pixel_stats(data[0][0]) and result.model.architecture()["inputs"] == {
        "mean": mean, "std": std}
    np.testing.assert_array_equal(training.as_input(data[1][0], result.model),
                                  datasets.to_float(data[1][0], mean=mean, std=std))
    assert training.describe(result.model) == f"mlp 784-16-10, init torch, float32, inputs (p/255 − {mean:.4f})/" \
                                              f"{std:.4f}"
    plain = training.train(mlp_config(hidden=(16,), epochs=1, batch_size=100, normalize="none"), data)
    assert plain.model.inputs == training.PIXELS and plain.model.architecture()["inputs"] == {"mean": 0, "std": 1}
    with pytest.raises(ConfigError, match="unknown normalize 'minmax'; choose one of none, standard"):
        mlp_config(normalize="minmax")


def test_constant_images_cannot_be_standardised():
    (X, y), test = synthetic()
    with pytest.raises(ConfigError, match="every training pixel has the value 7, so their std is 0"):
        training.train(mlp_config(normalize="standard"), ((np.full_like(X, 7), y), test))


# --- files ----------------------------------------------------------------------------------------------------


def test_saved_weights_load_for_predicting_and_the_optimizer_state_for_resuming(tmp_path):
    data = synthetic()
    result = training.train(mlp_config(hidden=(16,), epochs=2, batch_size=50, optimizer="sgd", momentum=0.9,
                                       lr=0.05), data)
    path = checkpoint.save(tmp_path / "mlp.npz", result.model.state_dict(), result.model.architecture())
    model, architecture = training.load_model(path)
    assert isinstance(model, MLPNet) and model.optimizer is None and architecture["sizes"] == [784, 16, 10]
    mean, std = datasets.pixel_stats(data[0][0])
    assert training.describe(model) == f"mlp 784-16-10, init torch, float32, inputs (p/255 − {mean:.4f})/{std:.4f}"
    X = training.as_input(data[1][0], model)
    np.testing.assert_array_equal(model.probabilities(X), result.model.probabilities(X))
    module = nn.load(path)                                        # the same file is nn's format
    assert isinstance(module, MLP)
    opt = optim.SGD(module.parameters(), lr=0.05, momentum=0.9)
    sched = optim.CosineAnnealingLR(opt, T_max=12)
    nn.load_optimizer_state(path, opt, sched)
    assert sched.last_epoch == 12 and opt.state[module.layers[0].weight]["momentum_buffer"].shape == (16, 784)


def test_the_input_scaling_travels_with_the_weights(tmp_path):
    data = synthetic()
    for model in ("mlp", "tutorial"):
        config = mlp_config(hidden=(16,), epochs=1, batch_size=100, normalize="standard") if model == "mlp" else \
            TrainConfig(hidden=(16,), iterations=3, normalize="standard")
        result = training.train(config, data)
        path = checkpoint.save(tmp_path / f"{model}.npz", result.model.state_dict(), result.model.architecture())
        loaded, _ = training.load_model(path)
        assert loaded.inputs == result.model.inputs == datasets.pixel_stats(data[0][0])
        X = training.as_input(data[1][0], loaded)
        np.testing.assert_array_equal(loaded.probabilities(X), result.model.probabilities(X))
        # a file saved before the option has no "inputs": its model took pixels/255
        architecture = {k: v for k, v in result.model.architecture().items() if k != "inputs"}
        old = checkpoint.save(tmp_path / f"old_{model}.npz", result.model.state_dict(), architecture)
        assert training.load_model(old)[0].inputs == training.PIXELS


@pytest.mark.parametrize("batch_size", [None, 100])
def test_the_tutorial_by_hand_and_by_autograd_agree_on_standardised_inputs(batch_size):
    data = synthetic()
    runs = [training.train(TrainConfig(iterations=4, batch_size=batch_size, backprop=b, normalize="standard",
                                       dtype="float64"), data) for b in ("autograd", "manual")]
    for a, b in zip(runs[0].model.arrays, runs[1].model.arrays):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert runs[0].model.inputs == runs[1].model.inputs != training.PIXELS


@pytest.mark.parametrize("change, message", [
    (dict(sizes=[10, 16, 10]), "the mlp model takes 10 inputs and gives 10 outputs; the MNIST commands need 784 "
                              "(28×28 pixels) and 10 (the digits)"),
    (dict(dtype="int8"), "cannot rebuild the model from its architecture: MLP: dtype must be float32 or float64, "
                         "got int8"),
    (dict(inputs={"mean": 0.1, "std": 0}), 'inputs must be {"mean": number, "std": number > 0}, the file says '
                                           "{'mean': 0.1, 'std': 0}"),
    (dict(inputs="standard"), "inputs must be {\"mean\": number, \"std\": number > 0}, the file says 'standard'"),
])
def test_a_bad_mlp_architecture_is_refused(tmp_path, change, message):
    net = MLPNet.create(mlp_config(hidden=(16,)), None, 10, training.PIXELS)
    path = checkpoint.save(tmp_path / "w.npz", net.state_dict(), {**net.architecture(), **change})
    with pytest.raises(checkpoint.CheckpointError, match=re.escape(message)):
        training.load_model(path)


def test_plot_run_draws_an_mlp_run(tmp_path):
    pytest.importorskip("matplotlib")
    from tinygrad_edu import viz

    data = synthetic()
    result = training.train(mlp_config(hidden=(16,), epochs=2, batch_size=100), data)
    metrics = {"history": result.history, "test_accuracy": result.test_accuracy}
    written = viz.plot_run(metrics, out_dir=tmp_path, model=result.model, test_data=data[1])
    assert [p.name for p in written] == ["curves.png", "weights.png", "misclassified.png", "confusion.png"]
