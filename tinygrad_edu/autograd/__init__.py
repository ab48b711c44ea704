"""Reverse-mode autodiff: the graph node (Function) and the one backward walk, with broadcasting's reduction.

Reading order: Function (what an op records), topological_order (the order the walk visits the graph in),
reduce_to (where every gradient is fitted to its tensor), backward (the walk). Grad mode (no_grad, ...) lives in
tinygrad_edu.grad_mode and is re-exported here; the walk's helpers (accumulating into leaves, the version check's
memory owners) come after the walk. Who watches the walk (the profiler, viz.trace, the lab) is told through
`autograd.watchers`, the one instrumentation point.
"""
from __future__ import annotations

import math
import threading

import numpy as np

from tinygrad_edu.autograd import watchers
from tinygrad_edu.autograd.watchers import add_backward_hook
from tinygrad_edu.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__all__ = ["Function", "ShapeError", "add_backward_hook", "backward", "broadcast_axes", "enable_grad",
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
    """The tensors that lead to root, root first, each before the inputs of the op that made it.

    Without leaves: the tensors made by ops that require grad, each after all its consumers, the order the
    backward walk visits them in. With leaves: the leaves and constants too (what viz draws), each op's inputs
    visited in their order, those made by ops first. Either order depends only on the graph.
    Iterative depth-first search, so a chain of 100,000 ops needs no recursion.
    """
    order, visited = [], set()
    stack = [(root, False)]
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
    """The one place gradients are fitted to their tensor: broadcast axes summed, dtype cast back."""
    data = t.data
    if grad.shape != data.shape:
        grad = unbroadcast(grad, data.shape)
    return grad if grad.dtype == data.dtype else grad.astype(data.dtype)


def backward(root, grad=None, retain_graph: bool = False) -> None:
    """Reverse mode: ∂L/∂t for every t that root depends on, accumulated into the leaves' .grad."""
    if not root._requires_grad:
        raise RuntimeError("backward: this tensor does not require grad and has no graph to go back through "
                           "(was it made under no_grad(), or from tensors with requires_grad=False?)")
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(f"backward: grad can be implied only for a scalar output, but this tensor has shape "
                               f"{root.data.shape}; reduce it first (.sum(), .mean()) or pass grad= of that shape")
        grad = np.ones(root.data.shape, root.data.dtype)
    else:
        grad = np.asarray(getattr(grad, "data", grad), dtype=root.data.dtype)
        if grad.shape != root.data.shape:
            raise ShapeError(f"backward: grad has shape {grad.shape} but the tensor has shape {root.data.shape}")
    if root._ctx is None:  # a leaf: ∂L/∂L = 1
        accumulate(root, grad)
        return

    watching = watchers.this_thread.watchers   # the profiler, viz.trace, the lab: usually none
    for w in watching:
        w.walk_begins(root, retain_graph)
    grads = {id(root): grad}
    for t in topological_order(root):
        g = grads.pop(id(t))
        if t._retains_grad:
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
        raw_grads = fn.backward(g)
        parent_grads = [reduce_to(pg, p) if need and pg is not None else None
                        for p, pg, need in zip(fn.parents, raw_grads, fn.needs_grad)]
        for w in watching:
            w.rule_ends(t, fn, g, raw_grads, parent_grads)
        for p, pg in zip(fn.parents, parent_grads):
            if pg is None:
                continue
            if p._ctx is None:
                accumulate(p, pg)
            elif id(p) in grads:
                grads[id(p)] = grads[id(p)] + pg
            else:
                grads[id(p)] = pg
        if not retain_graph:
            fn.saved, fn.released, fn.versions = (), True, ()
    for w in watching:
        w.walk_ends(root)


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
            # NOTE: owned, so later += is safe; and in the parameter's own memory layout, so an optimizer's
            # elementwise passes over (p.data, p.grad) both stream contiguously.
            grad = np.empty_like(t.data)
            np.copyto(grad, g)
            t._grad = grad
        else:
            t._grad += g


def retain(t, g: np.ndarray) -> None:
    """A non-leaf that called retain_grad keeps ∂L/∂t, as its own writable copy (g may be shared or a view)."""
    with _grad_lock(t):
        t._grad = np.array(g) if t._grad is None else t._grad + g


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
