"""Tests of tinygrad_edu.nn: the parameter walk, layers against gradcheck and torch.nn, losses, Dropout, save/load."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_edu.nn.functional as F
from tinygrad_edu import Tensor, checkpoint, gradcheck, init, nn, optim
from tinygrad_edu.autograd import ShapeError
from tinygrad_edu.mlp import MLP

RNG = np.random.default_rng(0)


def rand(*shape):
    return RNG.standard_normal(shape)


# --- the parameter walk --------------------------------------------------------------------------------------------


class Net(nn.Module):
    def __init__(self):
        self.layers = nn.Sequential(nn.Linear(4, 3, seed=0), nn.ReLU(), nn.Linear(3, 2, seed=1))
        self.heads = [nn.Linear(2, 2, seed=2), nn.Linear(2, 1, seed=3)]
        self.extra = {"scale": nn.Parameter(np.ones(1)), "offset": Tensor(np.zeros(1), requires_grad=True)}
        self.frozen = nn.Parameter(np.ones(2), requires_grad=False)
        self.constant = Tensor(np.ones(2))            # not a parameter: does not require grad
        self.name = "net"

    def forward(self, x):
        return self.heads[1](self.heads[0](self.layers(x))) * self.extra["scale"] + self.extra["offset"]


def test_named_parameters_walk_attributes_lists_and_dicts_in_torch_naming():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "extra.scale", "extra.offset", "frozen",
        "layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias",
        "heads.0.weight", "heads.0.bias", "heads.1.weight", "heads.1.bias"]
    assert [n for n, _ in net.named_modules()] == ["", "layers", "layers.0", "layers.1", "layers.2", "heads.0",
                                                   "heads.1"]
    assert net.layers[0].weight.shape == (3, 4) and net.layers[-1].bias.shape == (2,)


def test_parameter_names_and_shapes_match_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Dropout(0.1), nn.Linear(4, 3), nn.Sigmoid())
    theirs = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Dropout(0.1),
                                 torch.nn.Linear(4, 3), torch.nn.Sigmoid())
    assert [(n, p.shape) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    assert repr(ours) == repr(theirs).replace(", inplace=False", "")


def test_tied_parameter_is_listed_once_and_accumulates_both_gradients():
    a, b = nn.Linear(3, 3, seed=0, dtype=np.float64), nn.Linear(3, 3, seed=1, dtype=np.float64)
    b.weight = a.weight                                  # tied: one Parameter in two modules
    model = nn.Sequential(a, nn.Tanh(), b)
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.bias"]
    assert sum(p is a.weight for p in model.parameters()) == 1
    x = rand(5, 3)
    model(x).sum().backward()
    # the same gradient from an untied copy: the two uses' contributions, added
    W1 = Tensor(a.weight.data.copy(), requires_grad=True)
    W2 = Tensor(a.weight.data.copy(), requires_grad=True)
    F.linear(F.linear(x, W1, a.bias.detach()).tanh(), W2, b.bias.detach()).sum().backward()
    np.testing.assert_allclose(a.weight.grad, W1.grad + W2.grad, rtol=1e-12)


def test_a_module_used_twice_is_walked_once():
    lin = nn.Linear(2, 2, seed=0)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert [n for n, _ in model.named_modules()] == ["", "0", "1"]


def test_zero_grad_train_eval():
    net = Net()
    net(rand(2, 4)).sum().backward()
    assert net.layers[0].weight.grad is not None
    net.zero_grad(set_to_none=False)
    assert not net.layers[0].weight.grad.any()
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert net.eval() is net and not any(m.training for m in net.modules())
    assert all(m.training for m in net.train().modules())


def test_state_dict_round_trip_copies_in_place():
    src, dst = MLP((6, 5, 3), seed=0), MLP((6, 5, 3), seed=1)
    sd = src.state_dict()
    assert list(sd) == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"]
    weight = dst.layers[0].weight
    assert dst.load_state_dict(sd) == ([], [])
    assert dst.layers[0].weight is weight                # updated in place: optimizers stay bound
    for name, p in dst.named_parameters():
        np.testing.assert_array_equal(p.data, sd[name])
    sd["layers.0.bias"][:] = 7                           # a snapshot: editing it leaves the model alone
    assert not (src.layers[0].bias.data == 7).any()


def test_load_state_dict_errors():
    model = MLP((6, 5, 3), seed=0)
    sd = model.state_dict()
    with pytest.raises(ShapeError, match=r"layers.0.weight has shape \(5, 6\) in the model but \(5, 7\)"):
        model.load_state_dict({**sd, "layers.0.weight": np.zeros((5, 7))})
    with pytest.raises(RuntimeError, match=r"missing \['layers.2.bias'\], unexpected \['other'\]"):
        model.load_state_dict({**{k: v for k, v in sd.items() if k != "layers.2.bias"}, "other": np.zeros(1)})
    assert model.load_state_dict({"layers.2.bias": np.ones(3)}, strict=False).missing_keys == [
        "layers.0.weight", "layers.0.bias", "layers.2.weight"]
    np.testing.assert_array_equal(model.layers[2].bias.data, np.ones(3))


# --- Linear ---------------------------------------------------------------------------------------------------------


def test_linear_default_init_is_torchs_from_the_init_module():
    lin = nn.Linear(784, 256, seed=5)
    rng = np.random.default_rng(5)
    W, b = init.linear("torch", 784, 256, rng, np.float32)
    np.testing.assert_array_equal(lin.weight.data, W)
    np.testing.assert_array_equal(lin.bias.data, b)
    assert lin.weight.dtype == np.float32 and lin.weight.shape == (256, 784) and lin.bias.shape == (256,)
    bound = 1 / np.sqrt(784)
    assert np.abs(lin.weight.data).max() <= bound and np.abs(lin.weight.data).max() > 0.99 * bound
    assert abs(lin.weight.data.std() - bound / np.sqrt(3)) < 1e-3   # U(−a, a) has std a/√3
    for name in init.INITS:
        W, b = init.linear(name, 20, 30, np.random.default_rng(1), np.float64)
        lin = nn.Linear(20, 30, dtype=np.float64, init=name, seed=1)
        np.testing.assert_array_equal(lin.weight.data, W)
        np.testing.assert_array_equal(lin.bias.data, b)
    assert nn.Linear(3, 2, bias=False).bias is None
    with pytest.raises(ValueError, match="unknown init 'kaiming'; choose one of tutorial, he, xavier, torch"):
        nn.Linear(3, 2, init="kaiming")


def test_linear_input_error_names_the_features():
    with pytest.raises(ShapeError, match=r"Linear\(in_features=784\).*got an input of shape \(128, 785\)"):
        nn.Linear(784, 10)(np.zeros((128, 785), np.float32))


@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.booleans())
def test_linear_passes_gradcheck(m, n_in, n_out, bias):
    lin = nn.Linear(n_in, n_out, bias=bias, dtype=np.float64, seed=0)
    inputs = [Tensor(rand(m, n_in), requires_grad=True), lin.weight] + ([lin.bias] if bias else [])

    def f(x, W, b=None):
        lin.weight, lin.bias = W, b
        return lin(x)

    assert gradcheck(f, inputs)


def test_sequential_passes_gradcheck():
    model = nn.Sequential(nn.Linear(4, 5, dtype=np.float64, seed=0), nn.Tanh(),
                          nn.Linear(5, 3, dtype=np.float64, seed=1), nn.Sigmoid())
    layers = [model[0], model[2]]
    params = [p for lin in layers for p in (lin.weight, lin.bias)]

    def f(x, *ps):
        for lin, W, b in zip(layers, ps[::2], ps[1::2]):
            lin.weight, lin.bias = W, b
        return model(x)

    assert gradcheck(f, [Tensor(rand(3, 4), requires_grad=True), *params])


def test_linear_matches_torch_outputs_and_gradients():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.Linear(7, 5, dtype=torch.float64)
    ours = nn.Linear(7, 5, dtype=np.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x, w = rand(4, 7), rand(4, 5)
    tx = torch.tensor(x, requires_grad=True)
    out_t = theirs(tx)
    (out_t * torch.tensor(w)).sum().backward()
    ox = Tensor(x, requires_grad=True)
    out = ours(ox)
    (out * w).sum().backward()
    # NOTE: BLAS may sum in another order than torch; an entry near 0 by cancellation has a large relative
    # error but an absolute one of a few ulps of the terms (|terms| ≤ 7), hence atol beside rtol.
    tol = dict(rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), **tol)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), **tol)
    np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), **tol)
    np.testing.assert_allclose(ox.grad, tx.grad.numpy(), **tol)


def test_flatten():
    x = Tensor(rand(2, 3, 4), requires_grad=True)
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(0, 1)(x).shape == (6, 4)
    assert nn.Flatten()(np.zeros((5, 28, 28), np.uint8)).shape == (5, 784)
    assert gradcheck(lambda t: nn.Flatten()(t), [x])


# --- losses ---------------------------------------------------------------------------------------------------------


def log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


@given(st.integers(1, 5), st.integers(2, 5), st.data())
def test_cross_entropy_formula_and_gradcheck(m, c, data):
    z = data.draw(hnp.arrays(np.float64, (m, c), elements=st.floats(-20, 20)))
    y = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=m, max_size=m)))
    per_example = -log_softmax(z)[np.arange(m), y]
    logits = Tensor(z, requires_grad=True)
    np.testing.assert_allclose(F.cross_entropy(logits, y).item(), per_example.mean(), rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(logits, y, reduction="sum").item(), per_example.sum(), rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(logits, y, reduction="none").data, per_example, rtol=1e-12)
    probs = np.eye(c)[y] * 0.9 + 0.1 / c
    np.testing.assert_allclose(F.cross_entropy(logits, probs).item(), -(probs * log_softmax(z)).sum(1).mean(),
                               rtol=1e-12)
    for reduction in ("mean", "sum", "none"):
        assert gradcheck(lambda t, r=reduction: F.cross_entropy(t, y, reduction=r), [logits])
        assert gradcheck(lambda t, r=reduction: F.cross_entropy(t, probs, reduction=r), [logits])


def test_mse_loss_formula_gradcheck_and_shape_error():
    a, b = Tensor(rand(3, 2), requires_grad=True), Tensor(rand(3, 2), requires_grad=True)
    diff = a.data - b.data
    np.testing.assert_allclose(F.mse_loss(a, b).item(), (diff ** 2).mean(), rtol=1e-14)
    np.testing.assert_allclose(F.mse_loss(a, b, reduction="sum").item(), (diff ** 2).sum(), rtol=1e-14)
    np.testing.assert_allclose(F.mse_loss(a, b, reduction="none").data, diff ** 2, rtol=1e-14)
    for reduction in ("mean", "sum", "none"):
        assert gradcheck(lambda x, y, r=reduction: F.mse_loss(x, y, reduction=r), [a, b])
    with pytest.raises(ShapeError, match=r"mse_loss: input \(3, 1\) and target \(3,\) must have the same shape"):
        F.mse_loss(Tensor(np.zeros((3, 1))), np.zeros(3))
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none', got 'avg'"):
        F.mse_loss(a, b, reduction="avg")


def test_losses_match_torch():
    torch = pytest.importorskip("torch")
    z, y, t = rand(6, 4), RNG.integers(0, 4, 6), rand(6, 4)
    for reduction in ("mean", "sum", "none"):
        np.testing.assert_allclose(F.cross_entropy(Tensor(z), y, reduction=reduction).data,
                                   torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(y),
                                                                     reduction=reduction).numpy(), rtol=1e-12)
        np.testing.assert_allclose(F.mse_loss(Tensor(z), t, reduction=reduction).data,
                                   torch.nn.functional.mse_loss(torch.tensor(z), torch.tensor(t),
                                                                reduction=reduction).numpy(), rtol=1e-12)


# --- Dropout --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_scales_survivors_and_is_identity_in_eval(p):
    drop = nn.Dropout(p, seed=0)
    x = Tensor(np.ones((200, 100)), requires_grad=True)
    out = drop(x)
    kept = out.data != 0
    np.testing.assert_allclose(out.data[kept], 1 / (1 - p), rtol=1e-15)   # inverted dropout
    assert abs(kept.mean() - (1 - p)) < 4 * np.sqrt(p * (1 - p) / kept.size)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, out.data)                       # ∂/∂x = mask/(1 − p)
    assert drop.eval()(x) is x


def test_dropout_edges_and_errors():
    x = Tensor(np.ones(10))
    assert nn.Dropout(0.0)(x) is x
    assert not nn.Dropout(1.0)(x).data.any()
    np.testing.assert_array_equal(nn.Dropout(0.5, seed=3)(x).data, nn.Dropout(0.5, seed=3)(x).data)
    with pytest.raises(ValueError, match=r"Dropout: p must be a probability in \[0, 1\], got 1.5"):
        nn.Dropout(1.5)
    with pytest.raises(TypeError, match="argument 1 is a function, not a Module"):
        nn.Sequential(nn.ReLU(), F.relu)


# --- saving and loading ---------------------------------------------------------------------------------------------


def test_save_and_load_rebuild_the_model(tmp_path):
    for model in (MLP((6, 8, 5, 3), dropout=0.2, dtype=np.float64, seed=0),
                  nn.Sequential(nn.Flatten(), nn.Linear(6, 4, init="he", seed=1), nn.Tanh(),
                                nn.Dropout(0.3), nn.Linear(4, 2, bias=False, seed=2))):
        path = nn.save(model, tmp_path / "m.npz")
        loaded = nn.load(path)
        assert type(loaded) is type(model) and repr(loaded) == repr(model)
        assert loaded.architecture() == model.architecture()
        for (n1, p1), (n2, p2) in zip(model.named_parameters(), loaded.named_parameters()):
            assert n1 == n2 and p1.dtype == p2.dtype
            np.testing.assert_array_equal(p1.data, p2.data)
        x = rand(3, 6)
        np.testing.assert_array_equal(model.eval()(x).data, loaded.eval()(x).data)
    arrays, arch = checkpoint.load(tmp_path / "m.npz")
    assert arch["model"] == "sequential" and arch["layers"][1] == {
        "type": "Linear", "in_features": 6, "out_features": 4, "bias": True, "dtype": "float32", "init": "he"}


def test_load_refuses_files_that_do_not_fit(tmp_path):
    model = MLP((6, 5, 3), seed=0)
    arrays = model.state_dict()
    arrays["layers.0.weight"] = np.zeros((5, 7), np.float32)
    checkpoint.save(tmp_path / "bad.npz", arrays, model.architecture())
    with pytest.raises(checkpoint.CheckpointError, match=r"layers.0.weight is float32 \(5, 7\), the architecture says"):
        nn.load(tmp_path / "bad.npz")
    checkpoint.save(tmp_path / "odd.npz", {}, {"model": "transformer"})
    with pytest.raises(checkpoint.CheckpointError, match="unknown model 'transformer'"):
        nn.load(tmp_path / "odd.npz")

    class Custom(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.ones(2))

    with pytest.raises(NotImplementedError, match="Custom does not describe its architecture"):
        nn.save(Custom(), tmp_path / "c.npz")
    assert not (tmp_path / "c.npz").exists()


def test_optimizer_and_schedule_state_resume_exactly(tmp_path):
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((8, 6)).astype(np.float32), rng.integers(0, 3, 8)) for _ in range(6)]

    def train(model, opt, sched, part):
        for x, y in part:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            sched.step()

    def fresh(model):
        opt = optim.Adam(model.parameters(), lr=0.01)
        return opt, optim.CosineAnnealingLR(opt, T_max=6)

    straight = MLP((6, 5, 3), seed=0)
    train(straight, *fresh(straight), batches)

    first = MLP((6, 5, 3), seed=0)
    opt, sched = fresh(first)
    train(first, opt, sched, batches[:3])
    nn.save(first, tmp_path / "ckpt.npz", opt, sched)
    arrays, _ = checkpoint.load(tmp_path / "ckpt.npz")
    assert "optim/state.0.exp_avg" in arrays and "optim/meta" in arrays

    resumed = nn.load(tmp_path / "ckpt.npz")
    opt2 = optim.Adam(resumed.parameters(), lr=0.01)
    sched2 = optim.CosineAnnealingLR(opt2, T_max=6)
    nn.load_optimizer_state(tmp_path / "ckpt.npz", opt2, sched2)
    assert sched2.last_epoch == 3 and opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    train(resumed, opt2, sched2, batches[3:])
    for p, q in zip(straight.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(p.data, q.data)

    with pytest.raises(checkpoint.CheckpointError, match="holds Adam state, not SGD"):
        nn.load_optimizer_state(tmp_path / "ckpt.npz", optim.SGD(resumed.parameters()))
    nn.save(first, tmp_path / "weights_only.npz")
    with pytest.raises(checkpoint.CheckpointError, match="holds no optimizer state"):
        nn.load_optimizer_state(tmp_path / "weights_only.npz", opt2)
