"""numpy's functions on Tensors: why one backward rule computes a gradient on arrays and records it on Tensors.

A rule such as Softmax's `s * (g - np.sum(g * s, axis=..., keepdims=True))` runs on numpy arrays in a first-order
backward. Under `create_graph=True` the walk calls the same rule with Tensors (∂L/∂out and the saved values), and
numpy hands each of its functions back to the Tensor (numpy's `__array_ufunc__` and `__array_function__`
protocols): `np.sum(tensor)` is then `tensor.sum(...)`, a recorded op. The tables below are every numpy function a
rule may call on a Tensor. One that is not here raises TypeError inside a rule that is being recorded, naming it
(converting the Tensor to an array would drop the graph, and the second derivative would be silently wrong);
outside a rule it gets the Tensor's values, as before.
"""
from __future__ import annotations

import threading

import numpy as np


class _Recording(threading.local):
    def __init__(self):
        self.rule: str | None = None   # the op whose rule the walk is recording (create_graph), else None


recording = _Recording()


def _binary(name: str):
    """a <op> b for a numpy binary ufunc, whichever side the Tensor is on (numpy asks the Tensor for both)."""
    def op(a, b):
        from tinygrad_edu.tensor import Tensor

        if isinstance(a, Tensor):
            return getattr(a, f"__{name}__")(b)
        return getattr(b, f"__r{name}__")(a)
    return op


def _compare(symbol: str, reflected: str):
    """A comparison with the Tensor on either side: a < t is t > a."""
    def op(a, b):
        from tinygrad_edu.tensor import Tensor

        return getattr(a, symbol)(b) if isinstance(a, Tensor) else getattr(b, reflected)(a)
    return op


def _constant(ufunc):
    """A ufunc with no derivative (isnan, logical not): its value on the Tensor's data, as a bool tensor."""
    def op(*args):
        from tinygrad_edu.tensor import Tensor, numpy_value

        return Tensor._wrap(np.asarray(ufunc(*(numpy_value(a) for a in args))), False)
    return op


def _maximum(a, b):
    from tinygrad_edu.tensor import maximum

    return maximum(a, b)


def _minimum(a, b):
    from tinygrad_edu.tensor import minimum

    return minimum(a, b)


UFUNCS = {
    np.add: _binary("add"), np.subtract: _binary("sub"), np.multiply: _binary("mul"),
    np.true_divide: _binary("truediv"), np.matmul: _binary("matmul"), np.power: _binary("pow"),
    np.maximum: _maximum, np.minimum: _minimum,
    np.equal: _compare("__eq__", "__eq__"), np.not_equal: _compare("__ne__", "__ne__"),
    np.less: _compare("__lt__", "__gt__"), np.less_equal: _compare("__le__", "__ge__"),
    np.greater: _compare("__gt__", "__lt__"), np.greater_equal: _compare("__ge__", "__le__"),
    np.negative: lambda a: -a, np.positive: lambda a: a,
    np.exp: lambda a: a.exp(), np.log: lambda a: a.log(), np.tanh: lambda a: a.tanh(), np.sin: lambda a: a.sin(),
    np.cos: lambda a: a.cos(), np.sqrt: lambda a: a.sqrt(), np.absolute: lambda a: a.abs(),
    np.sign: lambda a: a.sign(), np.square: lambda a: a * a,
    np.isnan: _constant(np.isnan), np.isfinite: _constant(np.isfinite), np.invert: _constant(np.invert),
    np.logical_not: _constant(np.logical_not), np.logical_and: _constant(np.logical_and),
    np.logical_or: _constant(np.logical_or), np.bitwise_and: lambda a, b: a & b if hasattr(a, "_ctx") else b & a,
    np.bitwise_or: lambda a, b: a | b if hasattr(a, "_ctx") else b | a,
}


def _split(a, indices_or_sections, axis=0):
    """np.split as slices (getitem), so each piece's gradient goes back to its place."""
    n = a.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        if n % indices_or_sections:
            raise ValueError(f"np.split: {n} does not divide into {indices_or_sections} equal sections")
        ends = [n // indices_or_sections * k for k in range(1, indices_or_sections)]
    else:
        ends = list(indices_or_sections)
    bounds = [0, *ends, n]
    lead = (slice(None),) * (axis % a.ndim)
    return [a[(*lead, slice(lo, hi))] for lo, hi in zip(bounds[:-1], bounds[1:])]


def _zeros_like(a, dtype=None):
    from tinygrad_edu.tensor import Tensor

    return Tensor._wrap(np.zeros(a.shape, dtype or a.dtype), False)


def _ones_like(a, dtype=None):
    from tinygrad_edu.tensor import Tensor

    return Tensor._wrap(np.ones(a.shape, dtype or a.dtype), False)


def _where(condition, x, y):
    from tinygrad_edu.tensor import where

    return where(condition, x, y)


def _cat(arrays, axis=0):
    from tinygrad_edu.tensor import cat

    return cat(arrays, dim=axis)


def _stack(arrays, axis=0):
    from tinygrad_edu.tensor import stack

    return stack(arrays, dim=axis)


def _expand_dims(a, axis):
    axes = sorted(ax % (a.ndim + (len(axis) if isinstance(axis, tuple) else 1))
                  for ax in (axis if isinstance(axis, tuple) else (axis,)))
    shape = list(a.shape)
    for ax in axes:
        shape.insert(ax, 1)
    return a.reshape(*shape)


FUNCTIONS = {
    np.where: _where,
    np.sum: lambda a, axis=None, keepdims=False: a.sum(axis, keepdim=keepdims),
    np.mean: lambda a, axis=None, keepdims=False: a.mean(axis, keepdim=keepdims),
    np.broadcast_to: lambda a, shape: a.expand(*shape) if a.shape != tuple(shape) else a,
    np.expand_dims: _expand_dims,
    np.squeeze: lambda a, axis=None: a.squeeze(axis),
    np.reshape: lambda a, shape: a.reshape(shape),
    np.transpose: lambda a, axes=None: a.permute(*(axes if axes is not None else reversed(range(a.ndim)))),
    np.swapaxes: lambda a, axis1, axis2: a.transpose(axis1, axis2),
    np.split: _split,
    np.flip: lambda a, axis: a.flip(axis),
    np.cumsum: lambda a, axis: a.cumsum(axis),
    np.concatenate: _cat,
    np.stack: _stack,
    np.zeros_like: _zeros_like,
    np.ones_like: _ones_like,
}


def array_ufunc(ufunc, method: str, inputs: tuple, kwargs: dict):
    """Tensor.__array_ufunc__: the ufuncs of UFUNCS as Tensor ops; any other use of a ufunc is refused."""
    if method == "__call__" and not kwargs and ufunc in UFUNCS:
        return UFUNCS[ufunc](*inputs)
    raise TypeError(f"numpy's {ufunc.__name__}{'' if method == '__call__' else '.' + method} does not take a "
                    "Tensor here: use the Tensor's own op (t.exp(), t + u, ...), or np.asarray(t) for its values"
                    + ("" if not kwargs else f" (keywords {sorted(kwargs)} are not supported on Tensors)"))


def array_function(func, args: tuple, kwargs: dict):
    """Tensor.__array_function__: the functions of FUNCTIONS as Tensor ops; others get the Tensors' values,
    except inside a rule being recorded, where dropping the graph would make the second derivative wrong."""
    from tinygrad_edu.tensor import Tensor

    own = FUNCTIONS.get(func)
    if own is not None:
        return own(*args, **kwargs)
    if recording.rule is not None:
        raise TypeError(f"backward of {recording.rule}: np.{func.__name__} has no Tensor version, so under "
                        "create_graph=True its result would have no graph and the second derivative would be "
                        "wrong; write the rule with Tensor operations (see tinygrad_edu/numpy_functions.py)")

    def values(x):
        if isinstance(x, Tensor):
            return x.data
        if isinstance(x, (list, tuple)):
            return type(x)(values(v) for v in x)
        return x
    return func(*values(args), **{k: values(v) for k, v in kwargs.items()})
