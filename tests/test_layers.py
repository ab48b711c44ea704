"""BatchNorm1d/2d, LayerNorm, Embedding and buffers in state_dict, step by step against PyTorch; the losses' edges."""
import json

import numpy as np
import pytest

import tinygrad_edu.nn.functional as F
from tinygrad_edu import ShapeError, Tensor, checkpoint, nn, ops, optim

torch = pytest.importorskip("torch")

EXACT = dict(rtol=1e-10, atol=1e-12)


def to_torch(state):
    return {k: torch.from_numpy(np.array(v)) for k, v in state.items()}


# --- BatchNorm ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ours, theirs, shape", [(nn.BatchNorm1d, torch.nn.BatchNorm1d, (8, 3)),
                                                 (nn.BatchNorm1d, torch.nn.BatchNorm1d, (6, 3, 5)),
                                                 (nn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 5, 6))])
@pytest.mark.parametrize("momentum", [0.1, 0.7, None])
def test_batch_norm_matches_torch_step_by_step(ours, theirs, shape, momentum):
    rng = np.random.default_rng(0)
    m, t = ours(3, momentum=momentum, dtype=np.float64), theirs(3, momentum=momentum, dtype=torch.float64)
    m.weight.data[:], m.bias.data[:] = rng.normal(size=3), rng.normal(size=3)
    t.load_state_dict(to_torch(m.state_dict()))
    for step in range(4):   # training: batch statistics, running statistics after each batch, gradients
        x = rng.normal(size=shape) * 3 + 2
        X, XT = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, t_out = m(X), t(XT)
        np.testing.assert_allclose(out.data, t_out.detach().numpy(), **EXACT)
        g = rng.normal(size=out.shape)
        out.backward(g)
        t_out.backward(torch.tensor(g))
        for name, a, b in (("input", X.grad, XT.grad), ("weight", m.weight.grad, t.weight.grad),
                           ("bias", m.bias.grad, t.bias.grad)):
            np.testing.assert_allclose(a, b.numpy(), **EXACT, err_msg=f"step {step}: ∂L/∂{name}")
        m.zero_grad()
        t.zero_grad()
        theirs_state = t.state_dict()
        for k, v in m.state_dict().items():
            np.testing.assert_allclose(v, theirs_state[k].numpy(), rtol=1e-13, err_msg=f"step {step}: {k}")
    assert int(m.num_batches_tracked.data) == 4
    m.eval()
    t.eval()
    x = rng.normal(size=shape)
    X, XT = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, t_out = m(X), t(XT)
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), **EXACT)
    out.backward(np.ones(out.shape))
    t_out.sum().backward()
    np.testing.assert_allclose(X.grad, XT.grad.numpy(), **EXACT)
    before = m.state_dict()
    m(X)
    assert all(np.array_equal(before[k], v) for k, v in m.state_dict().items()), "eval() changed the buffers"


def test_batch_norm_normalises_with_the_biased_and_tracks_the_unbiased_variance():
    x = np.array([[1.0], [3.0]])   # mean 2, biased variance 1, unbiased 2
    bn = nn.BatchNorm1d(1, eps=0.0, momentum=1.0, dtype=np.float64)
    assert np.array_equal(bn(x).data, [[-1.0], [1.0]])
    assert bn.running_mean.data.tolist() == [2.0] and bn.running_var.data.tolist() == [2.0]
    bn.eval()
    assert np.allclose(bn(np.array([[2.0 + 2 ** 0.5]])).data, [[1.0]])


def test_batch_norm_without_running_stats_or_affine_matches_torch():
    rng = np.random.default_rng(1)
    m = nn.BatchNorm2d(2, affine=False, track_running_stats=False, dtype=np.float64)
    t = torch.nn.BatchNorm2d(2, affine=False, track_running_stats=False, dtype=torch.float64)
    assert m.state_dict() == {} and list(t.state_dict()) == [] and list(m.parameters()) == []
    m.eval()
    t.eval()
    x = rng.normal(size=(3, 2, 4, 4))
    np.testing.assert_allclose(m(x).data, t(torch.tensor(x)).numpy(), **EXACT)   # eval: still the batch's


@pytest.mark.parametrize("layer, theirs", [(nn.BatchNorm1d(5), torch.nn.BatchNorm1d(5)),
                                           (nn.BatchNorm2d(4, affine=False), torch.nn.BatchNorm2d(4, affine=False)),
                                           (nn.LayerNorm((3, 4)), torch.nn.LayerNorm((3, 4))),
                                           (nn.LayerNorm(7, elementwise_affine=False),
                                            torch.nn.LayerNorm(7, elementwise_affine=False)),
                                           (nn.BatchNorm1d(2, bias=False), torch.nn.BatchNorm1d(2, bias=False)),
                                           (nn.LayerNorm(3, bias=False), torch.nn.LayerNorm(3, bias=False)),
                                           (nn.Embedding(10, 3), torch.nn.Embedding(10, 3))])
def test_state_dict_keys_shapes_and_dtypes_are_torchs(layer, theirs):
    ours = layer.state_dict()
    assert list(ours) == list(theirs.state_dict())
    for k, v in theirs.state_dict().items():
        assert ours[k].shape == tuple(v.shape) and ours[k].dtype == v.numpy().dtype, k
    assert [n for n, _ in layer.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in layer.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert repr(layer) == repr(theirs)


def test_buffers_are_state_but_not_parameters():
    model = nn.Sequential(nn.Linear(4, 3, seed=0), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2, seed=1))
    t = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    assert list(model.state_dict()) == list(t.state_dict())
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in model.named_buffers()] == ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    assert not any(b.requires_grad for b in model.buffers())
    state = {k: v + 1 for k, v in model.state_dict().items()}
    running_var = model[1].running_var
    model.load_state_dict(state)   # in place, buffers too
    assert model[1].running_var is running_var and np.array_equal(running_var.data, np.full(3, 2.0))
    assert int(model[1].num_batches_tracked.data) == 1
    t.load_state_dict(to_torch(model.state_dict()))   # the port: torch takes our state_dict as it is


def test_batch_norm_errors_name_the_layer_and_the_shapes():
    with pytest.raises(ShapeError, match=r"BatchNorm1d\(16\): expects an input N×16 or N×16×L \(channels on axis "
                                         r"1\), got shape \(8, 10\)"):
        nn.BatchNorm1d(16)(np.zeros((8, 10)))
    with pytest.raises(ShapeError, match=r"BatchNorm2d\(3\): expects an input N×3×H×W .*got shape \(2, 3, 4\)"):
        nn.BatchNorm2d(3)(np.zeros((2, 3, 4)))
    with pytest.raises(ShapeError, match=r"BatchNorm1d\(4\): batch_norm: training needs more than one value per "
                                         r"channel .*input \(1, 4\)"):
        nn.BatchNorm1d(4)(np.zeros((1, 4)))
    bn = nn.BatchNorm1d(4).eval()
    assert bn(np.ones((1, 4))).shape == (1, 4)   # eval: one example is fine
    with pytest.raises(ValueError, match="batch_norm: evaluation .* running_mean and running_var, but they are None"):
        F.batch_norm(Tensor(np.ones((2, 4))), None, None)
    with pytest.raises(ShapeError, match=r"batch_norm: weight must hold one value per channel of input \(2, 4\), "
                                         r"i.e. shape \(4,\), got \(3,\)"):
        F.batch_norm(Tensor(np.ones((2, 4))), None, None, Tensor(np.ones(3)), training=True)
    with pytest.raises(ValueError, match="BatchNorm2d: num_features must be an integer ≥ 1, got 0"):
        nn.BatchNorm2d(0)
    with pytest.raises(ValueError, match="BatchNorm1d: eps must be a number ≥ 0"):
        nn.BatchNorm1d(3, eps=-1)


def test_batch_norm_trains_under_an_optimizer_and_keeps_float32():
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm1d(3)
    opt = optim.SGD(bn.parameters(), lr=0.5)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    target = x * 0 + np.array([1.0, -2.0, 0.5], np.float32)   # a shift only: bias learns it, weight → 0
    for _ in range(50):
        loss = F.mse_loss(bn(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.dtype == np.float32 and bn.running_mean.dtype == np.float32 and loss.item() < 1e-3
    np.testing.assert_allclose(bn.bias.data, [1.0, -2.0, 0.5], atol=1e-2)


# --- LayerNorm and Embedding -------------------------------------------------------------------------------


@pytest.mark.parametrize("normalized", [5, (4, 5)])
def test_layer_norm_matches_torch(normalized):
    rng = np.random.default_rng(2)
    m, t = nn.LayerNorm(normalized, dtype=np.float64), torch.nn.LayerNorm(normalized, dtype=torch.float64)
    m.weight.data[...] = rng.normal(size=m.weight.shape)
    m.bias.data[...] = rng.normal(size=m.bias.shape)
    t.load_state_dict(to_torch(m.state_dict()))
    x = rng.normal(size=(3, 4, 5)) * 2
    for mode in ("train", "eval"):   # the same in both
        getattr(m, mode)()
        getattr(t, mode)()
        X, XT = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, t_out = m(X), t(XT)
        np.testing.assert_allclose(out.data, t_out.detach().numpy(), **EXACT)
        g = rng.normal(size=out.shape)
        out.backward(g)
        t_out.backward(torch.tensor(g))
        np.testing.assert_allclose(X.grad, XT.grad.numpy(), **EXACT)
        np.testing.assert_allclose(m.weight.grad, t.weight.grad.numpy(), **EXACT)
        np.testing.assert_allclose(m.bias.grad, t.bias.grad.numpy(), **EXACT)
        m.zero_grad()
        t.zero_grad()


def test_layer_norm_errors():
    with pytest.raises(ShapeError, match=r"LayerNorm\(\(4, 5\)\): the input's last axes must be \(4, 5\), got shape "
                                         r"\(3, 5, 4\)"):
        nn.LayerNorm((4, 5))(np.zeros((3, 5, 4)))
    with pytest.raises(ShapeError, match=r"layer_norm: the input's last axes must be normalized_shape \(6,\), got "
                                         r"input \(2, 5\)"):
        F.layer_norm(Tensor(np.zeros((2, 5))), 6)
    with pytest.raises(ValueError, match="LayerNorm: normalized_shape must be an integer ≥ 1, got 0"):
        nn.LayerNorm(0)


def test_embedding_matches_torch_and_adds_the_gradients_of_repeated_indices():
    m = nn.Embedding(6, 4, dtype=np.float64, seed=0)
    t = torch.nn.Embedding(6, 4, dtype=torch.float64)
    t.load_state_dict(to_torch(m.state_dict()))
    idx = np.array([[0, 5, 5], [2, 5, 0]])
    out, t_out = m(idx), t(torch.from_numpy(idx))
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out.data, t_out.detach().numpy())
    g = np.arange(24.0).reshape(2, 3, 4)
    out.backward(g)
    t_out.backward(torch.tensor(g))
    np.testing.assert_array_equal(m.weight.grad, t.weight.grad.numpy())
    np.testing.assert_array_equal(m.weight.grad[5], g[0, 1] + g[0, 2] + g[1, 1])
    assert not m.weight.grad[[1, 3, 4]].any()
    assert m(Tensor(np.array(3))).shape == (4,)   # a 0-d index picks one row


def test_embedding_init_is_standard_normal_and_seeded():
    w = nn.Embedding(2000, 50, seed=7).weight.data
    assert w.dtype == np.float32
    assert np.array_equal(w, nn.Embedding(2000, 50, seed=7).weight.data)
    assert np.array_equal(w, np.random.default_rng(7).standard_normal((2000, 50)).astype(np.float32))
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1) < 0.01


def test_embedding_errors_name_the_layer_and_the_range():
    emb = nn.Embedding(10, 3)
    with pytest.raises(IndexError, match=r"Embedding\(10, 3\): index 10 at position \(1, 0\) is out of range for "
                                         r"10 embeddings \(0..9\)"):
        emb(np.array([[1, 2], [10, 3]]))
    with pytest.raises(IndexError, match=r"Embedding\(10, 3\): index -1 at position 0"):
        emb(np.array([-1]))
    with pytest.raises(TypeError, match=r"Embedding\(10, 3\): indices must be integers, got dtype float64"):
        emb(np.array([1.0]))
    with pytest.raises(IndexError, match=r"embedding: index 7 at position 0 is out of range for 4 embeddings"):
        F.embedding(np.array([7]), Tensor(np.zeros((4, 2))))


# --- saving and loading ------------------------------------------------------------------------------------


def model_with_every_layer(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Embedding(10, 8, seed=rng), nn.LayerNorm(8), nn.Flatten(), nn.Linear(24, 6, seed=rng),
                         nn.BatchNorm1d(6, momentum=None), nn.ReLU(), nn.Linear(6, 4, seed=rng))


def test_save_and_load_round_trip_parameters_buffers_and_configs(tmp_path):
    model = model_with_every_layer()
    idx = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9], [0, 0, 1]])
    for _ in range(3):   # move the running statistics and the counter away from their initial values
        model(idx)
    model.eval()
    path = nn.save(model, tmp_path / "m.npz")
    loaded = nn.load(path)
    assert repr(loaded) == repr(model)
    assert loaded.architecture() == model.architecture()
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and a.dtype == b.dtype and np.array_equal(a, b), k
    assert int(loaded[4].num_batches_tracked.data) == 3 and loaded[4].momentum is None
    loaded.eval()
    np.testing.assert_array_equal(loaded(idx).data, model(idx).data)
    rebuilt = nn.Sequential.from_architecture(json.loads(json.dumps(model.architecture())))
    assert [type(m) for m in rebuilt] == [type(m) for m in model]


def test_load_refuses_a_file_whose_buffers_do_not_fit_its_architecture(tmp_path):
    arrays = nn.Sequential(nn.BatchNorm2d(3)).state_dict()
    arch = nn.Sequential(nn.BatchNorm2d(4)).architecture()
    checkpoint.save(tmp_path / "bad.npz", arrays, arch)
    with pytest.raises(checkpoint.CheckpointError, match=r"0.weight is float32 \(3,\), the architecture says "
                                                         r"float32 \(4,\)"):
        nn.load(tmp_path / "bad.npz")
    del arrays["0.num_batches_tracked"]
    checkpoint.save(tmp_path / "short.npz", arrays, nn.Sequential(nn.BatchNorm2d(3)).architecture())
    with pytest.raises(checkpoint.CheckpointError, match=r"missing \['0.num_batches_tracked'\]"):
        nn.load(tmp_path / "short.npz")
    huge = {"model": "sequential", "layers": [{"type": "Embedding", "num_embeddings": 10 ** 9, "embedding_dim": 8}]}
    checkpoint.save(tmp_path / "huge.npz", {}, huge)
    with pytest.raises(checkpoint.CheckpointError, match="the architecture makes 8000000000 parameters, more "
                                                         "than the 16777216 a weights file can hold"):
        nn.load(tmp_path / "huge.npz")
    bad = {"model": "sequential", "layers": [{"type": "LayerNorm", "normalized_shape": [3, -1]}]}
    checkpoint.save(tmp_path / "neg.npz", {}, bad)
    with pytest.raises(checkpoint.CheckpointError, match="layer 0: LayerNorm: normalized_shape must be an "
                                                         "integer ≥ 1, got -1"):
        nn.load(tmp_path / "neg.npz")


# --- the new losses' edges (values and gradients against torch are in the registry's tests) --------------------


def test_bce_with_logits_is_finite_for_huge_logits_with_gradient_sigma_minus_y():
    x = Tensor(np.array([-1e4, -50.0, 0.0, 50.0, 1e4], np.float32), requires_grad=True)
    y = np.array([1.0, 0.0, 0.5, 1.0, 0.0], np.float32)
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    np.testing.assert_allclose(loss.data, [1e4, 0.0, np.log(2), 0.0, 1e4], rtol=1e-6, atol=1e-21)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad, [-1.0, 0.0, 0.0, 0.0, 1.0], atol=1e-20)
    t = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(x.data), torch.tensor(y), reduction="none")
    np.testing.assert_allclose(loss.data, t.numpy(), rtol=1e-6, atol=1e-21)
    assert ops.BinaryCrossEntropyWithLogits.rules[0] == "∂L/∂{a} += ∂L/∂{out} ⊙ (σ({a}) − {b})"


def test_bce_with_logits_pos_weight_and_errors():
    x, y = np.array([[0.3, -1.2], [2.0, 0.1]]), np.array([[1.0, 0.0], [0.25, 1.0]])
    p = np.array([3.0, 0.5])
    ours = F.binary_cross_entropy_with_logits(Tensor(x), y, reduction="none", pos_weight=p).data
    sigma = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(ours, -(p * y * np.log(sigma) + (1 - y) * np.log(1 - sigma)), rtol=1e-12)
    with pytest.raises(ShapeError, match=r"binary_cross_entropy_with_logits: input \(2, 2\) and target \(2,\)"):
        F.binary_cross_entropy_with_logits(Tensor(x), y[0])
    with pytest.raises(TypeError, match="target must be floating point .* got dtype int64"):
        F.binary_cross_entropy_with_logits(Tensor(x), np.ones((2, 2), np.int64))
    with pytest.raises(ShapeError, match=r"pos_weight \(3,\) must broadcast to the input's shape \(2, 2\)"):
        F.binary_cross_entropy_with_logits(Tensor(x), y, pos_weight=np.ones(3))
    with pytest.raises(ValueError, match="binary_cross_entropy_with_logits: reduction must be one of"):
        F.binary_cross_entropy_with_logits(Tensor(x), y, reduction="avg")


def test_nll_loss_of_log_softmax_is_cross_entropy_and_errors():
    rng = np.random.default_rng(3)
    z, y = rng.normal(size=(5, 4)), rng.integers(0, 4, 5)
    for r in ("mean", "sum", "none"):
        np.testing.assert_allclose(F.nll_loss(Tensor(z).log_softmax(), y, reduction=r).data,
                                   F.cross_entropy(Tensor(z), y, reduction=r).data, rtol=1e-12)
    with pytest.raises(ShapeError, match=r"nll_loss: labels must lie in 0..3 \(the size of axis 1 of logits "
                                         r"\(5, 4\)\); got 4 at position 2"):
        F.nll_loss(Tensor(z), np.array([0, 1, 4, 0, 0]))
    with pytest.raises(ShapeError, match=r"nll_loss: log-probabilities \(5, 4\) need one integer label per row, "
                                         r"shape \(5,\), got \(4,\)"):
        F.nll_loss(Tensor(z), np.zeros(4, np.int64))
    with pytest.raises(TypeError, match="nll_loss: class labels must be integers"):
        F.nll_loss(Tensor(z), np.zeros(5))


def test_port_to_pytorch_example_covers_batch_norm_layer_norm_and_embedding(capsys):
    import runpy
    from pathlib import Path
    script = Path(__file__).parents[1] / "examples" / "port_to_pytorch.py"
    assert runpy.run_path(str(script))["main"]() == 0
    out = capsys.readouterr().out
    for line in ("1.running_var after the step", "1.num_batches_tracked after the step", "∂L/∂0.weight (16, 4)",
                 "∂L/∂3.weight (64,)", "same loss, gradients and step (float64)"):
        assert line in " ".join(out.split()), line


def test_bce_with_logits_gradient_keeps_its_precision_in_the_negative_tail():
    torch = pytest.importorskip("torch")
    x = np.array([-10, -15, -17, -20], np.float32)
    ours = Tensor(x, requires_grad=True)
    F.binary_cross_entropy_with_logits(ours, np.zeros(4, np.float32), reduction="sum").backward()
    t = torch.tensor(x, requires_grad=True)
    torch.nn.functional.binary_cross_entropy_with_logits(t, torch.zeros(4), reduction="sum").backward()
    np.testing.assert_allclose(ours.grad, t.grad.numpy(), rtol=1e-6)
