"""The checker's child process: runs the learner's code on the inputs it is given and sends back plain arrays.

`python -m tinygrad_edu.exercises.child WORKBOOK REQUESTS NAME ...` reads the requests (the inputs of every
example, written by the parent into REQUESTS; never the expected gradients, which stay in the parent), imports
the learner's files and, exercise by exercise, writes one JSON line per step on a private copy of its stdout:
{"import": file} before importing a file (or {"import": file, "problem": ...} if it does not import),
{"begin": name} before an exercise, {"answer": name, "case": i, "outputs": [...], "forward": ..., "library":
[...]} per example, {"problem": ...} if the learner's code cannot give an answer, and {"done": name}. Arrays are
wire.encode's float64 bytes. Problems are a message key and its fields: the parent words them, in the learner's
language. Nothing here decides whether an answer is right.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import time
import traceback
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tinygrad_edu.exercises import wire


class Stop(Exception):
    """The learner's code gave no answer for this exercise; carries the problem as a message key and fields."""

    def __init__(self, key: str, **fields):
        super().__init__(key)
        self.problem = {"key": key, "fields": {k: str(v) for k, v in fields.items()}}


# --- calling the learner's code --------------------------------------------------------------------------


def _where(exc: BaseException, workbook: Path) -> str:
    """The learner's last line in exc's traceback, as "ops.py:20", or "" if none is theirs."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).parent == workbook]
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def call(what: str, fn, workbook: Path, *args, **kwargs):
    """fn(*args, **kwargs), or a Stop naming what went wrong in the learner's code."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise Stop("not-done", what=what) from None
    except RecursionError as e:
        raise Stop("recursed", what=what, where=_where(e, workbook)) from None
    except SystemExit as e:
        raise Stop("exited", what=what, where=_where(e, workbook)) from None
    except Exception as e:
        raise Stop("raised", what=what, error=type(e).__name__, where=_where(e, workbook),
                   message=_one_line(e)) from None


def as_array(x, index) -> np.ndarray:
    """The learner's value as a float64 array, or a Stop saying what it is instead (index: which value)."""
    from tinygrad_edu.tensor import Tensor

    if isinstance(x, Tensor):
        raise Stop("tensor", index=index)
    if x is None:
        raise Stop("none", index=index)
    if not isinstance(x, (np.ndarray, np.generic, float, int)) or isinstance(x, bool):
        raise Stop("not-array", index=index, kind=type(x).__name__)
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise Stop("dtype", index=index, dtype=arr.dtype)
    return arr.astype(np.float64)


def load(path: Path, workbook: Path):
    """The learner's file as a module under a unique name (no __pycache__), or a Stop saying why not."""
    if not path.is_file():
        raise Stop("file-missing", file=path.name)
    sys.dont_write_bytecode = True
    spec = importlib.util.spec_from_file_location(f"_tinygrad_edu_workbook_{uuid.uuid4().hex}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise Stop("syntax", file=path.name, line=e.lineno, message=e.msg) from None
    except SystemExit as e:
        raise Stop("import-exited", file=path.name, where=_where(e, workbook)) from None
    except Exception as e:
        raise Stop("import-raised", file=path.name, error=type(e).__name__, where=_where(e, workbook),
                   message=_one_line(e)) from None
    return module


def _attr(module, name: str, file: str, is_class: bool):
    if not hasattr(module, name):
        raise Stop("missing-class" if is_class else "missing-function", file=file, name=name)
    return getattr(module, name)


# --- the library's own rules, watched while the learner's code runs ------------------------------------

_USED: list | None = None   # while the learner's code runs: the library rules it called


def _watched(fn, label):
    def wrapper(*args, **kwargs):
        if _USED is not None:
            _USED.append(label)
        return fn(*args, **kwargs)
    wrapper.__wrapped__ = fn
    return wrapper


@contextmanager
def watching_library():
    """Wraps every backward rule of tinygrad_edu.ops, the autograd walk and the tutorial's hand-written
    backward_prop, so that a call made from the learner's code is seen; restored on leaving."""
    from tinygrad_edu import autograd, manual, ops, tensor, tutorial
    from tinygrad_edu.autograd import Function

    patched = []

    def patch(owner, name, label):
        patched.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, _watched(owner.__dict__[name], label))

    for name, cls in vars(ops).items():
        if isinstance(cls, type) and issubclass(cls, Function) and "backward" in cls.__dict__:
            patch(cls, "backward", f"{name}.backward")
    patch(autograd, "backward", "backward()")
    if "backward" in tensor.Tensor.__dict__:
        patch(tensor.Tensor, "backward", "backward()")
    patch(manual, "backward_prop", "backward_prop")
    patch(tutorial, "backward_prop", "backward_prop")
    try:
        yield
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)


@contextmanager
def _recording(used: list):
    global _USED
    _USED = used
    try:
        yield
    finally:
        _USED = None


# --- one example ---------------------------------------------------------------------------------------


def _value(v):
    """A request's value: a float64 array (wire.encode's), an integer array ({"int64": nested lists}), or as sent."""
    if isinstance(v, dict) and "int64" in v:
        return np.array(v["int64"], dtype=np.int64)
    return wire.decode(v) if isinstance(v, dict) else v


def answer(request: dict, module, file: str, workbook: Path) -> dict:
    """The learner's outputs for one example: {"outputs": [...], "forward": ..., "library": [...]}; or a Stop."""
    used: list = []
    result: dict = {}
    if "op" in request:
        name = request["op"]
        cls = _attr(module, name, file, True)
        from tinygrad_edu.autograd import Function

        if not (isinstance(cls, type) and issubclass(cls, Function)):
            raise Stop("not-function-class", file=file, name=name)
        inputs = [wire.decode(a) for a in request["inputs"]]
        wants = request["wants"]
        kwargs = {k: _value(v) for k, v in request["kwargs"].items()}
        with _recording(used):
            fn = call(f"{name}", cls, workbook, (), tuple(wants))
            out = call(f"{name}.forward", fn.forward, workbook, *inputs, **kwargs)
        result["forward"] = wire.encode(as_array(out, "forward"))
        with _recording(used):
            grads = call(f"{name}.backward", fn.backward, workbook, wire.decode(request["g"]))
        if not isinstance(grads, tuple):
            raise Stop("not-tuple", name=name, kind="None" if grads is None else type(grads).__name__,
                       inputs=len(inputs))
        if len(grads) != len(inputs):
            raise Stop("count", name=name, got=len(grads), inputs=len(inputs))
        wanted = [g for g, w in zip(grads, wants) if w]
    else:
        name = request["function"]
        fn = _attr(module, name, file, False)
        if not callable(fn):
            raise Stop("not-callable", name=name, args=", ".join(k for k, _ in request["args"]))
        with _recording(used):
            wanted = [call(name, fn, workbook, *[_value(v) for _, v in request["args"]])]
    result["outputs"] = [wire.encode(as_array(g, i)) for i, g in enumerate(wanted)]
    result["library"] = sorted(set(used))
    return result


def run(workbook: Path, requests: dict, names: list, emit) -> None:
    """Every named exercise's answers, example by example, told through emit(**message)."""
    modules: dict = {}
    problems: dict = {}
    with watching_library():
        for name in names:
            exercise = requests[name]
            file = exercise["file"]
            if file not in modules and file not in problems:
                emit(**{"import": file})
                try:
                    modules[file] = load(workbook / file, workbook)
                except Stop as e:
                    problems[file] = e.problem
                    emit(**{"import": file, "problem": e.problem})
            if file in problems:
                continue
            emit(begin=name)
            for i, request in enumerate(exercise["cases"]):
                try:
                    emit(answer=name, case=i, **answer(request, modules[file], file, workbook))
                except Stop as e:
                    emit(problem=e.problem, name=name, case=i)
                    break
            emit(done=name)


# --- the process ---------------------------------------------------------------------------------------


def _exit_with_parent() -> None:
    """Ends this child if the checker that started it is gone (killed, interrupted), even mid-loop."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def main(argv) -> int:
    sys.dont_write_bytecode = True
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    # NOTE: the reports go to a private copy of stdout; fd 1 then points at stderr, so the learner's prints
    # (Python or C level) cannot mix into them, and still show.
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    workbook, requests_path, names = Path(argv[0]), Path(argv[1]), argv[2:]
    # the parent writes the requests while this process starts, then one line on stdin to say they are there
    sys.stdin.readline()
    requests = json.loads(requests_path.read_text(encoding="utf-8"))
    run(workbook, requests, names, lambda **msg: wire.write_message(out, **msg))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
