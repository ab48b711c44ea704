"""After backward (without retain_graph) nothing an op kept for its backward stays reachable from the graph."""
import gc
import weakref

import numpy as np
import pytest

from tinygrad_edu import Tensor, where
from tinygrad_edu.autograd import topological_order
from tinygrad_edu.opspecs import REGISTRY, NumpyChooser


def _arrays_in(value) -> list:
    """The numpy arrays in value, looking inside tuples, lists and dicts."""
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in _arrays_in(v)]
    return []


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_no_op_keeps_an_array_after_backward(name):
    f, arrays, _ = REGISTRY[name].example(NumpyChooser(0))
    out = f(*(Tensor(a, requires_grad=True) for a in arrays))
    nodes = topological_order(out)
    out.backward(np.ones(out.shape))
    for t in nodes:
        fn = t.grad_fn
        assert fn.saved == (), f"{name}: {fn.name} still holds its saved arrays"
        assert not _arrays_in(fn.attrs), f"{name}: {fn.name} keeps arrays in attrs: {sorted(fn.attrs)}"


def test_with_retain_graph_the_saved_arrays_stay_for_a_second_backward():
    x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    y = where(np.array([True, False, True]), x, 0.0) * x
    y.sum().backward(retain_graph=True)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, 0.0, 12.0])


def test_where_releases_its_copy_of_the_condition():
    x = Tensor(np.ones((1000, 1000)), requires_grad=True)
    loss = where(np.eye(1000, dtype=bool), x, 0.0).sum()
    (condition,) = loss.grad_fn.parents[0].grad_fn.saved
    assert condition.nbytes == 10**6
    alive = weakref.ref(condition)
    del condition
    loss.backward()
    gc.collect()
    assert alive() is None, "the condition is still reachable after backward"
    assert loss.grad_fn.parents[0].grad_fn is not None   # the graph itself stays, for viewing


def test_getitem_releases_its_index_arrays():
    x = Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    picked = x[np.array([0, 2, 2]), np.array([1, 3, 3])]
    (then,) = picked.grad_fn.saved
    alive = [weakref.ref(a) for a in then]
    del then
    picked.sum().backward()
    gc.collect()
    assert all(ref() is None for ref in alive), "getitem's index arrays are still reachable after backward"
    expected = np.zeros((3, 4))
    expected[0, 1], expected[2, 3] = 1, 2
    np.testing.assert_array_equal(x.grad, expected)
    assert picked.grad_fn.attrs["index"] == "(<int64 3>, <int64 3>)"   # what viz shows of the index
