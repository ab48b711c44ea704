"""Gradients of gradients: create_graph, autograd.grad, autograd.functional, gradgradcheck, and their errors."""
import io
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import HypothesisChooser

import tinygrad_edu as tg
from tinygrad_edu import Tensor, no_grad
from tinygrad_edu import nn as tnn
from tinygrad_edu.autograd import Function
from tinygrad_edu.autograd import functional as AF
from tinygrad_edu.gradcheck import GradcheckError, gradgradcheck
from tinygrad_edu.opspecs import REGISTRY

# --- every op, twice ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REGISTRY))
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_every_registered_op_is_twice_differentiable(name, data):
    f, arrays, _ = REGISTRY[name].example(HypothesisChooser(data))
    assert gradgradcheck(f, [Tensor(a, requires_grad=True) for a in arrays])


# Where torch's second derivative departs from the calculus, and finite differences side with ours: torch zeroes
# pow's ∂/∂a = b·a^(b−1) wherever b = 0, a mask that also hides its slope in b, ∂²(a^b)/∂a∂b = a^(b−1) ≠ 0.
TORCH_DIFFERS = {"pow_tensor": lambda a, b: bool(np.any(np.asarray(b) == 0))}


@pytest.mark.parametrize("name", sorted(REGISTRY))
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_second_derivatives_match_torch(name, data):
    torch = pytest.importorskip("torch")
    f, arrays, twin = REGISTRY[name].example(HypothesisChooser(data))
    if name in TORCH_DIFFERS and TORCH_DIFFERS[name](*arrays):
        assert gradgradcheck(f, [Tensor(a, requires_grad=True) for a in arrays])   # finite differences instead
        return
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(np.asarray(a, np.float64), requires_grad=True) for a in arrays]
    out, t_out = f(*ours), twin(torch, *theirs)
    v = np.linspace(-1, 1, out.size).reshape(out.shape)   # tells the output's elements apart
    g = tg.grad(out, ours, grad_outputs=Tensor(v), create_graph=True, allow_unused=True)
    t_g = torch.autograd.grad(t_out, theirs, grad_outputs=torch.tensor(v), create_graph=True, allow_unused=True)
    # and the gradient's, with other numbers for each input (the same ones could cancel two second derivatives of
    # opposite sign, leaving only each library's rounding to compare)
    us = [np.cos(np.arange(a.size) + 1.0 + 0.7 * k).reshape(np.shape(a)) for k, a in enumerate(arrays)]
    s = sum(((gk * u).sum() for gk, u in zip(g, us) if gk is not None), Tensor(0.0))
    t_s = sum(((gk * torch.tensor(u)).sum() for gk, u in zip(t_g, us) if gk is not None), torch.tensor(0.0))
    h = tg.grad(s, ours, allow_unused=True) if s.requires_grad else [None] * len(ours)
    t_h = torch.autograd.grad(t_s, theirs, allow_unused=True) if t_s.requires_grad else [None] * len(ours)
    for k, (a, b) in enumerate(zip(h, t_h)):
        a = np.zeros(np.shape(arrays[k])) if a is None else a.data
        b = np.zeros(np.shape(arrays[k])) if b is None else b.detach().numpy(force=True)   # force: a ZeroTensor too
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11, err_msg=f"{name}: second derivative, input {k}")


def test_gradgradcheck_catches_a_saved_value_treated_as_a_constant(monkeypatch):
    """tanh's rule written with the output's numbers (np.asarray) has the right first derivative but records
    no dependence on the input: its second derivative would be 0, and gradgradcheck says where it is not."""
    from tinygrad_edu import ops

    def constant_backward(self, g):
        (out,) = self.saved
        return (g * (1 - np.asarray(out) ** 2),)

    monkeypatch.setattr(ops.Tanh, "backward", constant_backward)
    with pytest.raises(GradcheckError, match=r"input 0 of shape \(3,\), element \(0,\): backward gives"):
        gradgradcheck(lambda x: x.tanh(), [Tensor(np.array([0.3, -0.8, 1.2]), requires_grad=True)])


def test_the_logistic_loss_has_its_curvature_at_zero_where_abs_has_a_kink():
    """σ is computed from e^−|z|; written with abs, its recorded slope at z = 0 would be abs′(0)·… = 0, and Newton's
    method on a logistic loss started at 0 would see a zero Hessian. Each branch gives σ′(0) = ¼."""
    import tinygrad_edu.nn.functional as F

    x = Tensor(np.zeros(3), requires_grad=True)
    y = Tensor(np.array([0.0, 1.0, 1.0]))
    H = AF.hessian(lambda t: F.binary_cross_entropy_with_logits(t, y, reduction="sum"), x)
    np.testing.assert_array_equal(H.data, np.eye(3) / 4)
    H = AF.hessian(lambda t: F.softplus(t).sum(), x)
    np.testing.assert_array_equal(H.data, np.eye(3) / 4)


def test_pow_keeps_its_mixed_second_derivative_where_the_exponent_is_zero():
    """∂(a^b)/∂a = b·a^(b−1) is 0 all along b = 0, but its slope in b there is a^(b−1)(1 + b·log a) = 1/a.
    torch masks the first derivative at b = 0 and so reports 0; ours is masked only at a = b = 0 (0·∞)."""
    a = Tensor(np.array([1.5, 4.0]), requires_grad=True)
    b = Tensor(np.array([0.0, 0.0]), requires_grad=True)
    ga, _ = tg.grad((a ** b).sum(), [a, b], create_graph=True)
    np.testing.assert_array_equal(ga.data, [0.0, 0.0])
    (h,) = tg.grad(ga.sum(), b)
    np.testing.assert_allclose(h.data, [1 / 1.5, 1 / 4.0], rtol=1e-15)


def test_a_cast_is_differentiated_in_its_input_dtype_and_twice():
    x = Tensor(np.array([0.5, -1.25], np.float32), requires_grad=True)
    y = (x.to(np.float64) ** 3).sum()
    (g,) = tg.grad(y, x, create_graph=True)
    assert g.dtype == np.float32 and np.array_equal(g.data, np.array([0.75, 4.6875], np.float32))
    (h,) = tg.grad(g.sum(), x)
    assert h.dtype == np.float32 and np.array_equal(h.data, np.array([3.0, -7.5], np.float32))
    assert x.to(np.float32) is x
    with pytest.raises(TypeError, match="only become another float dtype, not int64"):
        x.to(np.int64)


# --- the API: backward(create_graph), autograd.grad -----------------------------------------------------------


def test_backward_with_create_graph_leaves_a_grad_that_is_a_tensor_with_a_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    assert isinstance(x.grad, Tensor) and x.grad.requires_grad
    np.testing.assert_array_equal(x.grad.data, [3.0, 12.0])
    g = x.grad
    x.grad = None
    g.sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 12.0])   # d/dx Σ 3x² = 6x, and a plain array again


def test_first_order_gradients_keep_no_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x ** 3).sum().backward()
    assert type(x.grad) is np.ndarray
    (g,) = tg.grad((x ** 3).sum(), x)
    assert isinstance(g, Tensor) and not g.requires_grad and g.grad_fn is None


def test_grad_accumulates_nothing_and_returns_a_tuple():
    x, y = Tensor(np.array(2.0), requires_grad=True), Tensor(np.array(3.0), requires_grad=True)
    gx, gy = tg.grad(x * y, [x, y])
    assert (float(gx.data), float(gy.data)) == (3.0, 2.0)
    assert x.grad is None and y.grad is None
    assert isinstance(tg.grad(x * y, x), tuple)


def test_grad_to_the_third_order():
    x = Tensor(np.array(0.7), requires_grad=True)
    y = x.sin()
    for expected in (np.cos, lambda v: -np.sin(v), lambda v: -np.cos(v), np.sin):
        (y,) = tg.grad(y, x, create_graph=True)
        assert np.isclose(float(y.data), expected(0.7), rtol=1e-14)


def test_grad_refuses_an_unused_input_naming_it_unless_allowed():
    x = Tensor(np.ones(2), requires_grad=True)
    w = Tensor(np.ones((2, 3)), requires_grad=True, name="W2")
    with pytest.raises(RuntimeError, match=r"input 1 \('W2', 2×3\) was not used .* allow_unused=True"):
        tg.grad((x * 2).sum(), [x, w])
    gx, gw = tg.grad((x * 2).sum(), [x, w], allow_unused=True)
    assert gw is None and np.array_equal(gx.data, [2.0, 2.0])


def test_grad_of_a_non_scalar_needs_grad_outputs_of_its_shape():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"only for a scalar output, but this tensor has shape \(3,\)"):
        tg.grad(x * 2, x)
    with pytest.raises(tg.ShapeError, match=r"grad has shape \(2,\) but the tensor has shape \(3,\)"):
        tg.grad(x * 2, x, grad_outputs=np.ones(2))
    (g,) = tg.grad(x * x, x, grad_outputs=np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(g.data, [2.0, 4.0, 6.0])


def test_grad_outputs_that_require_grad_are_differentiated_through():
    x = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    v = Tensor(np.array([0.5, 3.0]), requires_grad=True)
    (g,) = tg.grad(x.exp(), x, grad_outputs=v, create_graph=True)   # g = v ⊙ exp(x)
    (dv,) = tg.grad(g.sum(), v)
    np.testing.assert_allclose(dv.data, np.exp([1.0, -2.0]), rtol=1e-15)


def test_retain_graph_defaults_to_create_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x.tanh() ** 2).sum()
    tg.grad(y, x, create_graph=True)
    tg.grad(y, x)   # the graph was kept by the first call; this one releases it
    with pytest.raises(RuntimeError, match="already used by an earlier backward"):
        tg.grad(y, x)


def test_backward_takes_torch_s_gradient_keyword_and_the_older_grad():
    x = Tensor(np.ones(2), requires_grad=True)
    (x * 3).backward(gradient=np.array([1.0, 2.0]))
    (x * 3).backward(grad=np.array([1.0, 2.0]))
    np.testing.assert_array_equal(x.grad, [6.0, 12.0])
    with pytest.raises(TypeError, match="pass the gradient once"):
        (x * 3).backward(np.ones(2), grad=np.ones(2))


def test_create_graph_records_even_under_no_grad_as_torch_does():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x ** 3).sum()
    with no_grad():
        (g,) = tg.grad(y, x, create_graph=True)
    assert g.requires_grad


def test_a_rule_changed_in_place_after_recording_is_refused():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    w = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    (g,) = tg.grad((x * w).sum(), x, create_graph=True)   # g = w, recorded: it saved nothing of w's values...
    y = (x.exp() * w).sum()
    (g,) = tg.grad(y, x, create_graph=True)                # ... this one saved exp(x) and w
    with no_grad():
        w -= 1.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        tg.grad(g.sum(), w)


# --- a rule that cannot be recorded says so ---------------------------------------------------------------------


class _ArrayBackward(Function):
    name = "my_square"

    def forward(self, a):
        self.save(a)
        return a * a

    def backward(self, g):
        (a,) = self.saved
        return (np.asarray(g) * 2 * np.asarray(a),)   # right numbers, but arrays: no graph


class _SavesAnIntermediate(Function):
    name = "my_cube"

    def forward(self, a):
        square = a * a
        self.save(square)
        return square * a

    def backward(self, g):
        (square,) = self.saved
        return (g * 3 * square,)


class _UsesAnUnknownNumpyFunction(Function):
    name = "my_exp"

    def forward(self, a):
        out = np.exp(a)
        self.save(out)
        return out

    def backward(self, g):
        (out,) = self.saved
        return (g * np.asarray(np.clip(out, None, 1e300)),)


def test_a_learner_function_returning_arrays_works_first_order_and_is_refused_second_order():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (g,) = tg.grad(_ArrayBackward.apply(x).sum(), x)
    np.testing.assert_array_equal(g.data, [2.0, 4.0])
    with pytest.raises(RuntimeError, match="backward of my_square returned a numpy array for input 0, not a Tensor"):
        tg.grad(_ArrayBackward.apply(x).sum(), x, create_graph=True)


def test_a_saved_intermediate_is_refused_under_create_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"backward of my_cube cannot be recorded .* float64 2 array that is "
                                           "neither one of its inputs nor its output"):
        tg.grad(_SavesAnIntermediate.apply(x).sum(), x, create_graph=True)


def test_a_numpy_function_without_a_tensor_version_is_refused_inside_a_recorded_rule():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(TypeError, match="backward of my_exp: np.clip has no Tensor version"):
        tg.grad(_UsesAnUnknownNumpyFunction.apply(x).sum(), x, create_graph=True)
    # outside a rule, numpy's functions still see a Tensor's values
    assert np.allclose(Tensor(np.ones(2)), 1.0) and np.clip(Tensor(np.array([3.0])), 0, 1)[0] == 1.0


def test_numpy_functions_on_tensors_are_tensor_ops():
    x = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    y = np.sum(np.exp(x) * np.ones((2, 2)), axis=0, keepdims=True)
    assert isinstance(y, Tensor) and y.grad_fn is not None
    np.testing.assert_allclose(y.data, np.exp(x.data).sum(0, keepdims=True))
    with pytest.raises(TypeError, match="numpy's add.at does not take a Tensor"):
        np.add.at(x, [0], 1.0)


# --- autograd.functional against torch ------------------------------------------------------------------------


def _pair():
    rng = np.random.default_rng(7)
    return rng.standard_normal(3), rng.standard_normal((2, 3)), rng.standard_normal(3), rng.standard_normal(2)


def _f(a, b):
    return (b @ a).tanh()


def _scalar(a, b):
    return ((b @ a).tanh() ** 2).sum() + (a * a * a).sum()


def _same(ours, theirs):
    if isinstance(ours, tuple):
        assert isinstance(theirs, tuple) and len(ours) == len(theirs)
        for o, t in zip(ours, theirs):
            _same(o, t)
        return
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"])
def test_functional_matches_torch(name):
    torch = pytest.importorskip("torch")
    x, y, v3, v2 = _pair()
    ours, theirs = (Tensor(x), Tensor(y)), (torch.tensor(x), torch.tensor(y))
    fn, tfn = getattr(AF, name), getattr(torch.autograd.functional, name)
    if name == "vjp":
        o, t = fn(_f, ours, Tensor(v2)), tfn(_f, theirs, torch.tensor(v2))
    elif name == "jvp":
        o, t = fn(_f, ours, (Tensor(v3), Tensor(y))), tfn(_f, theirs, (torch.tensor(v3), torch.tensor(y)))
    elif name == "jacobian":
        o, t = fn(_f, ours), tfn(_f, theirs)
    elif name == "hessian":
        o, t = fn(_scalar, ours), tfn(_scalar, theirs)
    else:
        o, t = fn(_scalar, ours, (Tensor(v3), Tensor(y))), tfn(_scalar, theirs, (torch.tensor(v3), torch.tensor(y)))
    _same(o, t)


def test_functional_single_inputs_give_single_results_and_the_output_first():
    x = Tensor(np.array([0.1, 0.2, 0.3]))
    out, prod = AF.vjp(lambda a: a.exp(), x, Tensor(np.ones(3)))
    assert isinstance(out, Tensor) and isinstance(prod, Tensor) and not prod.requires_grad
    np.testing.assert_allclose(prod.data, np.exp(x.data))
    J = AF.jacobian(lambda a: a.exp(), x)
    np.testing.assert_allclose(J.data, np.diag(np.exp(x.data)))
    H = AF.hessian(lambda a: (a ** 3).sum(), x)
    np.testing.assert_allclose(H.data, np.diag(6 * x.data))


def test_functional_strict_refuses_an_independent_output_and_the_default_gives_zeros():
    x, w = Tensor(np.ones(2)), Tensor(np.ones(3))
    _, (gx, gw) = AF.vjp(lambda a, b: (a * 2).sum(), (x, w))
    assert np.array_equal(gw.data, np.zeros(3))
    with pytest.raises(RuntimeError, match="independent of input 1, which is not allowed in strict mode"):
        AF.vjp(lambda a, b: (a * 2).sum(), (x, w), strict=True)


def test_functional_refuses_forward_mode_and_vectorize_naming_them():
    x = Tensor(np.ones(2))
    with pytest.raises(NotImplementedError, match="strategy='forward-mode' is not supported"):
        AF.jacobian(lambda a: a * 2, x, strategy="forward-mode")
    with pytest.raises(NotImplementedError, match="vectorize=True is not supported"):
        AF.hessian(lambda a: (a * a).sum(), x, vectorize=True)
    with pytest.raises(NotImplementedError, match="outer_jacobian_strategy='forward-mode'"):
        AF.hessian(lambda a: (a * a).sum(), x, outer_jacobian_strategy="forward-mode")


def test_functional_create_graph_keeps_products_differentiable():
    x = Tensor(np.array([0.5, 1.5]), requires_grad=True)
    _, hv = AF.hvp(lambda a: (a ** 4).sum(), x, Tensor(np.ones(2)), create_graph=True)   # 12x²
    (third,) = tg.grad(hv.sum(), x)
    np.testing.assert_allclose(third.data, 24 * x.data)


# --- the tutorial's loss: its Hessian, and a gradient penalty ------------------------------------------------


def _tutorial_batch():
    rng = np.random.default_rng(3)
    X = rng.random((784, 16))
    Y = np.eye(10)[:, rng.integers(0, 10, 16)]
    W1, b1 = rng.random((10, 784)) - 0.5, rng.random((10, 1)) - 0.5
    W2, b2 = rng.random((10, 10)) - 0.5, rng.random((10, 1)) - 0.5
    return X, Y, W1, b1, W2, b2


def _tutorial_loss(X, Y, W1, b1):
    def loss(W2, b2):
        A1 = (Tensor(W1) @ Tensor(X) + Tensor(b1)).relu()
        return (W2 @ A1 + b2).softmax_cross_entropy(Tensor(Y), dim=0)
    return loss


@pytest.mark.parametrize("which", ["b2", "W2"])
def test_the_tutorial_loss_hessian_matches_finite_differences_and_torch(which):
    X, Y, W1, b1, W2, b2 = _tutorial_batch()
    loss = _tutorial_loss(X, Y, W1, b1)
    if which == "b2":
        H = AF.hessian(lambda b: loss(Tensor(W2), b), Tensor(b2)).data.reshape(10, 10)
        x0, grad_at = b2, lambda b: tg.grad(loss(Tensor(W2), b), b)[0].data
    else:
        H = AF.hessian(lambda W: loss(W, Tensor(b2)), Tensor(W2)).data.reshape(100, 100)
        x0, grad_at = W2, lambda W: tg.grad(loss(W, Tensor(b2)), W)[0].data
    numeric = np.zeros_like(H)
    eps = 1e-6
    for j in range(x0.size):
        up, down = x0.copy().reshape(-1), x0.copy().reshape(-1)
        up[j] += eps
        down[j] -= eps
        g_up = grad_at(Tensor(up.reshape(x0.shape), requires_grad=True))
        g_down = grad_at(Tensor(down.reshape(x0.shape), requires_grad=True))
        numeric[:, j] = ((g_up - g_down) / (2 * eps)).reshape(-1)
    np.testing.assert_allclose(H, numeric, atol=1e-8)
    np.testing.assert_allclose(H, H.T, atol=1e-15)
    torch = pytest.importorskip("torch")

    def t_loss(W2_, b2_):
        A1 = torch.relu(torch.tensor(W1) @ torch.tensor(X) + torch.tensor(b1))
        return -(torch.tensor(Y) * torch.log_softmax(W2_ @ A1 + b2_, dim=0)).sum() / X.shape[1]
    if which == "b2":
        T = torch.autograd.functional.hessian(lambda b: t_loss(torch.tensor(W2), b), torch.tensor(b2))
    else:
        T = torch.autograd.functional.hessian(lambda W: t_loss(W, torch.tensor(b2)), torch.tensor(W2))
    np.testing.assert_allclose(H, T.numpy().reshape(H.shape), rtol=1e-10, atol=1e-14)


def test_a_gradient_penalty_matches_torch():
    """The squared norm of ∂f/∂x, differentiated with respect to the weights (WGAN-GP's penalty)."""
    torch = pytest.importorskip("torch")
    tg_model = tnn.Sequential(tnn.Linear(4, 8, dtype=np.float64), tnn.Tanh(), tnn.Linear(8, 1, dtype=np.float64))
    t_model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    with torch.no_grad():
        for (_, p), (_, q) in zip(tg_model.named_parameters(), t_model.named_parameters()):
            q.copy_(torch.tensor(p.data))
    x = np.random.default_rng(5).standard_normal((6, 4))
    xs, t_xs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (gx,) = tg.grad(tg_model(xs).sum(), xs, create_graph=True)
    penalty = ((gx * gx).sum(1).sqrt() - 1) ** 2
    penalty.mean().backward()
    (t_gx,) = torch.autograd.grad(t_model(t_xs).sum(), t_xs, create_graph=True)
    ((t_gx.pow(2).sum(1).sqrt() - 1) ** 2).mean().backward()
    for (name, p), (_, q) in zip(tg_model.named_parameters(), t_model.named_parameters()):
        if q.grad is None:   # the last bias does not change ∂f/∂x: no gradient in either
            assert p.grad is None, name
        else:
            np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=name)


def test_viz_trace_prints_a_recorded_backward_in_the_graph_s_names():
    """A walk under create_graph reports the same steps and rules as the plain walk of the same graph."""
    rules = []
    for create_graph in (False, True):
        x = Tensor(np.array([1.0, 2.0]), requires_grad=True, name="x")
        y = (x.tanh() * x).sum()
        with tg.trace(file=io.StringIO()) as t:
            tg.grad(y, x, create_graph=create_graph)
        rules.append([(g.op, g.rule) for g in t.gradients])
    assert rules[0] == rules[1]
    assert [op for op, _ in rules[1]] == ["sum", "mul", "mul", "tanh"]
    assert rules[1][-1][1] == "∂L/∂x += ∂L/∂tanh#2 ⊙ (1 − tanh²(x))"


def test_the_second_order_gradcheck_command_passes_for_every_op():
    run = subprocess.run([sys.executable, "-m", "tinygrad_edu", "gradcheck", "--second-order", "--trials", "2"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"All {len(REGISTRY)} ops pass twice differentiated" in run.stdout


def test_the_newton_example_converges_in_a_few_steps_where_gradient_descent_does_not():
    run = subprocess.run([sys.executable, "examples/newton_logistic.py", "--quick"], capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "Newton converged" in run.stdout


def test_newtons_method_with_the_hessian_converges_where_gradient_descent_has_not():
    """examples/newton_logistic.py --quick prints the two lines docs/higher_order(.vi).md show in a measurement
    block (the docs' commands run in an empty folder, without examples/): Newton's 6 steps, and the gap gradient
    descent leaves after 300, their numbers the docs' to 1e-9 (BLAS may round the last digits otherwise)."""
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run([sys.executable, str(root / "examples" / "newton_logistic.py"), "--quick"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    newton = re.compile(r"Newton converged in (\d+) steps to loss (\S+)")
    gd = re.compile(r"gradient descent is still (\S+) above Newton's loss after 300 steps")
    ((steps, loss),), (gap,) = newton.findall(run.stdout), gd.findall(run.stdout)
    assert steps == "6"
    for page in ("higher_order.md", "higher_order.vi.md"):
        text = (root / "docs" / page).read_text(encoding="utf-8")
        ((d_steps, d_loss),), (d_gap,) = newton.findall(text), gd.findall(text)
        assert d_steps == steps and d_gap == gap, page
        assert float(d_loss) == pytest.approx(float(loss), rel=1e-9), page
