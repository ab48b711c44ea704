"""Dim arguments: PyTorch's dim/keepdim and numpy's axis/keepdims name the same parameter; transpose and permute."""
import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import ShapeError, Tensor
from tinygrad_edu.nn import functional as F

X = np.arange(24.0).reshape(2, 3, 4) / 7 - 1.5
INDEX = np.zeros((2, 1, 4), np.int64)

# name -> a call taking the dim under a keyword name, and whether the call also takes keepdim
CALLS = {
    "sum": (lambda t, **k: t.sum(**k), True),
    "mean": (lambda t, **k: t.mean(**k), True),
    "max": (lambda t, **k: t.max(**k), True),
    "min": (lambda t, **k: t.min(**k), True),
    "prod": (lambda t, **k: t.prod(**k), True),
    "var": (lambda t, **k: t.var(**k), True),
    "std": (lambda t, **k: t.std(**k), True),
    "logsumexp": (lambda t, **k: t.logsumexp(**k), True),
    "argmax": (lambda t, **k: t.argmax(**k), True),
    "argmin": (lambda t, **k: t.argmin(**k), True),
    "cumsum": (lambda t, **k: t.cumsum(**k), False),
    "softmax": (lambda t, **k: t.softmax(**k), False),
    "log_softmax": (lambda t, **k: t.log_softmax(**k), False),
    "F.softmax": (lambda t, **k: F.softmax(t, **k), False),
    "F.log_softmax": (lambda t, **k: F.log_softmax(t, **k), False),
    "unsqueeze": (lambda t, **k: t.unsqueeze(**k), False),
    "gather": (lambda t, **k: t.gather(index=INDEX, **k), False),
    "cat": (lambda t, **k: tg.cat([t, t], **k), False),
    "stack": (lambda t, **k: tg.stack([t, t], **k), False),
    "softmax_cross_entropy": (lambda t, **k: t.softmax_cross_entropy(np.zeros((2, 4), np.int64), **k), False),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_axis_and_dim_name_the_same_parameter(name):
    call, takes_keepdim = CALLS[name]
    x = Tensor(X)
    by_dim, by_axis = call(x, dim=1), call(x, axis=1)
    np.testing.assert_array_equal(by_dim.data, by_axis.data)
    assert by_dim.shape == by_axis.shape
    if takes_keepdim:
        kept = call(x, dim=1, keepdim=True)
        np.testing.assert_array_equal(kept.data, call(x, axis=1, keepdims=True).data)
        np.testing.assert_array_equal(kept.data, call(x, dim=1, keepdims=True).data)
        assert kept.shape[1] == 1


@pytest.mark.parametrize("name", sorted(CALLS))
def test_passing_both_names_of_a_dim_is_a_type_error(name):
    call, _ = CALLS[name]
    with pytest.raises(TypeError, match=r"got both dim= and axis=, which are the same parameter"):
        call(Tensor(X), dim=1, axis=1)


def test_passing_both_keepdim_and_keepdims_is_a_type_error():
    with pytest.raises(TypeError, match=r"sum\(\) got both keepdim= and keepdims="):
        Tensor(X).sum(dim=0, keepdim=True, keepdims=True)


def test_squeeze_and_flip_take_either_name():
    x = Tensor(X.reshape(2, 1, 3, 4))
    assert x.squeeze(dim=1).shape == x.squeeze(axis=1).shape == (2, 3, 4)
    y = Tensor(X)
    for flipped in (y.flip(0, 2), y.flip((0, 2)), y.flip(dims=(0, 2)), y.flip(axis=(0, 2))):
        np.testing.assert_array_equal(flipped.data, np.flip(X, (0, 2)))
    with pytest.raises(TypeError, match="flip"):
        y.flip(0, dims=1)


def test_max_and_min_with_dim_give_the_values_only():
    x = Tensor(X)
    np.testing.assert_array_equal(x.max(dim=2).data, X.max(axis=2))
    np.testing.assert_array_equal(x.min(dim=0, keepdim=True).data, X.min(axis=0, keepdims=True))


def test_the_gradient_is_the_same_by_either_name():
    a, b = Tensor(X, requires_grad=True), Tensor(X, requires_grad=True)
    (a.softmax(dim=0) * a).sum(dim=(1, 2)).sum().backward()
    (b.softmax(axis=0) * b).sum(axis=(1, 2)).sum().backward()
    np.testing.assert_array_equal(a.grad, b.grad)


# --- transpose and permute, as PyTorch ---------------------------------------------------------------------


def test_transpose_of_two_dims_swaps_them_and_on_a_matrix_is_its_transpose():
    m = Tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(m.transpose(0, 1).data, m.data.T)
    np.testing.assert_array_equal(m.transpose(1, 0).data, m.data.T)
    np.testing.assert_array_equal(m.transpose(-1, -2).data, m.data.T)
    np.testing.assert_array_equal(m.transpose(0, 0).data, m.data)   # a dim swapped with itself: unchanged
    x = Tensor(X)
    np.testing.assert_array_equal(x.transpose(0, 2).data, np.swapaxes(X, 0, 2))
    np.testing.assert_array_equal(x.transpose(-1, 0).data, np.swapaxes(X, -1, 0))


def test_a_tuple_or_as_many_dims_as_the_tensor_has_permute_as_numpy():
    x = Tensor(X)
    np.testing.assert_array_equal(x.transpose((2, 0, 1)).data, X.transpose(2, 0, 1))
    np.testing.assert_array_equal(x.transpose(2, 0, 1).data, X.transpose(2, 0, 1))
    np.testing.assert_array_equal(x.permute(2, 0, 1).data, X.transpose(2, 0, 1))
    np.testing.assert_array_equal(x.permute((1, 2, 0)).data, X.transpose(1, 2, 0))
    np.testing.assert_array_equal(x.transpose().data, X.T)


def test_transpose_and_permute_refuse_what_is_not_a_swap_or_a_permutation():
    with pytest.raises(ShapeError, match=r"transpose: axis 3 is out of range for shape \(2, 3, 4\)"):
        Tensor(X).transpose(0, 3)
    with pytest.raises(ShapeError, match=r"not a permutation"):
        Tensor(X).permute(0, 0, 1)
    with pytest.raises(TypeError, match=r"permute\(\) needs the order of the dims"):
        Tensor(X).permute()


def test_transpose_and_permute_match_torch_with_their_gradients():
    torch = pytest.importorskip("torch")
    g = np.linspace(-1, 1, 24).reshape(4, 3, 2)
    for ours_of, theirs_of in ((lambda t: t.transpose(0, 2), lambda t: t.transpose(0, 2)),
                               (lambda t: t.transpose(-3, -1), lambda t: t.transpose(-3, -1)),
                               (lambda t: t.permute(2, 1, 0), lambda t: t.permute(2, 1, 0))):
        ours, theirs = Tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
        out, t_out = ours_of(ours), theirs_of(theirs)
        np.testing.assert_array_equal(out.data, t_out.detach().numpy())
        out.backward(g)
        t_out.backward(torch.tensor(g))
        np.testing.assert_array_equal(ours.grad, theirs.grad.numpy())
    m = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(Tensor(m).transpose(0, 1).data, torch.tensor(m).transpose(0, 1).numpy())
