"""Utilities on a model's parameters, as torch.nn.utils: clip_grad_norm_."""
from __future__ import annotations

import math
import numbers

import numpy as np

from tinygrad_edu.tensor import Tensor


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scales every gradient in place by min(1, max_norm/(total + 1e-6)), total the norm of all the gradients
    together (the norm of the parameters' norms, as if their gradients were one vector), as
    torch.nn.utils.clip_grad_norm_; returns total, taken before the clipping, as a 0-d Tensor (in the gradients'
    promoted dtype; each norm is summed in float64). Parameters whose .grad is None are skipped (none at all:
    the total is 0). norm_type is any p of ‖·‖_p, inf (or "inf") for the largest |g|.

    A total that is nan or ±inf makes the gradients nan (or 0): with error_if_nonfinite=True it raises
    RuntimeError instead, leaving them as they were. A negative max_norm is refused (torch would flip the
    gradients' sign).
    """
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"clip_grad_norm_: parameters must be Tensors, got a {type(p).__name__}")
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real) or not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be a number ≥ 0, got {max_norm!r}")
    if isinstance(norm_type, str) and norm_type.lower() in ("inf", "-inf"):
        norm_type = float(norm_type)
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real) or math.isnan(norm_type):
        raise ValueError(f"clip_grad_norm_: norm_type must be a number or 'inf', got {norm_type!r}")
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return Tensor(np.zeros((), np.float32))
    dtype = np.result_type(*grads)
    p = float(norm_type)
    norms = np.array([np.linalg.norm(g.reshape(-1).astype(np.float64, copy=False), p) if g.size else 0.0
                      for g in grads])
    total = np.linalg.norm(norms, p)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {p} of the gradients is {total}, so they "
                           "cannot be clipped; with error_if_nonfinite=False they are scaled by it anyway")
    with np.errstate(invalid="ignore"):
        coef = min(1.0, max_norm / (total + 1e-6)) if not math.isnan(total) else math.nan
        for g in grads:
            g *= g.dtype.type(coef)   # NOTE: in place, as torch's (p.grad is this array)
    return Tensor(np.asarray(total, dtype=dtype))
