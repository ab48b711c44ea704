"""Jacobians, Hessians and their products with vectors, as torch.autograd.functional: built on autograd.grad.

Each function takes `func` (Tensors in, a Tensor or a tuple of Tensors out) and `inputs` (a Tensor or a tuple),
and returns what torch's does: vjp, jvp, vhp and hvp return `(func_output, product)`; jacobian and hessian
return the matrix, as a Tensor for one input and one output, and as tuples (of tuples) otherwise. A product's
shape is that of the inputs (vjp, vhp, hvp) or of the output (jvp). Everything is computed by reverse mode:
jvp and hvp by the double-backward trick (the gradient of a gradient with respect to its incoming gradient),
so their cost is two or three backward walks, not one forward-mode pass.

create_graph=True keeps the results differentiable (for a product of a product); strict=True refuses an
output that does not depend on some input, where the default returns zeros for it, as torch.
"""
from __future__ import annotations

import numpy as np

from tinygrad_edu.autograd import enable_grad, grad

__all__ = ["hessian", "hvp", "jacobian", "jvp", "vhp", "vjp"]


def _tensor_class():
    from tinygrad_edu.tensor import Tensor  # NOTE: tensor imports autograd, so not at the top

    return Tensor


def _as_tuple(who: str, what: str, x) -> tuple[bool, tuple]:
    """(was it a tuple, its Tensors): inputs and outputs may be one Tensor or a tuple (or list) of them."""
    Tensor = _tensor_class()
    items = tuple(x) if isinstance(x, (tuple, list)) else (x,)
    for k, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"{who}: {what} must be Tensors or a tuple of Tensors, but {what} {k} is a "
                            f"{type(t).__name__}")
    return isinstance(x, (tuple, list)), items


def _leaves(who: str, inputs: tuple, create_graph: bool) -> tuple:
    """The inputs as tensors to differentiate with respect to: a new leaf of each input's values, or, under
    create_graph, the input itself when it requires grad (so the results stay connected to its graph)."""
    Tensor = _tensor_class()
    leaves = []
    for k, x in enumerate(inputs):
        if x.dtype.kind != "f":
            raise TypeError(f"{who}: input {k} is {x.dtype}; only floating-point inputs can be differentiated")
        leaves.append(x if create_graph and x.requires_grad else Tensor(x.data, requires_grad=True, name=x.name))
    return tuple(leaves)


def _call(who: str, func, leaves: tuple, is_tuple: bool) -> tuple[bool, tuple]:
    with enable_grad():
        out = func(*leaves) if is_tuple else func(leaves[0])
    return _as_tuple(who, "outputs", out)


def _fill(who: str, grads: tuple, like: tuple, strict: bool, independent: str) -> tuple:
    """Zeros for the gradients that are None (an output independent of an input), or, with strict, an error."""
    Tensor = _tensor_class()
    result = []
    for k, (g, x) in enumerate(zip(grads, like)):
        if g is None:
            if strict:
                raise RuntimeError(f"{who}: the output of the function is independent of {independent} {k}, which "
                                   "is not allowed in strict mode")
            g = Tensor(np.zeros(x.shape, x.dtype))
        result.append(g)
    return tuple(result)


def _vectors(who: str, v, like: tuple, what: str) -> tuple:
    """v as a tuple of arrays or Tensors of like's shapes; None only where each of like has one element."""
    Tensor = _tensor_class()
    if v is None:
        if any(x.data.size != 1 for x in like):
            raise RuntimeError(f"{who}: v can be omitted only when the {what} has a single element; give v of "
                               f"shape {like[0].shape if len(like) == 1 else tuple(x.shape for x in like)}")
        return tuple(Tensor(np.ones(x.shape, x.dtype)) for x in like)
    _, vs = _as_tuple(who, "v", v) if isinstance(v, (Tensor, tuple, list)) else (False, (Tensor(v),))
    if len(vs) != len(like):
        raise RuntimeError(f"{who}: v has {len(vs)} entries for the {len(like)} {what}s")
    for k, (a, x) in enumerate(zip(vs, like)):
        if a.shape != x.shape:
            raise RuntimeError(f"{who}: v {k} has shape {a.shape}, but the {what} it goes with has shape {x.shape}")
    return vs


def _out(values: tuple, create_graph: bool) -> tuple:
    """The results as the caller gets them: detached from any graph unless create_graph."""
    return values if create_graph else tuple(t.detach() for t in values)


def _grad(outputs, inputs, grad_outputs, create_graph: bool):
    with enable_grad():
        return grad(outputs, inputs, grad_outputs=grad_outputs, create_graph=create_graph, retain_graph=True,
                    allow_unused=True)


def _usable(outputs: tuple) -> tuple:
    """The outputs that depend on something that requires grad (the others contribute nothing)."""
    return tuple(o for o in outputs if o.requires_grad)


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), vᵀ·J): the vector-Jacobian product, the gradient that backward computes, for each input."""
    is_tuple, inputs = _as_tuple("vjp", "inputs", inputs)
    leaves = _leaves("vjp", inputs, create_graph)
    out_tuple, outputs = _call("vjp", func, leaves, is_tuple)
    vs = _vectors("vjp", v, outputs, "output")
    pairs = [(o, a) for o, a in zip(outputs, vs) if o.requires_grad]
    grads = _grad([o for o, _ in pairs], leaves, [a for _, a in pairs], create_graph) if pairs else \
        (None,) * len(leaves)
    result = _out(_fill("vjp", grads, leaves, strict, "input"), create_graph)
    outputs = _out(outputs, create_graph)
    return (outputs if out_tuple else outputs[0]), (result if is_tuple else result[0])


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), J·v): the Jacobian-vector product, by the double-backward trick: g(u) = uᵀ·J is linear in
    u, and its gradient with respect to u, taken against v, is J·v."""
    Tensor = _tensor_class()
    is_tuple, inputs = _as_tuple("jvp", "inputs", inputs)
    leaves = _leaves("jvp", inputs, create_graph)
    out_tuple, outputs = _call("jvp", func, leaves, is_tuple)
    vs = _vectors("jvp", v, leaves, "input")
    us = tuple(Tensor(np.zeros(o.shape, o.dtype), requires_grad=True) for o in outputs)
    live = [(o, u) for o, u in zip(outputs, us) if o.requires_grad]
    g = _grad([o for o, _ in live], leaves, [u for _, u in live], True) if live else (None,) * len(leaves)
    pairs = [(gk, a) for gk, a in zip(g, vs) if gk is not None and gk.requires_grad]
    if pairs:
        result = _grad([gk for gk, _ in pairs], us, [a for _, a in pairs], create_graph)
    else:
        result = (None,) * len(us)
    result = _out(_fill("jvp", result, outputs, strict, "output"), create_graph)
    outputs = _out(outputs, create_graph)
    return (outputs if out_tuple else outputs[0]), (result if out_tuple else result[0])


def _check_strategy(who: str, vectorize: bool, strategy: str, name: str) -> None:
    if vectorize:
        raise NotImplementedError(f"{who}: vectorize=True is not supported here (there is no vmap); the Jacobian "
                                  "is built one row at a time, by one backward per output element")
    if strategy != "reverse-mode":
        raise NotImplementedError(f"{who}: {name}={strategy!r} is not supported; only 'reverse-mode' (forward mode "
                                  "needs forward-mode autodiff, which this library does not have)")


def jacobian(func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
             strategy: str = "reverse-mode"):
    """∂output/∂input: for one input and one output a Tensor of shape output.shape + input.shape; with a tuple of
    inputs, a tuple over them; with a tuple of outputs, a tuple over those (of tuples, if both). One backward per
    output element (reverse mode)."""
    _check_strategy("jacobian", vectorize, strategy, "strategy")
    Tensor = _tensor_class()
    from tinygrad_edu.tensor import stack

    is_tuple, inputs = _as_tuple("jacobian", "inputs", inputs)
    leaves = _leaves("jacobian", inputs, create_graph)
    out_tuple, outputs = _call("jacobian", func, leaves, is_tuple)
    rows = []
    for i, o in enumerate(outputs):
        per_input = [[] for _ in leaves]
        for j in np.ndindex(o.shape):
            if o.requires_grad:
                pick = np.zeros(o.shape, o.dtype)
                pick[j] = 1
                gs = _grad([o], leaves, [Tensor(pick)], create_graph)
            else:
                gs = (None,) * len(leaves)
            for k, (g, x) in enumerate(zip(gs, leaves)):
                if g is None and strict:
                    raise RuntimeError(f"jacobian: output {i} is independent of input {k}, which is not allowed in "
                                       "strict mode")
                per_input[k].append(Tensor(np.zeros(x.shape, x.dtype)) if g is None else g)
        blocks = []
        for k, x in enumerate(leaves):
            block = stack(per_input[k]).reshape(*o.shape, *x.shape) if per_input[k] else \
                Tensor(np.zeros(o.shape + x.shape, x.dtype))
            blocks.append(block if create_graph else block.detach())
        rows.append(tuple(blocks) if is_tuple else blocks[0])
    return tuple(rows) if out_tuple else rows[0]


def hessian(func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
            outer_jacobian_strategy: str = "reverse-mode"):
    """∂²func/∂input²: func returns a single-element Tensor; for one input a Tensor of shape input.shape × 2, for
    a tuple of inputs a tuple of tuples (block [i][j] is ∂²f/∂x_i∂x_j). The Jacobian of the recorded gradient."""
    _check_strategy("hessian", vectorize, outer_jacobian_strategy, "outer_jacobian_strategy")
    is_tuple, inputs = _as_tuple("hessian", "inputs", inputs)

    def gradient(*xs):
        with enable_grad():
            out = func(*xs) if is_tuple else func(xs[0])
        Tensor = _tensor_class()
        if not isinstance(out, Tensor) or out.data.size != 1:
            raise RuntimeError("hessian: the function must return a single-element Tensor, got "
                               + (f"shape {out.shape}" if isinstance(out, Tensor) else type(out).__name__))
        if not out.requires_grad:
            gs = (None,) * len(xs)
        else:
            gs = _grad([out], list(xs), None, True)
        filled = _fill("hessian", gs, xs, strict, "input")
        return filled if is_tuple else filled[0]

    return jacobian(gradient, inputs if is_tuple else inputs[0], create_graph=create_graph, strict=strict)


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), vᵀ·H): the gradient of the recorded gradient against v. func returns one element."""
    is_tuple, inputs = _as_tuple("vhp", "inputs", inputs)
    leaves = _leaves("vhp", inputs, create_graph)
    out, jac = _first_gradient("vhp", func, leaves, is_tuple, strict)
    vs = _vectors("vhp", v, leaves, "input")
    pairs = [(g, a) for g, a in zip(jac, vs) if g is not None and g.requires_grad]
    result = _grad([g for g, _ in pairs], leaves, [a for _, a in pairs], create_graph) if pairs else \
        (None,) * len(leaves)
    result = _out(_fill("vhp", result, leaves, strict, "input"), create_graph)
    return _out((out,), create_graph)[0], (result if is_tuple else result[0])


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), H·v), by the double-backward trick (as torch): the gradient of uᵀ·H, linear in u, with
    respect to u, taken against v. For a twice continuously differentiable func H is symmetric and this equals
    vhp; computed this way it is exact for any."""
    Tensor = _tensor_class()
    is_tuple, inputs = _as_tuple("hvp", "inputs", inputs)
    leaves = _leaves("hvp", inputs, create_graph)
    out, jac = _first_gradient("hvp", func, leaves, is_tuple, strict)
    vs = _vectors("hvp", v, leaves, "input")
    live = [(g, x) for g, x in zip(jac, leaves) if g is not None and g.requires_grad]
    us = tuple(Tensor(np.zeros(g.shape, g.dtype), requires_grad=True) for g, _ in live)
    if live:
        double = _grad([g for g, _ in live], leaves, list(us), True)
        pairs = [(d, a) for d, a in zip(double, vs) if d is not None and d.requires_grad]
        products = _grad([d for d, _ in pairs], list(us), [a for _, a in pairs], create_graph) if pairs else ()
    else:
        products = ()
    by_leaf = dict(zip((id(x) for _, x in live), products))
    result = tuple(by_leaf.get(id(x)) for x in leaves)
    result = _out(_fill("hvp", result, leaves, strict, "input"), create_graph)
    return _out((out,), create_graph)[0], (result if is_tuple else result[0])


def _first_gradient(who: str, func, leaves: tuple, is_tuple: bool, strict: bool):
    """(func's single-element output, its gradient recorded with create_graph) for vhp and hvp."""
    _, outputs = _call(who, func, leaves, is_tuple)
    if len(outputs) != 1 or outputs[0].data.size != 1:
        raise RuntimeError(f"{who}: the function must return a single-element Tensor, got "
                           f"{len(outputs)} outputs of shapes {[o.shape for o in outputs]}")
    out = outputs[0]
    if not out.requires_grad:
        if strict:
            raise RuntimeError(f"{who}: the output of the function is independent of the inputs, which is not "
                               "allowed in strict mode")
        return out, (None,) * len(leaves)
    return out, _grad([out], list(leaves), None, True)
