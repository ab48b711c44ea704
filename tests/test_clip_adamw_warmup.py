"""A GPT's training tools against torch: nn.utils.clip_grad_norm_, AdamW on parameter groups, WarmupCosineLR.

clip_grad_norm_ and AdamW are compared with torch's own, step by step, in float64; WarmupCosineLR (torch has
no such class) with its formula, and inside torch through a LambdaLR of that formula.
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu.nn.functional as F
from tinygrad_edu import Tensor, checkpoint, nn, optim
from tinygrad_edu.mlp import MLP

torch = pytest.importorskip("torch")


# --- clip_grad_norm_ ------------------------------------------------------------------------------------------


@st.composite
def gradients(draw):
    """A few parameters' gradients (some None), scaled so that some clip and some do not."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shapes = draw(st.lists(st.sampled_from([(3,), (2, 4), (1,), (2, 1, 3)]), min_size=1, max_size=4))
    scale = draw(st.sampled_from([1e-3, 0.3, 1.0, 10.0]))
    return [None if draw(st.integers(0, 4)) == 0 else rng.standard_normal(s) * scale for s in shapes], shapes


@given(gradients(), st.sampled_from([2.0, 1.0, 3.5, math.inf, "inf", 0.5]), st.sampled_from([0.1, 1.0, 5.0]))
def test_clip_grad_norm_matches_torch_in_the_total_and_the_clipped_gradients(grads_shapes, norm_type, max_norm):
    grads, shapes = grads_shapes
    ours = [Tensor(np.zeros(s), requires_grad=True) for s in shapes]
    theirs = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in shapes]
    for p, t, g in zip(ours, theirs, grads):
        if g is not None:
            p.grad, t.grad = g, torch.tensor(g)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, Tensor) and total.shape == ()
    np.testing.assert_allclose(total.item(), t_total.item(), rtol=1e-12)
    for p, t in zip(ours, theirs):
        assert (p.grad is None) == (t.grad is None)
        if p.grad is not None:
            np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12, atol=1e-300)


def test_clip_grad_norm_returns_the_norm_before_clipping_and_scales_by_max_over_norm():
    p = Tensor(np.zeros(3, np.float32), requires_grad=True)
    q = Tensor(np.zeros(2, np.float32), requires_grad=True)   # no gradient: skipped
    p.grad = np.array([3.0, 4.0, 0.0])
    total = nn.utils.clip_grad_norm_([p, q], max_norm=1.0)
    assert total.dtype == np.float32 and total.item() == 5.0
    np.testing.assert_allclose(p.grad, np.array([3.0, 4.0, 0.0]) / (5 + 1e-6), rtol=1e-7)
    assert q.grad is None
    p.grad = np.array([0.3, 0.4, 0.0])   # a norm below max_norm: the gradient stays as it is
    assert nn.utils.clip_grad_norm_(p, max_norm=1.0).item() == pytest.approx(0.5)
    assert p.grad.tolist() == pytest.approx([0.3, 0.4, 0.0], rel=1e-7)
    assert nn.utils.clip_grad_norm_([q], 1.0).item() == 0.0   # no gradients at all


def test_clip_grad_norm_of_a_nonfinite_total_follows_torch_or_raises_when_asked():
    p, t = Tensor(np.zeros(3), requires_grad=True), torch.zeros(3, dtype=torch.float64, requires_grad=True)
    for bad in ([math.inf, 4.0, 0.0], [math.nan, 4.0, 0.0]):
        p.grad, t.grad = np.array(bad), torch.tensor(bad, dtype=torch.float64)
        total = nn.utils.clip_grad_norm_([p], 1.0)
        t_total = torch.nn.utils.clip_grad_norm_([t], 1.0)
        np.testing.assert_array_equal(total.data, t_total.numpy())
        np.testing.assert_array_equal(p.grad, t.grad.numpy())
    p.grad = np.array([math.inf, 1.0, 0.0])
    with pytest.raises(RuntimeError, match="the total norm of order 2.0 of the gradients is inf, so they cannot be"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert p.grad.tolist() == [math.inf, 1.0, 0.0]   # untouched


@pytest.mark.parametrize("kwargs,words", [(dict(max_norm=-1.0), "max_norm must be a number ≥ 0, got -1.0"),
                                          (dict(max_norm="1"), "max_norm must be a number ≥ 0, got '1'"),
                                          (dict(max_norm=1.0, norm_type="two"), "norm_type must be a number or 'inf'")])
def test_clip_grad_norm_refuses_bad_arguments_naming_them(kwargs, words):
    p = Tensor(np.zeros(2), requires_grad=True)
    p.grad = np.ones(2)
    with pytest.raises(ValueError, match=words):
        nn.utils.clip_grad_norm_([p], **kwargs)
    with pytest.raises(TypeError, match="parameters must be Tensors, got a ndarray"):
        nn.utils.clip_grad_norm_([np.ones(2)], 1.0)


# --- AdamW on parameter groups --------------------------------------------------------------------------------


def test_adamw_with_two_groups_one_without_weight_decay_matches_torch_over_steps():
    """nanoGPT's use: weight decay 0.1 on the matrices, none on biases and norms; β2 0.99; the lr changing
    every step (a warm-up); gradients clipped first."""
    rng = np.random.default_rng(0)
    shapes = [(4, 3), (3,), (2, 4), (2,)]
    p0 = [rng.standard_normal(s) for s in shapes]
    ours = [Tensor(a.copy(), requires_grad=True) for a in p0]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in p0]

    def groups(ps):
        return [{"params": [ps[0], ps[2]], "weight_decay": 0.1}, {"params": [ps[1], ps[3]], "weight_decay": 0.0}]
    opt = optim.AdamW(groups(ours), lr=1e-2, betas=(0.9, 0.99))
    t_opt = torch.optim.AdamW(groups(theirs), lr=1e-2, betas=(0.9, 0.99))
    sched = optim.WarmupCosineLR(opt, warmup_steps=3, decay_steps=8, min_lr=1e-3)
    t_sched = torch.optim.lr_scheduler.LambdaLR(t_opt, lambda t: warmup_cosine(1e-2, t, 3, 8, 1e-3) / 1e-2)
    for _ in range(10):
        grads = [rng.standard_normal(s) for s in shapes]
        for p, t, g in zip(ours, theirs, grads):
            p.grad, t.grad = g.copy(), torch.tensor(g)
        nn.utils.clip_grad_norm_(ours, 1.0)
        torch.nn.utils.clip_grad_norm_(theirs, 1.0)
        opt.step()
        t_opt.step()
        sched.step()
        t_sched.step()
        for p, t in zip(ours, theirs):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-10, atol=1e-13)
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([g["lr"] for g in t_opt.param_groups],
                                                                    rel=1e-12, abs=1e-15)
    for p, t in zip(ours, theirs):
        state, t_state = opt.state[p], t_opt.state[t]
        for key in ("exp_avg", "exp_avg_sq"):
            np.testing.assert_allclose(state[key], t_state[key].numpy(), rtol=1e-12)
    # the group without weight decay moved by Adam's step alone: weight_decay=0 is AdamW = Adam there
    assert opt.param_groups[1]["weight_decay"] == 0.0


def test_adamw_decay_is_decoupled_from_the_gradient():
    """With a zero gradient Adam's step is 0, so only the decay moves p: p ← p·(1 − lr·λ) each step."""
    p = Tensor(np.array([2.0, -4.0]), requires_grad=True)
    opt = optim.AdamW([p], lr=0.1, weight_decay=0.5)
    for _ in range(3):
        p.grad = np.zeros(2)
        opt.step()
    np.testing.assert_allclose(p.data, np.array([2.0, -4.0]) * (1 - 0.1 * 0.5) ** 3, rtol=1e-15)


# --- WarmupCosineLR -----------------------------------------------------------------------------------------


def warmup_cosine(lr, t, warmup, decay, min_lr):
    """The schedule written out: linear from 0 over `warmup` steps, cosine to min_lr at `decay`, then min_lr."""
    if t < warmup:
        return lr * t / warmup
    if t > decay:
        return min_lr
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * (t - warmup) / (decay - warmup)))


def lrs(sched, n):
    out = []
    for _ in range(n):
        out.append([g["lr"] for g in sched.optimizer.param_groups])
        sched.optimizer.step()
        sched.step()
    return out


@given(st.floats(1e-4, 1.0), st.integers(0, 10), st.integers(1, 20), st.floats(0, 1e-4))
def test_warmup_cosine_follows_its_formula(lr, warmup, length, min_lr):
    decay = warmup + length
    p = Tensor(np.ones(1), requires_grad=True)
    sched = optim.WarmupCosineLR(optim.SGD([p], lr=lr), warmup, decay, min_lr)
    got = [row[0] for row in lrs(sched, decay + 5)]
    want = [warmup_cosine(lr, t, warmup, decay, min_lr) for t in range(decay + 5)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert got[0] == (0.0 if warmup else lr)
    assert got[warmup] == pytest.approx(lr, rel=1e-15)
    assert got[decay:] == pytest.approx([min_lr] * 5, abs=1e-15)
    assert sched.get_last_lr() == [sched.optimizer.param_groups[0]["lr"]]


def test_warmup_cosine_is_nanogpts_recipe_on_each_group():
    """lr 1e-3, 100 warm-up steps, cosine to 1e-4 at step 2000; a second group with its own lr follows its own."""
    p, q = Tensor(np.ones(1), requires_grad=True), Tensor(np.ones(1), requires_grad=True)
    opt = optim.AdamW([{"params": [p]}, {"params": [q], "lr": 2e-3}], lr=1e-3)
    sched = optim.WarmupCosineLR(opt, warmup_steps=100, decay_steps=2000, min_lr=1e-4)
    seen = lrs(sched, 2001)
    assert seen[0] == [0.0, 0.0] and seen[50] == pytest.approx([5e-4, 1e-3]) and seen[100] == [1e-3, 2e-3]
    assert seen[1050] == pytest.approx([(1e-3 + 1e-4) / 2, (2e-3 + 1e-4) / 2])
    assert seen[2000] == pytest.approx([1e-4, 1e-4], abs=1e-18)
    after = [row[0] for row in seen[100:]]
    assert all(a >= b for a, b in zip(after, after[1:]))   # only down after the warm-up


@pytest.mark.parametrize("kwargs,words", [(dict(warmup_steps=-1, decay_steps=5), "warmup_steps must be an integer"),
                                          (dict(warmup_steps=5, decay_steps=5), r"decay_steps \(5\) must be more"),
                                          (dict(warmup_steps=1.5, decay_steps=5), "got 1.5"),
                                          (dict(warmup_steps=1, decay_steps=5, min_lr=-1), "min_lr must be ≥ 0")])
def test_warmup_cosine_refuses_bad_arguments_naming_them(kwargs, words):
    with pytest.raises(ValueError, match=words):
        optim.WarmupCosineLR(optim.SGD([Tensor(np.ones(1), requires_grad=True)]), **kwargs)


def test_warmup_cosine_is_saved_and_resumed_with_the_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((8, 6)).astype(np.float32), rng.integers(0, 3, 8)) for _ in range(8)]

    def train(model, opt, sched, part):
        for x, y in part:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()

    def fresh(model):
        opt = optim.AdamW(model.parameters(), lr=0.01, betas=(0.9, 0.99), weight_decay=0.1)
        return opt, optim.WarmupCosineLR(opt, warmup_steps=2, decay_steps=6, min_lr=1e-3)

    straight = MLP((6, 5, 3), seed=0)
    train(straight, *fresh(straight), batches)
    first = MLP((6, 5, 3), seed=0)
    opt, sched = fresh(first)
    train(first, opt, sched, batches[:3])
    nn.save(first, tmp_path / "ckpt.npz", opt, sched)
    resumed = nn.load(tmp_path / "ckpt.npz")
    opt2, sched2 = fresh(resumed)
    nn.load_optimizer_state(tmp_path / "ckpt.npz", opt2, sched2)
    assert sched2.last_epoch == 3 and opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    train(resumed, opt2, sched2, batches[3:])
    for p, q in zip(straight.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    with pytest.raises(checkpoint.CheckpointError, match="holds no CosineAnnealingLR state"):
        opt3 = optim.AdamW(resumed.parameters(), lr=0.01, betas=(0.9, 0.99), weight_decay=0.1)
        nn.load_optimizer_state(tmp_path / "ckpt.npz", opt3, optim.CosineAnnealingLR(opt3, T_max=6))
