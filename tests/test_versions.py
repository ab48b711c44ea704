"""In-place arithmetic and version counters: a backward never uses saved values changed since (issue 12, class 2)."""
import operator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu import ShapeError, Tensor, nn, no_grad, optim, tutorial

STALE = "modified by an inplace operation"


def small_net(seed=0):
    """The tutorial's network on 5 random 6-pixel images: (params, X, Y)."""
    rng = np.random.default_rng(seed)
    params = tutorial.Params(*(Tensor(rng.random(shape, dtype=np.float32) - 0.5, requires_grad=True, name=n)
                               for n, shape in zip(tutorial.Params._fields, [(4, 6), (4, 1), (10, 4), (10, 1)])))
    return params, rng.random((6, 5), dtype=np.float32), np.array([3, 0, 9, 1, 1])


# --- the example: a second backward after the weights changed ---------------------------------------------


@pytest.mark.parametrize("make", [lambda p: optim.SGD(p, lr=0.1), lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
                                  lambda p: optim.Adam(p), lambda p: optim.AdamW(p, weight_decay=0.1)],
                         ids=["SGD", "SGD-momentum", "Adam", "AdamW"])
def test_backward_after_an_optimizer_step_refuses_the_stale_graph(make):
    params, X, Y = small_net()
    loss = tutorial.forward_prop(params, X, Y).loss
    loss.backward(retain_graph=True)
    make(params).step()
    with pytest.raises(RuntimeError, match=STALE):
        loss.backward()


def test_the_error_names_the_tensor_its_version_and_the_op():
    params, X, Y = small_net()
    loss = tutorial.forward_prop(params, X, Y).loss
    loss.backward(retain_graph=True)
    tutorial.update_params(params, 0.1)   # today's raw p.data -= ... went unnoticed
    with pytest.raises(RuntimeError) as err:
        loss.backward()
    assert str(err.value).startswith(
        "backward: one of the tensors needed for gradient computation has been modified by an inplace operation: "
        "the float32 10×4 tensor 'W2' saved by matmul (its input 0) is at version 1; expected version 0.")


def test_an_unnamed_tensor_is_named_by_dtype_and_shape_and_an_output_as_the_output():
    x = Tensor(np.array([0.5, 1.0, 2.0]), requires_grad=True)
    y = x.exp()              # exp saves its output for backward
    loss = (y * 1.0).sum()   # (mul saves y too, but y's own backward comes later in the walk)
    with no_grad():
        y *= 2
    with pytest.raises(RuntimeError, match=r"the float64 3 tensor saved by mul \(its input 0\) is at version 1; "
                                           r"expected version 0"):
        loss.backward()
    z = x.exp()
    with no_grad():
        z += 1
    with pytest.raises(RuntimeError, match=r"the float64 3 tensor saved by exp \(its output\)"):
        z.sum().backward()


def test_load_state_dict_between_forward_and_backward_is_refused():
    model = nn.Linear(3, 2, seed=0)
    loss = model(Tensor(np.ones((4, 3), np.float32))).sum()
    model.load_state_dict({k: np.zeros_like(v) for k, v in model.state_dict().items()})
    # NOTE: matmul saved the Wᵀ of x·Wᵀ, a 3×2 view that shares W's version
    with pytest.raises(RuntimeError, match=r"the float32 3×2 tensor saved by matmul \(its input 1\) is at version 1; "
                                           r"expected version 0"):
        loss.backward()


def test_a_linear_layers_transposed_weight_shares_the_weights_version():
    """nn.Linear computes x·Wᵀ: the Wᵀ view that matmul saved must see the optimizer's change to W."""
    model = nn.Linear(3, 2, seed=0)
    loss = model(Tensor(np.ones((4, 3), np.float32))).sum()
    loss.backward(retain_graph=True)
    optim.SGD(model.parameters(), lr=0.1).step()
    with pytest.raises(RuntimeError, match=STALE):
        loss.backward()


def test_changing_what_no_op_saved_is_harmless():
    a, b = Tensor(np.ones(3), requires_grad=True), Tensor(np.full(3, 2.0))
    loss = (a + b).sum()   # add saves nothing: its gradient does not depend on the values
    with no_grad():
        a -= 1
        b *= 5
    loss.backward()
    assert np.array_equal(a.grad, np.ones(3))


def test_the_usual_training_loop_is_untouched():
    params, X, Y = small_net()
    opt = optim.SGD(params, lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        tutorial.forward_prop(params, X, Y).loss.backward()
        opt.step()
    assert [p._version for p in params] == [3, 3, 3, 3]


# --- who bumps the version ------------------------------------------------------------------------------------


@pytest.mark.parametrize("make, bumps", [(lambda p: optim.SGD(p, lr=0.1, weight_decay=0.01), 1),
                                         (lambda p: optim.Adam(p), 1), (lambda p: optim.AdamW(p), 2)],
                         ids=["SGD", "Adam", "AdamW"])
def test_an_optimizer_step_bumps_each_updated_parameter_as_pytorch_and_keeps_its_identity(make, bumps):
    """PyTorch's counts: one in-place update per step, two for AdamW (the decay p·(1 − lr·λ), then the step)."""
    params, X, Y = small_net()
    arrays = [p.data for p in params]
    tutorial.forward_prop(params, X, Y).loss.backward()
    params.b2.grad = None   # skipped by the step, as in PyTorch
    make(params).step()
    assert [p._version for p in params] == [bumps, bumps, bumps, 0]
    assert all(p.data is a for p, a in zip(params, arrays))


def test_update_params_is_the_tutorials_step_in_place_with_versions():
    params, X, Y = small_net()
    fwd = tutorial.forward_prop(params, X, Y)
    fwd.loss.backward()
    expected = [p.data - np.float32(0.1) * p.grad for p in params]
    arrays = [p.data for p in params]
    tutorial.update_params(params, 0.1)
    for p, a, e in zip(params, arrays, expected):
        assert p.data is a and np.array_equal(p.data, e) and p._version == 1 and p.grad is None


def test_load_state_dict_bumps_versions():
    model = nn.Linear(3, 2, seed=0)
    model.load_state_dict(model.state_dict())
    assert [p._version for p in model.parameters()] == [1, 1]


# --- in-place operators: PyTorch's rules ---------------------------------------------------------------------------


def test_in_place_on_a_leaf_that_requires_grad_is_refused_with_grad_on_and_allowed_under_no_grad():
    w = Tensor(np.ones(3, np.float32), requires_grad=True, name="w")
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place "
                                           "operation"):
        w -= 1
    assert w._version == 0 and np.array_equal(w.data, np.ones(3))
    same = w
    with no_grad():
        w -= 0.5
        w *= 4
        w += 1
        w /= 2
    assert w is same and w.requires_grad and w.is_leaf and w._version == 4
    assert w.dtype == np.float32 and np.array_equal(w.data, np.full(3, 1.5, np.float32))


def test_in_place_on_tensors_that_need_no_grad_is_allowed_and_bumps():
    x = Tensor(np.arange(4))
    x += 1
    x *= Tensor(np.array([1, 2, 3, 4]))
    assert x.dtype == np.int64 and x.tolist() == [1, 4, 9, 16] and x._version == 2


def test_a_float_result_cannot_go_into_an_integer_tensor():
    x = Tensor(np.arange(3))
    updates = (lambda: operator.iadd(x, 0.5), lambda: operator.itruediv(x, 2), lambda: operator.imul(x, np.ones(3)))
    for update in updates:
        with pytest.raises(TypeError, match=r"the result is float\d+, which cannot be stored in place in a int64"):
            update()
    b = Tensor(np.array([True, False]))
    with pytest.raises(TypeError, match="cannot be stored in place in a bool"):
        b += 1
    assert x.tolist() == [0, 1, 2] and x._version == 0


def test_the_operand_must_broadcast_to_the_tensors_own_shape():
    x = Tensor(np.zeros(3))
    x += np.ones((1, 3))[0]
    with pytest.raises(ShapeError, match=r"\+=: \(3,\) and \(2, 3\): the operand must broadcast to the tensor's "
                                         r"own shape \(3,\)"):
        x += np.ones((2, 3))
    with pytest.raises(ShapeError, match=r"-=: \(3,\) and \(2,\)"):
        x -= np.ones(2)


def test_a_read_only_array_is_refused_by_name():
    x = Tensor(np.broadcast_to(np.zeros(1), (3,)))
    with pytest.raises(ValueError, match="read-only"):
        x += 1
    assert x._version == 0


def test_in_place_through_a_view_bumps_the_version_of_the_tensor_it_views():
    x = Tensor(np.zeros((2, 3)))
    for view in (x.T, x.reshape(6), x[0], x[:, 1:], x.detach(), Tensor(x)):
        before = x._version
        view += 1
        assert x._version == view._version == before + 1
    assert np.array_equal(x.data, [[5, 6, 6], [4, 5, 5]])
    picked = x[[0, 1]]   # advanced indexing copies: a separate tensor
    picked += 1
    assert x._version == 6 and picked._version == 1


def test_inside_a_graph_x_op_y_makes_a_new_recorded_tensor():
    """x or y requires grad, grad mode on: `x *= y` is `x = x * y` (PyTorch would record it in place)."""
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    z = w * 3
    old = z
    z *= w
    assert z is not old and np.array_equal(old.data, [3.0, 6.0]) and old._version == 0
    z.sum().backward()
    assert np.array_equal(w.grad, 6 * w.data)   # ∂(3w²)/∂w
    total = 0
    for k in (1.0, 2.0):
        total += (w * k).sum()   # the usual way of adding up losses keeps working
    total.backward()
    assert np.array_equal(w.grad, 6 * w.data + 3)
    acc = Tensor(np.zeros(2))
    acc += w   # a constant plus a tensor that requires grad: recorded too
    assert acc.requires_grad and acc.grad_fn.name == "add"


VALUE_DTYPES = ["float32", "float64", "int64", "int32", "uint8"]


@st.composite
def in_place_cases(draw):
    x_dtype, y_dtype = draw(st.sampled_from(VALUE_DTYPES)), draw(st.sampled_from(VALUE_DTYPES + ["python"]))
    op = draw(st.sampled_from(["+=", "-=", "*=", "/="]))
    shape = draw(st.sampled_from([(3,), (2, 3)]))
    values = st.integers(1, 9)   # nonzero, small: no overflow, no division by zero
    x = np.array(draw(st.lists(values, min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))))
    x = x.reshape(shape).astype(x_dtype)
    if y_dtype == "python":
        y = draw(st.one_of(values, st.sampled_from([0.5, 1.25, 3.0])))
    else:
        y_shape = draw(st.sampled_from([shape, shape[-1:], ()]))
        y = np.array(draw(st.lists(values, min_size=int(np.prod(y_shape)), max_size=int(np.prod(y_shape)))))
        y = y.reshape(y_shape).astype(y_dtype)
    return x, op, y


OUT_OF_PLACE = {"+=": lambda a, b: a + b, "-=": lambda a, b: a - b, "*=": lambda a, b: a * b,
                "/=": lambda a, b: a / b}
IN_PLACE = {"+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv}


@given(in_place_cases())
def test_x_op_y_in_place_is_the_out_of_place_result_cast_to_xs_dtype_or_a_refusal(case):
    x, op, y = case
    t = Tensor(x.copy())
    expected = OUT_OF_PLACE[op](Tensor(x.copy()), y)
    if expected.dtype.kind == "f" and x.dtype.kind != "f":
        with pytest.raises(TypeError, match="cannot be stored in place"):
            IN_PLACE[op](t, y)
        return
    memory = t.data
    assert IN_PLACE[op](t, y) is t and t.data is memory and t._version == 1
    assert t.dtype == x.dtype and np.array_equal(t.data, expected.data.astype(x.dtype))


@given(in_place_cases())
def test_in_place_matches_pytorch(case):
    torch = pytest.importorskip("torch")
    x, op, y = case
    t = Tensor(x.copy())
    ref = torch.from_numpy(x.copy())
    ty = y if not isinstance(y, np.ndarray) else torch.from_numpy(y)
    method = {"+=": "add_", "-=": "sub_", "*=": "mul_", "/=": "div_"}[op]
    try:
        getattr(ref, method)(ty)
    except RuntimeError:
        with pytest.raises(TypeError):
            IN_PLACE[op](t, y)
        return
    IN_PLACE[op](t, y)
    assert t.dtype == x.dtype and np.array_equal(t.data, ref.numpy()) and t._version == ref._version
