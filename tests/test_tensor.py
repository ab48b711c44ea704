"""The Tensor and the backward walk: dtype rules, graph recording, accumulation, memory release, errors."""
import gc
import sys
import weakref

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import ShapeError, Tensor, no_grad, ops, result_dtype

# --- dtype rules -----------------------------------------------------------------------------------------


def test_python_data_gets_pytorch_default_dtypes():
    assert Tensor(1.5).dtype == np.float32
    assert Tensor([[1.0, 2], [3, 4]]).dtype == np.float32
    assert Tensor(3).dtype == np.int64 and Tensor([1, 2]).dtype == np.int64
    assert Tensor(True).dtype == np.bool_
    assert Tensor([1.0], dtype=np.float64).dtype == np.float64


def test_numpy_arrays_keep_their_dtype_and_are_not_copied():
    for dt in (np.float32, np.float64, np.uint8, np.int32, np.bool_):
        a = np.zeros(3, dtype=dt)
        assert Tensor(a).dtype == dt
    a = np.zeros(3)
    assert Tensor(a).data is a


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_scalars_and_zero_dim_tensors_never_upcast_a_float_tensor(dt):
    t = Tensor(np.ones((2, 3), dtype=dt), requires_grad=True)
    m = 7
    for out in (t * (1 / m), (1 / m) * t, t + 1, 2 - t, t / 3, t ** 2, t * np.float64(0.5),
                t * Tensor(np.float64(2.0)), t + np.array(1.0), t * True):
        assert out.dtype == dt


def test_int_and_bool_tensors_with_floats_give_float32():
    pixels = Tensor(np.array([0, 51, 255], dtype=np.uint8))
    x = pixels / 255.0
    assert x.dtype == np.float32 and np.array_equal(x.numpy(), np.float32([0, 0.2, 1]))
    assert (Tensor([1, 2]) * 2.5).dtype == np.float32
    assert (Tensor([1, 2]) / Tensor([2, 4])).dtype == np.float32     # division of integers
    assert (Tensor([True]) + 1).dtype == np.int64
    assert (Tensor([1, 2]) + 1).dtype == np.int64
    assert Tensor([1, 2]).exp().dtype == np.float32
    assert Tensor([1, 2]).mean().dtype == np.float32


def test_dimensioned_float_tensors_promote():
    a = Tensor(np.ones(2, np.float32), requires_grad=True)
    b = Tensor(np.ones(2, np.float64), requires_grad=True)
    out = a * b
    assert out.dtype == np.float64
    out.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64   # each gradient in its tensor's dtype
    assert result_dtype(np.ones(2, np.int64), np.ones(2, np.float32)) == np.float32   # numpy would say float64


def test_float32_stays_float32_through_a_whole_network():
    rng = np.random.default_rng(0)
    W = Tensor(rng.random((4, 6), dtype=np.float32) - 0.5, requires_grad=True)
    b = Tensor(np.zeros((4, 1), np.float32), requires_grad=True)
    X = rng.random((6, 5), dtype=np.float32)
    loss = (W @ X + b).relu().tanh().softmax_cross_entropy(np.array([0, 1, 2, 3, 0]), axis=0) * (1 / 5)
    assert loss.dtype == np.float32
    loss.backward()
    assert W.grad.dtype == np.float32 and b.grad.dtype == np.float32


def test_integer_and_bool_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="only floating-point tensors can require grad, but this tensor is int64"):
        Tensor([1, 2], requires_grad=True)
    t = Tensor(np.array([True]))
    with pytest.raises(TypeError, match="is bool"):
        t.requires_grad = True


def test_unsupported_data_is_refused():
    with pytest.raises(TypeError, match="cannot hold str data"):
        Tensor("abc")


# --- numpy interop -----------------------------------------------------------------------------------------


def test_ndarray_on_the_left_hands_over_to_the_tensor():
    t = Tensor(np.ones((3, 2), np.float32), requires_grad=True)
    a = np.full((2, 3), 2.0, dtype=np.float32)
    for out in (a @ t, np.ones((3, 2), np.float32) + t, np.ones(2, np.float32) * t, np.ones(2) - t, 1.0 / (t + 1)):
        assert isinstance(out, Tensor) and out.requires_grad
    (a @ t).sum().backward()
    assert np.array_equal(t.grad, np.full((3, 2), 4.0))
    assert isinstance(np.ones(2) == Tensor(np.ones(2)), Tensor)
    assert np.asarray(t).dtype == np.float32


def test_comparisons_and_argmax_are_outside_the_graph():
    t = Tensor(np.array([[1.0, 5.0], [3.0, 2.0]]), requires_grad=True)
    assert np.array_equal((t > 2).numpy(), [[False, True], [True, False]])
    assert (t == t).dtype == np.bool_ and not (t < 0).requires_grad
    pred = t.argmax(axis=0)
    assert np.array_equal(pred.numpy(), [1, 0]) and pred.grad_fn is None
    assert float((pred == Tensor([1, 1])).mean().item()) == 0.5


# --- recording and the backward walk ---------------------------------------------------------------------


def test_a_reused_node_gets_all_its_contributions():
    x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    (x * x + x).sum().backward()
    assert np.array_equal(x.grad, 2 * x.data + 1)


def test_gradients_accumulate_until_cleared():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    assert np.array_equal(x.grad, [3 + 2, 3 + 4])
    x.grad = None
    (x * 3).sum().backward()
    assert np.array_equal(x.grad, [3, 3])


def test_grad_is_owned_by_its_leaf():
    a = Tensor(np.ones(2), requires_grad=True)
    b = Tensor(np.ones(2), requires_grad=True)
    (a + b).sum().backward()
    a.grad[0] = 100.0          # the two gradients must not share memory
    assert b.grad[0] == 1.0
    with pytest.raises(ShapeError, match=r"a gradient of shape \(3,\) for a tensor of shape \(2,\)"):
        a.grad = np.zeros(3)


def test_a_chain_of_100000_ops_needs_no_recursion():
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    limit = sys.getrecursionlimit()
    y.backward()
    assert sys.getrecursionlimit() == limit and x.grad == 1.0


def test_no_grad_records_nothing_as_context_and_decorator():
    w = Tensor(np.ones(2), requires_grad=True)
    with no_grad():
        y = w * 2
    assert not y.requires_grad and y.grad_fn is None and tg.is_grad_enabled()

    @no_grad()
    def f(t):
        return t * 2
    assert not f(w).requires_grad
    with no_grad():
        with tg.enable_grad():
            assert (w * 2).requires_grad


def test_ops_on_data_that_needs_no_grad_record_nothing():
    X = Tensor(np.ones((3, 4)))
    y = (X * 2).relu().sum(axis=0)
    assert y.grad_fn is None and not y.requires_grad


def test_input_data_never_gets_a_gradient(monkeypatch):
    """The tutorial's X (784×m) must not cost a matmul in backward: only W's gradient is computed."""
    computed = []
    real_backward = ops.MatMul.backward

    def spy(self, g):
        grads = real_backward(self, g)
        computed.append([None if gr is None else gr.shape for gr in grads])
        return grads
    monkeypatch.setattr(ops.MatMul, "backward", spy)
    W = Tensor(np.ones((2, 3)), requires_grad=True)
    (W @ np.ones((3, 5))).sum().backward()
    (W @ Tensor(np.ones((3, 5)))).sum().backward()
    assert computed == [[(2, 3), None], [(2, 3), None]]   # ∂L/∂W = g·Xᵀ only, never ∂L/∂X


def test_retain_grad_keeps_an_intermediate_gradient():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = (x * 3).retain_grad()
    other = x * 5
    (h * h + other).sum().backward()
    assert np.array_equal(h.grad, 2 * h.data) and other.grad is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).retain_grad()


def test_saved_arrays_are_released_after_backward_but_the_graph_stays_readable():
    """The loss saves softmax(Z) for its backward: an array no tensor holds, freed once backward has used it."""
    x = Tensor(np.linspace(0.1, 1, 6).reshape(2, 3), requires_grad=True, name="x")
    z = (x * 3).retain_grad()
    loss = z.softmax_cross_entropy(np.array([0, 2]))
    saved = weakref.ref(loss.grad_fn.saved[0])
    gc.collect()
    assert saved() is not None
    loss.backward()
    gc.collect()
    assert saved() is None
    fn = loss.grad_fn   # structure, names and shapes stay for viewing
    assert fn.name == "softmax_cross_entropy" and fn.parents[0] is z and fn.parents[0].grad_fn.parents[0].name == "x"
    assert z.grad.shape == (2, 3)
    with pytest.raises(RuntimeError, match="already used by an earlier backward.*retain_graph=True"):
        loss.backward()


def test_retain_graph_allows_a_second_backward():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    assert np.array_equal(x.grad, 2 * 2 * x.data)


def test_backward_errors():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"grad can be implied only for a scalar output, but this tensor has "
                                           r"shape \(2, 3\)"):
        (x * 2).backward()
    with pytest.raises(ShapeError, match=r"backward: grad has shape \(3,\) but the tensor has shape \(2, 3\)"):
        (x * 2).backward(np.ones(3))
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(2)).sum().backward()
    y = x * 2
    y.backward(np.full((2, 3), 0.5))
    assert np.array_equal(x.grad, np.ones((2, 3)))


# --- errors name the op and the shapes ---------------------------------------------------------------------


@pytest.mark.parametrize("make, message", [
    (lambda: Tensor(np.ones((10, 784))) @ np.ones((785, 64)),
     r"matmul: \(10, 784\) @ \(785, 64\): inner dimensions 784 and 785 differ"),
    (lambda: Tensor(np.ones(3)) @ 2.0, r"matmul: \(3,\) @ \(\): both operands need at least one dimension"),
    (lambda: Tensor(np.ones((3, 4))) + np.ones(5), r"add: \(3, 4\) and \(5,\): operands could not be broadcast"),
    (lambda: Tensor(np.ones((3, 4))) * Tensor(np.ones((2, 4))), r"mul: \(3, 4\) and \(2, 4\)"),
    (lambda: Tensor(np.ones(3)).sum(axis=2), r"sum: axis 2 is out of range for shape \(3,\)"),
    (lambda: Tensor(np.ones((2, 2))).mean(axis=(0, -2)), r"mean: axis \(0, -2\) names an axis twice"),
    (lambda: Tensor(np.ones((2, 3))).reshape(4), r"reshape: cannot reshape \(2, 3\) \(6 elements\) into \(4,\)"),
    (lambda: Tensor(np.ones((2, 3))).transpose((0, 0)), r"transpose: axes \(0, 0\) are not a permutation"),
    (lambda: Tensor(np.ones((2, 3))).transpose(0, 2), r"transpose: axis 2 is out of range for shape \(2, 3\)"),
    (lambda: Tensor(np.ones((2, 3)))[5], r"getitem: index 5 into shape \(2, 3\)"),
    (lambda: Tensor(np.ones((2, 3))).softmax(axis=2), r"softmax: axis 2 is out of range for shape \(2, 3\)"),
    (lambda: Tensor(np.ones(0)).max(), r"max: tensor of shape \(0,\) is empty"),
])
def test_errors_name_the_op_and_shapes(make, message):
    with pytest.raises(ShapeError, match=message):
        make()


def test_pow_takes_numbers_tensors_and_arrays_as_exponents():
    assert (Tensor([2.0]) ** Tensor([3.0])).tolist() == [8.0]
    assert (2 ** Tensor([3.0])).tolist() == [8.0] and (Tensor([2.0]) ** np.array([0.5])).dtype == np.float64
    with pytest.raises(TypeError, match="pow: the exponent must be a number, a Tensor or an array, got str"):
        Tensor([2.0]) ** "2"


# --- attributes, repr, factories -----------------------------------------------------------------------------


def test_attributes_and_repr():
    t = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True, name="W1")
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and t.T.shape == (3, 2) and t.is_leaf
    assert repr(t) == ("Tensor([[0., 1., 2.],\n        [3., 4., 5.]], dtype=float32, name='W1', "
                       "requires_grad=True)")
    z = t @ t.T
    assert "grad_fn=matmul" in repr(z) and not z.is_leaf
    assert Tensor(2.5).item() == 2.5 and float(Tensor(2.5)) == 2.5 and len(t) == 2
    d = z.detach()
    assert d.grad_fn is None and not d.requires_grad and d.data is z.data
    with pytest.raises(RuntimeError, match="only on a leaf"):
        z.requires_grad = False


def test_factories_take_a_seed_or_a_generator():
    assert np.array_equal(tg.randn(2, 3, seed=5).numpy(), tg.randn((2, 3), seed=5).numpy())
    g1, g2 = np.random.default_rng(7), np.random.default_rng(7)
    assert np.array_equal(tg.uniform(4, low=-0.5, high=0.5, seed=g1).numpy(),
                          tg.uniform(4, low=-0.5, high=0.5, seed=g2).numpy())
    u = tg.uniform(1000, low=-0.5, high=0.5, seed=0, dtype=np.float64)
    assert u.dtype == np.float64 and -0.5 <= u.numpy().min() and u.numpy().max() < 0.5
    assert tg.zeros(2, 2).dtype == np.float32 and tg.ones(3, requires_grad=True).requires_grad
    assert tg.randn(3, seed=0, dtype=np.float64).dtype == np.float64


def test_memory_stays_flat_over_many_training_steps():
    """Each step's graph is freed when the next replaces it, and backward frees what the graph saved."""
    import tracemalloc

    from tinygrad_edu import tutorial
    rng = np.random.default_rng(0)
    X, Y = rng.random((784, 32)), rng.integers(0, 10, 32)
    params = tutorial.init_params(0, np.float64)
    tracemalloc.start()
    try:
        for _ in range(1000):   # NOTE: numpy keeps a bounded cache of small freed buffers; let it fill first
            tutorial.gradient_descent_step(params, X, Y, 0.1)
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(2000):
            tutorial.gradient_descent_step(params, X, Y, 0.1)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 16 * 1024   # leaking one 10×32 array a step would be 5 MB by now


def test_python_floats_keep_float64_precision():
    t = Tensor(np.ones(1))
    assert Tensor(0.1, dtype=np.float64).item() == 0.1
    assert (t * 0.1).data[0] == 0.1 and (t - 0.1).data[0] == 0.9
    assert (Tensor(np.arange(3, dtype=np.uint8)) / np.float64(255)).dtype == np.float32   # numpy scalars too


def test_no_grad_as_a_decorator_restores_the_mode_after_recursion():
    @no_grad()
    def depth(n):
        return 0 if n == 0 else 1 + depth(n - 1)
    depth(3)
    assert tg.is_grad_enabled()


def test_pow_zero_has_a_zero_gradient_everywhere():
    x = Tensor(np.array([0.0, 1.0, 2.0]), requires_grad=True)
    (x ** 0).sum().backward()
    assert np.array_equal(x.grad, [0, 0, 0])


def test_retained_gradients_are_separate_writable_arrays():
    x = Tensor(np.ones(3), requires_grad=True)
    a, b = (x * 2).retain_grad(), (x * 3).retain_grad()
    (a + b).sum().backward()
    a.grad *= 2
    assert np.array_equal(a.grad, [2, 2, 2]) and np.array_equal(b.grad, [1, 1, 1])


def test_array_protocol_copies_when_asked():
    t = Tensor(np.zeros(2))
    a = np.array(t)
    a[0] = 5
    assert t.data[0] == 0 and np.asarray(t) is t.data


@pytest.mark.parametrize("make, message", [
    (lambda: Tensor([1, 2]) == Tensor([1, 2, 3]), r"==: shapes \(2,\) and \(3,\) cannot be broadcast together"),
    (lambda: Tensor(np.ones((2, 3))).argmax(3), r"argmax: axis 3 is out of range for shape \(2, 3\)"),
    (lambda: Tensor(np.ones((2, 3))).transpose((1, 2, 0)), r"transpose: axes \(1, 2, 0\) do not name each of the 2 "),
    (lambda: Tensor(np.ones((2, 3, 4))) @ Tensor(np.ones((5, 4, 2))),
     r"matmul: \(2, 3, 4\) @ \(5, 4, 2\): batch dimensions \(2,\) and \(5,\) do not broadcast"),
])
def test_more_errors_name_the_op_and_shapes(make, message):
    with pytest.raises(ShapeError, match=message):
        make()


def test_unsupported_operands_are_type_errors():
    with pytest.raises(TypeError, match="a complex cannot take part in a Tensor op"):
        Tensor(np.ones(2)) + 1j
    with pytest.raises(TypeError, match="cannot make an array of list data"):
        Tensor([[1.0, 2.0], [3.0]])
