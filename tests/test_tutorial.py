"""The tutorial's hand-derived gradients (manual.py) against autograd (tutorial.py), and manual.py's pieces."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_edu import Tensor, gradcheck, manual, no_grad, tutorial
from tinygrad_edu.autograd import Function
from tinygrad_edu.comparison import normwise_relative_error, one_hot_as_published, synthetic_digits
from tinygrad_edu.datasets import to_float
from tinygrad_edu.tensor import apply_op

# Normwise relative error allowed between two float64 computations of the same formula: about 10⁵ units of
# round-off. Typical is 1e-16..1e-15; the worst seen in 400,000 random draws was 3e-12, on db1 and dW1,
# when the sum over the examples nearly cancels. A wrong formula is off by O(1), float32 by 1e-7.
TIGHT = 1e-11


# --- the property: autograd computes the tutorial's formulas ---------------------------------------------


@st.composite
def tutorial_networks(draw):
    """(W1, b1, W2, b2, X, Y) in float64: drawn m, hidden width, input size, weights, pixels and labels.

    The weights are init_params's, from a drawn seed, rather than drawn one by one: hypothesis would pick
    degenerate ones (a column of W2 with ten equal entries makes W2ᵀ·dZ2 exactly 0, since each column of
    dZ2 sums to 0, and both sides would compute only round-off, where relative error means nothing).
    The first column's label is the class the network rates least likely, so at least one example is
    misclassified and the gradients are not all ≈ 0 (a network sure of every label has nothing to learn).
    """
    m, hidden, n_in = draw(st.integers(1, 12)), draw(st.integers(1, 12)), draw(st.integers(1, 16))
    W1, b1, W2, b2 = manual.init_params(draw(st.integers(0, 2**32 - 1)), np.float64, hidden=hidden, n_in=n_in)
    X = to_float(draw(hnp.arrays(np.uint8, (m, n_in))), np.float64, layout="columns")   # n_in×m, pixels/255
    Y = draw(hnp.arrays(np.int64, m, elements=st.integers(0, 9)))
    Y[0] = np.argmin(manual.forward_prop(W1, b1, W2, b2, X[:, :1])[2])
    return W1, b1, W2, b2, X, Y


@given(tutorial_networks())
def test_autograd_computes_the_hand_derived_gradients(net):
    W1, b1, W2, b2, X, Y = net
    m = X.shape[1]
    Z1, A1, Z2, A2 = manual.forward_prop(W1, b1, W2, b2, X)
    hand = manual.backward_prop(Z1, A1, Z2, A2, W1, W2, X, Y)

    params = tutorial.Params(*(Tensor(p, requires_grad=True) for p in (W1, b1, W2, b2)))
    fwd = tutorial.forward_prop(params, X, Y)
    fwd.loss.backward()

    assert normwise_relative_error(params.W1.grad, hand.dW1) < TIGHT
    assert normwise_relative_error(params.b1.grad, hand.db1) < TIGHT
    assert normwise_relative_error(params.W2.grad, hand.dW2) < TIGHT
    assert normwise_relative_error(params.b2.grad, hand.db2) < TIGHT
    # The mean loss's ∂L/∂Z are the tutorial's dZ's (gradients of the summed loss) divided by m.
    assert normwise_relative_error(m * fwd.Z2.grad, A2 - manual.one_hot(Y, 10, np.float64)) < TIGHT
    assert normwise_relative_error(m * fwd.Z1.grad, hand.dZ1) < TIGHT
    # and tutorial.backward_prop reports exactly those numbers in the tutorial's names
    auto = tutorial.backward_prop(params, tutorial.forward_prop(params, X, Y))
    assert np.array_equal(auto.dW1, params.W1.grad) and np.array_equal(auto.dZ2, m * fwd.Z2.grad)


class HandNetwork(Function):
    """The tutorial's network as one op: forward is the mean cross-entropy, backward the hand formulas."""

    name = "hand_network"

    def forward(self, W1, b1, W2, b2, *, X, Y):
        Z1, A1, Z2, A2 = manual.forward_prop(W1, b1, W2, b2, X)
        self.save(Z1, A1, Z2, A2, W1, W2)
        self.attrs.update(X=X, Y=Y)
        return np.asarray(-np.mean(np.log(A2[Y, np.arange(len(Y))])))

    def backward(self, g):
        dW1, db1, dW2, db2, _, _ = manual.backward_prop(*self.saved, self.attrs["X"], self.attrs["Y"])
        return g * dW1, g * db1, g * dW2, g * db2


def small_instance():
    X = np.random.default_rng(7).integers(0, 256, (6, 5)) / 255
    Y = np.array([3, 0, 9, 1, 1])
    W1, b1, W2, b2 = manual.init_params(1, np.float64, hidden=4, n_in=6)
    assert np.abs(W1 @ X + b1).min() > 0.05   # clear of ReLU's kink, where finite differences mislead
    return [Tensor(p, requires_grad=True, name=n) for p, n in zip((W1, b1, W2, b2), ("W1", "b1", "W2", "b2"))], X, Y


def test_autograd_network_passes_gradcheck():
    params, X, Y = small_instance()
    assert gradcheck(lambda *p: tutorial.forward_prop(tutorial.Params(*p), X, Y).loss, params)


def test_hand_derived_gradients_pass_gradcheck():
    params, X, Y = small_instance()
    assert gradcheck(lambda *p: apply_op(HandNetwork, *p, X=X, Y=Y), params)


def test_gradcheck_catches_the_published_scalar_db():
    class PublishedDb(HandNetwork):
        def backward(self, g):
            dW1, db1, dW2, db2, dZ1, dZ2 = manual.backward_prop(*self.saved, self.attrs["X"], self.attrs["Y"])
            m = len(self.attrs["Y"])
            return g * dW1, g * np.full_like(db1, dZ1.sum() / m), g * dW2, g * np.full_like(db2, dZ2.sum() / m)

    params, X, Y = small_instance()
    with pytest.raises(AssertionError, match=r"input 1 \(b1\)"):
        gradcheck(lambda *p: apply_op(PublishedDb, *p, X=X, Y=Y), params)


def test_fifty_steps_by_hand_and_by_autograd_end_in_the_same_weights():
    images, Y = synthetic_digits(300, seed=1)
    X = to_float(images, np.float64, layout="columns")
    hand = manual.gradient_descent(X, Y, alpha=0.10, iterations=50, seed=0)

    params = tutorial.init_params(0, np.float64)
    for _ in range(50):
        tutorial.gradient_descent_step(params, X, Y, alpha=0.10)

    start = manual.init_params(0, np.float64)
    for name, h, p, w0 in zip(tutorial.Params._fields, hand, params, start):
        assert normwise_relative_error(h - w0, w0) > 1e-3, f"{name} hardly moved: the test would prove nothing"
        assert normwise_relative_error(p.data, h) < 1e-10, name


# --- manual.py's pieces ------------------------------------------------------------------------------------


def test_one_hot_has_a_row_per_class_even_when_the_batch_lacks_the_9():
    Y = np.array([0, 3, 1, 3])
    expected = np.zeros((10, 4), np.float32)
    expected[[0, 3, 1, 3], [0, 1, 2, 3]] = 1
    assert np.array_equal(manual.one_hot(Y), expected)
    assert manual.one_hot(Y).dtype == np.float32 and manual.one_hot(Y, dtype=np.float64).dtype == np.float64
    assert one_hot_as_published(Y).shape == (4, 4)   # the published one: Y.max() + 1 rows


@pytest.mark.parametrize("labels, error, message", [
    ([0, 10], ValueError, r"one_hot: labels must lie in 0\.\.9; got 10 at position 1"),
    ([-1, 2], ValueError, r"labels must lie in 0\.\.9; got -1 at position 0"),
    ([0.0, 1.0], TypeError, r"one_hot: class labels must be integers, got dtype float64"),
])
def test_one_hot_rejects_labels_it_cannot_encode(labels, error, message):
    with pytest.raises(error, match=message):
        manual.one_hot(np.array(labels))


def test_db_sums_per_unit_over_the_examples():
    X = np.random.default_rng(0).random((784, 6))
    Y = np.array([0, 1, 2, 3, 4, 5])
    W1, b1, W2, b2 = manual.init_params(0, np.float64, hidden=7)
    Z1, A1, Z2, A2 = manual.forward_prop(W1, b1, W2, b2, X)
    g = manual.backward_prop(Z1, A1, Z2, A2, W1, W2, X, Y)
    assert g.db1.shape == (7, 1) and g.db2.shape == (10, 1)
    assert g.dW1.shape == (7, 784) and g.dW2.shape == (10, 7) and g.dZ1.shape == (7, 6) and g.dZ2.shape == (10, 6)
    assert np.array_equal(g.db2, np.sum(g.dZ2, axis=1, keepdims=True) / 6)
    assert np.array_equal(g.db1, np.sum(g.dZ1, axis=1, keepdims=True) / 6)
    assert len(np.unique(g.db2)) == 10   # one value per unit, not one for the layer


def test_softmax_subtracts_the_column_max():
    Z = np.array([[1000.0, -1000.0, 3.0], [0.0, -1000.0, 1.0], [-1e308, -1001.0, 2.0]])
    with np.errstate(over="raise", invalid="raise"):   # exp(1000) would overflow to inf, then inf/inf = nan
        A = manual.softmax(Z)
    assert np.array_equal(A[:, 0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(A[:, 1], np.exp([0.0, 0.0, -1.0]) / (2 + np.exp(-1.0)), rtol=1e-15)
    np.testing.assert_allclose(A[:, 2], np.exp([0.0, -2.0, -1.0]) / np.exp([0.0, -2.0, -1.0]).sum(), rtol=1e-15)


def test_relu_derivative_at_zero_is_zero_by_hand_and_by_autograd():
    assert np.array_equal(manual.ReLU_deriv(np.array([-1.0, 0.0, 2.0])), [False, False, True])
    X = np.ones((784, 3))
    W1, b1, W2, b2 = manual.init_params(0, np.float64)
    W1[:5], b1[:5] = 0.0, 0.0   # Z1 is exactly 0 in the first five units
    Z1, A1, Z2, A2 = manual.forward_prop(W1, b1, W2, b2, X)
    hand = manual.backward_prop(Z1, A1, Z2, A2, W1, W2, X, np.array([1, 2, 3]))
    params = tutorial.Params(*(Tensor(p, requires_grad=True) for p in (W1, b1, W2, b2)))
    auto = tutorial.backward_prop(params, tutorial.forward_prop(params, X, np.array([1, 2, 3])))
    assert not hand.dZ1[:5].any() and not auto.dZ1[:5].any()


def test_init_params_draws_W1_b1_W2_b2_in_order_as_rand_minus_half():
    rng = np.random.default_rng(42)
    expected = [rng.random(shape) - 0.5 for shape in [(10, 784), (10, 1), (10, 10), (10, 1)]]
    for got, want in zip(manual.init_params(42, np.float64), expected):
        assert np.array_equal(got, want)
    for got, want in zip(manual.init_params(42, np.float32), expected):
        assert got.dtype == np.float32 and np.array_equal(got, want.astype(np.float32))
    assert [p.shape for p in manual.init_params(0, hidden=3)] == [(3, 784), (3, 1), (10, 3), (10, 1)]


def test_init_params_gives_the_same_weights_by_hand_and_by_autograd():
    for dtype in (np.float32, np.float64):
        params = tutorial.init_params(5, dtype, hidden=6)
        assert all(p.requires_grad and p.is_leaf for p in params)
        assert [p.name for p in params] == ["W1", "b1", "W2", "b2"]
        for p, w in zip(params, manual.init_params(5, dtype, hidden=6)):
            assert p.dtype == dtype and np.array_equal(p.data, w)


def test_float32_stays_float32_through_a_step_by_hand_and_by_autograd():
    images, Y = synthetic_digits(20, seed=0)
    X = to_float(images, np.float32, layout="columns")
    W = manual.init_params(0, np.float32)
    Z1, A1, Z2, A2 = manual.forward_prop(*W, X)
    grads = manual.backward_prop(Z1, A1, Z2, A2, W[0], W[2], X, Y)
    new = manual.update_params(*W, *grads[:4], alpha=0.1)
    assert all(a.dtype == np.float32 for a in (Z1, A1, Z2, A2, *grads, *new))
    assert manual.gradient_descent(X, Y, iterations=2)[0].dtype == np.float32

    params = tutorial.init_params(0, np.float32)
    fwd = tutorial.gradient_descent_step(params, X, Y, alpha=0.1)
    assert fwd.loss.dtype == fwd.Z2.grad.dtype == np.float32
    assert all(p.dtype == np.float32 and p.grad is None for p in params)


def test_predictions_and_accuracy():
    A2 = np.array([[0.1, 0.7, 0.2], [0.8, 0.2, 0.1], [0.1, 0.1, 0.7]])
    assert np.array_equal(manual.get_predictions(A2), [1, 0, 2])
    assert manual.get_accuracy(manual.get_predictions(A2), np.array([1, 2, 2])) == pytest.approx(2 / 3)


# --- tutorial.py's conveniences ---------------------------------------------------------------------------


def test_forward_prop_under_no_grad_records_nothing_and_gives_the_same_loss():
    images, Y = synthetic_digits(8, seed=3)
    X = to_float(images, np.float64, layout="columns")
    params = tutorial.init_params(0, np.float64)
    with no_grad():
        fwd = tutorial.forward_prop(params, X, Y)
    assert not fwd.loss.requires_grad and fwd.loss.grad_fn is None
    assert fwd.loss.item() == tutorial.forward_prop(params, X, Y).loss.item()


def test_backward_prop_gives_this_batchs_gradients_even_if_grads_were_left_over():
    images, Y = synthetic_digits(8, seed=3)
    X = to_float(images, np.float64, layout="columns")
    params = tutorial.init_params(0, np.float64)
    first = tutorial.backward_prop(params, tutorial.forward_prop(params, X, Y))
    second = tutorial.backward_prop(params, tutorial.forward_prop(params, X, Y))   # no update in between
    for a, b in zip(first, second):
        assert np.array_equal(a, b)


def test_normwise_relative_error():
    assert normwise_relative_error([1.0, 2.0], [1.0, 4.0]) == 0.5
    assert normwise_relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert normwise_relative_error([0.0, 1e-300], [0.0, 0.0]) == float("inf")
    assert normwise_relative_error(1.0, np.array([[2.0], [4.0]])) == 0.75   # a scalar against a column


def test_manual_cross_entropy_is_the_loss_autograd_differentiates():
    rng = np.random.default_rng(3)
    Z2, Y = rng.normal(size=(10, 40)) * 4, rng.integers(0, 10, 40)
    assert manual.cross_entropy(manual.softmax(Z2), Y) == pytest.approx(
        Tensor(Z2).softmax_cross_entropy(Y, axis=0).item(), rel=1e-12)
