"""Saving and loading every kind of model: random layer stacks, the mlp, cnn and tutorial models, main's files."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinygrad_edu import checkpoint, models, nn, optim, training
from tinygrad_edu.autograd import no_grad
from tinygrad_edu.checkpoint import CheckpointError
from tinygrad_edu.dtypes import MODEL_DTYPES
from tinygrad_edu.tensor import Tensor

MAIN_FORMAT = Path(__file__).parent / "data" / "main_format"

# --- random layer stacks, valid by construction ----------------------------------------------------------------


def elementwise(draw) -> nn.Module:
    """A layer that keeps its input's shape and dtype, of any shape."""
    numbers = st.floats(0.05, 3.0)
    return draw(st.sampled_from([
        lambda: nn.ReLU(), lambda: nn.Tanh(), lambda: nn.Sigmoid(), lambda: nn.SiLU(), lambda: nn.LogSigmoid(),
        lambda: nn.LeakyReLU(draw(numbers)), lambda: nn.ELU(draw(numbers)),
        lambda: nn.GELU(draw(st.sampled_from(["none", "tanh"]))),
        lambda: nn.Softplus(draw(numbers), draw(st.floats(1.0, 20.0))),
        lambda: nn.Dropout(draw(st.floats(0.0, 0.9)), seed=draw(st.integers(0, 9)))]))()


def flags(draw, n: int) -> list[bool]:
    return [draw(st.booleans()) for _ in range(n)]


@st.composite
def dense_stacks(draw, dtype):
    """(a Sequential on N×F rows, F): Linear, BatchNorm1d, LayerNorm, Flatten and the elementwise layers."""
    features = first = draw(st.integers(1, 5))
    layers = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["Linear", "BatchNorm1d", "LayerNorm", "Flatten", "elementwise"]))
        if kind == "Linear":
            out = draw(st.integers(1, 5))
            init = draw(st.sampled_from(["torch", "he", "xavier", "tutorial"]))
            layers.append(nn.Linear(features, out, draw(st.booleans()), dtype=dtype, init=init,
                                    seed=draw(st.integers(0, 9))))
            features = out
        elif kind == "BatchNorm1d":
            affine, track, bias = flags(draw, 3)
            momentum = draw(st.sampled_from([0.1, 0.5, None]))
            layers.append(nn.BatchNorm1d(features, draw(st.floats(1e-6, 1e-3)), momentum, affine, track, bias=bias,
                                         dtype=dtype))
        elif kind == "LayerNorm":
            affine, bias = flags(draw, 2)
            layers.append(nn.LayerNorm(features, draw(st.floats(1e-6, 1e-3)), affine, bias, dtype=dtype))
        elif kind == "Flatten":
            layers.append(nn.Flatten())
        else:
            layers.append(elementwise(draw))
    return nn.Sequential(*layers), (first,)


@st.composite
def conv_stacks(draw, dtype):
    """(a Sequential on N×C×H×W images, (C, H, W)): Conv2d, BatchNorm2d, the poolings, the elementwise layers,
    then Flatten and a Linear."""
    channels, side = draw(st.integers(1, 3)), draw(st.integers(4, 8))
    shape, layers = (channels, side, side), []
    for _ in range(draw(st.integers(1, 4))):
        c, h, w = shape
        kind = draw(st.sampled_from(["Conv2d", "BatchNorm2d", "MaxPool2d", "AvgPool2d", "elementwise"]))
        if kind == "Conv2d":
            k, stride = draw(st.integers(1, min(3, h, w))), draw(st.integers(1, 2))
            padding = draw(st.integers(0, k - 1))
            out = draw(st.integers(1, 3))
            layers.append(nn.Conv2d(c, out, k, stride, padding, draw(st.booleans()), dtype=dtype,
                                    seed=draw(st.integers(0, 9))))
            shape = (out, (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1)
        elif kind == "BatchNorm2d":
            affine, track, bias = flags(draw, 3)
            layers.append(nn.BatchNorm2d(c, affine=affine, track_running_stats=track, bias=bias, dtype=dtype))
        elif kind in ("MaxPool2d", "AvgPool2d") and min(h, w) >= 2:
            k = draw(st.integers(1, min(h, w, 2)))
            layers.append(getattr(nn, kind)(k, draw(st.sampled_from([None, 1]))))
            stride = k if layers[-1].stride == k else 1
            shape = (c, (h - k) // stride + 1, (w - k) // stride + 1)
        else:
            layers.append(elementwise(draw))
    layers += [nn.Flatten(), nn.Linear(int(np.prod(shape)), 2, dtype=dtype, seed=0)]
    return nn.Sequential(*layers), (channels, side, side)


@st.composite
def embedding_stacks(draw, dtype):
    """(a Sequential on N×L integer indices, None): an Embedding, then layers of its vectors' last axis."""
    vocabulary, dim = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    layers = [nn.Embedding(vocabulary, dim, dtype=dtype, seed=draw(st.integers(0, 9)))]
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["Linear", "LayerNorm", "elementwise"]))
        if kind == "Linear":
            out = draw(st.integers(1, 4))
            layers.append(nn.Linear(dim, out, dtype=dtype, seed=draw(st.integers(0, 9))))
            dim = out
        elif kind == "LayerNorm":
            layers.append(nn.LayerNorm(dim, dtype=dtype))
        else:
            layers.append(elementwise(draw))
    return nn.Sequential(*layers, nn.Flatten()), vocabulary


STACKS = (dense_stacks, conv_stacks, embedding_stacks)
COVERED = {"Linear", "BatchNorm1d", "LayerNorm", "Flatten", "Conv2d", "BatchNorm2d", "MaxPool2d", "AvgPool2d",
           "Embedding", "ReLU", "Tanh", "Sigmoid", "SiLU", "LogSigmoid", "LeakyReLU", "ELU", "GELU", "Softplus",
           "Dropout"}


# NOTE: RNN returns (output, h_n), as torch's, so no Sequential stacks it; tests/test_rnn.py covers it; and
# CausalSelfAttention reads (N, T, C) sequences, not these stacks' inputs: tests/test_gpt.py saves and loads it
RECURRENT = {"RNN", "CausalSelfAttention"}


def test_the_random_stacks_draw_every_layer_type_of_the_table():
    assert COVERED | RECURRENT == set(nn.specs.LAYERS)


def stack_input(stack, shape_or_vocabulary, dtype, rng):
    if stack is embedding_stacks:
        return rng.integers(0, shape_or_vocabulary, (3, 2))
    return Tensor(rng.normal(size=(3, *shape_or_vocabulary)).astype(dtype))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), stack=st.sampled_from(STACKS), dtype=st.sampled_from(MODEL_DTYPES))
def test_save_then_load_gives_the_same_arrays_and_outputs(tmp_path, data, stack, dtype):
    model, shape = data.draw(stack(dtype))
    x = stack_input(stack, shape, dtype, np.random.default_rng(0))
    model(x)                # in train mode: BatchNorm's running statistics move, Dropout draws
    model.eval()
    loaded = nn.load(nn.save(model, tmp_path / "stack.npz"))
    saved, got = model.state_dict(), loaded.state_dict()
    assert list(got) == list(saved)
    for name, a in saved.items():
        assert got[name].dtype == a.dtype and got[name].shape == a.shape
        np.testing.assert_array_equal(got[name], a)
    assert loaded.architecture() == model.architecture()
    loaded.eval()
    with no_grad():
        np.testing.assert_array_equal(loaded(x).data, model(x).data)


@pytest.mark.parametrize("model, x", [
    (models.MLP((6, 5, 3), activation="tanh", dropout=0.2, dtype="float64", seed=1), np.ones((2, 6))),
    (models.CNN((2, 3), (4,), seed=2), np.linspace(0, 1, 2 * 784, dtype=np.float32).reshape(2, 784)),
    (models.TutorialNetwork(7, init="he", seed=3), np.linspace(0, 1, 784 * 2, dtype=np.float32).reshape(784, 2)),
])
def test_every_model_kind_round_trips_through_nn_load(tmp_path, model, x):
    loaded = nn.load(nn.save(model, tmp_path / "m.npz"))
    assert type(loaded) is type(model) and loaded.architecture() == model.architecture()
    model.eval(), loaded.eval()
    np.testing.assert_array_equal(loaded(x).data, model(x).data)


def test_the_tutorial_network_has_the_tutorials_names_and_layout():
    net = models.TutorialNetwork(4, seed=0)
    assert [(n, p.shape) for n, p in net.named_parameters()] == [("W1", (4, 784)), ("b1", (4, 1)),
                                                                  ("W2", (10, 4)), ("b2", (10, 1))]
    assert net.params.W1 is net.W1 and net.params._fields == ("W1", "b1", "W2", "b2")
    X = np.random.default_rng(0).random((784, 3)).astype(np.float32)
    Z1 = net.W1.data @ X + net.b1.data
    np.testing.assert_allclose(net(X).data, net.W2.data @ np.maximum(Z1, 0) + net.b2.data, rtol=1e-6)


# --- the dtype policy ------------------------------------------------------------------------------------------

LAYERS_WITH_WEIGHTS = [
    ("Linear", lambda dtype: nn.Linear(3, 2, dtype=dtype), {"in_features": 3, "out_features": 2}),
    ("Conv2d", lambda dtype: nn.Conv2d(1, 2, 3, dtype=dtype), {"in_channels": 1, "out_channels": 2,
                                                                 "kernel_size": [3, 3]}),
    ("BatchNorm1d", lambda dtype: nn.BatchNorm1d(3, dtype=dtype), {"num_features": 3}),
    ("BatchNorm2d", lambda dtype: nn.BatchNorm2d(3, dtype=dtype), {"num_features": 3}),
    ("LayerNorm", lambda dtype: nn.LayerNorm(3, dtype=dtype), {"normalized_shape": [3]}),
    ("Embedding", lambda dtype: nn.Embedding(4, 3, dtype=dtype), {"num_embeddings": 4, "embedding_dim": 3}),
    ("RNN", lambda dtype: nn.RNN(3, 4, dtype=dtype), {"input_size": 3, "hidden_size": 4}),
]


@pytest.mark.parametrize("layer, build, spec", LAYERS_WITH_WEIGHTS)
def test_a_float16_layer_is_refused_as_the_loader_refuses_a_float16_spec(tmp_path, layer, build, spec):
    with pytest.raises(ValueError) as made:
        build("float16")
    assert str(made.value) == f"{layer}: dtype must be float32 or float64, got float16"
    path = checkpoint.save(tmp_path / "f16.npz", {}, {"model": "sequential",
                                                      "layers": [{"type": layer, **spec, "dtype": "float16"}]})
    with pytest.raises(CheckpointError) as loaded:
        nn.load(path)
    assert str(loaded.value) == f"{path}: cannot rebuild the model from its architecture: layer 0: {made.value}"
    for dtype, named in ((np.float16, "float16"), (np.int32, "int32"), ("int64", "int64"), (np.complex64, "complex64")):
        with pytest.raises(ValueError, match=re.escape(f"{layer}: dtype must be float32 or float64, got {named}")):
            build(dtype)
    for dtype in MODEL_DTYPES:
        assert all(p.dtype == dtype for p in build(dtype).parameters())


def test_a_layer_spec_with_an_unknown_key_is_refused_by_name(tmp_path):
    arch = {"model": "sequential", "layers": [{"type": "Linear", "in_features": 2, "out_features": 1, "bais": 1}]}
    with pytest.raises(CheckpointError, match=r"layer 0: Linear: unknown spec keys \['bais'\]; its keys are "
                                              "in_features, out_features, bias, dtype, init"):
        nn.load(checkpoint.save(tmp_path / "k.npz", {}, arch))
    arch = {"model": "sequential", "layers": [{"type": "Embedding", "embedding_dim": 2}]}
    with pytest.raises(CheckpointError, match="layer 0: Embedding: the spec lacks num_embeddings"):
        nn.load(checkpoint.save(tmp_path / "m.npz", {}, arch))


def test_a_constructor_and_a_file_refuse_the_same_conv_padding(tmp_path):
    with pytest.raises(ValueError) as made:
        nn.Conv2d(1, 1, 3, padding=3)
    assert str(made.value) == "Conv2d: padding must be at most kernel_size − 1 on each side (2, 2 here), got 3"
    spec = {"type": "Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 3, "padding": 3}
    path = checkpoint.save(tmp_path / "p.npz", {}, {"model": "sequential", "layers": [spec]})
    with pytest.raises(CheckpointError, match=re.escape(f"layer 0: {made.value}")):
        nn.load(path)


def test_train_refuses_a_dtype_no_model_can_have():
    with pytest.raises(training.ConfigError, match="dtype must be float32 or float64, got float16"):
        training.TrainConfig(dtype="float16")


# --- files written before nn, models and training were split up -------------------------------------------------


@pytest.mark.parametrize("kind", ["sequential", "tutorial", "mlp", "cnn"])
def test_files_written_by_the_old_code_still_load(kind):
    path = MAIN_FORMAT / f"{kind}.npz"
    expected = np.load(MAIN_FORMAT / "expected.npz")
    with np.load(path) as stored:
        arrays = {k: stored[k] for k in stored.files if k != "__architecture__" and not k.startswith("optim/")}
    model = nn.load(path)
    assert model.architecture()["model"] == kind
    state = model.state_dict()
    assert list(state) == list(arrays) or set(state) == set(arrays)
    for name, a in arrays.items():
        assert state[name].dtype == a.dtype
        np.testing.assert_array_equal(state[name], a)
    if kind == "sequential":
        model.eval()
        x = expected["images"][:, None].astype(np.float32) / 255
        np.testing.assert_array_equal(model(x).data, expected["sequential"])
    else:
        net, _ = training.load_model(path)
        np.testing.assert_allclose(net.probabilities(training.as_input(expected["images"], net)), expected[kind],
                                   rtol=1e-6, atol=1e-7)


def test_an_old_mlp_file_restores_its_optimizer_state():
    path = MAIN_FORMAT / "mlp.npz"
    model = nn.load(path)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    nn.load_optimizer_state(path, optimizer)
    assert optimizer.param_groups[0]["lr"] == 0.1


# --- old import paths --------------------------------------------------------------------------------------------

TRAINING_NAMES = ["TrainConfig", "ConfigError", "TrainingDiverged", "TrainingInterrupted", "TrainResult", "train",
                  "Progress", "divergence", "divergence_advice", "load_model", "load_data", "split_validation",
                  "as_input", "accuracy", "write_json", "describe", "cross_entropy", "MODELS", "OPTIMIZERS",
                  "SCHEDULES", "NORMALIZATIONS", "PIXELS", "read_inputs", "inputs_entry", "input_scaling",
                  "eval_chunk", "EVAL_NUMBERS", "interrupt_between_steps", "TutorialNet", "MLPNet", "CNNNet",
                  "LOADERS", "LOSS_FACTOR", "LOSS_POINTS", "ACCURACY_FLOOR", "ACCURACY_AFTER", "SLOW"]
NN_NAMES = ["Module", "Parameter", "Buffer", "IncompatibleKeys", "Linear", "ReLU", "Tanh", "Sigmoid", "LeakyReLU",
            "ELU", "GELU", "SiLU", "Softplus", "LogSigmoid", "Dropout", "Flatten", "Conv2d", "MaxPool2d", "AvgPool2d",
            "BatchNorm1d", "BatchNorm2d", "LayerNorm", "Embedding", "Sequential", "functional", "save", "load",
            "load_optimizer_state", "checkpoint_arrays", "from_checkpoint", "expected_parameters"]


def test_the_old_import_paths_still_work():
    from tinygrad_edu.cnn import CNN
    from tinygrad_edu.mlp import ACTIVATIONS, MLP
    assert (MLP, CNN) == (models.MLP, models.CNN) and set(ACTIVATIONS) == {"relu", "tanh", "sigmoid"}
    assert all(hasattr(training, name) for name in TRAINING_NAMES), [n for n in TRAINING_NAMES
                                                                     if not hasattr(training, n)]
    assert all(hasattr(nn, name) for name in NN_NAMES), [n for n in NN_NAMES if not hasattr(nn, n)]
    assert set(models.KINDS) == {"sequential", "mlp", "cnn", "tutorial", "bigram", "char-mlp", "char-rnn", "gpt"}
    assert models.KINDS["sequential"] is nn.Sequential


def test_a_kind_is_registered_once():
    with pytest.raises(ValueError, match="model kind 'mlp' is registered already, by MLP"):
        models.register("mlp")(type("Other", (nn.Module,), {}))


def test_each_layer_imports_only_the_layers_below_it():
    """nn reaches models only when a file is loaded, and viz's plots never import training."""
    code = ("import sys; import tinygrad_edu.nn, tinygrad_edu.viz.plots, tinygrad_edu.models; "
            "print(sorted(m for m in sys.modules if m.startswith('tinygrad_edu.training')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
    code = "import sys; import tinygrad_edu.nn; print('tinygrad_edu.models' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
