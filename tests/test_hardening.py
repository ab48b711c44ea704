"""Regression tests of issue 12's classes 3, 4, 7 and 8: one check for every path, values that must not change,
PyTorch's answers for 0-d softmax and mixed indexing, and the smaller defects (cycles, pow, slicing, CSV)."""
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_edu.nn.functional as F
from tinygrad_edu import Tensor, gradcheck, manual, nn, training
from tinygrad_edu.autograd import ShapeError
from tinygrad_edu.datasets import DatasetError, load_kaggle_csv
from tinygrad_edu.gradcheck import compare_gradients


def torch_or_skip():
    return pytest.importorskip("torch")


# --- class 3: one target check for every entry point to the cross-entropy ---------------------------------

LOGITS = np.random.default_rng(0).standard_normal((4, 3))

# every entry point to the same computation, with logits batch×classes (the tutorial's are transposed)
ENTRY_POINTS = {
    "mean": lambda z, y: F.cross_entropy(Tensor(z), y, reduction="mean"),
    "sum": lambda z, y: F.cross_entropy(Tensor(z), y, reduction="sum"),
    "none": lambda z, y: F.cross_entropy(Tensor(z), y, reduction="none"),
    "op": lambda z, y: Tensor(z).softmax_cross_entropy(y, axis=-1),
    "tutorial": lambda z, y: training.cross_entropy(z.T, y, axis=0),
    "by hand": lambda z, y: manual.cross_entropy(manual.softmax(z.T), y),
}
BAD_TARGETS = [
    (np.array([0, 1, -1, 2]), ShapeError, r"labels must lie in 0\.\.2.*got -1 at position 2"),
    (np.array([0, 3, 1, 2]), ShapeError, r"labels must lie in 0\.\.2.*got 3 at position 1"),
    (np.array([0, 1, 1, 100]), ShapeError, r"got 100 at position 3"),
    (np.array([0.0, 1.0, 1.0, 2.0]), (ShapeError, TypeError), r"class labels must be integers, got dtype float64"),
    (np.array([[0], [1], [1], [2]]), ShapeError, r"need integer labels of shape \(4,\), got \(4, 1\)"),
    (np.ones((4, 3), dtype=bool), TypeError, r"got dtype bool"),
]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("target, error, message", BAD_TARGETS)
def test_every_entry_point_refuses_the_same_targets(entry, target, error, message):
    if entry == "by hand" and target.ndim == 2:
        pytest.skip("the hand-written loss takes labels only")
    with pytest.raises(error, match=message):
        ENTRY_POINTS[entry](LOGITS, target)


def test_every_entry_point_gives_the_same_loss_for_valid_labels():
    y = np.array([0, 2, 1, 2])
    expected = -np.mean(LOGITS[np.arange(4), y] - np.log(np.exp(LOGITS).sum(axis=1)))
    as_mean = {"none": lambda loss: np.mean(loss.data), "sum": lambda loss: loss.item() / 4}
    for name, entry in ENTRY_POINTS.items():
        value = as_mean.get(name, float)(entry(LOGITS, y))
        assert value == pytest.approx(expected, rel=1e-12), name


@st.composite
def ce_case(draw):
    """Logits N×C, and labels or probability targets whose rows sum to anything in [0.2, 3]."""
    n, c = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    z = draw(hnp.arrays(np.float64, (n, c), elements=st.floats(-5, 5)))
    if draw(st.booleans()):
        y = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    else:
        y = draw(hnp.arrays(np.float64, (n, c), elements=st.floats(0.01, 1)))
        y = y / y.sum(axis=1, keepdims=True) * draw(hnp.arrays(np.float64, (n, 1), elements=st.floats(0.2, 3)))
    return z, y, draw(st.sampled_from(["mean", "sum", "none"]))


@given(ce_case())
def test_cross_entropy_matches_torch_values_and_gradients(case):
    torch = torch_or_skip()
    z, y, reduction = case
    w = np.random.default_rng(1).uniform(-1, 1, size=(len(z),) if reduction == "none" else ())
    x = Tensor(z, requires_grad=True)
    loss = F.cross_entropy(x, y, reduction=reduction)
    (loss * w).sum().backward()
    tz = torch.tensor(z, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tz, torch.tensor(y), reduction=reduction)
    (tloss * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(loss.data, tloss.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x.grad, tz.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("axis", [0, 1])
def test_targets_not_summing_to_one_gradient_is_the_loss_derivative(axis):
    rng = np.random.default_rng(3)
    z = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    y = rng.uniform(0.1, 1, (3, 4))   # rows and columns sum to 1.5 .. 3
    assert gradcheck(lambda z: z.softmax_cross_entropy(y, axis=axis), [z])
    assert gradcheck(lambda z: F.cross_entropy(z, y, reduction="none"), [z])
    # loss = −Σ y·log softmax(z) / m, grad = (softmax·Σy − y)/m, as PyTorch
    zd = z.data
    logp = zd - zd.max(axis=axis, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=axis, keepdims=True))
    m = zd.size // zd.shape[axis]
    z.grad = None
    loss = z.softmax_cross_entropy(y, axis=axis)
    loss.backward()
    assert loss.item() == pytest.approx(-(y * logp).sum() / m, rel=1e-12)
    np.testing.assert_allclose(z.grad, (np.exp(logp) * y.sum(axis=axis, keepdims=True) - y) / m, rtol=1e-12)


# --- class 4: values that must not silently change ------------------------------------------------------

@pytest.mark.parametrize("data, bad", [(2**63, 2**63), ([2**64 - 1], 2**64 - 1), (2**64, 2**64),
                                       ([1, 2**70], 2**70), (-2**63 - 1, -2**63 - 1), ([2**63, -1], 2**63),
                                       ([[1], [2**63]], 2**63), ([True, 2**63], 2**63)])
def test_python_ints_beyond_int64_are_refused(data, bad):
    with pytest.raises(OverflowError, match=rf"the integer {bad} does not fit in int64"):
        Tensor(data)


def test_python_ints_at_the_int64_bounds_and_beside_floats_stay_exact():
    assert Tensor(2**63 - 1).item() == 2**63 - 1 and Tensor(-2**63).item() == -2**63
    assert Tensor([2**63 - 1, -2**63]).dtype == np.int64
    assert Tensor(2**63, dtype=np.uint64).item() == 2**63
    t = Tensor([1.5, 2**70])   # a float among them: float data, as in PyTorch
    assert t.dtype == np.float32 and t.data[1] == np.float32(2.0**70)


@given(st.lists(st.integers(-2**65, 2**65), min_size=1, max_size=4))
def test_int_lists_are_exact_or_refused(values):
    fits = all(-2**63 <= v < 2**63 for v in values)
    if fits:
        t = Tensor(values)
        assert t.dtype == np.int64 and t.tolist() == values
    else:
        with pytest.raises(OverflowError, match="does not fit in int64"):
            Tensor(values)


INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


@given(st.sampled_from(INT_DTYPES), st.integers(-2**70, 2**70), st.sampled_from(["add", "sub", "mul"]))
def test_python_int_operand_fits_the_int_tensors_dtype_or_is_refused(dtype, value, op):
    info = np.iinfo(dtype)
    t = Tensor(np.array([0, 1], dtype=dtype))
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b}[op]
    if info.min <= value <= info.max:
        with np.errstate(over="ignore"):
            expected = fn(t.data, np.array(value, dtype=dtype))
        assert fn(t, value).dtype == dtype and np.array_equal(fn(t, value).data, expected)
    else:
        with pytest.raises(OverflowError, match=rf"{op}: the integer {value} does not fit in {np.dtype(dtype)}"):
            fn(t, value)
        with pytest.raises(OverflowError, match=rf"{op}: the integer {value} does not fit"):
            fn(value, t)


def test_big_python_ints_with_float_tensors_are_floats():
    assert (Tensor([1.0]) + 2**70).data[0] == np.float32(2.0**70)


def test_casts_to_integer_dtypes_refuse_values_that_would_change():
    with pytest.raises(OverflowError, match=r"Tensor: the value 300 of this int64 data does not fit in uint8"):
        Tensor(np.array([300]), dtype=np.uint8)
    with pytest.raises(OverflowError, match=r"the value -1 of this int64 data does not fit in uint64"):
        Tensor(np.array([-1]), dtype=np.uint64)
    with pytest.raises(OverflowError, match=r"the value nan of this float64 data does not fit in int64"):
        Tensor(np.array([1.0, np.nan]), dtype=np.int64)
    with pytest.raises(OverflowError, match=r"does not fit in int64"):
        Tensor(np.array([2.0**63]), dtype=np.int64)
    with pytest.raises(OverflowError, match=r"Tensor: a value does not fit in uint8"):
        Tensor([300], dtype=np.uint8)
    with pytest.raises(OverflowError, match=r"the value 9223372036854775808 of this uint64 data does not fit in int64"):
        Tensor([np.array(2**63, np.uint64)])   # numpy unsigned ints in a list become int64, as Python ints do
    # a 0-d int64 tensor meeting an int32 tensor takes its dtype (PyTorch's promotion): it must fit
    with pytest.raises(OverflowError, match=r"add: the value 1099511627776 of this int64 data does not fit in int32"):
        Tensor(np.array([1], np.int32)) + Tensor(2**40)
    assert (Tensor(np.array([1], np.int32)) + Tensor(5)).tolist() == [6]
    # dropping a fraction is the cast itself, as in PyTorch and numpy
    assert Tensor(np.array([1.7, -1.7, 255.9]), dtype=np.int64).tolist() == [1, -1, 255]


@given(st.sampled_from(INT_DTYPES), st.one_of(
    hnp.arrays(np.float64, st.integers(1, 4), elements=st.floats(-2.0**65, 2.0**65) | st.just(np.nan)),
    hnp.arrays(st.sampled_from(INT_DTYPES), st.integers(1, 4))))
def test_a_cast_to_an_integer_dtype_keeps_each_value_but_its_fraction_or_is_refused(dtype, data):
    info = np.iinfo(dtype)
    with np.errstate(invalid="ignore"):
        whole = [int(v) if np.isfinite(v) else None for v in np.trunc(data.astype(np.float64)).tolist()] \
            if data.dtype.kind == "f" else data.tolist()
    if all(v is not None and info.min <= v <= info.max for v in whole):
        t = Tensor(data, dtype=dtype)
        assert t.dtype == dtype and t.tolist() == whole
    else:
        with pytest.raises(OverflowError, match=rf"Tensor: the value .* of this {data.dtype} data does not fit in "
                                                rf"{np.dtype(dtype)}"):
            Tensor(data, dtype=dtype)


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_gradcheck_perturbs_the_array_f_reads_whatever_its_layout(layout):
    base = np.random.default_rng(0).uniform(0.5, 1.5, (3, 8))
    data = {"C": base, "F": np.asfortranarray(base), "strided": base[:, ::2]}[layout]
    x = Tensor(data, requires_grad=True)
    assert gradcheck(lambda x: x.tanh() * x, [x])
    ((_, analytic, numeric),) = compare_gradients(lambda x: (x * x).sum(axis=0), [x])
    np.testing.assert_allclose(numeric, analytic, rtol=1e-6)
    assert np.all(numeric != 0)


def test_tensor_shares_an_array_of_its_dtype_and_copies_on_a_cast():
    a = np.zeros(3, np.float32)
    Tensor(a).data[0] = 1          # shared, like torch.from_numpy: docs/pytorch.md's differences table
    assert a[0] == 1
    Tensor(a, dtype=np.float64).data[1] = 1    # a cast makes a copy
    assert a[1] == 0


# --- class 7: PyTorch's answers -------------------------------------------------------------------------

@pytest.mark.parametrize("fn, value", [("softmax", 1.0), ("log_softmax", 0.0)])
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_of_a_0d_tensor_is_torchs(fn, value, axis):
    torch = torch_or_skip()
    x = Tensor(np.float64(2.5), requires_grad=True)
    y = getattr(x, fn)(axis)
    (y * 3).backward()
    tx = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
    ty = getattr(torch, fn)(tx, axis)
    (ty * 3).backward()
    assert y.shape == () and y.item() == value == ty.item()
    assert x.grad == 0 == tx.grad.item()
    with pytest.raises(ShapeError, match=rf"{fn}: axis 1 is out of range for shape \(\)"):
        getattr(x, fn)(1)


def test_int_and_array_separated_by_a_slice_give_torchs_shape():
    x = Tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    y = x[0, :, [1, 2]]
    assert y.shape == (3, 2)   # numpy: (2, 3)
    np.testing.assert_array_equal(y.data, np.arange(24.0).reshape(2, 3, 4)[0][:, [1, 2]])
    y.sum().backward()
    assert x.grad.sum() == 6 and x.grad[0, :, 1:3].sum() == 6


@st.composite
def index_case(draw):
    """A shape and an index of ints, slices, int arrays (sharing one shape), maybe None and ..., in any order."""
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    k = draw(st.integers(1, len(shape)))                     # how many axes the index names
    ellipsis_at = draw(st.one_of(st.none(), st.integers(0, k)))
    dims = list(range(k)) if ellipsis_at is None else (
        list(range(ellipsis_at)) + list(range(len(shape) - (k - ellipsis_at), len(shape))))
    array_shape = draw(st.sampled_from([(1,), (2,), (3,), (2, 2)]))
    items = []
    for d in dims:
        n = shape[d]
        kind = draw(st.sampled_from(["int", "slice", "array"]))
        if kind == "int":
            items.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            start, stop = draw(st.integers(-n, n)), draw(st.integers(-n, n))
            items.append(slice(start, stop, draw(st.integers(1, 3))))
        else:
            arr = draw(hnp.arrays(np.int64, array_shape, elements=st.integers(-n, n - 1)))
            items.append(arr.tolist() if draw(st.booleans()) and arr.ndim == 1 else arr)
    if ellipsis_at is not None:
        items.insert(ellipsis_at, Ellipsis)
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), None)
    return shape, tuple(items)


@given(index_case())
@settings(max_examples=100)
@example(((2, 3, 4), (0, slice(None), [1, 2])))                         # numpy: (2, 3); PyTorch: (3, 2)
@example(((2, 3, 4), (np.array(1), slice(None), np.array([3, 0, 3]))))   # a 0-d index array is an int
@example(((3, 4, 5), ([0, 2], slice(1, 3), -1)))
@example(((2, 3, 4, 2), (slice(None), 1, slice(None), np.array([[0], [1]]))))
@example(((2, 3, 4), (None, 1, Ellipsis, np.array([[0, 3], [1, 1]]))))
@example(((1, 1, 1, 1), (None, np.array([0, 0]), Ellipsis, np.array([0, 0]), 0, 0)))   # a ... spanning no axis
def test_indexing_matches_torch_values_and_gradients(case):
    torch = torch_or_skip()
    shape, index = case
    data = np.random.default_rng(0).standard_normal(shape)
    x = Tensor(data, requires_grad=True)
    y = x[index]
    tx = torch.tensor(data, requires_grad=True)
    ty = tx[tuple(torch.tensor(i) if isinstance(i, (list, np.ndarray)) else i for i in index)]
    assert y.shape == tuple(ty.shape)
    np.testing.assert_array_equal(y.data, ty.detach().numpy())
    w = np.random.default_rng(1).uniform(-1, 1, y.shape)
    (y * w).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


# --- class 8: the smaller ones -------------------------------------------------------------------------

class WithParent(nn.Module):
    def __init__(self):
        self.child = nn.Linear(2, 3)
        self.child.parent = self          # a reference back up: repr must not recurse forever
        self.layers = [nn.ReLU()]
        self.layers.append(self.layers)   # a list that contains itself
        self.table = {"act": nn.Tanh()}
        self.table["me"] = self.table

    def forward(self, x):
        return self.child(x)


def test_module_walks_and_repr_survive_cycles():
    m = WithParent()
    assert [name for name, _ in m.named_parameters()] == ["child.weight", "child.bias"]
    assert [name for name, _ in m.named_modules()] == ["", "child", "layers.0", "table.act"]
    assert repr(m) == ("WithParent(\n  (child): Linear(in_features=2, out_features=3, bias=True\n"
                       "    (parent): <WithParent, the enclosing module above>\n  )\n"
                       "  (layers.0): ReLU()\n  (table.act): Tanh()\n)")


@pytest.mark.parametrize("data", [[1, 2], [True, False], np.array([1, 2], np.uint8)])
def test_integer_tensor_to_a_negative_integer_power_names_the_op(data):
    torch = torch_or_skip()
    with pytest.raises(RuntimeError, match="Integers to negative integer powers are not allowed"):
        torch.tensor(data) ** -1
    with pytest.raises(RuntimeError, match=r"pow: integers to negative integer powers are not allowed "
                                           r"\((int64|uint8) tensor \*\* -1\)"):
        Tensor(data) ** -1
    with np.errstate(divide="ignore"):
        assert (Tensor(data) ** -1.0).dtype == np.float32 and (Tensor(data) ** 2).dtype.kind in "iu"


def test_sequential_slices_are_sequentials_of_the_same_modules():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    seq = nn.Sequential(*layers)
    head = seq[0:1]
    assert type(head) is nn.Sequential and list(head) == layers[:1] and head[0] is layers[0]
    assert list(seq[::-1]) == layers[::-1] and list(seq[1:]) == layers[1:] and len(seq[5:]) == 0
    assert [n for n, _ in seq[1:].named_parameters()] == ["1.weight", "1.bias"]   # renumbered (torch: 2.weight)
    with pytest.raises(TypeError, match="Sequential: indices must be integers or slices, not str"):
        seq["0"]


def test_getitem_keeps_its_own_copy_of_the_index():
    x = Tensor(np.arange(4.0), requires_grad=True)
    idx = np.array([0, 1])
    y = x[idx]
    idx[:] = 3                        # changing the caller's array after indexing
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1, 1, 0, 0])


def test_kaggle_csv_refuses_a_carriage_return_inside_a_value(tmp_path):
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    row = ["5"] + ["0"] * 784
    bad = list(row)
    bad[3] = "1\r2"
    path = tmp_path / "train.csv"
    path.write_bytes("\r\n".join([header, ",".join(row), ",".join(bad)]).encode() + b"\r\n")
    with pytest.raises(DatasetError, match=r"line 3: unexpected character b'\\r' inside the line"):
        load_kaggle_csv(path)
