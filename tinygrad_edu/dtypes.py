"""dtypes: PyTorch's type promotion, the checked casts, and the one list of dtypes a model's weights may have."""
from __future__ import annotations

import numbers

import numpy as np

# --- dtype rules (the one place; docs/dtypes.md says the same) ------------------------------
#
# Following PyTorch's type promotion:
# * numpy arrays keep their dtype; Python floats become float32 (the default float dtype), ints int64, bools bool.
# * In an op, operands rank by kind: bool < integer < float. Dimensioned tensors (and arrays) decide the dtype;
#   a 0-d tensor or a Python scalar only matters when its kind is higher, and then a Python scalar brings the
#   default dtype of its kind: `t_f32 * (1/m)` stays float32, `pixels_u8 / 255.0` is float32, float32 with
#   float64 (both dimensioned) is float64.
# * Division of integers gives float32. Only floating-point tensors can require grad.

DEFAULT_FLOAT = np.dtype(np.float32)
DEFAULT_OF_KIND = {"b": np.dtype(np.bool_), "i": np.dtype(np.int64), "u": np.dtype(np.int64), "f": DEFAULT_FLOAT}
RANK_OF_KIND = {"b": 0, "u": 1, "i": 1, "f": 2}


def rank(dtype: np.dtype) -> int:
    return RANK_OF_KIND[dtype.kind]


_INT64 = np.iinfo(np.int64)


def _first_int_outside_int64(data):
    """(the first Python int in data outside int64, whether data holds a float), walking nested lists."""
    if isinstance(data, (list, tuple)):
        bad, has_float = None, False
        for x in data:
            b, f = _first_int_outside_int64(x)
            bad, has_float = bad if bad is not None else b, has_float or f
        return bad, has_float
    if isinstance(data, (bool, np.bool_)):
        return None, False
    if isinstance(data, numbers.Integral):
        return (None if _INT64.min <= int(data) <= _INT64.max else int(data)), False
    return None, isinstance(data, numbers.Real)


def cast(arr: np.ndarray, dtype, op: str) -> np.ndarray:
    """arr in dtype (arr itself if it already is), refusing casts to an integer dtype that would change a value
    beyond dropping a fraction: numpy wraps 300 to 44 in uint8 and turns nan into −2**63."""
    dtype = np.dtype(dtype)
    if arr.dtype == dtype:
        return arr
    if dtype.kind in "iu" and arr.dtype.kind in "iuf" and arr.size and not np.can_cast(arr.dtype, dtype):
        info = np.iinfo(dtype)
        lo, hi = np.trunc(arr.min()).item(), np.trunc(arr.max()).item()   # nan, if any, makes both nan
        if not (info.min <= lo and hi <= info.max):   # NOTE: Python compares its ints and floats exactly
            bad = lo if not lo >= info.min else hi
            raise OverflowError(f"{op}: the value {bad} of this {arr.dtype} data does not fit in {dtype} "
                                f"({info.min} .. {info.max})")
    return arr.astype(dtype)


def fill_value(value, dtype, op: str) -> np.ndarray:
    """A fill value (F.pad's value, masked_fill's) as a 0-d array of dtype, through the one cast check: nan and
    ±inf are refused for an integer tensor (numpy would write −2**63, or 0 in uint8), as are values out of its
    range; a fraction is dropped, as in PyTorch."""
    dtype = np.dtype(dtype)
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        if dtype.kind in "iu" and not np.iinfo(dtype).min <= int(value) <= np.iinfo(dtype).max:
            info = np.iinfo(dtype)
            raise OverflowError(f"{op}: the value {int(value)} does not fit in {dtype} ({info.min} .. {info.max})")
        return np.asarray(int(value), dtype=dtype if dtype.kind in "iu" else None).astype(dtype)
    arr = np.asarray(value)
    if arr.ndim != 0 or arr.dtype.kind not in RANK_OF_KIND:
        raise TypeError(f"{op}: the value must be a real number, got {value!r}")
    return cast(arr, dtype, op)


def as_array(data, dtype=None) -> np.ndarray:
    """Tensor data (numbers, nested lists, arrays) as a numpy array: arrays keep their dtype; Python floats become
    float32 unless dtype says.

    A Python int must fit the dtype it becomes (int64 by default), as in PyTorch: 2**63 is refused with
    OverflowError, where numpy would make it uint64 (which int64 wraps negative) or turn its list to float64.
    """
    if isinstance(data, (np.ndarray, np.generic)):
        arr = np.asarray(data)
    else:
        try:
            # NOTE: with a dtype, Python numbers go straight to it: 0.1 in float64 is 0.1, not float32's 0.1
            arr = np.asarray(data, dtype=dtype)
        except OverflowError as e:
            raise OverflowError(f"Tensor: a value does not fit in {np.dtype(dtype)} ({e})") from None
        except (ValueError, TypeError) as e:
            raise TypeError(f"Tensor: cannot make an array of {type(data).__name__} data ({e})") from None
        # NOTE: numpy gives ints beyond int64 as uint64, object or float64 arrays; only then is data walked
        if dtype is None and (arr.dtype.kind in "uO" or (arr.dtype.kind == "f" and arr.size
                                                          and np.nanmax(np.abs(arr)) >= 2.0 ** 63)):
            bad, has_float = _first_int_outside_int64(data)
            if bad is not None and not has_float:
                raise OverflowError(f"Tensor: the integer {bad} does not fit in int64 (−2**63 .. 2**63 − 1), the "
                                    "dtype of Python ints; pass dtype=np.uint64 or np.float64, or a float")
            if bad is not None:   # a float among them: float data, as in PyTorch
                arr = np.asarray(data, dtype=DEFAULT_FLOAT)
        if dtype is None and arr.dtype.kind in DEFAULT_OF_KIND:
            arr = cast(arr, DEFAULT_OF_KIND[arr.dtype.kind], "Tensor")
    if arr.dtype.kind not in RANK_OF_KIND:
        raise TypeError(f"Tensor: cannot hold {type(data).__name__} data of dtype {arr.dtype}; "
                        "use numbers, nested lists of numbers, or a numeric numpy array")
    return arr if dtype is None else cast(arr, dtype, "Tensor")


def is_scalar(x) -> bool:
    """Python numbers and numpy scalars: they take part in promotion as PyTorch's 'wrapped numbers'."""
    return isinstance(x, (bool, numbers.Number))


def result_dtype(*operands) -> np.dtype:
    """The dtype of an op on these operands (Tensors, arrays, Python scalars), by PyTorch's promotion rules."""
    best = {}  # priority (2 dimensioned, 1 zero-dim, 0 Python scalar) -> promoted dtype within that group
    for x in operands:
        if is_scalar(x):
            # NOTE: a Python int is an integer however big (numpy would call 2**63 uint64, 2**70 object)
            kind = "i" if type(x) is int else np.asarray(x).dtype.kind
            if kind not in DEFAULT_OF_KIND:
                raise TypeError(f"a {type(x).__name__} cannot take part in a Tensor op (only real numbers)")
            dt, prio = DEFAULT_OF_KIND[kind], 0
        elif isinstance(getattr(x, "dtype", None), np.dtype):   # a Tensor or an array
            dt, prio = x.dtype, (2 if x.ndim else 1)
        else:
            arr = as_array(x)
            dt, prio = arr.dtype, (2 if arr.ndim else 1)
        prev = best.get(prio)
        best[prio] = dt if prev is None else (
            np.promote_types(prev, dt) if rank(prev) == rank(dt) else max(prev, dt, key=rank))
    result = None
    for prio in (2, 1, 0):
        dt = best.get(prio)
        if dt is not None and (result is None or rank(dt) > rank(result)):
            result = dt
    return result


def float_dtype(*operands) -> np.dtype:
    """Ops that only make sense on floats (exp, /, mean, ...) turn bool and integer inputs into float32."""
    dt = result_dtype(*operands)
    return dt if dt.kind == "f" else DEFAULT_FLOAT


# --- the dtypes of a model's weights -------------------------------------------------------------------------
#
# Every layer constructor, every spec a weights file holds, the loader and `train --dtype` accept exactly these.

MODEL_DTYPES = ("float32", "float64")


def model_dtype(owner: str, dtype) -> np.dtype:
    """dtype (None: float32) as a numpy dtype if a model's weights may have it; ValueError naming owner otherwise,
    with the one message the constructors, the spec checks and the loader give."""
    if dtype is None:
        return DEFAULT_FLOAT
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or all(dt != np.dtype(name) for name in MODEL_DTYPES):
        got = repr(dtype) if dt is None else str(dt)   # NOTE: np.float16 and "float16" alike print as float16
        raise ValueError(f"{owner}: dtype must be {' or '.join(MODEL_DTYPES)}, got {got}")
    return dt
