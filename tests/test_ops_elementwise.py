"""The elementwise ops, activations and losses of issue 17: kinks and ties against PyTorch, sign, errors, stability."""
import math

import numpy as np
import pytest

import tinygrad_edu
import tinygrad_edu.nn.functional as F
from tinygrad_edu import ShapeError, Tensor, gradcheck, maximum, minimum, nn, where

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def grads(f, *arrays, g=None):
    """f's value and the gradients of its inputs (float64), for the backward of g (ones by default)."""
    xs = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = f(*xs)
    out.backward(np.ones(out.shape) if g is None else g)
    return out.data, [x.grad for x in xs]


def torch_grads(f, *arrays):
    xs = [torch.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = f(*xs)
    out.backward(torch.ones_like(out))
    return out.detach().numpy(), [x.grad.numpy() for x in xs]


def assert_same_as_torch(f, twin, *arrays):
    """Values and gradients equal to PyTorch's, exactly (these cases are all exact in binary)."""
    value, gs = grads(f, *arrays)
    t_value, t_gs = torch_grads(twin, *arrays)
    np.testing.assert_array_equal(value, t_value)
    for ours, theirs in zip(gs, t_gs):
        np.testing.assert_array_equal(ours, theirs)
    return gs


# --- kinks and ties: the conventions, exactly PyTorch's -----------------------------------------------------


def test_abs_gradient_is_the_sign_and_zero_at_zero():
    (g,) = assert_same_as_torch(lambda x: x.abs(), torch.abs, [-2.0, 0.0, 3.0])
    assert g.tolist() == [-1, 0, 1]


def test_clip_passes_the_gradient_at_its_bounds():
    x = [-2.0, -1.0, 0.0, 1.0, 2.0]
    (g,) = assert_same_as_torch(lambda t: t.clip(-1, 1), lambda t: t.clamp(-1, 1), x)
    assert g.tolist() == [0, 1, 1, 1, 0]
    assert_same_as_torch(lambda t: t.clamp(min=0.0), lambda t: t.clamp(min=0.0), x)
    assert_same_as_torch(lambda t: t.clamp(max=0.0), lambda t: t.clamp(max=0.0), x)


def test_clip_with_tensor_bounds_sends_the_gradient_to_the_bound_taken():
    x, lo, hi = [-2.0, -1.0, 0.0, 1.0, 2.0], [-1.0] * 5, [1.0] * 5
    gx, glo, ghi = assert_same_as_torch(lambda t, a, b: t.clip(a, b), lambda t, a, b: t.clamp(a, b), x, lo, hi)
    assert gx.tolist() == [0, 1, 1, 1, 0] and glo.tolist() == [1, 0, 0, 0, 0] and ghi.tolist() == [0, 0, 0, 0, 1]


def test_clip_with_min_above_max_gives_max_everywhere_as_torch():
    x = [0.0, 1.5, 3.0]
    value, (g,) = grads(lambda t: t.clamp(2.0, 1.0), x)
    assert value.tolist() == [1.0, 1.0, 1.0] and g.tolist() == [0, 0, 0]
    assert_same_as_torch(lambda t: t.clamp(2.0, 1.0), lambda t: t.clamp(2.0, 1.0), x)
    assert_same_as_torch(lambda t, a, b: t.clamp(a, b), lambda t, a, b: t.clamp(a, b), x, [2.0] * 3, [1.0] * 3)


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_and_minimum_split_a_tie_in_half(name):
    a, b = [1.0, 2.0, 3.0, -0.5], [1.0, 1.0, 4.0, -0.5]
    ours = getattr(tinygrad_edu, name)
    ga, gb = assert_same_as_torch(ours, getattr(torch, name), a, b)
    assert ga.tolist() == ([0.5, 1, 0, 0.5] if name == "maximum" else [0.5, 0, 1, 0.5])
    assert (ga + gb).tolist() == [1, 1, 1, 1]
    # ties with a broadcast scalar: its shares add up over the elements it met
    gx, gs = assert_same_as_torch(ours, getattr(torch, name), [1.0, 1.0, 0.0], 1.0)
    assert gx.tolist() == ([0.5, 0.5, 0] if name == "maximum" else [0.5, 0.5, 1]) and gs == (2 if name == "maximum"
                                                                                              else 1)


def test_maximum_and_minimum_keep_exact_values_at_the_extremes():
    big = np.array([1e308, -1e308, 5e-324])
    assert maximum(Tensor(big), Tensor(big)).tolist() == big.tolist()   # no (a + b)/2 overflow or rounding
    assert minimum(Tensor(big), Tensor(-big)).tolist() == [-1e308, -1e308, -5e-324]
    u = minimum(Tensor(np.array([0, 200], np.uint8)), Tensor(np.array([1, 100], np.uint8)))
    assert u.dtype == np.uint8 and u.tolist() == [0, 100]   # −x would wrap around in uint8


def test_leaky_relu_and_elu_slopes_at_zero_are_torchs():
    (g,) = assert_same_as_torch(lambda t: F.leaky_relu(t, 0.2), lambda t: TF.leaky_relu(t, 0.2), [-1.0, 0.0, 1.0])
    assert g.tolist() == [0.2, 0.2, 1]
    value, (g,) = grads(lambda t: F.elu(t, 0.5), [0.0])
    assert value.tolist() == [0.0] and g.tolist() == [0.5]   # α at 0, as torch's elu


def test_elu_large_inputs_give_no_nan_gradient():
    """exp of the branch not taken would be ∞; ∞·0 in its backward must not reach the gradient."""
    value, (g,) = grads(lambda t: F.elu(t), [1000.0, -1000.0])
    assert value.tolist() == [1000.0, -1.0] and g.tolist() == [1.0, 0.0]


def test_l1_loss_gradient_at_a_zero_difference_is_zero():
    _, (gx, gy) = grads(lambda x, y: F.l1_loss(x, y, reduction="sum"), [1.0, 2.0, 3.0], [1.0, 0.0, 4.0])
    assert gx.tolist() == [0, 1, -1] and gy.tolist() == [0, -1, 1]


def test_sqrt_at_zero_has_an_infinite_slope_as_torch():
    value, (g,) = grads(lambda t: t.sqrt(), [0.0, 4.0])
    assert value.tolist() == [0.0, 2.0] and g.tolist() == [math.inf, 0.25]


def test_pow_tensor_conventions_at_zero_and_negative_bases_are_torchs():
    base, exponent = [0.0, 0.0, 2.0, -2.0, 0.0], [2.0, 0.0, 0.5, 3.0, -1.0]
    value, (ga, gb) = grads(lambda a, b: a ** b, base, exponent)
    t_value, (t_ga, t_gb) = torch_grads(lambda a, b: a ** b, base, exponent)
    np.testing.assert_array_equal(value, t_value)
    np.testing.assert_array_equal(ga, t_ga)
    np.testing.assert_array_equal(gb, t_gb)   # including the nan of log(−2), the −∞ at 0 ** −1
    assert ga[:2].tolist() == [0, 0] and gb[:2].tolist() == [0, 0] and value[3] == -8


def test_pow_with_a_scalar_base_and_the_method():
    _, (g,) = grads(lambda t: 2.0 ** t, [3.0])
    assert g[0] == pytest.approx(8 * math.log(2), rel=1e-15)
    assert Tensor([2.0, 3.0]).pow(Tensor([3.0, 2.0])).tolist() == [8.0, 9.0]
    assert Tensor([2.0, 3.0]).pow(2).tolist() == [4.0, 9.0]
    assert (Tensor([2, 3]) ** Tensor([3, 2])).tolist() == [8, 9]


def test_huber_loss_on_both_sides_of_delta():
    d = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    value, (g,) = grads(lambda t: F.huber_loss(t, np.zeros(7), reduction="none"), d)
    assert value.tolist() == [2.5, 0.5, 0.125, 0, 0.125, 0.5, 2.5]    # ½d² inside, |d| − ½ outside
    assert g.tolist() == [-1, -1, -0.5, 0, 0.5, 1, 1]                   # d clipped to [−1, 1]: continuous
    assert_same_as_torch(lambda t: F.huber_loss(t, np.zeros(7), reduction="none", delta=0.5),
                         lambda t: TF.huber_loss(t, torch.zeros(7, dtype=torch.float64), reduction="none",
                                                 delta=0.5), d)


# --- sign: outside the graph ---------------------------------------------------------------------------------


def test_sign_is_a_constant_that_does_not_require_grad():
    x = Tensor(np.array([-2.0, 0.0, 3.0, np.nan]), requires_grad=True)
    s = x.sign()
    assert not s.requires_grad and s.grad_fn is None and s.dtype == np.float64
    np.testing.assert_array_equal(s.data, [-1, 0, 1, np.nan])
    ints = Tensor(np.array([-5, 0, 7]))
    assert ints.sign().dtype == np.int64 and ints.sign().tolist() == torch.sign(torch.tensor([-5, 0, 7])).tolist()
    assert type(Tensor(-3.0).sign().data) is np.ndarray and Tensor(-3.0).sign().item() == -1   # 0-d stays an array
    assert type(minimum(Tensor(3), 2).data) is np.ndarray
    (x[:3] * x[:3].sign()).sum().backward()   # sign enters as a constant: d(x·sign x)/dx = sign x
    assert x.grad.tolist()[:3] == [-1, 0, 1]


# --- where ---------------------------------------------------------------------------------------------------


def test_where_broadcasts_and_routes_the_gradient():
    cond = np.array([[True], [False]])
    value, (ga, gb) = grads(lambda a, b: where(cond, a, b), [1.0, 2.0, 3.0], [[10.0], [20.0]])
    assert value.tolist() == [[1, 2, 3], [20, 20, 20]]
    assert ga.tolist() == [1, 1, 1] and gb.tolist() == [[0], [3]]
    assert Tensor([1.0, 2.0]).where(Tensor([True, False]), 0.0).tolist() == [1.0, 0.0]


def test_where_sends_no_nan_to_the_branch_not_taken():
    value, (ga, gb) = grads(lambda a, b: where(np.array([True, False]), a, b), [1.0, 2.0], [3.0, 4.0],
                            g=np.array([np.inf, 1.0]))
    assert ga.tolist() == [math.inf, 0] and gb.tolist() == [0, 1]


def test_where_copies_its_condition():
    cond = np.array([True, False])
    x = Tensor([1.0, 2.0], requires_grad=True)
    out = where(cond, x, 0.0)
    cond[:] = False   # changed after the forward: the backward uses the condition the forward saw
    out.sum().backward()
    assert x.grad.tolist() == [1, 0]


# --- errors --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make, error, message", [
    (lambda: where(np.ones((2, 3), bool), Tensor(np.ones(4)), Tensor(np.ones(3))), ShapeError,
     r"where: condition \(2, 3\), input \(4,\) and other \(3,\) cannot be broadcast together"),
    (lambda: where(np.ones(2), Tensor(np.ones(2)), 0.0), TypeError,
     r"where: the condition must be a bool tensor or array, got dtype float64"),
    (lambda: maximum(Tensor(np.ones(3)), Tensor(np.ones(2))), ShapeError,
     r"maximum: shapes \(3,\) and \(2,\) cannot be broadcast together"),
    (lambda: minimum(Tensor(np.ones((2, 3))), Tensor(np.ones(2))), ShapeError,
     r"minimum: shapes \(2, 3\) and \(2,\) cannot be broadcast together"),
    (lambda: Tensor(np.ones(3)).clip(), ValueError, r"clip: at least one of min and max must not be None"),
    (lambda: Tensor(np.ones(3)).clamp(Tensor(np.zeros(2))), ShapeError,
     r"clamp: shapes \(3,\) and \(2,\) cannot be broadcast together"),
    (lambda: Tensor([2, 3]) ** Tensor([-1, 2]), RuntimeError, r"pow: integers to negative integer powers"),
    (lambda: F.l1_loss(Tensor(np.ones(3)), np.ones(3), reduction="avg"), ValueError,
     r"l1_loss: reduction must be one of 'mean', 'sum', 'none', got 'avg'"),
    (lambda: F.huber_loss(Tensor(np.ones(3)), np.ones(3), reduction="max"), ValueError, r"huber_loss: reduction"),
    (lambda: F.binary_cross_entropy(Tensor(np.full(3, 0.5)), np.ones(3), reduction=None), ValueError,
     r"binary_cross_entropy: reduction"),
    (lambda: F.l1_loss(Tensor(np.ones((3, 1))), np.ones(3)), ShapeError,
     r"l1_loss: input \(3, 1\) and target \(3,\) must have the same shape"),
    (lambda: F.huber_loss(Tensor(np.ones(3)), np.ones(3), delta=0), ValueError, r"huber_loss: delta must be positive"),
    (lambda: F.binary_cross_entropy(Tensor(np.array([0.5, 1.5])), np.ones(2)), ValueError,
     r"binary_cross_entropy: the input \(2,\) must hold probabilities in \[0, 1\], got 1.5; for logits use "
     r"binary_cross_entropy_with_logits"),
    (lambda: F.binary_cross_entropy(Tensor(np.full(2, 0.5)), np.ones(1)), ShapeError,
     r"binary_cross_entropy: input \(2,\) and target \(1,\) must have the same shape"),
    (lambda: F.binary_cross_entropy(Tensor(np.full((2, 3), 0.5)), np.ones((2, 3)), weight=np.ones(2)), ShapeError,
     r"binary_cross_entropy: weight \(2,\) must broadcast to the input's shape \(2, 3\)"),
    (lambda: F.gelu(Tensor(np.ones(2)), approximate="erf"), ValueError,
     r"gelu: approximate must be 'none' or 'tanh', got 'erf'"),
    (lambda: F.softplus(Tensor(np.ones(2)), beta=0), ValueError, r"softplus: beta must be positive, got 0"),
    (lambda: nn.LeakyReLU("0.1"), ValueError, r"LeakyReLU: negative_slope must be a number, got '0.1'"),
    (lambda: nn.Softplus(beta=-1), ValueError, r"Softplus: beta must be a positive number, got -1"),
    (lambda: nn.GELU("fast"), ValueError, r"GELU: approximate must be 'none' or 'tanh', got 'fast'"),
])
def test_errors_name_the_op_and_what_is_wrong(make, error, message):
    with pytest.raises(error, match=message):
        make()


# --- gelu, erf ----------------------------------------------------------------------------------------------


def test_erf_values_and_gradient():
    x = np.array([-np.inf, -1.0, 0.0, 0.5, 3.0, np.inf])
    np.testing.assert_allclose(Tensor(x).erf().data, [math.erf(v) for v in x], rtol=1e-15, atol=0)   # test_erf.py
    assert Tensor(x).erf().tolist()[::5] == [-1.0, 1.0] and Tensor(np.float32(0.5)).erf().dtype == np.float32
    _, (g,) = grads(lambda t: t.erf(), [0.0, 1.0])
    assert g.tolist() == [2 / math.sqrt(math.pi), 2 / math.sqrt(math.pi) * math.exp(-1)]


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_both_forms_match_torch(approximate):
    x = np.linspace(-6, 6, 49)
    value, (g,) = grads(lambda t: F.gelu(t, approximate=approximate), x)
    t_value, (t_g,) = torch_grads(lambda t: TF.gelu(t, approximate=approximate), x)
    np.testing.assert_allclose(value, t_value, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(g, t_g, rtol=1e-14, atol=1e-14)
    assert gradcheck(lambda t: F.gelu(t, approximate=approximate), [Tensor(x, requires_grad=True)])


def test_gelu_forms_differ_and_have_the_known_values():
    x = Tensor(np.array([0.0, 1.0]))
    exact, approx = F.gelu(x).data, F.gelu(x, approximate="tanh").data
    assert exact[0] == approx[0] == 0 and exact[1] == pytest.approx(0.5 * (1 + math.erf(1 / math.sqrt(2))), rel=1e-15)
    assert 1e-5 < abs(exact[1] - approx[1]) < 1e-3   # the tanh form is an approximation, ~2e-4 here


# --- stability ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_sigmoid_and_softplus_are_finite_at_a_thousand(dtype):
    x = Tensor(np.array([-1000.0, 1000.0], dtype), requires_grad=True)
    out = F.log_sigmoid(x)
    out.sum().backward()
    assert out.dtype == dtype and out.tolist() == [-1000.0, 0.0] and x.grad.tolist() == [1.0, 0.0]
    x.grad = None
    out = F.softplus(x, threshold=math.inf)   # no threshold: log(1 + e^x) itself must not overflow
    out.sum().backward()
    assert out.tolist() == [0.0, 1000.0] and x.grad.tolist() == [0.0, 1.0]


def test_softplus_keeps_full_precision_in_its_tails_and_switches_at_the_threshold():
    x = np.array([-50.0, -5.0, 0.0, 19.0, 21.0])
    out, (g,) = grads(F.softplus, x)
    t_out, (t_g,) = torch_grads(TF.softplus, x)
    assert out[0] == pytest.approx(math.exp(-50), rel=1e-15)   # log(1 + e⁻⁵⁰) would round to 0
    assert g[0] == pytest.approx(math.exp(-50), rel=1e-15)     # σ(−50), not 0
    assert out[4] == 21.0 and g[4] == 1 and out[2] == math.log(2) and g[2] == 0.5   # past β·x > 20: x, as torch
    np.testing.assert_allclose(out, t_out, rtol=1e-15)
    np.testing.assert_allclose(g, t_g, rtol=1e-15)
    assert F.softplus(Tensor([1.0]), beta=2.0, threshold=1.0).tolist() == [1.0]


def test_binary_cross_entropy_at_zero_and_one_is_torchs():
    x, y = np.array([0.0, 0.0, 1.0, 1.0, 0.25]), np.array([0.0, 1.0, 1.0, 0.0, 0.5])
    value, (gx, gy) = grads(lambda p, t: F.binary_cross_entropy(p, t, reduction="none"), x, y)
    t_value, (t_gx, t_gy) = torch_grads(lambda p, t: TF.binary_cross_entropy(p, t, reduction="none"), x, y)
    np.testing.assert_array_equal(value[:4], [0, 100, 0, 100])   # each log clamped at −100
    np.testing.assert_allclose(value, t_value, rtol=1e-15)
    np.testing.assert_array_equal(gx, t_gx)                       # (x − y)/max(x(1 − x), 1e-12): finite
    assert np.isfinite(gx).all() and gx[1] < -9.9e11
    # NOTE: the target's gradient is that of the clamped forward, ±100 at x in {0, 1}; PyTorch's is ±∞ there
    assert gy[:4].tolist() == [100, 100, -100, -100] and np.isinf(t_gy[:4]).all()
    assert gy[4] == pytest.approx(t_gy[4], rel=1e-15)


def test_binary_cross_entropy_weight_and_reductions_match_torch():
    rng = np.random.default_rng(0)
    x, y, w = rng.uniform(0.01, 0.99, (3, 4)), rng.uniform(0, 1, (3, 4)), rng.uniform(0.5, 2, (4,))
    for reduction in ("mean", "sum", "none"):
        value, (gx, gy) = grads(lambda p, t, r=reduction: F.binary_cross_entropy(p, t, weight=w, reduction=r), x, y)
        t_value, (t_gx, t_gy) = torch_grads(lambda p, t, r=reduction: TF.binary_cross_entropy(
            p, t, weight=torch.tensor(w), reduction=r), x, y)
        np.testing.assert_allclose(value, t_value, rtol=1e-13)
        np.testing.assert_allclose(gx, t_gx, rtol=1e-13)
        np.testing.assert_allclose(gy, t_gy, rtol=1e-13)


# --- the modules --------------------------------------------------------------------------------------------


MODULES = [("LeakyReLU", {"negative_slope": 0.2}), ("ELU", {"alpha": 0.5}), ("GELU", {"approximate": "tanh"}),
           ("GELU", {}), ("SiLU", {}), ("Softplus", {"beta": 2.0, "threshold": 3.0}), ("LogSigmoid", {}),
           ("Tanh", {}), ("Sigmoid", {})]


@pytest.mark.parametrize("name, kwargs", MODULES)
def test_activation_modules_match_torchs(name, kwargs):
    x = np.linspace(-4, 4, 17).reshape(1, 17)
    ours, theirs = getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.tensor(x)).numpy(), rtol=1e-14, atol=1e-15)
    assert ours.state_dict() == {} and repr(ours) == repr(theirs)


def test_a_sequential_with_the_new_activations_saves_and_loads(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4, seed=0), nn.LeakyReLU(0.2), nn.ELU(0.5), nn.GELU("tanh"), nn.SiLU(),
                          nn.Softplus(2.0, 3.0), nn.LogSigmoid(), nn.Linear(4, 2, seed=1))
    x = Tensor(np.linspace(-1, 1, 6).reshape(2, 3).astype(np.float32))
    path = nn.save(model, tmp_path / "m.npz")
    loaded = nn.load(path)
    assert [type(m).__name__ for m in loaded] == [type(m).__name__ for m in model]
    assert repr(loaded) == repr(model)
    np.testing.assert_array_equal(loaded(x).data, model(x).data)


def test_top_level_functions_are_exported():
    assert {"where", "maximum", "minimum"} <= set(tinygrad_edu.__all__)
    assert tinygrad_edu.where is where and Tensor([1.0, 5.0]).maximum(Tensor([2.0, 3.0])).tolist() == [2.0, 5.0]
    assert Tensor([1.0, 5.0]).minimum(3.0).tolist() == [1.0, 3.0]


def test_a_model_with_the_new_activations_ports_to_pytorch():
    """Same state_dict names (the activations hold none), same outputs and gradients once loaded into torch."""
    acts = [("LeakyReLU", (0.2,)), ("ELU", (0.5,)), ("GELU", ()), ("SiLU", ()), ("Softplus", (2.0, 3.0)),
            ("LogSigmoid", ())]
    ours = nn.Sequential(nn.Linear(3, 5, dtype=np.float64, seed=0),
                         *(getattr(nn, name)(*args) for name, args in acts), nn.Linear(5, 2, dtype=np.float64, seed=1))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 5), *(getattr(torch.nn, name)(*args) for name, args in acts),
                                 torch.nn.Linear(5, 2)).double()
    state = ours.state_dict()
    assert list(state) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    x = np.linspace(-2, 2, 12).reshape(4, 3)
    out, t_out = ours(Tensor(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), rtol=1e-13)
    out.sum().backward()
    t_out.sum().backward()
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, dict(theirs.named_parameters())[name].grad.numpy(), rtol=1e-12,
                                   atol=1e-15, err_msg=name)


def test_maximum_and_minimum_pass_the_gradient_through_a_nan_as_torch():
    torch = pytest.importorskip("torch")
    a, b = np.array([1.0, np.nan, 2.0, 3.0]), np.array([np.nan, 1.0, 2.0, 1.0])
    for ours, theirs in ((maximum, torch.maximum), (minimum, torch.minimum)):
        x = Tensor(a, requires_grad=True)
        ours(x, b).sum().backward()
        t = torch.tensor(a, requires_grad=True)
        theirs(t, torch.tensor(b)).sum().backward()
        np.testing.assert_array_equal(x.grad, t.grad.numpy())


def test_sigmoid_keeps_its_relative_precision_in_the_negative_tail():
    torch = pytest.importorskip("torch")
    for dtype in (np.float32, np.float64):
        x = np.array([-80, -40, -20, -10, 0, 10], dtype)
        np.testing.assert_allclose(Tensor(x).sigmoid().data, torch.sigmoid(torch.tensor(x)).numpy(), rtol=2e-6)
