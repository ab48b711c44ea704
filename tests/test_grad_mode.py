"""Grad mode is per thread and its decorator forms behave as PyTorch's (issue 12, class 1)."""
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_edu as tg
from tinygrad_edu import Tensor, enable_grad, is_grad_enabled, no_grad, set_grad_enabled

TIMEOUT = 30   # seconds any thread waits for another before the test fails (instead of hanging)


def records() -> bool:
    """Does an op on a tensor that requires grad record a graph in this thread right now?"""
    return (Tensor(np.ones(2), requires_grad=True) * 2).requires_grad


def run_threads(*targets):
    """Runs each target in its own thread; re-raises the first exception any of them raised."""
    errors = []

    def guarded(target):
        try:
            target()
        except BaseException as e:   # noqa: BLE001 - handed to the test's thread
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
        assert not t.is_alive(), "a thread did not finish"
    if errors:
        raise errors[0]


def test_no_grad_in_one_thread_leaves_another_thread_recording():
    inside, checked = threading.Event(), threading.Event()
    seen = {}

    def evaluating():
        with no_grad():
            inside.set()
            assert checked.wait(TIMEOUT)
            seen["evaluating"] = records()

    def training():
        assert inside.wait(TIMEOUT)
        seen["training"] = records()   # the other thread sits inside no_grad() right now
        checked.set()

    run_threads(evaluating, training)
    assert seen == {"training": True, "evaluating": False}


def test_overlapping_no_grad_blocks_in_two_threads_leave_recording_on():
    """A enters, B enters, A exits, B exits: with one process-wide flag, B restored the False it found."""
    step = threading.Barrier(2, timeout=TIMEOUT)

    def a():
        with no_grad():
            step.wait()   # 1: A is inside
            step.wait()   # 2: B is inside
        step.wait()       # 3: A has left
        step.wait()       # 4: B has left
        assert records()

    def b():
        step.wait()
        with no_grad():
            step.wait()
            step.wait()
        step.wait()
        assert records()

    run_threads(a, b)
    assert is_grad_enabled() and records()


def test_a_new_thread_starts_recording_even_when_its_creator_is_in_no_grad():
    seen = []
    with no_grad():
        run_threads(lambda: seen.append(records()))
        assert not records()
    assert seen == [True]


def test_set_grad_enabled_in_one_thread_does_not_switch_another():
    switched, checked = threading.Event(), threading.Event()
    seen = []

    def switcher():
        set_grad_enabled(False)   # a plain call, left switched off in this thread
        switched.set()
        assert checked.wait(TIMEOUT)

    def other():
        assert switched.wait(TIMEOUT)
        seen.append(records())
        checked.set()

    run_threads(switcher, other)
    assert seen == [True] and records()


def test_a_decorated_function_running_in_two_threads_at_once_restores_each_threads_mode():
    meet = threading.Barrier(2, timeout=TIMEOUT)

    @no_grad()
    def evaluate():
        meet.wait()
        return records()

    @enable_grad()
    def train():
        meet.wait()
        return records()

    seen = {}

    def first():
        seen["evaluate"] = evaluate()
        seen["after evaluate"] = records()

    def second():
        with no_grad():
            seen["train"] = train()
            seen["after train"] = records()

    run_threads(first, second)
    assert seen == {"evaluate": False, "after evaluate": True, "train": True, "after train": False}


# --- hypothesis: any interleaving of nested blocks in three threads ----------------------------------------------

ACTIONS = st.lists(st.sampled_from(["no_grad", "enable_grad", "set_grad_enabled(False)", "set_grad_enabled(True)",
                                    "exit", "check"]), max_size=8)


def balanced(actions):
    """Drops exits with nothing to exit and closes what is still open at the end."""
    program, depth = [], 0
    for a in actions:
        if a == "exit" and depth == 0:
            continue
        depth += 1 if a != "exit" and a != "check" else (-1 if a == "exit" else 0)
        program.append(a)
    return program + ["exit"] * depth + ["check"]


@st.composite
def programs_and_schedule(draw):
    programs = [balanced(draw(ACTIONS)) for _ in range(3)]
    turns = [i for i, p in enumerate(programs) for _ in p]
    return programs, draw(st.permutations(turns))


@given(programs_and_schedule())
def test_any_interleaving_of_grad_mode_blocks_keeps_each_threads_own_mode(case):
    """Three threads run nested grad-mode blocks, one step at a time in the drawn order; after each step the
    thread's mode is what its own blocks say (a stack that starts at True), whatever the others did."""
    programs, schedule = case
    go = [threading.Semaphore(0) for _ in programs]
    done = threading.Semaphore(0)
    errors = []

    def worker(i):
        stack, model = [], [True]
        try:
            for action in programs[i]:
                assert go[i].acquire(timeout=TIMEOUT)
                if action == "exit":
                    stack.pop().__exit__(None, None, None)
                    model.pop()
                elif action != "check":
                    cm = {"no_grad": no_grad, "enable_grad": enable_grad,
                          "set_grad_enabled(False)": lambda: set_grad_enabled(False),
                          "set_grad_enabled(True)": lambda: set_grad_enabled(True)}[action]()
                    cm.__enter__()
                    stack.append(cm)
                    model.append(action in ("enable_grad", "set_grad_enabled(True)"))
                if is_grad_enabled() != model[-1] or records() != model[-1]:
                    errors.append(f"thread {i} after {action}: mode {is_grad_enabled()}, expected {model[-1]}")
                done.release()
        except BaseException as e:   # noqa: BLE001
            errors.append(repr(e))
            done.release()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(programs))]
    for t in threads:
        t.start()
    for i in schedule:
        go[i].release()
        assert done.acquire(timeout=TIMEOUT)
        if errors:
            break
    for g in go:   # let any worker stopped by an error run out
        for _ in range(len(schedule)):
            g.release()
    for t in threads:
        t.join(TIMEOUT)
    assert not errors, errors
    assert is_grad_enabled()


# --- the decorator and call forms, as PyTorch's -----------------------------------------------------------------


def test_set_grad_enabled_called_as_a_plain_function_switches_the_mode():
    try:
        set_grad_enabled(False)
        assert not is_grad_enabled() and not records()
        set_grad_enabled(True)
        assert records()
    finally:
        set_grad_enabled(True)


def test_set_grad_enabled_as_a_block_restores_the_mode_from_before_the_call():
    with set_grad_enabled(False):
        assert not records()
        with set_grad_enabled(True):
            assert records()
        assert not records()
    assert records()


def test_set_grad_enabled_as_a_decorator_switches_only_while_the_function_runs():
    @set_grad_enabled(False)
    def f():
        return records()
    assert is_grad_enabled()   # making the decorator switched nothing
    assert f() is False and is_grad_enabled()


def test_no_grad_and_enable_grad_decorate_without_parentheses():
    @no_grad
    def f():
        return records()

    @enable_grad
    def g():
        return records()

    assert f() is False and is_grad_enabled()
    with no_grad():
        assert g() is True and not is_grad_enabled()
    assert f.__name__ == "f"


def test_making_no_grad_switches_nothing_until_it_is_entered():
    cm = no_grad()
    assert records()
    with cm:
        assert not records()
    assert records()


def test_decorated_methods_and_recursion_restore_the_mode():
    class Model:
        @no_grad()
        def depth(self, n):
            inner = records()
            return [inner] if n == 0 else [inner, *self.depth(n - 1)]

        @enable_grad()
        def train_inside(self):
            return records()

    m = Model()
    assert m.depth(3) == [False] * 4 and records()
    with no_grad():
        assert m.train_inside() is True and not records()


def test_an_exception_inside_restores_the_mode():
    @no_grad()
    def fails():
        raise KeyError("x")
    with pytest.raises(KeyError):
        fails()
    with pytest.raises(ValueError):
        with no_grad():
            raise ValueError
    assert records()


# --- generators ----------------------------------------------------------------------------------------------


def generator_trace(no_grad, is_grad_enabled, enable_grad):
    """What a generator decorated with no_grad() sees at each resume and what its caller sees in between,
    through next, send, throw, close and a return value. Written against the given module's names, so the
    same scenario runs on tinygrad_edu and on PyTorch."""
    trace = []

    @no_grad()
    def batches(n):
        for i in range(n):
            try:
                got = yield i
                trace.append(("body", i, got, is_grad_enabled()))
            except KeyError:
                trace.append(("caught", i, is_grad_enabled()))
                yield "handled"
        return "done"

    gen = batches(3)
    trace.append(("caller before", is_grad_enabled()))
    trace.append(("next", next(gen), is_grad_enabled()))
    with no_grad():
        trace.append(("send in no_grad", gen.send("a"), is_grad_enabled()))
    with enable_grad():
        trace.append(("throw", gen.throw(KeyError("k")), is_grad_enabled()))
    trace.append(("send", gen.send("b"), is_grad_enabled()))
    try:
        gen.send("c")
    except StopIteration as stop:
        trace.append(("stop", stop.value, is_grad_enabled()))

    @no_grad()
    def endless():
        try:
            while True:
                yield is_grad_enabled()
        finally:
            trace.append(("finally", is_grad_enabled()))

    gen = endless()
    trace.append(("endless", next(gen), is_grad_enabled()))
    gen.close()
    trace.append(("after close", is_grad_enabled()))
    return trace


def test_no_grad_on_a_generator_function_covers_the_body_and_restores_the_caller_between_yields():
    assert generator_trace(no_grad, is_grad_enabled, enable_grad) == [
        ("caller before", True),
        ("next", 0, True),
        ("body", 0, "a", False), ("send in no_grad", 1, False),
        ("caught", 1, False), ("throw", "handled", True),
        ("send", 2, True),
        ("body", 2, "c", False), ("stop", "done", True),
        ("endless", False, True), ("finally", False), ("after close", True),
    ]


def test_generators_behave_as_pytorchs():
    torch = pytest.importorskip("torch")
    ours = generator_trace(no_grad, is_grad_enabled, enable_grad)
    theirs = generator_trace(torch.no_grad, torch.is_grad_enabled, torch.enable_grad)
    assert ours == theirs


def test_the_mode_calls_match_pytorch_step_by_step():
    torch = pytest.importorskip("torch")

    def scenario(m):
        seen = []
        cm = m.set_grad_enabled(False)
        seen.append(m.is_grad_enabled())
        with cm:
            seen.append(m.is_grad_enabled())
        seen.append(m.is_grad_enabled())
        stored = m.no_grad()
        seen.append(m.is_grad_enabled())
        with m.enable_grad():
            with stored:
                seen.append(m.is_grad_enabled())
            seen.append(m.is_grad_enabled())
        m.set_grad_enabled(True)
        seen.append(m.is_grad_enabled())
        return seen

    assert scenario(tg) == scenario(torch)


def test_backward_hooks_belong_to_the_thread_that_added_them():
    """A trace (viz.trace is built on add_backward_hook) sees only its own thread's backward passes."""
    from tinygrad_edu import autograd

    seen, added, other_done = [], threading.Event(), threading.Event()

    def traced():
        remove = autograd.add_backward_hook(lambda t, fn, *rest: seen.append(fn.name))
        added.set()
        other_done.wait(5)
        x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
        (x * 3.0).sum().backward()
        remove()

    def other():
        added.wait(5)
        y = Tensor(np.array([1.0]), requires_grad=True)
        (y.exp() + 1.0).log().sum().backward()
        other_done.set()

    threads = [threading.Thread(target=traced), threading.Thread(target=other)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert seen == ["sum", "mul"]
