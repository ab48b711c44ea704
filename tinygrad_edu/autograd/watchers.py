"""Who watches ops run and the walk go back (the profiler, viz.trace, the lab): one instrumentation point.

A Watcher is told of each op that `tensor.apply_op` runs, of each backward walk and each rule the walk calls,
and of named regions of work (each optimizer step, and what `profiler.record_function` marks). The list is per
thread, like grad mode: a profile or a trace opened in one thread never sees another thread's work. With nothing
watching, each place pays one attribute read of an empty tuple.
"""
from __future__ import annotations

import threading
from collections.abc import Callable


class Watcher:
    """Override what you need; every method does nothing by default.

    The calls come in nested pairs: `op_begins`/`op_ends` around one op's forward (its whole `apply_op`);
    `walk_begins`/`walk_ends` around one `backward()`, and inside it `rule_begins`/`rule_ends` around each node's
    rule (fn.backward, and its gradients fitted to the inputs' shapes); `region_begins`/`region_ends` around a
    named region (an optimizer's step is "SGD.step"). An op that raises gets `op_ends(..., out=None)`.
    """

    def op_begins(self, fn_cls) -> None: ...

    def op_ends(self, fn_cls, inputs: tuple, out, fn) -> None:
        """inputs: the input Tensors; out: the result Tensor (None if the op raised); fn: the recorded Function,
        or None when nothing needs a gradient (no graph is recorded)."""

    def walk_begins(self, root, retain_graph: bool) -> None: ...

    def walk_ends(self, root) -> None: ...

    def rule_begins(self, node, fn) -> None: ...

    def rule_ends(self, node, fn, grad_out, raw_grads, parent_grads) -> None:
        """raw_grads: what fn.backward returned (in the output's broadcast shape); parent_grads: the same reduced
        to each parent's shape and dtype (None where a parent needs no gradient)."""

    def region_begins(self, key: str) -> None: ...

    def region_ends(self, key: str) -> None: ...


class _Watching(threading.local):
    def __init__(self):
        self.watchers: tuple[Watcher, ...] = ()   # NOTE: a tuple, replaced on change: the walk reads it once


this_thread = _Watching()


def watch(watcher: Watcher) -> Callable[[], None]:
    """Starts telling watcher of this thread's ops, walks and steps; returns the function that stops it."""
    this_thread.watchers = (*this_thread.watchers, watcher)

    def stop() -> None:
        this_thread.watchers = tuple(w for w in this_thread.watchers if w is not watcher)

    return stop


class _RuleHook(Watcher):
    """A plain function hook(node, fn, ∂L/∂node, raw_grads, parent_grads), called after each rule."""

    def __init__(self, hook: Callable):
        self.rule_ends = hook


def add_backward_hook(hook: Callable) -> Callable[[], None]:
    """Calls hook(node, fn, ∂L/∂node, raw_grads, parent_grads) for each node this thread's backward visits, in order.

    raw_grads are what fn.backward returned (in the output's broadcast shape), parent_grads the same reduced
    to each parent's shape and dtype (None where a parent needs no gradient). viz.trace is built on this.
    Returns a function that removes the hook.
    """
    return watch(_RuleHook(hook))


def watched_op(watchers: tuple, run: Callable, fn_cls, parents: tuple, dtype, kwargs: dict):
    """run(fn_cls, parents, dtype, kwargs) (tensor's apply_op) between op_begins and op_ends."""
    for w in watchers:
        w.op_begins(fn_cls)
    out = None
    try:
        out = run(fn_cls, parents, dtype, kwargs)
        return out
    finally:
        fn = None if out is None else out._ctx
        for w in reversed(watchers):
            w.op_ends(fn_cls, parents, out, fn)
