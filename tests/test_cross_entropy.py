"""F.cross_entropy as torch's: N×C or N×C×d1×... or C logits, labels or probabilities, ignore_index,
label_smoothing and every reduction, values and gradients (of the logits, and of a probability target)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_edu.autograd import ShapeError
from tinygrad_edu.nn import functional as F
from tinygrad_edu.tensor import Tensor

torch = pytest.importorskip("torch")


@st.composite
def cases(draw):
    """Logits of a shape torch takes, a target of the matching kind and shape, and the options."""
    batched = draw(st.booleans())
    C = draw(st.integers(1, 5))
    shape = (C,) if not batched else (draw(st.integers(0, 4)), C, *draw(st.lists(st.integers(1, 3), max_size=2)))
    labels = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal(shape) * draw(st.sampled_from([1.0, 10.0]))
    if labels:
        target = rng.integers(0, C, shape[:1] + shape[2:] if batched else ())
        ignore_index = draw(st.sampled_from([-100, 0, C - 1]))
        if draw(st.booleans()) and target.size:
            target.flat[:: 2] = ignore_index           # some examples ignored (with -100: a label out of range)
    else:
        target = rng.random(shape)
        ignore_index = -100
    options = {"reduction": draw(st.sampled_from(["mean", "sum", "none"])), "ignore_index": ignore_index,
               "label_smoothing": draw(st.sampled_from([0.0, 0.1, 1.0]))}
    return x, target, options, rng.standard_normal


@settings(max_examples=150, deadline=None)
@given(cases())
def test_values_and_gradients_equal_torchs(case):
    x, target, options, normal = case
    xt, xo = torch.tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    probabilities = target.dtype.kind == "f"
    tt = torch.tensor(target, requires_grad=probabilities)
    to = Tensor(target, requires_grad=True) if probabilities else target
    theirs = torch.nn.functional.cross_entropy(xt, tt, **options)
    ours = F.cross_entropy(xo, to, **options)
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = normal(ours.shape)
    (theirs * torch.tensor(w)).sum().backward()
    (ours * w).sum().backward()
    if np.isnan(theirs.detach().numpy()).any():   # all ignored under "mean": nan, whose gradient is nan too
        return
    np.testing.assert_allclose(xo.grad, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    if probabilities:
        np.testing.assert_allclose(to.grad, tt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_a_sequence_of_characters_is_n_by_c_by_length():
    """The text models' case: N words × C characters × T positions, the padding ignored."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 27, 6)), np.array([[5, 13, 13, 1, 0, -100], [1, 22, 1, 0, -100, -100]])
    ours = F.cross_entropy(Tensor(x), y)
    rows = np.moveaxis(x, 1, -1)[y != -100]
    logp = rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))
    assert ours.item() == pytest.approx(-logp[np.arange(len(rows)), y[y != -100]].mean(), rel=1e-12)


def test_label_smoothing_is_the_mixture_with_the_uniform_distribution():
    x = np.log(np.array([[0.7, 0.2, 0.1]]))
    loss = F.cross_entropy(Tensor(x), np.array([0]), label_smoothing=0.3).item()
    # (1 − ε)·(−log p_y) + ε·mean_c(−log p_c), ε = 0.3
    assert loss == pytest.approx(0.7 * -np.log(0.7) + 0.3 * -np.mean(np.log([0.7, 0.2, 0.1])), rel=1e-12)


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.zeros((2, 3)), ignore_index=1), ValueError,
     "ignore_index=1 applies to class labels; these targets are probabilities"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 1]), label_smoothing=1.5), ValueError,
     r"label_smoothing must be a number in \[0, 1\], got 1.5"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 1]), ignore_index=0.5), TypeError,
     "ignore_index must be an integer, got 0.5"),
    (lambda: F.cross_entropy(Tensor(np.zeros(())), np.array(0)), ShapeError, "expects logits of shape C, N×C"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3, 4))), np.zeros((2, 3), np.int64)), ShapeError,
     r"need integer labels of shape \(2, 4\), got \(2, 3\)"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 3])), ValueError, "3"),
])
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()
