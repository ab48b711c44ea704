"""Grading a workbook: each exercise on examples drawn by hypothesis, against autograd and finite differences.

This runs inside the checker's child process (runner.py), which imports the learner's code. Every example is
float64; shapes and a seed are drawn by hypothesis (derandomised), values by numpy from that seed, kept away
from kinks (|x| ≥ 0.1 into a ReLU, x ≥ 0.2 into a log). The reference is the library's autograd on the same
op or formula; central finite differences are computed beside it and shown in the messages.
"""
from __future__ import annotations

import importlib.util
import sys
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinygrad_edu import manual, ops
from tinygrad_edu.autograd import Function, broadcast_axes, no_grad
from tinygrad_edu.exercises.mistakes import MISTAKES, close, describe, matching, same_values
from tinygrad_edu.tensor import Tensor

EXAMPLES = 12   # per exercise: a correct answer is exact on all of them, a mistake shows on the first few


class NotDone(Exception):
    """The learner's code still raises the template's NotImplementedError."""


class Problem(Exception):
    """The learner's code cannot be graded (an exception, a wrong return type, NaN); the message says why."""


@dataclass
class Gradient:
    """One gradient an exercise asks for: its label, autograd's value, finite differences, and what the
    mistake transforms need (m, the unmasked product, the array a bias sums, ...)."""
    label: str
    expected: np.ndarray
    numeric: np.ndarray
    ing: dict = field(default_factory=dict)


@dataclass
class Case:
    """One example: the shapes (for messages), the gradients asked for, and how to get the learner's answers."""
    shapes: str
    gradients: list[Gradient]
    answer: Callable[[object], list]   # the learner's module -> one array per gradient


@dataclass(frozen=True)
class Exercise:
    name: str
    file: str                           # "ops.py" or "tutorial.py"
    cases: Callable[[int], Case]        # seed + hypothesis-drawn sizes, through the strategy below
    sizes: tuple = ()                   # names of the sizes drawn, each 2..4


# --- references: the library's autograd, and central differences -----------------------------------------


def reference(f, arrays, wants, upstream, eps=1e-6):
    """[(autograd's ∂/∂x, central differences)] for each x in arrays with wants[i], of L = Σ upstream ⊙ f(...).

    f maps Tensors to a Tensor, with the library's ops.
    """
    leaves = [Tensor(a.copy(), requires_grad=w) for a, w in zip(arrays, wants)]
    f(*leaves).backward(np.asarray(upstream, dtype=np.float64))
    results = []
    for x, w in zip(leaves, wants):
        if not w:
            continue
        numeric = np.zeros_like(x.data)
        flat = x.data.reshape(-1)
        for j in range(flat.size):
            orig, total = flat[j], []
            for step in (eps, -eps):
                flat[j] = orig + step
                with no_grad():
                    total.append(float(np.sum(upstream * f(*leaves).data)))
            flat[j] = orig
            numeric.reshape(-1)[j] = (total[0] - total[1]) / (2 * eps)
        results.append((x.grad, numeric))
    return results


def _shapes(**arrays) -> str:
    return ", ".join(f"{k} {v.shape}" if isinstance(v, np.ndarray) else f"{k} = {v}" for k, v in arrays.items())


def _axes_text(axes) -> str:
    return str(axes[0]) if len(axes) == 1 else str(tuple(axes))


def _sums(summand, name, axes, scale, target, target_shape) -> dict:
    """The ingredients of a gradient that sums `summand` over `axes` (a bias's, a broadcast input's)."""
    return dict(summand=summand, summand_name=name, sum_axes=tuple(axes), sum_axes_text=_axes_text(axes),
                scale=scale, target=target, target_shape=target_shape)


# --- the ops: the learner's backward on the forward given in the workbook ---------------------------------


def _op_answer(name, arrays, kwargs, wants, upstream, library):
    """A function of the learner's module: runs its op's forward and backward, returns the wanted gradients."""
    def answer(module):
        cls = _learner_attr(module, name, "ops.py")
        if not (isinstance(cls, type) and issubclass(cls, Function)):
            raise Problem(f"ops.py: {name} must be a class built on Function (class {name}(Function))")
        fn = cls((), tuple(wants))
        out = _call(f"{name}.forward", fn.forward, *[a.copy() for a in arrays], **kwargs)
        if not close(_as_array(f"{name}.forward's output", out), library):
            raise Problem(f"{name}.forward was changed: its output differs from the given forward's; "
                          "the exercise is the backward only (start a fresh workbook to see the original)")
        grads = _call(f"{name}.backward", fn.backward, upstream.copy())
        if not isinstance(grads, tuple):
            example = ", ".join(f"∂L/∂{x}" for x in "abcd"[:len(arrays)]) + "," * (len(arrays) == 1)
            raise Problem(f"{name}.backward returned {_kind(grads)}; return a tuple with one gradient per input, "
                          f"e.g. ({example})")
        if len(grads) != len(arrays):
            raise Problem(f"{name}.backward returned {len(grads)} gradient(s) for {len(arrays)} input(s)")
        return [grads[i] for i, w in enumerate(wants) if w]
    return answer


def _op_case(name, library_cls, arrays, *, wants=None, kwargs=None, library_kwargs=None, upstream, ing=None,
             labels="ab"):
    """A Case for op `name`: autograd through library_cls is the reference."""
    wants = wants or [True] * len(arrays)
    kwargs = kwargs or {}
    library_kwargs = library_kwargs if library_kwargs is not None else kwargs
    f = lambda *ts: library_cls.apply(*ts, **library_kwargs)   # noqa: E731
    refs = reference(f, arrays, wants, upstream)
    with no_grad():
        library_out = f(*[Tensor(a) for a in arrays]).data
    ing = ing or [{} for _ in refs]
    wanted = [i for i, w in enumerate(wants) if w]
    grads = [Gradient(f"∂L/∂{labels[i]}", e, n, d) for i, (e, n), d in zip(wanted, refs, ing)]
    return Case(_shapes(**dict(zip(labels, arrays)), g=upstream), grads,
                _op_answer(name, arrays, kwargs, wants, upstream, library_out))


def _signed(rng, shape, low=0.1, high=2.0):
    """Values with |x| in [low, high] and random signs: nothing at a ReLU's kink."""
    return rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)


def _broadcast_shape(rng, r, c):
    return [(r, c), (r, 1), (1, c), (c,)][rng.integers(4)]


def add_case(seed, r, c):
    rng = np.random.default_rng(seed)
    sa = _broadcast_shape(rng, r, c)
    sb = (r, c) if sa != (r, c) else _broadcast_shape(rng, r, c)
    a, b = rng.normal(size=sa), rng.normal(size=sb)
    g = rng.normal(size=(r, c))
    ing = [_sums(g, "g", broadcast_axes((r, c), s), 1.0, x, s) for s, x in ((sa, "a"), (sb, "b"))]
    return _op_case("Add", ops.Add, [a, b], upstream=g, ing=ing)


def mul_case(seed, r, c):
    rng = np.random.default_rng(seed)
    a, b, g = rng.normal(size=(r, c)), rng.normal(size=(r, c)), rng.normal(size=(r, c))
    return _op_case("Mul", ops.Mul, [a, b], upstream=g)


def matmul_case(seed, n, k, p):
    rng = np.random.default_rng(seed)
    a, b, g = rng.normal(size=(n, k)), rng.normal(size=(k, p)), rng.normal(size=(n, p))
    return _op_case("MatMul", ops.MatMul, [a, b], upstream=g)


def relu_case(seed, r, c):
    rng = np.random.default_rng(seed)
    a, g = _signed(rng, (r, c)), _signed(rng, (r, c))
    ing = [dict(unmasked=g, unmasked_name="g", mask_of="a")]
    return _op_case("ReLU", ops.ReLU, [a], upstream=g, ing=ing)


def exp_case(seed, r, c):
    rng = np.random.default_rng(seed)
    return _op_case("Exp", ops.Exp, [rng.uniform(-2, 2, (r, c))], upstream=rng.normal(size=(r, c)))


def log_case(seed, r, c):
    rng = np.random.default_rng(seed)
    return _op_case("Log", ops.Log, [rng.uniform(0.2, 3, (r, c))], upstream=rng.normal(size=(r, c)))


def _reduce_case(name, library_cls, seed, r, c, mean):
    rng = np.random.default_rng(seed)
    axis = int(rng.integers(2))
    a = rng.normal(size=(r, c))
    g = rng.normal(size=(r, c)[1 - axis])
    ing = [dict(m=(r, c)[axis], m_name="n") if mean else {}]
    case = _op_case(name, library_cls, [a], kwargs=dict(axis=axis), upstream=g, ing=ing)
    case.shapes += f", axis = {axis}"
    return case


def sum_case(seed, r, c):
    return _reduce_case("Sum", ops.Sum, seed, r, c, mean=False)


def mean_case(seed, r, c):
    return _reduce_case("Mean", ops.Mean, seed, r, c, mean=True)


def _one_hot(rng, k, m):
    return manual.one_hot(rng.integers(0, k, m), k, np.float64)


def sce_case(seed, k, m):
    rng = np.random.default_rng(seed)
    z, y = rng.normal(size=(k, m)), _one_hot(rng, k, m)
    g = np.asarray(rng.uniform(0.5, 2.0))
    ing = [dict(m=m, m_name="m", one_hot_term=g * y / m)]
    return _op_case("SoftmaxCrossEntropy", ops.SoftmaxCrossEntropy, [z, y], wants=[True, False],
                    library_kwargs=dict(axis=0), upstream=g, ing=ing, labels="zy")


# --- the tutorial's gradients: one formula each, graded on the right inputs --------------------------------


def _tutorial_case(name, args, f, x, upstream, ing):
    """A Case for tutorial function `name`(**args): autograd of f at x (upstream upstream) is the reference."""
    (expected, numeric), = reference(f, [x], [True], upstream)

    def answer(module):
        fn = _learner_attr(module, name, "tutorial.py")
        if not callable(fn):
            raise Problem(f"tutorial.py: {name} must be a function, def {name}({', '.join(args)})")
        copies = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}
        return [_call(name, fn, *copies.values())]
    return Case(_shapes(**args), [Gradient(name, expected, numeric, ing)], answer)


def dZ2_case(seed, k, m):
    rng = np.random.default_rng(seed)
    Z2, Y = rng.normal(size=(k, m)), _one_hot(rng, k, m)
    f = lambda Z: Z.softmax_cross_entropy(Y, axis=0) * m   # noqa: E731   the summed loss: the tutorial's dZ2
    ing = dict(m=m, m_name="m", one_hot_term=Y)
    return _tutorial_case("dZ2", dict(A2=manual.softmax(Z2), one_hot_Y=Y), f, Z2, np.asarray(1.0), ing)


def _dW_case(name, dZ_name, A_name, seed, rows, cols, m):
    rng = np.random.default_rng(seed)
    dZ, A = rng.normal(size=(rows, m)), rng.normal(size=(cols, m))
    ing = dict(m=m, m_name="m")
    return _tutorial_case(name, {dZ_name: dZ, A_name: A, "m": m}, lambda W: W @ A, rng.normal(size=(rows, cols)),
                          dZ / m, ing)


def _db_case(name, dZ_name, seed, rows, m):
    rng = np.random.default_rng(seed)
    dZ = rng.normal(size=(rows, m))
    ing = dict(m=m, m_name="m", **_sums(dZ, dZ_name, (1,), 1 / m, name[1:], (rows, 1)))
    P = Tensor(rng.normal(size=(rows, m)))
    return _tutorial_case(name, {dZ_name: dZ, "m": m}, lambda b: P + b, rng.normal(size=(rows, 1)), dZ / m, ing)


def dW2_case(seed, k, h, m):
    return _dW_case("dW2", "dZ2", "A1", seed, k, h, m)


def db2_case(seed, k, m):
    return _db_case("db2", "dZ2", seed, k, m)


def dZ1_case(seed, k, h, m):
    rng = np.random.default_rng(seed)
    W2, dZ2, Z1 = rng.normal(size=(k, h)), rng.normal(size=(k, m)), _signed(rng, (h, m))
    ing = dict(m=m, m_name="m", unmasked=W2.T @ dZ2, unmasked_name="W2ᵀ·dZ2", mask_of="Z1")
    W2_t = Tensor(W2)
    return _tutorial_case("dZ1", dict(W2=W2, dZ2=dZ2, Z1=Z1), lambda Z: W2_t @ Z.relu(), Z1, dZ2, ing)


def dW1_case(seed, h, n, m):
    return _dW_case("dW1", "dZ1", "X", seed, h, n, m)


def db1_case(seed, h, m):
    return _db_case("db1", "dZ1", seed, h, m)


EXERCISES = [
    Exercise("Add", "ops.py", add_case, ("r", "c")),
    Exercise("Mul", "ops.py", mul_case, ("r", "c")),
    Exercise("MatMul", "ops.py", matmul_case, ("n", "k", "p")),
    Exercise("ReLU", "ops.py", relu_case, ("r", "c")),
    Exercise("Exp", "ops.py", exp_case, ("r", "c")),
    Exercise("Log", "ops.py", log_case, ("r", "c")),
    Exercise("Sum", "ops.py", sum_case, ("r", "c")),
    Exercise("Mean", "ops.py", mean_case, ("r", "c")),
    Exercise("SoftmaxCrossEntropy", "ops.py", sce_case, ("k", "m")),
    Exercise("dZ2", "tutorial.py", dZ2_case, ("k", "m")),
    Exercise("dW2", "tutorial.py", dW2_case, ("k", "h", "m")),
    Exercise("db2", "tutorial.py", db2_case, ("k", "m")),
    Exercise("dZ1", "tutorial.py", dZ1_case, ("k", "h", "m")),
    Exercise("dW1", "tutorial.py", dW1_case, ("h", "n", "m")),
    Exercise("db1", "tutorial.py", db1_case, ("h", "m")),
]
BY_NAME = {e.name: e for e in EXERCISES}


def draw_cases(exercise: Exercise, n: int = EXAMPLES) -> list[Case]:
    """n examples of the exercise: sizes 2..4 and a seed drawn by hypothesis, derandomised (the same every run)."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import strategies as st

    drawn = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet)
    @given(st.integers(0, 2**32 - 1), st.tuples(*[st.integers(2, 4) for _ in exercise.sizes]))
    def collect(seed, sizes):
        drawn.append((seed, sizes))

    collect()
    return [exercise.cases(seed, *sizes) for seed, sizes in drawn]


# --- calling the learner's code --------------------------------------------------------------------------

WORKBOOK: Path | None = None   # the folder being graded, to point at the learner's own lines in tracebacks


def _where(exc: BaseException) -> str:
    """' (ops.py line 20)': the learner's last line in exc's traceback, or '' if none is theirs."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if WORKBOOK is not None and Path(f.filename).parent == WORKBOOK]
    return f" ({Path(frames[-1].filename).name} line {frames[-1].lineno})" if frames else ""


def _call(what, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise NotDone(f"not yet done: {what} raises NotImplementedError") from None
    except RecursionError as e:
        raise Problem(f"{what} recursed without end{_where(e)}") from None
    except SystemExit as e:
        raise Problem(f"{what} called exit(){_where(e)}") from None
    except Exception as e:
        raise Problem(f"{what} raised {type(e).__name__}{_where(e)}: {_one_line(e)}".rstrip(": ")) from None


def _one_line(e: BaseException) -> str:
    """An exception's message on one line (numpy's and the learner's may span several)."""
    return " ".join(str(e).split())


def _learner_attr(module, name, file):
    if isinstance(module, str):   # the file could not be imported; the message says why
        raise Problem(module)
    if not hasattr(module, name):
        what = "class" if file == "ops.py" else "function"
        raise Problem(f"{file} has no {what} {name} (the exercise names are fixed)")
    return getattr(module, name)


def _kind(x) -> str:
    if x is None:
        return "None"
    kind = "numpy array" if isinstance(x, np.ndarray) else type(x).__name__
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def _as_array(label, x) -> np.ndarray:
    """The learner's gradient as a float array, or a Problem saying what it is instead."""
    if isinstance(x, Tensor):
        raise Problem(f"{label} is a Tensor; return a numpy array (its .data)")
    if not isinstance(x, (np.ndarray, np.generic, float, int)) or isinstance(x, bool):
        raise Problem(f"{label} is {_kind(x)}, not a numpy array" + (" (a missing return?)" if x is None else ""))
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise Problem(f"{label} is an array of dtype {arr.dtype}, not of numbers")
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0]) if arr.ndim else ()
        value = "NaN" if np.isnan(arr[where]) else "inf"
        raise Problem(f"{label} contains {value}" + (f" at {list(where)}" if where else ""))
    return arr.astype(np.float64)


def load(path: Path):
    """The learner's file as a module under a unique name (no __pycache__), or a string saying why not."""
    if not path.is_file():
        return f"{path.name} is missing from the workbook"
    sys.dont_write_bytecode = True
    spec = importlib.util.spec_from_file_location(f"_tinygrad_edu_workbook_{uuid.uuid4().hex}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        return f"{path.name} line {e.lineno}: syntax error: {e.msg}"
    except SystemExit as e:
        return f"{path.name} called exit() while importing{_where(e)}"
    except Exception as e:
        return f"{path.name} raised {type(e).__name__} while importing{_where(e)}: {_one_line(e)}".rstrip(": ")
    return module


# --- grading ---------------------------------------------------------------------------------------------


def record(name, passed, diagnosis, message) -> dict:
    """One exercise's result, as --json prints it."""
    return {"name": name, "passed": passed, "diagnosis": diagnosis, "message": message}


def grade(exercise: Exercise, module, cases: list[Case] | None = None) -> dict:
    """The exercise's record: passed, or the diagnosis shared by every failing example, or the first wrong element."""
    cases = draw_cases(exercise) if cases is None else cases
    failures = []   # (case, gradient, the learner's array)
    try:
        for case in cases:
            answers = case.answer(module)
            for grad, ans in zip(case.gradients, answers):
                label = grad.label if grad.label.startswith("∂") else f"{exercise.name}'s result"
                arr = _as_array(label, ans)
                if not close(arr, grad.expected):
                    failures.append((case, grad, arr))
    except NotDone as e:
        return record(exercise.name, False, "not-done", str(e))
    except Problem as e:
        return record(exercise.name, False, None, str(e))
    if not failures:
        return record(exercise.name, True, None, f"matches autograd and finite differences on {len(cases)} examples")
    same = [f for f in failures if f[1].label == failures[0][1].label]
    # NOTE: a wrong shape is shown where it shows (when two sizes drawn are equal, it may not)
    case, grad, arr = next((f for f in same if f[2].shape != f[1].expected.shape), same[0])
    keys = None
    for _, g, a in same:
        found = matching(a, g.expected, g.ing)
        keys = found if keys is None else [k for k in keys if k in found]
    prefix = f"{grad.label}: " if grad.label.startswith("∂") else ""
    if keys:
        # NOTE: matched with size-1 axes aside, e.g. a (k,) that should be (k, 1): the shape is wrong too
        wrong = next(m for m in MISTAKES if m.key == keys[0]).wrong(grad.expected, grad.ing)
        shape_note = "" if arr.shape == np.shape(wrong) else f" (and its shape is {arr.shape}, not {np.shape(wrong)})"
        return record(exercise.name, False, keys[0], prefix + describe(keys[0], grad.ing) + shape_note)
    return record(exercise.name, False, None, prefix + _first_wrong(grad, arr, case.shapes))


def _first_wrong(grad: Gradient, arr: np.ndarray, shapes: str) -> str:
    exp = grad.expected
    if arr.shape != exp.shape:
        if same_values(arr, exp):
            return f"the right numbers, but shape {arr.shape} instead of {exp.shape} (keepdims=True?); given {shapes}"
        return f"shape {arr.shape}, but the gradient has shape {exp.shape}; given {shapes}"
    scale = max(1.0, float(np.max(np.abs(exp), initial=0.0)))
    bad = ~np.isclose(arr, exp, rtol=1e-6, atol=1e-9 * scale)
    where = tuple(int(i) for i in np.argwhere(bad)[0]) if arr.ndim else ()
    at = f"[{', '.join(map(str, where))}]" if where else ""
    return (f"element {at or '(the number)'} should be {exp[where]:.6g} (autograd; finite differences give "
            f"{grad.numeric[where]:.6g}), got {arr[where]:.6g}; given {shapes}")
