"""Reverse-mode autodiff: the graph node (Function) and the one backward walk, with broadcasting's reduction.

Reading order: Function (what an op records), topological_order (the order the walk visits the graph in),
reduce_to (where every gradient is fitted to its tensor), backward (the walk). Grad mode (no_grad, ...) lives in
tinygrad_edu.grad_mode and is re-exported here; the walk's helpers (accumulating into leaves, the version check's
memory owners) come after the walk. Who watches the walk (the profiler, viz.trace, the lab) is told through
`autograd.watchers`, the one instrumentation point.
"""
from __future__ import annotations

import copy
import math
import threading

import numpy as np

from tinygrad_edu import grad_mode
from tinygrad_edu.autograd import watchers
from tinygrad_edu.autograd.watchers import add_backward_hook
from tinygrad_edu.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__all__ = ["Function", "ShapeError", "add_backward_hook", "backward", "grad", "broadcast_axes", "enable_grad",
           "is_grad_enabled", "memory_owner", "no_grad", "reduce_to", "set_grad_enabled", "topological_order",
           "unbroadcast"]


class ShapeError(ValueError):
    """An op was given operands whose shapes do not fit; the message names the op and the shapes."""


class Function:
    """One recorded op: `forward` maps numpy arrays to an array, `backward` maps ∂L/∂out to ∂L/∂inputs.

    Subclasses set `name` and `rules` (one ∂L/∂ rule per input, written with `{out}` and the inputs'
    placeholders `{a}`, `{b}`: the same text documents the backward and is what `tinygrad_edu.viz.trace`
    prints with the graph's own names). `backward` returns one array (or None) per input, in the output's
    broadcast shape; the backward walk sums it back to each input's shape and dtype in one place
    (`reduce_to`).
    """

    __slots__ = ("parents", "needs_grad", "saved", "released", "attrs", "versions")
    name = "function"
    rules: tuple[str, ...] = ()
    # The profiler's FLOP count: (forward, backward) floating-point operations per element the op touches (the
    # largest of its inputs and its output), the backward's for each input that needs a gradient (a number, or
    # one per input). Ops whose cost is not per element (matmul, conv2d) override flops and backward_flops.
    flops_per_element: tuple = (0, 0)

    @classmethod
    def flops(cls, shapes: tuple, out_shape: tuple) -> int:
        """The forward's floating-point operations for inputs of these shapes (a multiply-add counts 2)."""
        return cls.flops_per_element[0] * max(math.prod(s) for s in (*shapes, out_shape))

    @classmethod
    def backward_flops(cls, shapes: tuple, out_shape: tuple, needs_grad: tuple) -> int:
        """The rule's floating-point operations, only for the inputs that need a gradient (the sums that fit a
        broadcast gradient to its input are the walk's: the profiler counts them from the gradients' shapes)."""
        per = cls.flops_per_element[1]
        per = per if isinstance(per, tuple) else (per,) * len(shapes)
        touched = max(math.prod(s) for s in (*shapes, out_shape))
        return sum(k * touched for k, need in zip(per, needs_grad) if need)

    def __init__(self, parents: tuple, needs_grad: tuple[bool, ...]):
        self.parents = parents          # input Tensors, kept after backward so the graph stays viewable
        self.needs_grad = needs_grad    # which inputs want ∂L/∂input: never compute the others (e.g. X)
        self.saved: tuple = ()          # arrays backward needs; dropped after backward unless retain_graph
        self.released = False
        self.attrs: dict = {}           # the op's settings (axis, shapes, ...) for backward and viewing: small
                                        # values only; arrays go in save(), so they are released after backward
        self.versions: list | tuple = ()  # (version counter, its version when saved) of the inputs and the
                                          # output, if anything is saved: backward compares them

    def save(self, *arrays) -> None:
        self.saved = arrays

    def graph_saved(self, out) -> tuple:
        """The saved values as Tensors, for a rule recorded under create_graph: an input's array is that input,
        the output's is the output (out), so the rule's results are functions of them. Integer and bool arrays
        (labels, masks, indices) stay constants: nothing is differentiated through them. A float array that is
        neither (an intermediate) cannot be traced back, and is refused: its second derivative would be wrong."""
        return tuple(self._as_tensor(x, out) for x in self.saved)

    def _as_tensor(self, x, out):
        if isinstance(x, tuple):
            return tuple(self._as_tensor(v, out) for v in x)
        if isinstance(x, np.generic) and x.dtype.kind in "fc":   # a 0-d result numpy gave as a scalar
            if out.data.shape == () and np.array_equal(x, out.data, equal_nan=True):
                return out
        elif not isinstance(x, np.ndarray) or x.dtype.kind not in "fc":
            return x
        for p in self.parents:
            if x is p.data:
                return p
        if x is out.data:
            return out
        for p in self.parents:   # an input the op received cast to its dtype (a float32 tensor in a float64 op)
            if p.data.shape == x.shape and p.data.dtype != x.dtype and np.array_equal(p.data.astype(x.dtype), x,
                                                                                   equal_nan=True):
                return p.to(x.dtype) if p._requires_grad else x
        shape = "×".join(map(str, np.shape(x))) or "0-d"
        raise RuntimeError(f"backward of {self.name} cannot be recorded (create_graph=True): it saved a {x.dtype} "
                           f"{shape} array that is neither one of its inputs nor its output (a value computed "
                           "inside forward), so its second derivative cannot be traced. Save only the inputs and "
                           "the output (recompute the rest in backward), or give the op a composite()")

    def saved_arrays(self) -> list:
        """The numpy arrays among the saved items, looking inside tuples (e.g. an index tuple of label arrays)."""
        return _flat_arrays(self.saved)

    def note_versions(self, out) -> None:
        """Remembers the versions of the inputs and the output as the op saves its arrays, so that backward can
        refuse to use saved values that were changed in place since (`stale_saved`)."""
        versions = []
        for t in (*self.parents, out):   # NOTE: a plain loop: map() and comprehensions cost more per op here
            counter = t._counter
            versions.append((counter, counter[0]))
        self.versions = versions

    def stale_saved(self, out) -> RuntimeError | None:
        """PyTorch's error if a tensor whose memory this op saved was changed in place since, else None.

        Called by backward only when some version moved, so the search through the saved arrays costs
        nothing in the usual case. A tensor counts only if a saved array uses its memory: changing an input
        that the op did not save (e.g. either input of an add) harms nothing."""
        saved = {id(memory_owner(a)) for a in self.saved_arrays()}
        roles = [f"input {i}" for i in range(len(self.parents))] + ["output"]
        for t, role, (c, then) in zip((*self.parents, out), roles, self.versions):
            if c[0] != then and id(memory_owner(t.data)) in saved:
                shape = "×".join(map(str, t.data.shape)) or "0-d"
                label = f"{t.data.dtype} {shape} tensor" + (f" {t.name!r}" if t.name else "")
                return RuntimeError(
                    f"backward: one of the tensors needed for gradient computation has been modified by an "
                    f"inplace operation: the {label} saved by {self.name} (its {role}) is at version {c[0]}; "
                    f"expected version {then}. It was changed in place after the forward pass (an optimizer step, "
                    "x -= ..., load_state_dict): run the forward pass again to differentiate the new values")
        return None

    def forward(self, *arrays, **kwargs) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> tuple:  # pragma: no cover - abstract
        raise NotImplementedError

    # A fused op may define `composite(self, *inputs) -> Tensor`: its forward written as simpler Tensor ops (the
    # same function). Under create_graph its gradient is taken through that composition (autograd._recorded_rule),
    # so a backward written for speed on arrays (in-place writes, intermediates) need not run on Tensors.
    composite = None

    @classmethod
    def apply(cls, *inputs, **kwargs):
        """Runs this op on Tensors and records it, as PyTorch's `Function.apply`: `Add.apply(x, y)`.

        How a user's own op (a Function subclass, e.g. a workbook's) is used; non-Tensor inputs become constants
        with their own dtype, keyword arguments go to forward.
        """
        from tinygrad_edu.tensor import Tensor, apply_op  # NOTE: tensor imports this module, so not at the top

        return apply_op(cls, *(x if isinstance(x, Tensor) else Tensor(x) for x in inputs), **kwargs)

    def __repr__(self) -> str:
        return f"<{self.name}>"


# --- the backward walk -----------------------------------------------------------------------------------


def topological_order(root, leaves: bool = False) -> list:
    """The tensors that lead to root (a tensor, or a list of them), root first, each before the inputs of the op
    that made it.

    Without leaves: the tensors made by ops that require grad, each after all its consumers, the order the
    backward walk visits them in. With leaves: the leaves and constants too (what viz draws), each op's inputs
    visited in their order, those made by ops first. Either order depends only on the graph.
    Iterative depth-first search, so a chain of 100,000 ops needs no recursion.
    """
    order, visited = [], set()
    stack = [(r, False) for r in reversed(root)] if isinstance(root, list) else [(root, False)]
    while stack:
        t, inputs_done = stack.pop()
        if inputs_done:
            order.append(t)
            continue
        if id(t) in visited:
            continue
        visited.add(id(t))
        stack.append((t, True))
        if t._ctx is None:
            continue
        if leaves:   # NOTE: reversed, so that the first input is the first taken off the stack (viz numbers them)
            parents = t._ctx.parents
            inputs = [p for p in parents if p._ctx is not None] + [p for p in parents if p._ctx is None]
            stack += [(p, False) for p in reversed(inputs) if id(p) not in visited]
        else:        # NOTE: any order is right for the walk; this plain loop is the cheapest
            for p in t._ctx.parents:
                if p._ctx is not None and p._requires_grad and id(p) not in visited:
                    stack.append((p, False))
    order.reverse()
    return order


def broadcast_axes(big: tuple, shape: tuple) -> tuple[int, ...]:
    """The axes of `big` that broadcasting added to `shape` (leading ones) or stretched from size 1."""
    lead = len(big) - len(shape)
    return tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and big[lead + i] != 1)


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """∂L/∂x for an x that broadcasting stretched to grad.shape: sum over the axes it added or stretched."""
    if grad.shape == shape:
        return grad
    return grad.sum(axis=broadcast_axes(grad.shape, shape), keepdims=True).reshape(shape)


def reduce_to(grad: np.ndarray, t) -> np.ndarray:
    """The one place gradients are fitted to their tensor: broadcast axes summed, dtype cast back (an array, or
    under create_graph a Tensor: np.sum and .reshape record on it)."""
    data = t.data
    if grad.shape != data.shape:
        grad = unbroadcast(grad, data.shape)
    if grad.dtype == data.dtype:
        return grad
    return grad.astype(data.dtype) if isinstance(grad, np.ndarray) else grad.to(data.dtype)


def backward(root, grad=None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
    """Reverse mode: ∂L/∂t for every t that root depends on, accumulated into the leaves' .grad.

    create_graph=True records the walk itself (each rule runs on Tensors, numpy_functions.py), so the leaves'
    .grad are Tensors with a graph, to be differentiated again; retain_graph defaults to create_graph."""
    retain_graph = create_graph if retain_graph is None else retain_graph
    _walk((root,), (_root_grad(root, grad, create_graph, "backward"),), retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None, create_graph: bool = False,
         allow_unused: bool = False) -> tuple:
    """∂(Σ outputs·grad_outputs)/∂input for each input, as a tuple of Tensors, as torch.autograd.grad.

    Nothing is accumulated into any .grad. With create_graph=True the results carry a graph (requires_grad where
    they depend on inputs that require grad) and can be differentiated again, to any order; a grad_output that
    requires grad is differentiated through too. allow_unused=False refuses an input the outputs do not depend on,
    naming it; with True its gradient is None. retain_graph defaults to create_graph.
    """
    single = not isinstance(outputs, (list, tuple))
    outputs = (outputs,) if single else tuple(outputs)
    one_input = not isinstance(inputs, (list, tuple))
    inputs = (inputs,) if one_input else tuple(inputs)
    if grad_outputs is None or not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = (grad_outputs,) * len(outputs) if grad_outputs is None else (grad_outputs,)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(grad_outputs)} grad_outputs for {len(outputs)} outputs; give one per output")
    for k, x in enumerate(inputs):
        if not getattr(x, "_requires_grad", False):
            raise RuntimeError(f"grad: input {k}{_label(x)} does not require grad, so it has no gradient")
    retain_graph = create_graph if retain_graph is None else retain_graph
    root_grads = tuple(_root_grad(out, g, create_graph, "grad") for out, g in zip(outputs, grad_outputs))
    captured = _walk(outputs, root_grads, retain_graph, create_graph, capture=inputs)
    from tinygrad_edu.tensor import Tensor  # NOTE: tensor imports this module, so not at the top

    results = []
    for k, x in enumerate(inputs):
        g = captured.get(id(x))
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: input {k}{_label(x)} was not used to compute the outputs, so it has no "
                               "gradient; pass allow_unused=True to get None for it")
        results.append(g if g is None or isinstance(g, Tensor) else Tensor._wrap(g, False))
    return tuple(results)


def _label(t) -> str:
    name = getattr(t, "name", None)
    shape = "×".join(map(str, getattr(t, "shape", ()))) or "0-d"
    return f" ({name!r}, {shape})" if name else f" ({shape})"


def _root_grad(root, grad, create_graph: bool, who: str):
    """∂L/∂root: ones for a scalar root, else the given gradient checked against root's shape; a Tensor (with its
    own graph, if it has one) under create_graph, an array otherwise."""
    if not getattr(root, "_requires_grad", False):
        raise RuntimeError(f"{who}: this tensor does not require grad and has no graph to go back through "
                           "(was it made under no_grad(), or from tensors with requires_grad=False?)")
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(f"{who}: grad can be implied only for a scalar output, but this tensor has shape "
                               f"{root.data.shape}; reduce it first (.sum(), .mean()) or pass grad= of that shape")
        grad = np.ones(root.data.shape, root.data.dtype)
    else:
        if not (create_graph and hasattr(grad, "_ctx")):
            grad = np.asarray(getattr(grad, "data", grad), dtype=root.data.dtype)
        if grad.shape != root.data.shape:
            raise ShapeError(f"{who}: grad has shape {grad.shape} but the tensor has shape {root.data.shape}")
    if create_graph and isinstance(grad, np.ndarray):
        from tinygrad_edu.tensor import Tensor

        grad = Tensor._wrap(grad, False)
    return grad


def _walk(roots: tuple, root_grads: tuple, retain_graph: bool, create_graph: bool, capture=None,
          stop_at_capture: bool = False) -> dict:
    """The one backward walk. Without capture, gradients reach the leaves' .grad (backward); with capture (a
    sequence of tensors) they are returned as {id(tensor): ∂L/∂tensor} and no .grad changes (grad, and a
    composite's rule). stop_at_capture: the captured tensors are the walk's inputs, and it goes no further."""
    capture_ids = {id(t) for t in capture} if capture is not None else None
    captured: dict = {}
    if len(roots) == 1 and roots[0]._ctx is not None:   # NOTE: backward's one root, the common case, directly
        grads = {id(roots[0]): root_grads[0]}
        order = topological_order(roots[0])
    else:
        grads = {}
        for root, g in zip(roots, root_grads):
            if root._ctx is None:   # a leaf: ∂L/∂L = 1
                if capture_ids is None:
                    accumulate(root, g)
                elif id(root) in capture_ids:
                    captured[id(root)] = captured[id(root)] + g if id(root) in captured else g
            else:
                grads[id(root)] = grads[id(root)] + g if id(root) in grads else g
        if not grads:
            return captured
        order = topological_order(list(roots))
    needed = None if capture_ids is None else _leads_to(order, capture_ids)
    watching = watchers.this_thread.watchers   # the profiler, viz.trace, the lab: usually none
    for w in watching:
        w.walk_begins(roots[0], retain_graph)
    mode = grad_mode.this_thread   # NOTE: a recorded walk records whatever the caller's grad mode (torch's),
    before, mode.enabled = mode.enabled, create_graph   # a first-order one records nothing (set by hand: cheaper
    try:                                                # than the context manager, on every backward)
        for t in order:
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if capture_ids is not None:
                if id(t) in capture_ids:
                    captured[id(t)] = g
                    if stop_at_capture:
                        continue
                if id(t) not in needed:
                    continue
            elif t._retains_grad:
                retain(t, g)
            fn = t._ctx
            if fn.released:
                raise RuntimeError(f"backward: the graph through {fn.name} was already used by an earlier backward "
                                   "and its saved arrays were released; call backward(retain_graph=True) the first "
                                   "time to go back through it twice")
            for counter, then in fn.versions:   # NOTE: inline, as it runs for every node: cheap while nothing moved
                if counter[0] != then:
                    stale = fn.stale_saved(t)
                    if stale is not None:
                        raise stale
                    break
            for w in watching:
                w.rule_begins(t, fn)
            raw_grads = _recorded_rule(fn, t, g) if create_graph else fn.backward(g)
            parent_grads = [reduce_to(pg, p) if need and pg is not None else None
                            for p, pg, need in zip(fn.parents, raw_grads, fn.needs_grad)]
            for w in watching:
                w.rule_ends(t, fn, g, raw_grads, parent_grads)
            for p, pg in zip(fn.parents, parent_grads):
                if pg is None:
                    continue
                if p._ctx is None:
                    if capture_ids is None:
                        accumulate(p, pg)
                    elif id(p) in capture_ids:
                        captured[id(p)] = captured[id(p)] + pg if id(p) in captured else pg
                elif id(p) in grads:
                    grads[id(p)] = grads[id(p)] + pg
                else:
                    grads[id(p)] = pg
            if not retain_graph:
                fn.saved, fn.released, fn.versions = (), True, ()
    finally:
        mode.enabled = before
    for w in watching:
        w.walk_ends(roots[0])
    return captured


def _leads_to(order: list, targets: set) -> set:
    """The ids of the tensors in order (made by ops) from which some target can be reached going back."""
    leads = set()
    for t in reversed(order):   # NOTE: each tensor after the inputs of the op that made it
        for p in t._ctx.parents:
            if id(p) in targets or id(p) in leads:
                leads.add(id(t))
                break
    return leads


def _recorded_rule(fn: Function, out, g) -> tuple:
    """fn's rule run on Tensors, so the gradients it returns carry a graph (create_graph).

    An op with a composite (a fused op: its forward written as simpler Tensor ops) is differentiated through
    that composition, recomputed from its inputs. Any other op's own backward runs on a copy of the node whose
    saved arrays are the Tensors they came from (graph_saved), while numpy hands its functions to the Tensors.
    A rule that still returns a numpy array would give a gradient without a graph: refused, naming the op.
    """
    composite = getattr(fn, "composite", None)
    if composite is not None:
        wanted = [p for p, need in zip(fn.parents, fn.needs_grad) if need]
        out2 = composite(*fn.parents)
        captured = _walk((out2,), (g,), True, True, capture=wanted, stop_at_capture=True)
        seen, raw = set(), []
        for p, need in zip(fn.parents, fn.needs_grad):   # NOTE: an input given twice gets its total once
            raw.append(captured.get(id(p)) if need and id(p) not in seen else None)
            seen.add(id(p))
        return tuple(raw)
    from tinygrad_edu import numpy_functions  # NOTE: it imports tensor, which imports this module

    view = copy.copy(fn)
    view.saved = fn.graph_saved(out)
    before, numpy_functions.recording.rule = numpy_functions.recording.rule, fn.name
    try:
        raw = view.backward(g)
    finally:
        numpy_functions.recording.rule = before
    for k, (r, need) in enumerate(zip(raw, fn.needs_grad)):
        if need and isinstance(r, np.ndarray):
            raise RuntimeError(f"backward of {fn.name} returned a numpy array for input {k}, not a Tensor, so under "
                               "create_graph=True its gradient would have no graph and a second derivative would "
                               "be silently wrong; compute it from the arguments with Tensor operations (operators, "
                               "Tensor methods, the numpy functions in tinygrad_edu/numpy_functions.py)")
    return tuple(raw)


# --- the walk's helpers --------------------------------------------------------------------------------------


# NOTE: accumulating is a read-modify-write that numpy runs without the GIL, so two threads' backward into one
# leaf would lose contributions; each tensor maps to one of these locks (PyTorch's AccumulateGrad locks too).
_GRAD_LOCKS = tuple(threading.Lock() for _ in range(64))


def _grad_lock(t) -> threading.Lock:
    return _GRAD_LOCKS[(id(t) >> 4) % len(_GRAD_LOCKS)]


def accumulate(t, g: np.ndarray) -> None:
    """PyTorch's convention: a leaf's .grad adds up over backward calls until the caller clears it; atomic per
    leaf, so threads running backward into shared leaves lose nothing."""
    with _grad_lock(t):
        if t._grad is None:
            if isinstance(g, np.ndarray):
                # NOTE: owned, so later += is safe; and in the parameter's own memory layout, so an optimizer's
                # elementwise passes over (p.data, p.grad) both stream contiguously.
                grad = np.empty_like(t.data)
                np.copyto(grad, g)
                t._grad = grad
            else:   # a recorded gradient (create_graph), kept with its graph
                t._grad = g
        elif isinstance(g, np.ndarray) and isinstance(t._grad, np.ndarray):
            t._grad += g
        else:   # a recorded gradient on either side: added out of place, so the earlier .grad keeps its graph
            t._grad = t._grad + g


def retain(t, g: np.ndarray) -> None:
    """A non-leaf that called retain_grad keeps ∂L/∂t, as its own writable copy (g may be shared or a view)."""
    with _grad_lock(t):
        if t._grad is None:
            t._grad = np.array(g) if isinstance(g, np.ndarray) else g   # NOTE: a recorded one keeps its graph
        else:
            t._grad = t._grad + g


def memory_owner(a: np.ndarray):
    """The array (or buffer) whose memory `a` uses: an array and all its views have the same owner.

    The chain of bases is followed through objects that are not arrays too: as_strided (and so
    sliding_window_view, conv2d's im2col) makes its view over a helper object whose `base` is the array."""
    base = a.base
    while base is not None:
        a, base = base, getattr(base, "base", None)
    return a


def _flat_arrays(items: tuple) -> list:
    """The numpy arrays among saved items, looking inside tuples (e.g. an index tuple of label arrays)."""
    arrays = []
    for x in items:
        if isinstance(x, np.ndarray):
            arrays.append(x)
        elif isinstance(x, tuple):
            arrays += _flat_arrays(x)
    return arrays
