"""Every differentiable op against finite differences, drawn from the registry, plus the loss's exact gradient."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import HypothesisChooser

from tinygrad_edu import GradcheckError, ShapeError, Tensor, gradcheck, ops
from tinygrad_edu.autograd import unbroadcast
from tinygrad_edu.opspecs import REGISTRY, NumpyChooser, all_ops


def test_registry_covers_every_op():
    covered = {cls for spec in REGISTRY.values() for cls in spec.covers}
    missing = [cls.__name__ for cls in all_ops() if cls not in covered]
    assert not missing, f"ops without an entry in tinygrad_edu.opspecs.REGISTRY: {missing}"


@pytest.mark.parametrize("name", sorted(REGISTRY))
@given(data=st.data())
def test_op_matches_finite_differences(name, data):
    f, arrays, _ = REGISTRY[name].example(HypothesisChooser(data))
    assert gradcheck(f, [Tensor(a, requires_grad=True) for a in arrays])


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_op_keeps_float32(name):
    f, arrays, _ = REGISTRY[name].example(NumpyChooser(3))
    xs = [Tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    out = f(*xs)
    assert out.dtype == np.float32
    (out * np.ones(out.shape, np.float32)).sum().backward()
    assert all(x.grad.dtype == np.float32 and x.grad.shape == x.shape for x in xs)


def test_gradcheck_catches_a_backward_that_ignores_its_incoming_gradient(monkeypatch):
    monkeypatch.setattr(ops.Tanh, "backward", lambda self, g: (1 - self.saved[0] ** 2,))
    x = Tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True, name="x")
    with pytest.raises(GradcheckError, match=r"input 0 \(x\) of shape \(2, 3\), element \(0, 0\): backward gives"):
        gradcheck(lambda t: t.tanh(), [x])


def test_gradcheck_catches_a_transposed_gradient(monkeypatch):
    def backward(self, g):
        a, b = self.saved
        return (g @ b.T).T.reshape(a.shape), a.T @ g
    monkeypatch.setattr(ops.MatMul, "backward", backward)
    a = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    b = Tensor(np.arange(9.0).reshape(3, 3) / 7, requires_grad=True)
    with pytest.raises(GradcheckError):
        gradcheck(lambda x, y: x @ y, [a, b])


def test_unbroadcast_sums_added_and_stretched_axes():
    g = np.arange(24.0).reshape(2, 3, 4)
    assert np.array_equal(unbroadcast(g, (3, 1)), g.sum(axis=(0, 2)).reshape(3, 1))
    assert np.array_equal(unbroadcast(g, ()), np.array(g.sum()))
    assert unbroadcast(g, (2, 3, 4)) is g


# --- softmax cross-entropy -------------------------------------------------------------------------------


def _softmax(z, axis):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@given(m=st.sampled_from([1, 2, 3, 5, 7, 12]), seed=st.integers(0, 2**16))   # m ≠ C = 4: see the axis check
def test_softmax_cross_entropy_gradient_is_softmax_minus_y_over_m(m, seed):
    rng = np.random.default_rng(seed)
    C = 4
    z = rng.normal(size=(C, m)) * 3
    labels = rng.integers(0, C, size=m)
    Y = np.eye(C)[labels].T
    expected = (_softmax(z, 0) - Y) / m
    for target in (labels, Y):
        Z = Tensor(z, requires_grad=True)
        loss = Z.softmax_cross_entropy(target, axis=0)
        loss.backward()
        assert np.allclose(loss.item(), -np.sum(Y * np.log(_softmax(z, 0))) / m, rtol=1e-12, atol=0)
        assert np.max(np.abs(Z.grad - expected)) <= 1e-15 * max(1.0, np.abs(expected).max()) * 10


def test_softmax_cross_entropy_is_finite_for_huge_logits():
    z = np.array([[1000.0, -1000.0], [-1000.0, 1000.0], [0.0, 0.0]])   # 3 classes × 2 examples
    for target in (np.array([0, 2]), np.eye(3)[[0, 2]].T):
        Z = Tensor(z, requires_grad=True)
        loss = Z.softmax_cross_entropy(target, axis=0)
        loss.backward()
        assert np.isfinite(loss.item()) and np.all(np.isfinite(Z.grad))
        assert loss.item() == pytest.approx((0 + 1000) / 2)   # example 2's true class is 1000 below the max
        assert Z.grad[0, 0] == 0 and Z.grad[1, 1] == pytest.approx(0.5) and Z.grad[2, 1] == pytest.approx(-0.5)


def test_softmax_is_stable_and_sums_to_one():
    s = Tensor(np.array([[1000.0, 1001.0], [-1e4, 0.0]])).softmax(axis=-1).numpy()
    assert np.all(np.isfinite(s)) and np.allclose(s.sum(axis=-1), 1)


def test_wrong_axis_for_labels_names_shapes_and_suggests_the_axis():
    z = Tensor(np.zeros((10, 7)))           # tutorial layout: 10 classes × 7 examples
    with pytest.raises(ShapeError, match=r"logits \(10, 7\) with classes on axis 1 need integer labels of shape "
                                         r"\(10,\), got \(7,\); axis=0 would fit"):
        z.softmax_cross_entropy(np.zeros(7, dtype=np.int64))   # axis defaults to -1


def test_wrong_axis_for_one_hot_targets_suggests_the_axis():
    Y = np.eye(10)[np.arange(7) % 10].T     # 10×7, columns sum to 1
    with pytest.raises(ShapeError, match=r"targets \(10, 7\) are one-hot along axis 0, not along the "
                                         r"class axis 1 of logits \(10, 7\): pass axis=0"):
        Tensor(np.zeros((10, 7))).softmax_cross_entropy(Y)


def test_labels_out_of_range_and_wrong_target_shape():
    with pytest.raises(ShapeError, match=r"labels must lie in 0\.\.9 \(the size of axis 0 of logits \(10, 3\)\); "
                                         r"got 10 at position 1"):
        Tensor(np.zeros((10, 3))).softmax_cross_entropy(np.array([0, 10, 3]), axis=0)
    with pytest.raises(ShapeError, match=r"must have the logits' shape \(10, 3\), got \(3, 10\)"):
        Tensor(np.zeros((10, 3))).softmax_cross_entropy(np.full((3, 10), 0.1), axis=0)
    with pytest.raises(TypeError, match="logits must be floating point"):
        Tensor(np.zeros((10, 3), dtype=np.int64)).softmax_cross_entropy(np.zeros(3, dtype=np.int64), axis=0)


# --- indexing ---------------------------------------------------------------------------------------------


def test_repeated_integer_indices_accumulate():
    x = Tensor(np.arange(4.0), requires_grad=True)
    x[np.array([1, 1, 3, 1])].sum().backward()
    assert np.array_equal(x.grad, [0, 3, 0, 1])


def test_index_by_tensor_and_slices():
    x = Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    y = x[Tensor(np.array([2, 0])), 1:3]
    assert np.array_equal(y.numpy(), [[9, 10], [1, 2]])
    y.sum().backward()
    assert np.array_equal(x.grad, [[0, 1, 1, 0], [0, 0, 0, 0], [0, 1, 1, 0]])


def test_max_splits_the_gradient_between_ties():
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    assert np.array_equal(x.grad, [[0, 0.5, 0.5], [1, 0, 0]])


def test_relu_derivative_at_zero_is_zero():
    x = Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    x.relu().sum().backward()
    assert np.array_equal(x.grad, [0, 0, 1])
