"""Finite-difference gradient checking: does an op's backward agree with central differences?"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tinygrad_edu.autograd import enable_grad, no_grad
from tinygrad_edu.tensor import Tensor


class GradcheckError(AssertionError):
    """backward and finite differences disagree; the message names the input, the element and both values."""


def _weighting(shape: tuple, seed: int = 1234) -> np.ndarray:
    """A fixed, non-uniform, signed weighting w: L = Σ w ⊙ f(x) catches a backward that ignores or transposes
    its incoming gradient, which plain sum() would let through (and sum() makes softmax's gradient zero)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def compare_gradients(f: Callable[..., Tensor], inputs: Sequence[Tensor], eps: float = 1e-6):
    """For each input that requires grad: (index, backward's gradient, central-difference gradient), in float64.

    The inputs are copied to float64 leaves; f must build its output from them with Tensor ops.
    """
    leaves = [Tensor(np.array(t.data, dtype=np.float64), requires_grad=t.requires_grad, name=t.name)
              if isinstance(t, Tensor) and t.dtype.kind == "f" else t for t in inputs]
    with enable_grad():
        out = f(*leaves)
        w = _weighting(out.shape)
        loss = (out * w).sum()
        if loss.requires_grad:
            loss.backward()

    @no_grad()
    def scalar(*args) -> float:   # NOTE: the perturbed forwards are only evaluated, so they record no graph
        return float(np.sum(f(*args).data * w))

    results = []
    for i, x in enumerate(leaves):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        numeric = np.zeros_like(x.data)
        # NOTE: each element is perturbed in x.data itself, the array f reads: a reshape(-1) of a transposed
        # (Fortran-order) array would be a copy, and perturbing the copy would leave f's input unchanged.
        for j in np.ndindex(x.data.shape):
            orig = x.data[j]
            x.data[j] = orig + eps
            up = scalar(*leaves)
            x.data[j] = orig - eps
            down = scalar(*leaves)
            x.data[j] = orig
            numeric[j] = (up - down) / (2 * eps)
        analytic = np.zeros_like(x.data) if x.grad is None else x.grad
        results.append((i, analytic, numeric))
    return results


def gradcheck(f: Callable[..., Tensor], inputs: Sequence[Tensor], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3) -> bool:
    """True if backward's gradient of f matches central finite differences for every input that requires grad.

    A non-scalar output is first contracted with a fixed random weighting. Each element must satisfy
    |backward − numeric| ≤ atol + rtol·|numeric|; the first that does not raises GradcheckError.

    >>> x = Tensor(np.random.rand(3, 4), requires_grad=True)
    >>> gradcheck(lambda x: x.tanh(), [x])
    True
    """
    check_gradients(compare_gradients(f, inputs, eps), inputs, atol, rtol)
    return True


def check_gradients(results, inputs: Sequence[Tensor], atol: float = 1e-5, rtol: float = 1e-3) -> None:
    """Raises GradcheckError at the first element of compare_gradients' results outside the tolerance."""
    for i, analytic, numeric in results:
        bad = np.abs(analytic - numeric) > atol + rtol * np.abs(numeric)
        if bad.any():
            j = tuple(int(k) for k in np.argwhere(bad)[0])
            name = getattr(inputs[i], "name", None)
            label = f"input {i}" + (f" ({name})" if name else "")
            raise GradcheckError(f"gradcheck: {label} of shape {analytic.shape}, element {j}: backward gives "
                                 f"{analytic[j]:.10g}, finite differences give {numeric[j]:.10g}")
