"""Dim arguments: numpy's names for them beside PyTorch's (numpy_names), and one dim argument as axes."""
from __future__ import annotations

import functools

import numpy as np

from tinygrad_edu.autograd import ShapeError


def normalize_axes(axis, shape: tuple, op: str) -> tuple[int, ...]:
    """numpy's axis argument (None, int or tuple, negatives allowed) as a sorted tuple of axes."""
    ndim = len(shape)
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for ax in axes:
        if not -ndim <= ax < ndim:
            raise ShapeError(f"{op}: axis {ax} is out of range for shape {shape}")
    norm = tuple(sorted(int(ax) % ndim for ax in axes))
    if len(set(norm)) != len(norm):
        raise ShapeError(f"{op}: axis {axis} names an axis twice")
    return norm


_NUMPY_NAMES = {"axis": "dim", "keepdims": "keepdim"}


def numpy_names(f=None, **torch_names):
    """Decorates a function whose parameters have PyTorch's names (dim, keepdim) so that numpy's names (axis,
    keepdims) pass the same parameters: `x.sum(axis=0, keepdims=True)` is `x.sum(dim=0, keepdim=True)`. Passing
    both names of one parameter is a TypeError. `@numpy_names(dim="dims")` names the parameter axis= stands for.
    """
    if f is None:
        return lambda g: numpy_names(g, **torch_names)
    renames = {numpy: torch_names.get(torch, torch) for numpy, torch in _NUMPY_NAMES.items()}

    @functools.wraps(f)
    def call(*args, **kwargs):
        if kwargs and ("axis" in kwargs or "keepdims" in kwargs):   # NOTE: a cheap test first: the usual call
            for numpy, torch in renames.items():                     # names neither
                if numpy in kwargs:
                    if torch in kwargs:
                        raise TypeError(f"{f.__name__}() got both {torch}= and {numpy}=, which are the same "
                                        f"parameter (numpy's name and PyTorch's): give one")
                    kwargs[torch] = kwargs.pop(numpy)
        return f(*args, **kwargs)
    return call
