"""Reductions, shape and indexing ops (issue 17): exact values, the non-differentiable ones, errors, edge cases.

Values and gradients on random inputs are the registry's job (tests/test_ops.py, tests/test_ops_torch.py); here
are the cases a random draw would not find: ties, zeros, infinities, empty and 0-d tensors, and bad arguments.
"""
import io
import warnings

import numpy as np
import pytest

import tinygrad_edu.nn.functional as F
from tinygrad_edu import ShapeError, Tensor, cat, gather, nn, stack, trace

torch = pytest.importorskip("torch")


def same_as_torch(f, twin, *arrays, grad=True):
    """f on Tensors and twin on torch tensors give the same values (and dtype) and, if grad, the same gradients."""
    ours = [Tensor(np.array(a), requires_grad=grad and np.asarray(a).dtype.kind == "f") for a in arrays]
    theirs = [torch.tensor(np.array(a), requires_grad=grad and np.asarray(a).dtype.kind == "f") for a in arrays]
    out, t_out = f(*ours), twin(*theirs)
    assert out.shape == tuple(t_out.shape)
    assert str(out.dtype) == str(t_out.dtype).removeprefix("torch.")
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), rtol=1e-12, atol=0)
    if grad:
        g = np.linspace(-1, 1, out.size).reshape(out.shape)
        out.backward(g)
        t_out.backward(torch.tensor(g))
        for x, t in zip(ours, theirs):
            np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-12, atol=1e-14)
    return out


# --- argmin and one_hot: exact values, no gradient ---------------------------------------------------------


def test_argmin_gives_the_first_index_of_the_minimum_as_torch():
    x = np.array([[3.0, 1.0, 1.0, 2.0], [0.0, 5.0, 0.0, -1.0]])
    t = Tensor(x, requires_grad=True)
    assert t.argmin().item() == 7
    assert t.argmin(axis=1).tolist() == [1, 3]
    assert t.argmin(axis=0, keepdims=True).tolist() == [[1, 0, 1, 1]]
    assert t.argmin(axis=-1).dtype == np.int64
    for axis in (None, 0, 1):
        kw = {} if axis is None else {"dim": axis}
        assert t.argmin(axis=axis).tolist() == torch.tensor(x).argmin(**kw).tolist()
    out = t.argmin(axis=1)
    assert not out.requires_grad and out.grad_fn is None
    with pytest.raises(ShapeError, match=r"argmin: axis 2 is out of range for shape \(2, 4\)"):
        t.argmin(axis=2)


def test_one_hot_is_int64_rows_and_infers_the_number_of_classes():
    labels = np.array([[0, 2], [1, 2]])
    out = F.one_hot(labels)
    assert out.dtype == np.int64 and out.shape == (2, 2, 3) and not out.requires_grad and out.grad_fn is None
    assert out.tolist() == [[[1, 0, 0], [0, 0, 1]], [[0, 1, 0], [0, 0, 1]]]
    assert np.array_equal(F.one_hot(Tensor(labels), num_classes=5).data,
                          torch.nn.functional.one_hot(torch.tensor(labels), 5).numpy())
    assert F.one_hot(np.zeros(0, np.int64), 4).shape == (0, 4)


def test_one_hot_refuses_bad_labels_naming_the_value():
    with pytest.raises(ShapeError, match=r"one_hot: labels must lie in 0\.\.2; got 3 at position 1"):
        F.one_hot(np.array([0, 3]), num_classes=3)
    with pytest.raises(ShapeError, match=r"one_hot: labels must lie in 0\.\.1; got -1 at position 0"):
        F.one_hot(np.array([-1, 1]))
    with pytest.raises(ShapeError, match=r"one_hot: cannot infer the number of classes from empty labels \(0,\)"):
        F.one_hot(np.zeros(0, np.int64))
    with pytest.raises(TypeError, match="one_hot: class labels must be integers, got dtype float32"):
        F.one_hot(Tensor([0.0, 1.0]))


# --- reductions ------------------------------------------------------------------------------------------


def test_min_shares_the_gradient_between_ties_as_torch_amin_and_full_min():
    x = np.array([[1.0, 0.0, 0.0], [2.0, 2.0, 5.0]])
    t = Tensor(x, requires_grad=True)
    t.min(axis=1).sum().backward()
    assert np.array_equal(t.grad, [[0, 0.5, 0.5], [0.5, 0.5, 0]])
    same_as_torch(lambda a: a.min(axis=1), lambda a: a.amin(dim=1), x)
    same_as_torch(lambda a: a.min(), lambda a: a.min(), x)
    # PyTorch's min(dim) gives a tie's gradient to the one index it returns: the convention differs there
    tt = torch.tensor(x, requires_grad=True)
    tt.min(dim=1).values.sum().backward()
    assert tt.grad.tolist() == [[0, 1, 0], [1, 0, 0]]


def test_min_of_integers_and_of_an_empty_tensor():
    assert Tensor(np.array([3, 1, 2], np.uint8)).min().item() == 1   # no negation: unsigned values stay right
    with pytest.raises(ShapeError, match=r"min: tensor of shape \(0, 2\) is empty"):
        Tensor(np.zeros((0, 2))).min()


@pytest.mark.parametrize("x", [[2.0, 0.0, 3.0, -1.5], [0.0, 2.0, 0.0, 4.0], [0.0, 0.0, 0.0, 1.0]])
def test_prod_gradient_is_exact_at_zeros(x):
    out = same_as_torch(lambda a: a.prod(), lambda a: a.prod(), x)
    t = Tensor(np.array(x), requires_grad=True)
    t.prod().backward()
    others = [np.prod(np.delete(x, i)) for i in range(len(x))]   # Π_{j≠i} x_j, no division by x_i
    assert np.array_equal(t.grad, others) and np.all(np.isfinite(t.grad))
    assert out.item() == np.prod(x)


def test_prod_over_several_axes_and_empty_axes():
    x = np.arange(1.0, 25.0).reshape(2, 3, 4) / 10
    x[1, 2, 0] = 0.0
    same_as_torch(lambda a: a.prod(axis=(0, 2), keepdims=True),
                  lambda a: a.prod(dim=2, keepdim=True).prod(dim=0, keepdim=True), x)
    same_as_torch(lambda a: a.prod(axis=0), lambda a: a.prod(dim=0), np.zeros((0, 3)))
    same_as_torch(lambda a: a.prod(axis=1), lambda a: a.prod(dim=1), np.zeros((0, 3)))


def test_prod_and_cumsum_of_integers_are_int64_as_torch():
    for dtype in (np.int32, np.bool_):
        x = np.array([[1, 0, 1], [1, 1, 1]], dtype=dtype)
        same_as_torch(lambda a: a.prod(axis=1), lambda a: a.prod(dim=1), x, grad=False)
        same_as_torch(lambda a: a.cumsum(1), lambda a: a.cumsum(1), x, grad=False)


def test_cumsum_of_a_0d_tensor_and_a_bad_axis():
    same_as_torch(lambda a: a.cumsum(-1), lambda a: a.cumsum(-1), 2.5)
    with pytest.raises(ShapeError, match=r"cumsum: axis 2 is out of range for shape \(2, 2\)"):
        Tensor(np.ones((2, 2))).cumsum(2)
    with pytest.raises(TypeError, match=r"cumsum: axis must be one int .*, got \(0, 1\)"):
        Tensor(np.ones((2, 2))).cumsum((0, 1))


@pytest.mark.parametrize("correction", [0, 1, 2, 0.5, -1])
def test_var_and_std_follow_torch_corrections(correction):
    x = np.array([[1.0, 2.0, 4.0, 7.0], [0.5, 0.5, 3.0, -1.0]])
    assert Tensor(x).var().item() == pytest.approx(np.var(x, ddof=1), rel=1e-14)   # correction=1 by default
    same_as_torch(lambda a: a.var(axis=1, correction=correction), lambda a: a.var(dim=1, correction=correction), x)
    same_as_torch(lambda a: a.std(axis=(0, 1), correction=correction, keepdims=True),
                  lambda a: a.std(dim=(0, 1), correction=correction, keepdim=True), x)


def test_std_of_equal_values_has_a_nan_gradient_where_torch_has_0():
    # the documented difference (docs/ops.md): std is var ** 0.5, and √'s slope at 0 is infinite
    t = Tensor(np.array([2.0, 2.0]), requires_grad=True)
    s = t.std()
    assert s.item() == 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        s.backward()
    assert np.isnan(t.grad).all()
    tt = torch.tensor([2.0, 2.0], requires_grad=True)
    tt.std().backward()
    assert tt.grad.tolist() == [0.0, 0.0]


def test_var_with_no_degrees_of_freedom_gives_torchs_nan_and_inf_with_a_warning():
    cases = [(np.array([3.0]), 1), (np.array([1.0, 2.0]), 2), (np.array([1.0, 2.0]), 3), (np.array([5.0, 5.0]), 2)]
    for x, correction in cases:
        with pytest.warns(RuntimeWarning, match=rf"var: {x.size} element\(s\) per reduction of shape \({x.size},\) "
                                                rf"with correction={correction} leave no degrees of freedom"):
            ours = Tensor(x).var(correction=correction).item()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = torch.tensor(x).var(correction=correction).item()
        assert np.array_equal(ours, theirs, equal_nan=True), (x, correction, ours, theirs)   # nan or inf


def test_logsumexp_is_stable_and_handles_infinities_as_torch():
    x = np.array([[1000.0, 1000.0, -1000.0], [-np.inf, -np.inf, -np.inf]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no overflow or log-of-zero warnings
        out = Tensor(x).logsumexp(1)
    assert out.tolist() == [pytest.approx(1000 + np.log(2), rel=1e-15), -np.inf]
    assert out.tolist()[0] == torch.tensor(x).logsumexp(1).tolist()[0]
    assert Tensor(np.array([np.inf, 1.0])).logsumexp(0).item() == np.inf
    same_as_torch(lambda a: a.logsumexp((0, 1), keepdims=True), lambda a: a.logsumexp((0, 1), keepdim=True),
                  np.array([[1.0, -2.0], [700.0, 3.0]]))
    t = Tensor(np.array([1000.0, 1000.0, -1000.0]), requires_grad=True)
    t.logsumexp(0).backward()
    assert np.allclose(t.grad, [0.5, 0.5, 0.0])   # softmax
    same_as_torch(lambda a: a.logsumexp(1), lambda a: a.logsumexp(1), np.array([[1, 0, 1]], np.int32), grad=False)


# --- shape ----------------------------------------------------------------------------------------------


def test_cat_and_stack_are_top_level_and_promote_dtypes_as_torch():
    a, b = np.ones((2, 1), np.float32), np.arange(4.0).reshape(2, 2)
    same_as_torch(lambda x, y: cat([x, y], dim=-1), lambda x, y: torch.cat([x, y], dim=-1), a, b)
    same_as_torch(lambda x, y: cat([x, y]), lambda x, y: torch.cat([x, y]), np.array([1, 2]), np.array([1.5]),
                  grad=False)
    same_as_torch(lambda x, y: stack([x, y], dim=1), lambda x, y: torch.stack([x, y], dim=1), b, b * 3)
    same_as_torch(lambda x: stack([x]), lambda x: torch.stack([x]), 2.0)


def test_cat_backward_names_every_input_in_the_trace():
    xs = [Tensor(np.ones(n), requires_grad=True, name=name) for n, name in ((2, "p"), (1, "q"), (3, "r"))]
    buf = io.StringIO()
    with trace(file=buf):
        (cat(xs) * np.arange(6.0)).sum().backward()
    assert [x.grad.tolist() for x in xs] == [[0, 1], [2], [3, 4, 5]]
    text = buf.getvalue()
    assert "∂L/∂p += ∂L/∂cat#4[p's slice along dim 0]" in text and "no rule written" not in text


def test_cat_and_stack_errors_name_the_op_and_the_shapes():
    with pytest.raises(ShapeError, match=r"cat: shapes \[\(2, 3\), \(2, 2\)\] must match except along dim 0, but "
                                         r"tensor 1 \(2, 2\) differs from tensor 0 \(2, 3\)"):
        cat([Tensor(np.ones((2, 3))), Tensor(np.ones((2, 2)))])
    with pytest.raises(ShapeError, match=r"cat: shapes \[\(2, 3\), \(3,\)\] must match except along dim 1"):
        cat([Tensor(np.ones((2, 3))), Tensor(np.ones(3))], dim=1)
    with pytest.raises(ShapeError, match=r"cat: axis 2 is out of range for shape \(2, 3\)"):
        cat([Tensor(np.ones((2, 3)))], dim=2)
    with pytest.raises(ShapeError, match=r"cat: shapes \[\(\), \(\)\]: a 0-d tensor cannot be concatenated"):
        cat([Tensor(1.0), Tensor(2.0)])
    with pytest.raises(TypeError, match=r"cat: dim must be one int, got \(0, 1\)"):
        cat([Tensor(np.ones((2, 3)))], dim=(0, 1))
    with pytest.raises(ValueError, match="cat: expects a non-empty list of tensors"):
        cat([])
    with pytest.raises(ShapeError, match=r"stack: expects tensors of one shape, got shapes \[\(2,\), \(3,\)\]"):
        stack([Tensor(np.ones(2)), Tensor(np.ones(3))])
    with pytest.raises(ShapeError, match=r"stack: dim 3 is out of range for tensors of shape \(2, 2\)"):
        stack([Tensor(np.ones((2, 2)))], dim=3)


def test_pad_takes_last_axis_first_pairs_crops_and_fills_as_torch():
    x = np.arange(12.0).reshape(2, 2, 3)
    out = same_as_torch(lambda a: F.pad(a, (1, 2)), lambda a: torch.nn.functional.pad(a, (1, 2)), x)
    assert out.shape == (2, 2, 6) and out.data[0, 0].tolist() == [0, 0, 1, 2, 0, 0]
    same_as_torch(lambda a: F.pad(a, (1, -1, 0, 2, -1, 1), value=-3.0),
                  lambda a: torch.nn.functional.pad(a, (1, -1, 0, 2, -1, 1), value=-3.0), x)
    same_as_torch(lambda a: F.pad(a, (-1, -2)), lambda a: torch.nn.functional.pad(a, (-1, -2)), x)
    same_as_torch(lambda a: F.pad(a, (1, 1), value=2.7), lambda a: torch.nn.functional.pad(a, (1, 1), value=2.7),
                  np.array([1, 2]), grad=False)   # the value is cast to the input's dtype


def test_pad_errors_name_the_pad_and_the_shape():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"pad: the pad \(1, 2, 3\) has odd length 3; it takes \(left, right\) pairs, "
                                         r"last axis first \(input \(2, 3\)\)"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(ShapeError, match=r"pad: the pad \(1, 1, 1, 1, 1, 1\) gives 3 \(left, right\) pairs for an "
                                         r"input of shape \(2, 3\), which has 2 axes"):
        F.pad(x, (1, 1, 1, 1, 1, 1))
    with pytest.raises(ShapeError, match=r"pad: the pad \(-2, -2\) crops axis 1 of the input \(2, 3\), of size 3, "
                                         r"to -1"):
        F.pad(x, (-2, -2))
    with pytest.raises(ValueError, match="pad: only mode 'constant' is supported, got 'reflect'"):
        F.pad(x, (1, 1), mode="reflect")


@pytest.mark.parametrize("start, end", [(0, -1), (1, 2), (-2, -1), (0, 0), (2, 2)])
def test_flatten_as_torch(start, end):
    same_as_torch(lambda a: a.flatten(start, end), lambda a: a.flatten(start, end), np.arange(24.0).reshape(2, 3, 4))


def test_flatten_is_one_definition_for_the_method_and_nn_flatten():
    x = np.arange(24.0).reshape(2, 3, 4)
    same_as_torch(lambda a: a.flatten(), lambda a: a.flatten(), 3.0)
    assert nn.Flatten()(Tensor(x)).shape == (2, 12) and nn.Flatten(0, 1)(x).shape == (6, 4)
    with pytest.raises(ShapeError, match=r"flatten: start_dim 2 comes after end_dim 1 for shape \(2, 3, 4\)"):
        Tensor(x).flatten(2, 1)
    with pytest.raises(ShapeError, match=r"flatten: dim 3 is out of range for shape \(2, 3, 4\)"):
        Tensor(x).flatten(3)


@pytest.mark.parametrize("dim", [None, 0, 1, -2, (0, 2), (1, 3), ()])
def test_squeeze_as_torch(dim):
    same_as_torch(lambda a: a.squeeze(dim), lambda a: a.squeeze() if dim is None else a.squeeze(dim),
                  np.arange(6.0).reshape(1, 3, 1, 2))


@pytest.mark.parametrize("dim", [0, 4, -1, -5, 2])
def test_unsqueeze_as_torch(dim):
    same_as_torch(lambda a: a.unsqueeze(dim), lambda a: a.unsqueeze(dim), np.arange(6.0).reshape(1, 3, 1, 2))


def test_squeeze_and_unsqueeze_of_0d_tensors_and_errors():
    x = np.ones((1, 3, 1, 2))
    same_as_torch(lambda a: a.squeeze(0), lambda a: a.squeeze(0), 1.5)
    same_as_torch(lambda a: a.unsqueeze(-1), lambda a: a.unsqueeze(-1), 1.5)
    with pytest.raises(ShapeError, match=r"unsqueeze: dim 5 is out of range for shape \(1, 3, 1, 2\) \(a new axis "
                                         r"goes at -5 \.\. 4\)"):
        Tensor(x).unsqueeze(5)
    with pytest.raises(ShapeError, match=r"squeeze: axis 4 is out of range for shape \(1, 3, 1, 2\)"):
        Tensor(x).squeeze(4)


def test_expand_as_torch_and_its_errors():
    x = np.arange(3.0).reshape(3, 1)
    same_as_torch(lambda a: a.expand(2, -1, 4), lambda a: a.expand(2, -1, 4), x)
    same_as_torch(lambda a: a.expand((3, 1)), lambda a: a.expand((3, 1)), x)
    same_as_torch(lambda a: a.expand(3, 0), lambda a: a.expand(3, 0), x)
    with pytest.raises(ShapeError, match=r"expand: shape \(3, 1\) cannot expand to \(2, 1\): axis 0 would go from 3 "
                                         r"to 2 \(only an axis of size 1 can grow"):
        Tensor(x).expand(2, 1)
    with pytest.raises(ShapeError, match=r"expand: shape \(3, 1\) cannot expand to \(-1, 3, 1\): axis 0 would go "
                                         r"from nothing to -1"):
        Tensor(x).expand(-1, 3, 1)
    with pytest.raises(ShapeError, match=r"expand: shape \(3, 1\) cannot expand to \(4,\), which has fewer axes"):
        Tensor(x).expand(4)


@pytest.mark.parametrize("dims", [(0,), (1, -1), (0, 1, 2), ()])
def test_flip_as_torch(dims):
    same_as_torch(lambda a: a.flip(dims), lambda a: a.flip(dims), np.arange(24.0).reshape(2, 3, 4))


@pytest.mark.parametrize("sizes", [(1, 1, 1), (2, 1, 3), (2, 1, 2, 1), (1, 0, 2)])
def test_repeat_as_torch(sizes):
    same_as_torch(lambda a: a.repeat(*sizes), lambda a: a.repeat(*sizes), np.arange(24.0).reshape(2, 3, 4))


def test_flip_and_repeat_other_forms_and_errors():
    x = np.arange(24.0).reshape(2, 3, 4)
    same_as_torch(lambda a: a.flip(1), lambda a: a.flip(1), x)
    with pytest.raises(ShapeError, match=r"flip: axis \(0, -3\) names an axis twice"):
        Tensor(x).flip(0, -3)
    same_as_torch(lambda a: a.repeat(3, 2), lambda a: a.repeat(3, 2), 1.5)
    with pytest.raises(ShapeError, match=r"repeat: \(2, 2\) must give a count ≥ 0 for each of the 3 axes of "
                                         r"\(2, 3, 4\)"):
        Tensor(x).repeat(2, 2)


# --- indexing --------------------------------------------------------------------------------------------


def test_gather_as_torch_with_repeated_indices():
    x = np.arange(12.0).reshape(3, 4)
    index = np.array([[0, 0, 3], [2, 1, 2]])
    out = same_as_torch(lambda a: gather(a, 1, index), lambda a: torch.gather(a, 1, torch.tensor(index)), x)
    assert out.tolist() == [[0, 0, 3], [6, 5, 6]]
    t = Tensor(x, requires_grad=True)
    t.gather(1, index).sum().backward()
    assert t.grad.tolist() == [[2, 0, 0, 1], [0, 1, 2, 0], [0, 0, 0, 0]]   # picked twice: two contributions
    same_as_torch(lambda a: a.gather(0, np.array([[2, 0, 1, 1]] * 4)),
                  lambda a: a.gather(0, torch.tensor([[2, 0, 1, 1]] * 4)), x)
    same_as_torch(lambda a: a.gather(0, np.array(0)), lambda a: a.gather(0, torch.tensor(0)), 2.5)


def test_gather_errors_name_the_index_and_the_shapes():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"gather: index 3 at position \(0, 1\) is out of range for dim 1 of size 3 "
                                         r"\(input \(2, 3\), index \(1, 2\)\)"):
        x.gather(1, np.array([[0, 3]]))
    with pytest.raises(ShapeError, match=r"gather: index -1 at position \(0, 0\) is out of range for dim 0 of size 2"):
        x.gather(0, np.array([[-1]]))
    with pytest.raises(ShapeError, match=r"gather: index \(2,\) must have as many axes as the input \(2, 3\)"):
        x.gather(1, np.array([0, 1]))
    with pytest.raises(ShapeError, match=r"gather: index \(3, 1\) is larger than the input \(2, 3\) along an axis "
                                         r"other than dim 1"):
        x.gather(1, np.zeros((3, 1), np.int64))
    with pytest.raises(TypeError, match="gather: index must be integers, got dtype float64"):
        x.gather(1, np.zeros((1, 1)))


def test_masked_fill_as_torch_even_over_infinities():
    x = np.array([[1.0, np.inf, -2.0], [np.nan, 4.0, 5.0]])
    mask = np.array([[False, True, False], [True, False, True]])
    out = same_as_torch(lambda a: a.masked_fill(mask, -1.0), lambda a: a.masked_fill(torch.tensor(mask), -1.0), x)
    assert out.tolist() == [[1, -1, -2], [-1, 4, -1]]   # the masked inf and nan are gone, not multiplied by 0
    row = np.array([True, False, False])
    same_as_torch(lambda a: a.masked_fill(row, 0.5), lambda a: a.masked_fill(torch.tensor(row), 0.5), x)
    same_as_torch(lambda a: a.masked_fill(row, 7.9), lambda a: a.masked_fill(torch.tensor(row), 7.9),
                  np.array([1, 2, 3]), grad=False)


def test_masked_fill_errors():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"masked_fill: mask \(2, 2\) does not broadcast to the tensor's shape "
                                         r"\(2, 3\)"):
        x.masked_fill(np.ones((2, 2), bool), 0.0)
    with pytest.raises(ShapeError, match=r"masked_fill: mask \(4, 2, 3\) does not broadcast"):
        x.masked_fill(np.ones((4, 2, 3), bool), 0.0)
    with pytest.raises(TypeError, match="masked_fill: the mask must be bool, got dtype int64"):
        x.masked_fill(np.ones((2, 3), np.int64), 0.0)
    with pytest.raises(TypeError, match="masked_fill: a value that requires grad is not supported"):
        x.masked_fill(np.ones((2, 3), bool), Tensor(1.0, requires_grad=True))
