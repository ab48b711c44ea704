"""nn.Conv2d/MaxPool2d against torch.nn, cnn.CNN, and `train --model cnn` with predict, evaluate and plot."""
import json
import math
import runpy
from pathlib import Path

import numpy as np
import pytest
from test_train_cli import data_dir, digits, synthetic_digits, train_args  # noqa: F401 (fixtures)

from tinygrad_edu import ShapeError, checkpoint, init, nn, training
from tinygrad_edu.cli import build_parser, main
from tinygrad_edu.cli.train import resolve
from tinygrad_edu.cnn import CNN
from tinygrad_edu.training import ConfigError, TrainConfig


def test_conv2d_default_init_is_torchs_kaiming_uniform_with_a_sqrt5():
    conv = nn.Conv2d(6, 40, (5, 3), seed=0)
    fan_in = 6 * 5 * 3
    bound = 1 / math.sqrt(fan_in)    # gain·√(3/fan_in), gain = √(2/(1 + 5))
    assert conv.weight.shape == (40, 6, 5, 3) and conv.bias.shape == (40,) and conv.weight.dtype == np.float32
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.weight.data).max() > 0.99 * bound
    assert np.abs(conv.bias.data).max() <= bound
    W, b = init.conv2d("torch", 6, 40, (5, 3), np.random.default_rng(0))
    np.testing.assert_array_equal(conv.weight.data, W)
    np.testing.assert_array_equal(conv.bias.data, b)
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.Conv2d(6, 40, (5, 3)).requires_grad_(False)
    assert float(theirs.weight.abs().max()) <= bound and float(theirs.weight.abs().max()) > 0.99 * bound
    assert float(theirs.bias.abs().max()) <= bound


def test_conv2d_he_and_xavier_use_the_kernels_fans():
    W, b = init.conv2d("he", 4, 8, (3, 3), np.random.default_rng(1), np.float64)
    assert abs(W.std() - math.sqrt(2 / 36)) < 0.1 * math.sqrt(2 / 36) and not b.any()
    W, _ = init.conv2d("xavier", 4, 8, (3, 3), np.random.default_rng(1), np.float64)
    assert np.abs(W).max() <= math.sqrt(6 / (36 + 72))
    with pytest.raises(ValueError, match="Conv2d: unknown init 'kaiming'; choose one of tutorial, he, xavier, torch"):
        nn.Conv2d(1, 1, 3, init="kaiming")


def test_modules_have_torchs_names_defaults_and_repr():
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
    assert (conv.kernel_size, conv.stride, conv.padding, conv.bias) == ((3, 3), (1, 1), (1, 1), None)
    assert repr(conv) == "Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)"
    pool = nn.MaxPool2d(2)
    assert (pool.kernel_size, pool.stride) == (2, 2) and repr(pool) == "MaxPool2d(kernel_size=2, stride=2)"
    with pytest.raises(ValueError, match=r"Conv2d: stride must be an integer ≥ 1 or a pair of them, got 0"):
        nn.Conv2d(1, 1, 3, stride=0)
    with pytest.raises(ShapeError, match=r"Conv2d\(in_channels=3\): the input must be N×3×H×W, got shape "
                                         r"\(2, 1, 5, 5\)"):
        conv(np.zeros((2, 1, 5, 5), np.float32))


def test_cnn_parameters_match_the_same_model_in_torch():
    model = CNN((8, 16), (32,), seed=0)
    ours = {n: p.shape for n, p in model.named_parameters()}
    assert ours == {"features.0.weight": (8, 1, 5, 5), "features.0.bias": (8,), "features.3.weight": (16, 8, 5, 5),
                    "features.3.bias": (16,), "classifier.0.weight": (32, 256), "classifier.0.bias": (32,),
                    "classifier.2.weight": (10, 32), "classifier.2.bias": (10,)}
    torch = pytest.importorskip("torch")
    tnn = torch.nn

    class TorchCNN(tnn.Module):
        def __init__(self):
            super().__init__()
            self.features = tnn.Sequential(tnn.Conv2d(1, 8, 5), tnn.ReLU(), tnn.MaxPool2d(2),
                                           tnn.Conv2d(8, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2))
            self.classifier = tnn.Sequential(tnn.Linear(256, 32), tnn.ReLU(), tnn.Linear(32, 10))

        def forward(self, x):
            return self.classifier(self.features(x).flatten(1))

    theirs = TorchCNN().double()
    assert {n: tuple(p.shape) for n, p in theirs.named_parameters()} == ours
    theirs.load_state_dict({k: torch.from_numpy(v.astype(np.float64)) for k, v in model.state_dict().items()})
    x = np.random.default_rng(0).normal(size=(3, 784))
    model64 = CNN((8, 16), (32,), dtype=np.float64)
    model64.load_state_dict(model.state_dict())
    np.testing.assert_allclose(model64(x).data, theirs(torch.from_numpy(x).reshape(-1, 1, 28, 28)).detach().numpy(),
                               rtol=1e-10, atol=1e-12)


def test_port_to_pytorch_example_agrees_for_the_mlp_and_the_cnn(capsys):
    pytest.importorskip("torch")
    script = Path(__file__).parents[1] / "examples" / "port_to_pytorch.py"
    assert runpy.run_path(str(script))["main"]() == 0
    out = capsys.readouterr().out
    assert "∂L/∂3.weight" in out and "(16, 8, 5, 5)" in out and "same loss, gradients and step (float64)" in out


def test_sequential_with_conv_layers_saves_and_loads(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=(1, 0), seed=0), nn.ReLU(), nn.MaxPool2d(2, 1),
                          nn.AvgPool2d(2), nn.Flatten(), nn.Linear(2 * 2 * 1, 3, seed=1))   # 12×10 → 6×4 → 5×3 → 2×1
    x = np.random.default_rng(0).normal(size=(2, 1, 12, 10)).astype(np.float32)
    path = nn.save(model, tmp_path / "seq.npz")
    loaded = nn.load(path)
    assert repr(loaded) == repr(model)
    np.testing.assert_array_equal(loaded(x).data, model(x).data)


def test_cnn_saves_and_loads_with_nn_load(tmp_path):
    model = CNN((4, 6), (16, 12), seed=3)
    loaded = nn.load(nn.save(model, tmp_path / "cnn.npz"))
    x = np.random.default_rng(1).normal(size=(2, 1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x).data, model(x).data)
    assert loaded.architecture() == model.architecture()


@pytest.mark.parametrize("channels, hidden, dtype", [((8, 16), (128,), "float32"), ((3, 5), (7, 9), "float64")])
def test_cnn_parameter_shapes_are_the_shapes_the_model_has(channels, hidden, dtype):
    model = CNN(channels, hidden, dtype=dtype, seed=0)
    assert CNN.parameter_shapes(model.architecture()) == {n: (p.shape, str(p.dtype))
                                                          for n, p in model.named_parameters()}
    seq = nn.Sequential(nn.Conv2d(2, 3, (3, 2), bias=False, seed=0), nn.ReLU(), nn.Flatten(), nn.Linear(4, 5))
    assert nn.Sequential.parameter_shapes(seq.architecture()) == {n: (p.shape, str(p.dtype))
                                                                  for n, p in seq.named_parameters()}


def test_conv_layers_in_files_are_seeded_and_checked(tmp_path):
    arch = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)).architecture()
    first, again = (nn.Sequential.from_architecture(arch, seed=0) for _ in range(2))
    np.testing.assert_array_equal(first[0].weight.data, again[0].weight.data)
    huge = {**arch, "layers": [{**arch["layers"][0], "padding": [100000, 100000]}]}
    with pytest.raises(checkpoint.CheckpointError, match="layer 0: Conv2d: padding must be at most kernel_size − 1 "
                                                         "on each side"):
        nn.load(checkpoint.save(tmp_path / "p.npz", first.state_dict(), huge))
    with pytest.raises(ValueError, match="MaxPool2d: kernel_size must be an integer ≥ 1 or a pair of them, got 'x'"):
        nn.MaxPool2d("x")


def test_a_cnn_file_claiming_a_huge_model_is_refused_before_anything_is_built(tmp_path, monkeypatch):
    model = CNN((4, 6), (16,), seed=0)
    path = checkpoint.save(tmp_path / "c.npz", model.state_dict(), {**model.architecture(), "channels": [4, 10**5]})
    monkeypatch.setattr(CNN, "from_architecture", classmethod(lambda cls, arch: pytest.fail("built")))
    for load in (nn.load, training.load_model):
        with pytest.raises(checkpoint.CheckpointError, match=r"c.npz: cannot rebuild the model from its "
                                                             r"architecture: the architecture makes \d+ parameters, "
                                                             r"more than the 16777216 a weights file can hold"):
            load(path)
    three = checkpoint.save(tmp_path / "n3.npz", model.state_dict(), {**model.architecture(), "n_out": 3})
    with pytest.raises(checkpoint.CheckpointError, match=r"n3.npz: the cnn model takes 784 inputs and gives 3 "
                                                         r"outputs; the MNIST commands need 784"):
        training.load_model(three)
    bad = checkpoint.save(tmp_path / "b.npz", model.state_dict(), {**model.architecture(), "channels": [4]})
    with pytest.raises(checkpoint.CheckpointError, match="b.npz: cannot rebuild the model from its architecture: CNN: "
                                                           "channels must be two widths"):
        training.load_model(bad)


# --- train --model cnn --------------------------------------------------------------------------------------


def test_cnn_options_resolve_and_refuse():
    config = resolve(build_parser().parse_args(["train", "--model", "cnn", "--channels", "4,6", "--hidden", "32,16"]))
    assert (config.channels, config.hidden, config.optimizer, config.schedule, config.normalize) == \
        ((4, 6), (32, 16), "adam", "cosine", "standard")
    with pytest.raises(ConfigError, match="--channels is for --model cnn, not mlp"):
        TrainConfig(model="mlp", channels=(4, 6), epochs=1, iterations=None)
    with pytest.raises(ConfigError, match="--dropout is for --model mlp: the cnn has no dropout layer"):
        TrainConfig(model="cnn", dropout=0.2, epochs=1, iterations=None)
    with pytest.raises(ConfigError, match=r"channels must be two widths ≥ 1 \(the two convolutions'\), got \(4,\)"):
        TrainConfig(model="cnn", channels=(4,), epochs=1, iterations=None)


def test_train_cnn_then_predict_evaluate_and_plot(data_dir, tmp_path, capsys):  # noqa: F811
    weights, metrics = tmp_path / "cnn.npz", tmp_path / "m.json"
    assert main(train_args(data_dir, "--model", "cnn", "--epochs", "2", "--channels", "4,6", "--hidden", "16",
                           "--lr", "0.01", "--save", str(weights), "--metrics-out", str(metrics))) == 0
    m = json.loads(metrics.read_text())
    assert m["config"]["model"] == "cnn" and m["config"]["channels"] == [4, 6] and m["iterations"] == 6
    assert m["test_accuracy"] > 0.5          # the squares are easy: well above chance after 6 steps
    arrays, arch = checkpoint.load(weights)
    assert arrays["features.0.weight"].shape == (4, 1, 5, 5) and arrays["classifier.0.weight"].shape == (16, 96)
    assert arch["model"] == "cnn" and arch["channels"] == [4, 6] and arch["hidden"] == [16]

    capsys.readouterr()
    assert main(["evaluate", "--weights", str(weights), "--data", str(data_dir), "--no-download"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{weights}: cnn 1x28x28-c4-c6-16-10, init torch, float32, inputs (p/255 − ")
    assert f"mnist test set: accuracy {m['test_accuracy']:.4f}" in out
    assert main(["predict", "--weights", str(weights), "--index", "7", "--data", str(data_dir), "--no-download"]) == 0
    assert f"true label  {synthetic_digits(100, 1)[1][7]}" in capsys.readouterr().out
    model, _ = training.load_model(weights)
    X = training.as_input(synthetic_digits(100, 1)[0], model)
    np.testing.assert_allclose(model.logits(X, chunk=7), model.logits(X), atol=1e-5)   # float32 rounding only
    pytest.importorskip("matplotlib")
    from tinygrad_edu.viz.plots import first_layer_weights
    name, W = first_layer_weights(arrays)
    assert name == "features.0.weight" and W.shape == (4, 25)
    assert main(["plot", str(metrics), "--weights", str(weights), "--out", str(tmp_path / "pics")]) == 0
    assert (tmp_path / "pics" / "weights.png").stat().st_size > 1000
