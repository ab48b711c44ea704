"""Hardening, round two (issue 28): silent wrong results, and bad input that reached a traceback or a 500."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu import Tensor, no_grad, opspecs
from tinygrad_edu.autograd import topological_order

STALE = "modified by an inplace operation"
ROOT = Path(__file__).resolve().parents[1]


def cli(cwd, *argv, timeout=300):
    """`python -m tinygrad_edu ARGV` run in cwd, on this checkout's code, with a home of its own and no network."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYGRAD_EDU_")}
    (Path(cwd) / "home").mkdir(exist_ok=True)
    env.update(HOME=str(Path(cwd) / "home"), XDG_CACHE_HOME=str(Path(cwd) / "home" / ".cache"), PYTHONPATH=str(ROOT),
               COLUMNS="200", http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")
    return subprocess.run([sys.executable, "-m", "tinygrad_edu", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


# --- 1. the version check sees through every view an op saves ------------------------------------------------------


def _arrays(items) -> list:
    return [a for x in items for a in ([x] if isinstance(x, np.ndarray) else _arrays(x) if isinstance(x, tuple)
                                        else [])]


def _saves_memory_of(loss, x) -> bool:
    """Whether some op of loss's graph saved an array that uses x's memory (numpy's exact answer)."""
    return any(t._ctx is not None and any(np.shares_memory(a, x.data) for a in _arrays(t._ctx.saved))
               for t in topological_order(loss, leaves=True))


@pytest.mark.parametrize("name", sorted(opspecs.REGISTRY))
def test_an_in_place_change_of_any_saved_input_is_refused(name):
    spec, seen = opspecs.REGISTRY[name], 0
    for seed in range(12):
        example = spec.example(opspecs.NumpyChooser(seed))
        for i in range(len(example.inputs)):
            xs = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in example.inputs]
            loss = example.f(*xs).sum()
            if not _saves_memory_of(loss, xs[i]):
                continue
            seen += 1
            with no_grad():
                xs[i] *= 3
            with pytest.raises(RuntimeError, match=STALE):
                loss.backward()
    if name in ("conv2d", "max_pool2d", "avg_pool2d", "mul", "matmul", "relu", "max"):
        assert seen   # these always save an input


@pytest.mark.parametrize("x_shape,w_shape", [((1, 1, 3, 3), (1, 1, 1, 1)), ((1, 3, 4, 4), (2, 3, 1, 1)),
                                             ((2, 1, 3, 3), (1, 1, 1, 1)), ((2, 2, 3, 3), (1, 2, 3, 3))])
def test_conv2d_refuses_its_input_changed_in_place_when_im2col_is_a_view(x_shape, w_shape):
    x = Tensor(np.arange(float(np.prod(x_shape))).reshape(x_shape))
    w = Tensor(np.ones(w_shape), requires_grad=True)
    loss = x.conv2d(w).sum()
    x *= 3
    with pytest.raises(RuntimeError, match=STALE):
        loss.backward()


# --- 2. accumulation into a leaf is atomic across threads -----------------------------------------------------------


def test_two_threads_running_backward_into_one_leaf_lose_no_contribution():
    import threading

    w = Tensor(np.zeros(200_000), requires_grad=True)
    start = threading.Barrier(4)

    def run():
        start.wait()
        for _ in range(50):
            (w * 1.0).sum().backward()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(w.grad, np.full(w.shape, 200.0))


# --- 3. every fill value goes through the one cast check -----------------------------------------------------------


def _fills():
    import tinygrad_edu.nn.functional as F

    mask = np.array([True, False, False])
    return {"pad": lambda x, v: F.pad(x, (1, 1), value=v), "masked_fill": lambda x, v: x.masked_fill(mask, v)}


@pytest.mark.parametrize("how", ["pad", "masked_fill"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 300, -2.7, 2**63])
def test_a_fill_value_that_an_integer_tensor_cannot_hold_is_refused(how, dtype, value):
    x = Tensor(np.arange(3, dtype=dtype))
    if value == 300 and dtype != np.uint8 or value == -2.7 and dtype != np.uint8:
        return   # these fit (the fraction dropped), as in torch
    with pytest.raises(OverflowError, match=how):
        _fills()[how](x, value)


@pytest.mark.parametrize("how", ["pad", "masked_fill"])
def test_fill_values_match_torch(how):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF

    mask = np.array([True, False, False])
    twin = {"pad": lambda x, v: TF.pad(x, (1, 1), value=v),
            "masked_fill": lambda x, v: x.masked_fill(torch.as_tensor(mask), v)}[how]
    for dtype in (np.int64, np.uint8, np.float32):
        for value in (2.7, -2.7, 300, True, 0, float("nan")):
            x = np.arange(3, dtype=dtype)
            try:
                want = twin(torch.as_tensor(x), value).numpy()
            except RuntimeError:
                with pytest.raises(OverflowError):
                    _fills()[how](Tensor(x), value)
                continue
            got = _fills()[how](Tensor(x), value)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got.data, want)


# --- 4. reductions of an empty batch, as torch ---------------------------------------------------------------------

LOSSES = {
    "cross_entropy": lambda F, x, y, p: F.cross_entropy(x, y),
    "cross_entropy_probabilities": lambda F, x, y, p: F.cross_entropy(x, p),
    "nll_loss": lambda F, x, y, p: F.nll_loss(x, y),
    "mse_loss": lambda F, x, y, p: F.mse_loss(x, p),
    "l1_loss": lambda F, x, y, p: F.l1_loss(x, p),
    "huber_loss": lambda F, x, y, p: F.huber_loss(x, p),
    "binary_cross_entropy": lambda F, x, y, p: F.binary_cross_entropy(x.sigmoid(), p),
    "binary_cross_entropy_with_logits": lambda F, x, y, p: F.binary_cross_entropy_with_logits(x, p),
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_loss_of_an_empty_batch_matches_torch(loss, reduction):
    torch = pytest.importorskip("torch")
    import functools

    import torch.nn.functional as TF

    import tinygrad_edu.nn.functional as F

    def with_reduction(module):
        names = ("cross_entropy", "nll_loss", "mse_loss", "l1_loss", "huber_loss", "binary_cross_entropy",
                 "binary_cross_entropy_with_logits")
        return type("F", (), {name: staticmethod(functools.partial(getattr(module, name), reduction=reduction))
                              for name in names})

    x, y, p = np.zeros((0, 3)), np.zeros(0, np.int64), np.zeros((0, 3))
    tx = torch.tensor(x, requires_grad=True)
    want = LOSSES[loss](with_reduction(TF), tx, torch.tensor(y), torch.tensor(p))
    ours = Tensor(x, requires_grad=True)
    with np.errstate(all="ignore"):
        got = LOSSES[loss](with_reduction(F), ours, y, p)
    assert got.shape == tuple(want.shape)
    np.testing.assert_array_equal(got.data, want.detach().numpy())
    if reduction != "none":
        got.backward()
        want.backward()
        assert ours.grad.shape == tuple(tx.grad.shape) == (0, 3)


TENSOR_REDUCTIONS = {
    "mean()": lambda t: t.mean(), "mean(0)": lambda t: t.mean(0), "mean(1)": lambda t: t.mean(1),
    "sum(0)": lambda t: t.sum(0), "prod(0)": lambda t: t.prod(0), "var(0)": lambda t: t.var(0),
    "std(0)": lambda t: t.std(0), "logsumexp(0)": lambda t: t.logsumexp(0), "logsumexp(1)": lambda t: t.logsumexp(1),
}


@pytest.mark.parametrize("name", sorted(TENSOR_REDUCTIONS))
def test_tensor_reductions_of_an_empty_batch_match_torch(name):
    torch = pytest.importorskip("torch")
    f = TENSOR_REDUCTIONS[name]
    x = np.zeros((0, 3))
    with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")
        got, want = f(Tensor(x)), f(torch.tensor(x))
    assert got.shape == tuple(want.shape)
    np.testing.assert_array_equal(got.data, want.numpy())


# --- 6. a probability target that requires grad is differentiated, as torch ----------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_differentiates_a_probability_target_as_torch(reduction):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF

    import tinygrad_edu.nn.functional as F

    rng = np.random.default_rng(0)
    x, p = rng.normal(size=(5, 4)), rng.dirichlet(np.ones(4), size=5)
    upstream = rng.normal(size=() if reduction != "none" else (5,))
    ours = [Tensor(x, requires_grad=True), Tensor(p, requires_grad=True)]
    theirs = [torch.tensor(x, requires_grad=True), torch.tensor(p, requires_grad=True)]
    F.cross_entropy(*ours, reduction=reduction).backward(upstream)
    TF.cross_entropy(*theirs, reduction=reduction).backward(torch.tensor(upstream))
    for a, b in zip(ours, theirs):
        assert a.grad is not None
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_a_probability_target_alone_requiring_grad_gets_its_gradient():
    import tinygrad_edu.nn.functional as F

    x, p = Tensor(np.array([[1.0, 2.0, 0.5]])), Tensor(np.array([[0.2, 0.5, 0.3]]), requires_grad=True)
    F.cross_entropy(x, p).backward()
    np.testing.assert_allclose(p.grad, -F.log_softmax(x, -1).data)


# --- 5. nan conventions, as torch -------------------------------------------------------------------------------

NAN_CASES = {
    "relu": (lambda t: t.relu(), lambda torch, t: torch.relu(t)),
    "abs": (lambda t: t.abs(), lambda torch, t: t.abs()),
    "elu": (lambda t: __import__("tinygrad_edu.nn.functional").nn.functional.elu(t),
            lambda torch, t: torch.nn.functional.elu(t)),
    "leaky_relu": (lambda t: __import__("tinygrad_edu.nn.functional").nn.functional.leaky_relu(t),
                   lambda torch, t: torch.nn.functional.leaky_relu(t)),
    "clip(0, 1)": (lambda t: t.clip(0, 1), lambda torch, t: t.clip(0, 1)),
    "clip(None, nan)": (lambda t: t.clip(None, float("nan")), lambda torch, t: t.clip(None, float("nan"))),
    "clip(nan, None)": (lambda t: t.clip(float("nan"), None), lambda torch, t: t.clip(float("nan"), None)),
    "clip(-1, nan)": (lambda t: t.clip(-1, float("nan")), lambda torch, t: t.clip(-1, float("nan"))),
    "clamp tensor bounds": (lambda t: t.clamp(Tensor(np.array([0.0, np.nan, 0, 0, 0, 0])), 1.0),
                            lambda torch, t: t.clamp(torch.tensor([0.0, np.nan, 0, 0, 0, 0], dtype=t.dtype),
                                                             torch.tensor(1.0, dtype=t.dtype))),
    "max": (lambda t: t.max(), lambda torch, t: t.max()),
    "max(dim)": (lambda t: t.reshape(2, 3).max(dim=1), lambda torch, t: t.reshape(2, 3).max(dim=1).values),
    "min(dim)": (lambda t: t.reshape(3, 2).min(dim=0), lambda torch, t: t.reshape(3, 2).min(dim=0).values),
    "max_pool2d": (lambda t: t.reshape(1, 1, 2, 3).max_pool2d((2, 1)),
                   lambda torch, t: torch.nn.functional.max_pool2d(t.reshape(1, 1, 2, 3), (2, 1))),
}


@pytest.mark.parametrize("name", sorted(NAN_CASES))
def test_values_and_gradients_at_nan_and_inf_match_torch(name):
    torch = pytest.importorskip("torch")
    ours, theirs = NAN_CASES[name]
    x = np.array([np.nan, -1.0, 0.0, 2.0, np.inf, -np.inf])
    a, b = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with np.errstate(all="ignore"):
        out = ours(a)
        out.sum().backward()
    want = theirs(torch, b)
    want.sum().backward()
    np.testing.assert_array_equal(out.data, want.detach().numpy())
    np.testing.assert_array_equal(a.grad, b.grad.numpy())


# --- 11. valid reductions of size-0 tensors give empty results, as torch ------------------------------------------

EMPTY_CASES = {
    "max(2)": (lambda t: t.max(dim=2), lambda t: t.amax(dim=2)),
    "min(2, keepdim)": (lambda t: t.min(dim=2, keepdim=True), lambda t: t.amin(dim=2, keepdim=True)),
    "max((0, 2))": (lambda t: t.max(dim=(0, 2)), lambda t: t.amax(dim=(0, 2))),
    "softmax(1)": (lambda t: t.softmax(1), lambda t: t.softmax(1)),
    "softmax(2)": (lambda t: t.softmax(2), lambda t: t.softmax(2)),
    "log_softmax(1)": (lambda t: t.log_softmax(1), lambda t: t.log_softmax(1)),
    "log_softmax(-1)": (lambda t: t.log_softmax(-1), lambda t: t.log_softmax(-1)),
}


@pytest.mark.parametrize("name", sorted(EMPTY_CASES))
def test_reductions_of_a_size_0_tensor_over_nonempty_axes_match_torch(name):
    torch = pytest.importorskip("torch")
    ours, theirs = EMPTY_CASES[name]
    x = np.zeros((2, 0, 3))
    a, b = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, want = ours(a), theirs(b)
    assert out.shape == tuple(want.shape)
    out.sum().backward()
    want.sum().backward()
    assert a.grad.shape == tuple(b.grad.shape) == x.shape


@pytest.mark.parametrize("dim", [1, None, (1, 2)])
def test_a_max_over_a_size_0_axis_is_still_refused_as_torch(dim):
    from tinygrad_edu import ShapeError

    with pytest.raises(ShapeError, match="max: tensor of shape \\(2, 0, 3\\) is empty"):
        Tensor(np.zeros((2, 0, 3))).max(dim=dim)


# --- 12. bool ** bool is refused, as torch --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["tensor ** tensor", "tensor ** True", "True ** tensor", "tensor ** array"])
def test_bool_to_a_bool_power_is_refused(how):
    b = Tensor(np.array([True, False]))
    f = {"tensor ** tensor": lambda: b ** b, "tensor ** True": lambda: b ** True, "True ** tensor": lambda: True ** b,
         "tensor ** array": lambda: b ** np.array([True, True])}[how]
    with pytest.raises(TypeError, match=r"pow: .*bool \*\* bool is not defined"):
        f()


def test_bool_with_an_integer_power_is_an_integer_as_torch():
    b = Tensor(np.array([True, False]))
    assert (b ** 2).dtype == np.int64 and (2 ** b).data.tolist() == [2, 1]


# --- 12. a weights file's layers and optimizer state go through the constructors' checks ---------------------------


def _edited_file(tmp_path, edit, optimizer=True):
    import json

    from tinygrad_edu import nn, optim

    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    opt = optim.Adam(model.parameters())
    model(Tensor(np.ones((3, 4)))).sum().backward()
    opt.step()
    path = tmp_path / "m.npz"
    nn.save(model, path, optimizer=opt if optimizer else None)
    arrays = dict(np.load(path))
    edit(arrays, json)
    np.savez(path, **arrays)
    return path


def _set_json(key, change):
    def edit(arrays, json):
        value = json.loads(str(arrays[key]))
        change(value)
        arrays[key] = np.array(json.dumps(value))
    return edit


def test_nn_load_refuses_a_flatten_whose_start_dim_is_not_an_integer(tmp_path):
    from tinygrad_edu import checkpoint, nn

    path = _edited_file(tmp_path, _set_json("__architecture__", lambda a: a["layers"][0].update(start_dim="x")))
    with pytest.raises(checkpoint.CheckpointError, match="Flatten: start_dim must be an integer, got 'x'"):
        nn.load(path)


@pytest.mark.parametrize("change,message", [
    (("lr", -1), "invalid learning rate -1"), (("lr", float("nan")), "invalid learning rate nan"),
    (("betas", [2, 0.5]), "invalid betas"), (("eps", -1.0), "invalid eps"),
    (("weight_decay", -0.5), "invalid weight_decay")])
def test_load_optimizer_state_applies_the_optimizers_own_checks(tmp_path, change, message):
    from tinygrad_edu import checkpoint, nn, optim

    key, value = change
    path = _edited_file(tmp_path, _set_json("optim/meta", lambda m: m["param_groups"][0].update({key: value})))
    opt = optim.Adam(nn.load(path).parameters())
    before = dict(opt.param_groups[0])
    with pytest.raises(checkpoint.CheckpointError, match=message):
        nn.load_optimizer_state(path, opt)
    assert opt.param_groups[0] == before and not opt.state


@pytest.mark.parametrize("step", [1.5, -1, np.array([1, 2])])
def test_load_optimizer_state_refuses_a_step_count_that_is_not_a_whole_number(tmp_path, step):
    from tinygrad_edu import checkpoint, nn, optim

    def edit(arrays, json):
        arrays["optim/state.0.step"] = np.asarray(step)

    path = _edited_file(tmp_path, edit)
    opt = optim.Adam(nn.load(path).parameters())
    with pytest.raises(checkpoint.CheckpointError, match="step count of parameter 0 must be a whole number"):
        nn.load_optimizer_state(path, opt)


# --- 9. an IDX header with a zero dimension and huge others is a DatasetError ---------------------------------------


@pytest.mark.parametrize("dims", [(0, 2**32 - 1, 2**32 - 1), (2**32 - 1, 0, 2**31), (0, 2**20, 2**20)])
def test_an_idx_header_with_a_zero_dimension_and_huge_others_is_refused(tmp_path, dims):
    import struct

    from tinygrad_edu import datasets

    path = tmp_path / "f-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, len(dims)]) + struct.pack(f">{len(dims)}I", *dims))
    with pytest.raises(datasets.DatasetError, match="no data, but its non-zero dimensions describe"):
        datasets.read_idx(path)


def test_an_empty_idx_file_of_ordinary_dimensions_still_reads(tmp_path):
    import struct

    from tinygrad_edu import datasets

    path = tmp_path / "f-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 0, 28, 28))
    assert datasets.read_idx(path).shape == (0, 28, 28)


def test_train_data_dir_with_such_a_header_exits_2_without_a_traceback(tmp_path):
    import gzip
    import struct

    bad = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 0, 2**32 - 1, 2**32 - 1)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(bad))
    r = cli(tmp_path, "train", "--data", str(tmp_path), "--iterations", "1", "--no-download")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "non-zero dimensions" in r.stderr.splitlines()[-1]


# --- 8. evaluate and predict on hostile weights files: exit 2 and one line naming the defect -----------------------


def _tutorial_file(path, architecture=None, change=None):
    from tinygrad_edu import checkpoint, training

    config = training.TrainConfig()
    model = training.TutorialNet.create(config, np.random.default_rng(0), 1, training.PIXELS)
    arch = {**model.architecture(), "dataset": "mnist", "config": config.as_dict(), **(architecture or {})}
    state = {k: np.array(v) for k, v in model.state_dict().items()}
    if change:
        change(state)
    checkpoint.save(path, state, arch)
    return path


def _poison(value):
    def change(state):
        state["W2"][3, 4] = value
    return change


HOSTILE = {
    "config a string": (dict(architecture={"config": "a string"}), "config must be a JSON object"),
    "config an int": (dict(architecture={"config": 3}), "config must be a JSON object"),
    "config a list": (dict(architecture={"config": [1, 2]}), "config must be a JSON object"),
    "model a list": (dict(architecture={"model": [1]}), "unknown model [1]"),
    "model a dict": (dict(architecture={"model": {"a": 1}}), "unknown model {'a': 1}"),
    "inputs.std 1e-320": (dict(architecture={"inputs": {"mean": 0.0, "std": 1e-320}}), "cannot scale pixels"),
    "nan weight": (dict(change=_poison(np.nan)), "W2 holds 1 value that is not finite (nan at (3, 4))"),
    "inf weight": (dict(change=_poison(-np.inf)), "W2 holds 1 value that is not finite (-inf at (3, 4))"),
}


@pytest.mark.parametrize("model", [[1], {"a": 1}, None, 3])
def test_nn_load_names_a_model_that_is_not_a_kind(tmp_path, model):
    from tinygrad_edu import checkpoint, nn

    _tutorial_file(tmp_path / "w.npz", architecture={"model": model})
    with pytest.raises(checkpoint.CheckpointError, match=re.escape(f"unknown model {model!r} in the architecture")):
        nn.load(tmp_path / "w.npz")


@pytest.mark.parametrize("command", ["evaluate", "predict"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_weights_file_is_refused_with_exit_2_and_no_traceback(tmp_path, case, command):
    kwargs, message = HOSTILE[case]
    _tutorial_file(tmp_path / "w.npz", **kwargs)
    r = cli(tmp_path, command, "--weights", "w.npz")
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"tinygrad-edu {command}: error: w.npz: ") and message in r.stderr, r.stderr


def _special(tmp_path, kind):
    path = tmp_path / "w.npz"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        os.symlink({"/proc/self/mem": "/proc/self/mem", "/dev/zero": "/dev/zero"}[kind], path)
    return path


@pytest.mark.parametrize("kind,message", [("fifo", "w.npz is a FIFO (a named pipe), not a weights file"),
                                          ("/dev/zero", "w.npz is a device, not a weights file"),
                                          ("/proc/self/mem", "w.npz: not a readable .npz weights file")])
def test_a_weights_path_that_is_no_regular_file_is_named_for_what_it_is(tmp_path, kind, message):
    from tinygrad_edu import checkpoint, nn

    if not os.path.exists(kind if kind != "fifo" else "/"):
        pytest.skip(f"no {kind} here")
    path = _special(tmp_path, kind)
    with pytest.raises(checkpoint.CheckpointError, match=re.escape(message)):
        nn.load(path)
    r = cli(tmp_path, "evaluate", "--weights", "w.npz", timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr and message in r.stderr, r.stderr


def test_nn_load_still_reads_a_symlink_to_a_weights_file(tmp_path):
    from tinygrad_edu import nn

    _tutorial_file(tmp_path / "real.npz")
    os.symlink(tmp_path / "real.npz", tmp_path / "w.npz")
    assert sorted(nn.load(tmp_path / "w.npz").state_dict()) == ["W1", "W2", "b1", "b2"]


# --- 10. train --plot DIR that cannot be written: the "cannot write the results" error, before training if possible --


def test_train_plot_into_a_folder_that_cannot_be_made_is_refused_before_training(tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "file").write_text("a file where a folder would go\n")
    r = cli(tmp_path, "train", "--iterations", "1", "--quiet", "--plot", "file/pictures")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "--plot picture file/pictures/curves.png: " in r.stderr and "is not a folder" in r.stderr


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="no /proc here")
def test_train_plot_into_proc_is_refused_before_training_even_as_root(tmp_path):
    pytest.importorskip("matplotlib")
    r = cli(tmp_path, "train", "--iterations", "1", "--quiet", "--plot", "/proc/tinygrad-edu-pictures")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip() == ("tinygrad-edu train: error: --plot picture /proc/tinygrad-edu-pictures/curves.png: "
                                "cannot write in /proc")
    assert "train accuracy" not in r.stdout   # refused before training


def test_train_plot_that_fails_after_training_says_it_cannot_write_the_results(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    from tinygrad_edu.cli import main
    from tinygrad_edu.viz import plots

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "pictures" / "curves.png"))

    monkeypatch.setattr(plots, "plot_run", refuse)
    assert main(["train", "--iterations", "1", "--quiet", "--plot", str(tmp_path / "pictures")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinygrad-edu train: error: cannot write the results: [Errno 13] Permission denied")


# --- 12. --force never replaces an output that is not a regular file ------------------------------------------------


def _non_regular(tmp_path, kind):
    path = tmp_path / "out.npz"
    if kind == "symlink":
        (tmp_path / "target.npz").write_text("the user's file\n")
        os.symlink(tmp_path / "target.npz", path)
    elif kind == "dangling symlink":
        os.symlink(tmp_path / "nowhere.npz", path)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        try:
            os.mknod(path, 0o666 | __import__("stat").S_IFCHR, os.makedev(1, 7))   # a /dev/full of our own
        except PermissionError:
            pytest.skip("making a device node needs root")
    return path


@pytest.mark.parametrize("kind,message", [("symlink", "is a symbolic link"), ("dangling symlink", "is a symbolic link"),
                                          ("fifo", "is a FIFO (a named pipe), not a regular file"),
                                          ("device", "is a device, not a regular file")])
def test_write_atomic_refuses_to_replace_what_is_not_a_regular_file(tmp_path, kind, message):
    from tinygrad_edu.files import OutputError, write_atomic

    path = _non_regular(tmp_path, kind)
    before = os.lstat(path)
    with pytest.raises(OutputError, match=re.escape(message)):
        write_atomic(path, b"data")
    after = os.lstat(path)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


@pytest.mark.parametrize("kind", ["symlink", "fifo", "device"])
def test_train_force_refuses_a_save_path_that_is_not_a_regular_file(tmp_path, kind):
    path = _non_regular(tmp_path, kind)
    r = cli(tmp_path, "train", "--iterations", "1", "--quiet", "--save", path.name, "--force")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(f"tinygrad-edu train: error: --save {path.name} is ")
    assert "train accuracy" not in r.stdout
    assert not __import__("stat").S_ISREG(os.lstat(path).st_mode)


def test_a_regular_file_is_still_replaced_with_force(tmp_path):
    from tinygrad_edu.files import write_atomic

    (tmp_path / "f.txt").write_text("old\n")
    write_atomic(tmp_path / "f.txt", b"new\n")
    assert (tmp_path / "f.txt").read_text() == "new\n"


# --- 7. the lab: bad Content-Length, faint ink, a --save folder turned file: 4xx, never 500 -------------------------


@pytest.fixture
def lab_client(tmp_path):
    from tests.test_lab_api import Client, make_lab

    c = Client(make_lab(tmp_path, save=True))
    yield c
    c.close()


@pytest.mark.parametrize("length,status", [("²", 411), ("-1", 411), ("", 411), ("1e3", 411), (" 2 ", 200),
                                           ("9" * 5000, 413), ("0" * 5000 + "2", 200), (str(2**20 + 1), 413)])
def test_a_content_length_that_is_no_size_is_a_4xx(lab_client, length, status):
    got, body, ctype = lab_client.request("POST", "/api/state", b"{}", headers={"Content-Length": length})
    assert ctype == "application/json"
    assert got == status, body


def test_a_drawing_of_ink_too_faint_to_resample_is_no_ink(lab_client):
    from tinygrad_edu.lab.digits import mnist_style

    alpha = np.zeros((200, 200))
    alpha[0, 0] = alpha[199, 199] = 5e-324   # averaged down 10×, the ink underflows to 0: its mass is 0
    np.testing.assert_array_equal(mnist_style(alpha), np.zeros((28, 28)))
    status, body = lab_client.post("/api/forward", {"drawing": {"width": 200, "height": 200,
                                                                "alpha": alpha.reshape(-1).tolist()}})
    assert status == 200, body
    assert body["image"] == [0.0] * 784


def test_save_after_the_save_folder_became_a_file_is_a_4xx(tmp_path):
    from tests.test_lab_api import Client, make_lab
    from tinygrad_edu.lab.session import Lab

    made = make_lab(tmp_path)
    c = Client(Lab(made.net, _tiny(), save_path=tmp_path / "out" / "w.npz",
                   source="test"))
    try:
        (tmp_path / "out").write_text("a file where the --save folder was\n")
        status, body = c.post("/api/save")
        assert status == 409 and body["error"].startswith(f"cannot write the weights to {tmp_path}"), body
    finally:
        made.close()
        c.close()


def _tiny():
    from tests.test_lab_api import tiny_mnist

    return tiny_mnist()


# --- 13. the lab under load: a deep backlog, bounded threads, idle connections closed ------------------------------


class _Served:
    """A LabServer on an ephemeral loopback port, with the given idle timeout and thread bound."""

    def __init__(self, tmp_path, **kwargs):
        import threading

        from tests.test_lab_api import make_lab
        from tinygrad_edu.lab import server as lab_server

        self.lab = make_lab(tmp_path)
        self.server = lab_server.LabServer(self.lab, "127.0.0.1", 0, **kwargs)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def request(self, method, path, body=None, content_type="application/json"):
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            headers = {"Host": f"127.0.0.1:{self.port}", "Content-Type": content_type}
            conn.request(method, path, body=None if body is None else json.dumps(body).encode(), headers=headers)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def close(self):
        self.lab.close()
        self.server.shutdown()
        self.server.server_close()



def test_400_mixed_concurrent_requests_are_all_answered(tmp_path):
    import threading

    served = _Served(tmp_path, idle_timeout=5.0)
    image = (served.lab.X_test[0].reshape(-1) / 255).tolist()
    mix = [("GET", "/", None, "", 200), ("POST", "/api/state", {}, "application/json", 200),
           ("POST", "/api/forward", {"image": image}, "application/json", 200),
           ("POST", "/api/nothing", {}, "application/json", 404), ("POST", "/api/state", {}, "text/plain", 415)]
    results, start = [], threading.Barrier(40)

    def client(k):
        start.wait()
        for i in range(10):
            method, path, body, ctype, want = mix[(k + i) % len(mix)]
            try:
                status, _ = served.request(method, path, body, ctype)
            except OSError as e:   # a reset or a refused connection: what the backlog of 5 gave
                status = f"{type(e).__name__}: {e}"
            results.append((status, want))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(40)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    finally:
        served.close()
    assert len(results) == 400
    assert [r for r in results if r[0] != r[1]] == []


def test_idle_connections_are_closed_and_release_their_threads(tmp_path):
    import socket

    served = _Served(tmp_path, idle_timeout=0.5)
    sockets = [socket.create_connection(("127.0.0.1", served.port), timeout=20) for _ in range(50)]
    try:
        for s in sockets[25:]:   # half of them after a whole request, kept alive (HTTP/1.1), then silent
            s.sendall(f"POST /api/state HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\nContent-Type: application/json"
                      "\r\nContent-Length: 2\r\n\r\n{}".encode())
        for s in sockets:
            data = b""
            while chunk := s.recv(65536):   # the server closes it: recv gives b"" (a timeout here fails the test)
                data += chunk
            assert data == b"" or data.startswith(b"HTTP/1.1 200 ")
        assert served.request("POST", "/api/state", {})[0] == 200   # and it still serves
    finally:
        for s in sockets:
            s.close()
        served.close()


def test_the_number_of_threads_serving_at_once_is_bounded(tmp_path, monkeypatch):
    import threading

    from tinygrad_edu.lab import server as lab_server

    busy, most, lock = [0], [0], threading.Lock()
    handle = lab_server.Handler.handle

    def counted(self):
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        try:
            handle(self)
        finally:
            with lock:
                busy[0] -= 1

    monkeypatch.setattr(lab_server.Handler, "handle", counted)
    served = _Served(tmp_path, idle_timeout=5.0, max_threads=3)
    statuses, start = [], threading.Barrier(30)

    def client():
        start.wait()
        statuses.append(served.request("POST", "/api/state", {})[0])

    threads = [threading.Thread(target=client) for _ in range(30)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    finally:
        served.close()
    assert statuses == [200] * 30 and 1 <= most[0] <= 3


def test_the_server_refuses_a_meaningless_timeout_or_thread_bound(tmp_path):
    from tests.test_lab_api import make_lab
    from tinygrad_edu.lab import server as lab_server

    for kwargs in ({"idle_timeout": 0}, {"max_threads": 0}):
        with pytest.raises(ValueError, match="idle_timeout must be > 0 and max_threads ≥ 1"):
            lab_server.LabServer(make_lab(tmp_path), "127.0.0.1", 0, **kwargs)


# --- 12. lab --host: no spelling binds every interface silently -----------------------------------------------------


@pytest.mark.parametrize("host,message", [("", "argument --host: expected an address to listen on, got ''"),
                                          ("0", "argument --host: '0' means 0.0.0.0, every interface")])
def test_lab_host_that_silently_means_every_interface_is_refused(tmp_path, host, message):
    r = cli(tmp_path, "lab", "--host", host, "--no-browser", "--port", "0", timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr and message in r.stderr, r.stderr


def test_lab_on_every_interface_says_so():
    from tinygrad_edu.cli.lab import _host, is_unspecified

    assert _host("0.0.0.0") == "0.0.0.0" and _host("::") == "::" and _host("127.0.0.1") == "127.0.0.1"
    assert is_unspecified("0.0.0.0") and is_unspecified("::") and not is_unspecified("localhost")


def test_a_body_that_stops_arriving_gets_a_408_after_the_idle_timeout(tmp_path):
    import socket

    served = _Served(tmp_path, idle_timeout=0.5)
    try:
        with socket.create_connection(("127.0.0.1", served.port), timeout=20) as s:
            s.sendall(f"POST /api/state HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\nContent-Type: application/json"
                      "\r\nContent-Length: 10\r\n\r\n{}".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 408 "), data[:80]
        assert b'"the body did not arrive: nothing came for 0.5 s"' in data
    finally:
        served.close()
