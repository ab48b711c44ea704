"""Grad mode: whether ops record a graph, one flag per thread as in PyTorch (no_grad, enable_grad, set_grad_enabled)."""
from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable


class _GradMode(threading.local):
    enabled = True   # NOTE: a class attribute, so every new thread starts with recording on, as in PyTorch


this_thread = _GradMode()   # this_thread.enabled: whether ops record a graph in the calling thread


def is_grad_enabled() -> bool:
    """True unless this thread is inside `no_grad()` (or after `set_grad_enabled(False)`)."""
    return this_thread.enabled


class set_grad_enabled:
    """Turns graph recording on or off for the current thread (other threads keep their own mode).

    As in PyTorch, calling it switches at once, so `set_grad_enabled(False)` alone is a statement; used as
    `with set_grad_enabled(mode):` the mode from before the call comes back at the end of the block; used as
    a decorator it switches nothing until the function runs, and then only for each call (each resume of a
    generator).
    """

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self.prev = this_thread.enabled
        this_thread.enabled = self.mode

    def __enter__(self) -> None:
        this_thread.enabled = self.mode

    def __exit__(self, *exc) -> None:
        this_thread.enabled = self.prev

    def __call__(self, func: Callable) -> Callable:
        this_thread.enabled = self.prev   # NOTE: undo the constructor's switch: decorating is not running
        return _decorated(func, self._fresh)

    def _fresh(self) -> set_grad_enabled:
        # NOTE: a new context for each call of a decorated function, so recursion and threads restore the
        # right mode (one shared instance would remember only the last caller's mode)
        return set_grad_enabled(self.mode)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mode={self.mode})"


class _ModeOnEntry(set_grad_enabled):
    """set_grad_enabled(mode) that switches when its block is entered rather than when it is made, and that
    decorates with or without parentheses (`@no_grad()` and `@no_grad`), as PyTorch's no_grad and enable_grad."""

    mode = True

    def __new__(cls, func: Callable | None = None):
        self = super().__new__(cls)
        return self if func is None else self(func)

    def __init__(self, func: Callable | None = None):
        self.prev = this_thread.enabled

    def __enter__(self) -> None:
        self.prev = this_thread.enabled   # the mode on entry comes back on exit
        this_thread.enabled = self.mode

    def __call__(self, func: Callable) -> Callable:
        return _decorated(func, self._fresh)

    def _fresh(self) -> _ModeOnEntry:
        return type(self)()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class no_grad(_ModeOnEntry):
    """Context manager and decorator: ops inside record no graph, so nothing can be differentiated.

    Per thread: another thread's ops keep recording. On a generator function it covers the generator's
    body: each resume runs with recording off, and the caller's mode holds between the yields.

    >>> with no_grad():
    ...     W -= lr * W.grad   # an update step is not part of the model
    """

    mode = False


class enable_grad(_ModeOnEntry):
    """Turns recording back on inside a `no_grad()` block (for this thread)."""

    mode = True


def _decorated(func: Callable, context: Callable[[], set_grad_enabled]) -> Callable:
    """func run inside a fresh context() at each call; for a generator function, at each resume of its body."""
    if inspect.isgeneratorfunction(func):
        @functools.wraps(func)
        def generator(*args, **kwargs):
            return (yield from _resumed_inside(context, func(*args, **kwargs)))
        return generator

    @functools.wraps(func)
    def call(*args, **kwargs):
        with context():
            return func(*args, **kwargs)
    return call


def _resumed_inside(context: Callable[[], set_grad_enabled], gen):
    """Relays gen to the caller (values, send, throw, close), running each resume of gen inside a fresh
    context(), so the caller's own mode is back whenever gen is suspended at a yield."""
    resume, arg = gen.send, None
    while True:
        try:
            with context():
                value = resume(arg)
        except StopIteration as stop:
            return stop.value
        try:
            arg = yield value
            resume = gen.send
        except GeneratorExit:
            with context():
                gen.close()
            raise
        except BaseException as e:   # thrown in by the caller: gen gets to handle it
            resume, arg = gen.throw, e
