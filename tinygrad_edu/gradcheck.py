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


def compare_second_derivatives(f: Callable[..., Tensor], inputs: Sequence[Tensor], eps: float = 1e-6):
    """The second derivatives of f, by a recorded backward (create_graph=True) and by finite differences of the
    first-order gradient, in float64: for each input that requires grad, and for the incoming gradient v,
    (index, analytic, numeric). Index len(inputs) is v.

    With v a fixed weighting of f's output and u one of each gradient, S = Σ_k u_k ⊙ ∂(v·f)/∂x_k is a scalar
    function of the inputs and of v: its gradient by backward through the recorded first backward (the Hessian
    of v·f times u, and the Jacobian of f times u for v) is compared with central differences of S, where each
    S is computed by an ordinary first-order backward. So a rule that records a wrong or partial graph (a saved
    value treated as a constant, a term missing) disagrees, and one that records no graph at all gives zeros.
    """
    from tinygrad_edu.autograd import grad

    leaves = [Tensor(np.array(t.data, dtype=np.float64), requires_grad=t.requires_grad, name=t.name)
              if isinstance(t, Tensor) and t.dtype.kind == "f" else t for t in inputs]
    wanted = [x for x in leaves if isinstance(x, Tensor) and x.requires_grad]
    with enable_grad():
        shape = f(*leaves).shape
    v = Tensor(_weighting(shape), requires_grad=True)
    us = [_weighting(x.shape, seed=4321 + k) for k, x in enumerate(wanted)]

    def S(create_graph: bool):
        with enable_grad():
            gs = grad(f(*leaves), wanted, grad_outputs=v, create_graph=create_graph, allow_unused=True)
        terms = [(g * u).sum() for g, u in zip(gs, us) if g is not None]
        return sum(terms[1:], terms[0]) if terms else None

    with enable_grad():
        s = S(create_graph=True)
        needs = [x for x in (*wanted, v) if s is not None and s.requires_grad]
        second = dict(zip(map(id, needs), grad(s, needs, allow_unused=True))) if needs else {}

    def value() -> float:
        s = S(create_graph=False)
        return 0.0 if s is None else float(s.data)

    results = []
    wanted_ids = set(map(id, wanted))
    for i, x in [(i, x) for i, x in enumerate(leaves) if id(x) in wanted_ids] + [(len(leaves), v)]:
        numeric = np.zeros_like(x.data)
        for j in np.ndindex(x.data.shape):   # NOTE: perturbed in place, as compare_gradients does
            orig = x.data[j]
            x.data[j] = orig + eps
            up = value()
            x.data[j] = orig - eps
            down = value()
            x.data[j] = orig
            numeric[j] = (up - down) / (2 * eps)
        g = second.get(id(x))
        results.append((i, np.zeros_like(x.data) if g is None else np.asarray(g.data), numeric))
    return results


def gradgradcheck(f: Callable[..., Tensor], inputs: Sequence[Tensor], eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-3) -> bool:
    """True if f's second derivatives, by backward through a recorded backward (create_graph=True), match
    finite differences of its first-order gradient, for every input that requires grad and for the incoming
    gradient (as torch.autograd.gradgradcheck); the first mismatch raises GradcheckError, naming the element.

    >>> x = Tensor(np.random.rand(3, 4), requires_grad=True)
    >>> gradgradcheck(lambda x: x.tanh(), [x])
    True
    """
    results = compare_second_derivatives(f, inputs, eps)
    check_gradients(results, [*inputs, Tensor(0.0, name="the incoming gradient")], atol, rtol)
    return True
