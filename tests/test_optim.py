"""Tests of tinygrad_edu.optim: each update rule against a plain-numpy reference of its formula and torch.optim."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_edu import Tensor, optim

# --- references: the documented formulas, written out plainly in float64 --------------------------------------


def sgd_reference(p, grads, lr, momentum, dampening, weight_decay, nesterov):
    buf = None
    for g in grads:
        g = g + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p, buf


def adam_reference(p, grads, lr, betas, eps, weight_decay, amsgrad, decoupled):
    b1, b2 = betas
    m = v = v_max = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p - lr * weight_decay * p
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        v_max = np.maximum(v_max, v)
        m_hat = m / (1 - b1 ** t)
        v_hat = (v_max if amsgrad else v) / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p, m, v


# --- strategies: valid hyperparameters by construction -----------------------------------------------------------

values = st.floats(-10, 10, allow_nan=False, allow_subnormal=False)


@st.composite
def trajectories(draw):
    """(initial parameter, a list of 1-5 gradients of its shape), float64."""
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
    p = draw(hnp.arrays(np.float64, shape, elements=values))
    grads = draw(st.lists(hnp.arrays(np.float64, shape, elements=values), min_size=1, max_size=5))
    return p, grads


@st.composite
def sgd_settings(draw):
    momentum = draw(st.sampled_from([0.0, 0.5, 0.9]) | st.floats(0, 0.99))
    nesterov = momentum > 0 and draw(st.booleans())
    dampening = 0.0 if nesterov else draw(st.sampled_from([0.0, 0.1]) | st.floats(0, 0.9))
    return dict(lr=draw(st.floats(0, 1)), momentum=momentum, dampening=dampening,
                weight_decay=draw(st.sampled_from([0.0, 0.01]) | st.floats(0, 0.1)), nesterov=nesterov)


@st.composite
def adam_settings(draw):
    return dict(lr=draw(st.floats(0, 0.1)), betas=(draw(st.floats(0, 0.99)), draw(st.floats(0, 0.9999))),
                eps=draw(st.sampled_from([1e-8]) | st.floats(1e-8, 1e-3)),
                weight_decay=draw(st.sampled_from([0.0, 0.01]) | st.floats(0, 0.1)), amsgrad=draw(st.booleans()))


def run(opt_cls, p0, grads, **kw):
    """The optimizer applied to a leaf starting at p0, with each gradient in turn."""
    p = Tensor(p0.copy(), requires_grad=True)
    opt = opt_cls([p], **kw)
    for g in grads:
        opt.zero_grad()
        p.grad = g
        opt.step()
    return p, opt


# --- the update rules ----------------------------------------------------------------------------------------------


@given(trajectories(), sgd_settings())
def test_sgd_matches_its_formula(traj, kw):
    p0, grads = traj
    p, opt = run(optim.SGD, p0, grads, **kw)
    want, buf = sgd_reference(p0, grads, **kw)
    np.testing.assert_allclose(p.data, want, rtol=1e-12, atol=1e-12)
    if kw["momentum"]:
        np.testing.assert_allclose(opt.state[p]["momentum_buffer"], buf, rtol=1e-12, atol=1e-12)
    else:
        assert opt.state[p] == {}


@given(trajectories(), adam_settings(), st.booleans())
def test_adam_and_adamw_match_their_formula(traj, kw, decoupled):
    p0, grads = traj
    p, opt = run(optim.AdamW if decoupled else optim.Adam, p0, grads, **kw)
    want, m, v = adam_reference(p0, grads, decoupled=decoupled, **kw)
    np.testing.assert_allclose(p.data, want, rtol=1e-10, atol=1e-12)
    state = opt.state[p]
    assert state["step"] == len(grads)
    np.testing.assert_allclose(state["exp_avg"], m, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(state["exp_avg_sq"], v, rtol=1e-12, atol=1e-14)


def test_first_steps_by_hand():
    """Numbers worked out on paper: the rules, not just agreement of two implementations."""
    # SGD momentum 0.9: b = g = 2 -> p = 1 − 0.1·2 = 0.8; then b = 0.9·2 + 4 = 5.8 -> p = 0.8 − 0.58 = 0.22
    p, _ = run(optim.SGD, np.array([1.0]), [np.array([2.0]), np.array([4.0])], lr=0.1, momentum=0.9)
    np.testing.assert_allclose(p.data, [0.22])
    # Adam's first step moves every coordinate by lr·g/(|g| + ε) ≈ lr·sign(g), whatever the gradient's scale
    p, _ = run(optim.Adam, np.zeros(3), [np.array([1e-3, -5.0, 200.0])], lr=0.01)
    np.testing.assert_allclose(p.data, [-0.01, 0.01, -0.01], rtol=1e-4)
    # AdamW decays before the step: with g = 0 (so m = v = 0) only p ← p·(1 − lr·λ) remains
    p, _ = run(optim.AdamW, np.array([2.0]), [np.array([0.0])], lr=0.1, weight_decay=0.5)
    np.testing.assert_allclose(p.data, [2.0 * (1 - 0.05)])
    # Adam's weight decay goes through the moments instead: the same step moves p by about lr
    p, _ = run(optim.Adam, np.array([2.0]), [np.array([0.0])], lr=0.1, weight_decay=0.5)
    np.testing.assert_allclose(p.data, [1.9], rtol=1e-6)


def test_defaults_and_argument_order_follow_torch():
    p = Tensor(np.zeros(2), requires_grad=True)
    assert optim.SGD([p]).defaults == dict(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False)
    assert optim.SGD([p], 0.1, 0.9, 0.1, 0.01).defaults == dict(lr=0.1, momentum=0.9, dampening=0.1,
                                                                 weight_decay=0.01, nesterov=False)
    assert optim.Adam([p]).defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)
    assert optim.AdamW([p]).defaults["weight_decay"] == 0.01
    assert optim.AdamW([p], 0.1, (0.8, 0.9), 1e-6, 0.2, True).defaults == dict(
        lr=0.1, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.2, amsgrad=True)


def test_float32_stays_float32_in_place_and_grad_untouched():
    rng = np.random.default_rng(0)
    for cls, kw in ((optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.1)), (optim.Adam, dict(weight_decay=0.1)),
                    (optim.AdamW, {})):
        p = Tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
        data = p.data
        g = rng.standard_normal((4, 3)).astype(np.float32)
        opt = cls([p], **kw)
        for _ in range(3):
            p.grad = g
            opt.step()
        assert p.data is data and p.dtype == np.float32
        np.testing.assert_array_equal(p.grad, g)
        assert all(a.dtype == np.float32 for a in opt.state[p].values() if isinstance(a, np.ndarray))


def test_transposed_gradient_layout_gives_the_same_step():
    """The weight of x @ W.T gets its gradient transposed in memory; the update must not care."""
    rng = np.random.default_rng(1)
    p0, g = rng.standard_normal((5, 7)), rng.standard_normal((5, 7))
    results = []
    for grad in (g, np.asfortranarray(g)):
        p, _ = run(optim.Adam, p0, [grad, grad], lr=0.1)
        results.append(p.data)
    np.testing.assert_array_equal(*results)


def test_step_skips_parameters_without_grad_and_zero_grad_clears():
    a, b = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    opt = optim.SGD([a, b], lr=1.0)
    a.grad = np.array([1.0, 2.0])
    opt.step()
    np.testing.assert_array_equal(a.data, [0.0, -1.0])
    np.testing.assert_array_equal(b.data, [1.0, 1.0])
    assert b not in opt.state
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad, [0.0, 0.0])
    opt.zero_grad()
    assert a.grad is None


def test_step_closure_returns_the_loss():
    w = Tensor(np.array([3.0]), requires_grad=True)
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 9.0
    np.testing.assert_array_equal(w.data, [1.5])   # w − 0.25·2w


def test_param_groups_take_their_own_hyperparameters():
    a, b = Tensor(np.ones(1), requires_grad=True), Tensor(np.ones(1), requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = np.ones(1), np.ones(1)
    opt.step()
    np.testing.assert_allclose([a.item(), b.item()], [0.9, 0.5])
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD([]), "empty parameter list"),
    (lambda p: optim.SGD([np.ones(2)]), "can only optimize Tensors, but one of the params is a ndarray"),
    (lambda p: optim.SGD([p * 2]), "leaf"),
    (lambda p: optim.SGD([p, p]), "appears more than once"),
    (lambda p: optim.SGD([p], lr=-1), "invalid learning rate -1"),
    (lambda p: optim.SGD([p], momentum=-0.5), "invalid momentum"),
    (lambda p: optim.SGD([p], nesterov=True), "Nesterov momentum needs momentum > 0 and dampening = 0"),
    (lambda p: optim.Adam([p], betas=(0.9, 1.0)), "invalid betas"),
    (lambda p: optim.Adam([p], eps=-1e-8), "invalid eps"),
    (lambda p: optim.AdamW([p], weight_decay=-0.1), "invalid weight_decay"),
    (lambda p: optim.StepLR(optim.SGD([p]), step_size=0), "step_size must be ≥ 1"),
    (lambda p: optim.CosineAnnealingLR(optim.SGD([p]), T_max=0), "T_max must be ≥ 1"),
])
def test_bad_arguments_are_named(make, message):
    p = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(")):
        make(p)


# --- state: save, restore, resume ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls, kw", [(optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
                                     (optim.Adam, dict(lr=0.01, amsgrad=True)), (optim.AdamW, dict(lr=0.01))])
def test_state_dict_round_trip_resumes_exactly(cls, kw):
    rng = np.random.default_rng(2)
    p0, grads = rng.standard_normal(6), [rng.standard_normal(6) for _ in range(6)]
    straight, _ = run(cls, p0, grads, **kw)
    first, opt1 = run(cls, p0, grads[:3], **kw)
    resumed = Tensor(first.data.copy(), requires_grad=True)
    opt2 = cls([resumed], lr=123.0)   # hyperparameters come back from the state too
    opt2.load_state_dict(opt1.state_dict())
    assert opt2.param_groups[0]["lr"] == kw["lr"]
    for g in grads[3:]:
        resumed.grad = g
        opt2.step()
    np.testing.assert_array_equal(resumed.data, straight.data)


def test_load_state_dict_refuses_mismatches():
    p = Tensor(np.ones(3), requires_grad=True)
    opt = optim.Adam([p])
    p.grad = np.ones(3)
    opt.step()
    other = optim.Adam([Tensor(np.ones(4), requires_grad=True)])
    with pytest.raises(ValueError, match=r"state 'exp_avg' of parameter 0 has shape \(3,\), the parameter \(4,\)"):
        other.load_state_dict(opt.state_dict())
    two = optim.Adam([Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(3), requires_grad=True)])
    with pytest.raises(ValueError, match=r"saved parameter groups have \[1\] parameters, this optimizer \[2\]"):
        two.load_state_dict(opt.state_dict())


# --- schedules -------------------------------------------------------------------------------------------------------


def lrs(scheduler, n):
    out = []
    for _ in range(n):
        out.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return out


@given(st.floats(1e-4, 1.0), st.integers(1, 7), st.floats(0.05, 1.0))
def test_step_lr_formula(lr, step_size, gamma):
    p = Tensor(np.ones(1), requires_grad=True)
    got = lrs(optim.StepLR(optim.SGD([p], lr=lr), step_size, gamma), 20)
    np.testing.assert_allclose(got, [lr * gamma ** (t // step_size) for t in range(20)], rtol=1e-12)


@given(st.floats(1e-4, 1.0), st.integers(1, 12), st.floats(0, 1e-4))
def test_cosine_lr_formula(lr, T_max, eta_min):
    p = Tensor(np.ones(1), requires_grad=True)
    sched = optim.CosineAnnealingLR(optim.SGD([p], lr=lr), T_max, eta_min)
    got = lrs(sched, T_max + 1)
    want = [eta_min + (lr - eta_min) * (1 + math.cos(math.pi * t / T_max)) / 2 for t in range(T_max + 1)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert got[0] == pytest.approx(lr, rel=1e-15) and got[-1] == pytest.approx(eta_min, abs=1e-15)
    assert sched.get_last_lr() == [sched.optimizer.param_groups[0]["lr"]]


def test_scheduler_state_round_trip():
    p = Tensor(np.ones(1), requires_grad=True)
    a = optim.CosineAnnealingLR(optim.SGD([p], lr=0.1), T_max=10)
    lrs(a, 4)
    b_opt = optim.SGD([p], lr=0.1)
    b_opt.load_state_dict(a.optimizer.state_dict())
    b = optim.CosineAnnealingLR(b_opt, T_max=10, last_epoch=3)
    b.load_state_dict(a.state_dict())
    assert lrs(a, 5) == lrs(b, 5)


# --- against torch.optim ---------------------------------------------------------------------------------------------


def run_torch(opt_name, p0, grads, **kw):
    torch = pytest.importorskip("torch")
    p = torch.tensor(p0, dtype=torch.float64, requires_grad=True)
    opt = getattr(torch.optim, opt_name)([p], **kw)
    for g in grads:
        opt.zero_grad()
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return p.detach().numpy(), opt


@given(trajectories(), sgd_settings())
def test_sgd_matches_torch(traj, kw):
    p0, grads = traj
    want, topt = run_torch("SGD", p0, grads, **kw)
    p, opt = run(optim.SGD, p0, grads, **kw)
    np.testing.assert_allclose(p.data, want, rtol=1e-12, atol=1e-12)
    if kw["momentum"]:
        np.testing.assert_allclose(opt.state[p]["momentum_buffer"],
                                   topt.state[topt.param_groups[0]["params"][0]]["momentum_buffer"].numpy(),
                                   rtol=1e-12, atol=1e-12)


@given(trajectories(), adam_settings(), st.sampled_from(["Adam", "AdamW"]))
def test_adam_and_adamw_match_torch(traj, kw, name):
    p0, grads = traj
    want, topt = run_torch(name, p0, grads, **kw)
    p, opt = run(getattr(optim, name), p0, grads, **kw)
    np.testing.assert_allclose(p.data, want, rtol=1e-10, atol=1e-12)
    tstate = topt.state[topt.param_groups[0]["params"][0]]
    for key in ("exp_avg", "exp_avg_sq"):
        np.testing.assert_allclose(opt.state[p][key], tstate[key].numpy(), rtol=1e-12, atol=1e-14)
    assert opt.state[p]["step"] == int(tstate["step"])


@pytest.mark.parametrize("name, kw", [("StepLR", dict(step_size=3, gamma=0.5)),
                                      ("CosineAnnealingLR", dict(T_max=7, eta_min=1e-3))])
def test_schedules_match_torch(name, kw):
    torch = pytest.importorskip("torch")
    tp = torch.zeros(1, requires_grad=True)
    topt = torch.optim.SGD([tp], lr=0.1)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    want = []
    for _ in range(12):
        want.append(topt.param_groups[0]["lr"])
        topt.step()
        tsched.step()
    got = lrs(getattr(optim, name)(optim.SGD([Tensor(np.zeros(1), requires_grad=True)], lr=0.1), **kw), 12)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
