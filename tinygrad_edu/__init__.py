"""tinygrad_edu: a small autograd framework on numpy, grown from the 'neural network from scratch' tutorial.

Where to read: ops.py holds every op's forward beside its backward, and its docstring points at the lines that
compute the tutorial's formulas (dZ2 = A2 − Y, dW2 = dZ2·A1ᵀ, ...); autograd/ holds the graph node and the one
backward walk; tensor.py the Tensor that records ops. docs/layout.md maps the rest.
"""
from tinygrad_edu.autograd import ShapeError, enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled
from tinygrad_edu.gradcheck import GradcheckError, gradcheck, gradgradcheck
from tinygrad_edu.tensor import (
    Tensor,
    arange,
    cat,
    gather,
    maximum,
    minimum,
    ones,
    randn,
    result_dtype,
    stack,
    tril,
    triu,
    uniform,
    where,
    zeros,
)

__version__ = "0.1.0"
__all__ = ["GradcheckError", "ShapeError", "Tensor", "arange", "cat", "enable_grad", "gather", "grad", "gradcheck",
           "gradgradcheck", "is_grad_enabled", "maximum", "minimum", "no_grad", "ones", "randn", "result_dtype",
           "set_grad_enabled", "stack", "tril", "triu", "uniform", "where", "zeros"]


def __getattr__(name):
    # NOTE: `tinygrad_edu.trace()` without importing the viz layer (and matplotlib's users) up front.
    if name == "trace":
        from tinygrad_edu.viz import trace
        return trace
    raise AttributeError(f"module 'tinygrad_edu' has no attribute {name!r}")
