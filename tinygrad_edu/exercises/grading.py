"""Grading a workbook: the exercises as data, their examples and references, and the verdict on the learner's answers.

This runs in the checker itself, which never imports the learner's code: the child process (child.py) gets each
example's inputs (`Case.request`) and sends back the learner's outputs as plain arrays; `grade` compares them
with the references kept here and names the mistake. Every example is float64; shapes and a seed are drawn by
hypothesis (derandomised), values by numpy from that seed, kept away from kinks (|x| ≥ 0.1 into a ReLU, x ≥ 0.2
into a log). The reference is the library's autograd on the same op or formula; central finite differences are
computed beside it (when a message shows them).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from tinygrad_edu import manual, messages, ops
from tinygrad_edu.autograd import broadcast_axes, no_grad
from tinygrad_edu.exercises import mistakes, wire
from tinygrad_edu.exercises.mistakes import MISTAKES, close, constant_factor, describe, matching, same_values
from tinygrad_edu.tensor import Tensor

EXAMPLES = 12   # per exercise: a correct answer is exact on all of them, a mistake shows on the first few


def say(key: str, lang: str, **fields) -> str:
    """The exercises' message `key` in lang (the catalogue's tinygrad_edu/messages/exercises.json)."""
    return messages.text(f"exercises.{key}", lang, **fields)


@dataclass
class Gradient:
    """One gradient an exercise asks for: its label, autograd's value, finite differences (computed when shown),
    what the mistake transforms need (m, the unmasked product, the array a bias sums, ...), and the shape hint."""
    label: str                      # "∂L/∂a", or the tutorial function's name
    expected: np.ndarray
    numeric_of: Callable[[], np.ndarray]
    ing: dict = field(default_factory=dict)
    hint: tuple = ()                # (message key, fields): the shape it must have, and how to get it

    @cached_property
    def numeric(self) -> np.ndarray:
        return self.numeric_of()


@dataclass
class Case:
    """One example: the shapes (for messages), the gradients asked for, what the child gets (the inputs
    only), and the library's forward output (which an op's forward must still give)."""
    shapes: str
    gradients: list[Gradient]
    request: dict
    forward: np.ndarray | None = None


@dataclass(frozen=True)
class Exercise:
    name: str
    file: str                           # "ops.py" or "tutorial.py" (part 1), "layers.py" (part 2)
    cases: Callable[..., Case]          # seed + hypothesis-drawn sizes, through the strategy below
    sizes: tuple = ()                   # names of the sizes drawn, each 2..4


# --- references: the library's autograd, and central differences -----------------------------------------


def reference(f, arrays, wants, upstream, eps=1e-6):
    """[(autograd's ∂/∂x, a function giving central differences)] for each x in arrays with wants[i], of
    L = Σ upstream ⊙ f(...). f maps Tensors to a Tensor, with the library's ops."""
    leaves = [Tensor(a.copy(), requires_grad=w) for a, w in zip(arrays, wants)]
    f(*leaves).backward(np.asarray(upstream, dtype=np.float64))
    results = []
    for i, (x, w) in enumerate(zip(leaves, wants)):
        if w:
            results.append((x.grad, lambda i=i: _differences(f, arrays, i, upstream, eps)))
    return results


def _differences(f, arrays, i, upstream, eps):
    xs = [Tensor(a.copy()) for a in arrays]
    flat = xs[i].data.reshape(-1)
    numeric = np.zeros(flat.size)
    for j in range(flat.size):
        orig, total = flat[j], []
        for step in (eps, -eps):
            flat[j] = orig + step
            with no_grad():
                total.append(float(np.sum(upstream * f(*xs).data)))
        flat[j] = orig
        numeric[j] = (total[0] - total[1]) / (2 * eps)
    return numeric.reshape(arrays[i].shape)


def shapes_text(**arrays) -> str:
    return ", ".join(f"{k} {v.shape}" if isinstance(v, np.ndarray) else f"{k} = {v}" for k, v in arrays.items())


def dims(symbols: str, shape) -> str:
    """'h×n = 3×4': a shape by its sizes' names and this example's values."""
    return f"{symbols} = {'×'.join(map(str, shape))}" if symbols else str(tuple(shape))


def _axes_text(axes) -> str:
    return str(axes[0]) if len(axes) == 1 else str(tuple(axes))


def sum_call(name: str, axes, summand_ndim: int, target_shape) -> str:
    """The numpy call that sums `name` over axes into target_shape: keepdims exactly when the axes stay."""
    keep = ", keepdims=True" if len(target_shape) == summand_ndim else ""
    return f"np.sum({name}, axis={_axes_text(axes)}{keep})"


def _sums(summand, name, axes, scale, target, target_shape) -> dict:
    """The ingredients of a gradient that sums `summand` over `axes` (a bias's, a broadcast input's)."""
    return dict(summand=summand, summand_name=name, sum_axes=tuple(axes), sum_axes_text=_axes_text(axes),
                scale=scale, target=target, target_shape=tuple(target_shape),
                sum_call=sum_call(name, axes, summand.ndim, target_shape))


# --- shape hints: the shape each gradient must have, and which product or sum gives it -------------------


def product_hint(grad, want, target, left, left_shape, right, right_shape, formula) -> tuple:
    return ("hint.product", dict(grad=grad, want=want, target=target, left=left, left_shape=left_shape,
                                 right=right, right_shape=right_shape, formula=formula))


def sum_hint(grad, target, ing) -> tuple:
    return ("hint.sum-back", dict(grad=grad, want=str(ing["target_shape"]), target=target,
                                  summand=ing["summand_name"], summand_shape=str(ing["summand"].shape),
                                  call=ing["sum_call"]))


def elementwise_hint(grad, target, shape, symbols="") -> tuple:
    return ("hint.elementwise", dict(grad=grad, want=dims(symbols, shape), target=target))


def like_hint(grad, target, shape, symbols="") -> tuple:
    """The shape a gradient must have, that of what it is the gradient of (part two's layers)."""
    return ("hint.like", dict(grad=grad, want=dims(symbols, shape), target=target))


# --- the ops: the learner's backward on the forward given in the workbook ---------------------------------


def op_case(name, library_cls, arrays, *, wants=None, kwargs=None, library_kwargs=None, upstream, ing=None,
             hints=None, labels="ab", f=None, shapes=None):
    """A Case for op `name`: autograd through library_cls (or through f, a formula of the library's Tensor ops on
    the inputs) is the reference. kwargs go to the learner's forward as they are, arrays among them as arrays."""
    wants = wants or [True] * len(arrays)
    kwargs = kwargs or {}
    library_kwargs = library_kwargs if library_kwargs is not None else kwargs
    if f is None:
        f = lambda *ts: library_cls.apply(*ts, **library_kwargs)   # noqa: E731
    refs = reference(f, arrays, wants, upstream)
    with no_grad():
        library_out = f(*[Tensor(a) for a in arrays]).data
    wanted = [i for i, w in enumerate(wants) if w]
    ing = ing or [{} for _ in refs]
    hints = hints or [elementwise_hint(f"∂L/∂{labels[i]}", labels[i], arrays[i].shape) for i in wanted]
    grads = [Gradient(f"∂L/∂{labels[i]}", e, n, d, h) for i, (e, n), d, h in zip(wanted, refs, ing, hints)]
    request = {"op": name, "inputs": [wire.encode(a) for a in arrays],
               "kwargs": {k: _request_value(v) for k, v in kwargs.items()}, "wants": wants,
               "g": wire.encode(upstream)}
    return Case(shapes or shapes_text(**dict(zip(labels, arrays)), g=upstream), grads, request, library_out)


def _request_value(v):
    """A keyword argument as the child gets it: a float array as wire's bytes, an integer array as lists."""
    if isinstance(v, np.ndarray):
        return {"int64": v.tolist()} if v.dtype.kind in "iu" else wire.encode(v)
    return v


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
    hints = [sum_hint(f"∂L/∂{x}", x, d) if d["sum_axes"] else elementwise_hint(f"∂L/∂{x}", x, s)
             for x, s, d in (("a", sa, ing[0]), ("b", sb, ing[1]))]
    return op_case("Add", ops.Add, [a, b], upstream=g, ing=ing, hints=hints)


def mul_case(seed, r, c):
    rng = np.random.default_rng(seed)
    a, b, g = rng.normal(size=(r, c)), rng.normal(size=(r, c)), rng.normal(size=(r, c))
    ing = [dict(g=g, swapped=g * a, swapped_text="g ⊙ a", right_text="g ⊙ b"),
           dict(g=g, swapped=g * b, swapped_text="g ⊙ b", right_text="g ⊙ a")]
    return op_case("Mul", ops.Mul, [a, b], upstream=g, ing=ing)


def matmul_case(seed, n, k, p):
    rng = np.random.default_rng(seed)
    a, b, g = rng.normal(size=(n, k)), rng.normal(size=(k, p)), rng.normal(size=(n, p))
    hints = [product_hint("∂L/∂a", dims("n×k", a.shape), "a", "g", dims("n×p", g.shape), "b", dims("k×p", b.shape),
                          "g·bᵀ"),
             product_hint("∂L/∂b", dims("k×p", b.shape), "b", "a", dims("n×k", a.shape), "g", dims("n×p", g.shape),
                          "aᵀ·g")]
    return op_case("MatMul", ops.MatMul, [a, b], upstream=g, hints=hints)


def relu_case(seed, r, c):
    rng = np.random.default_rng(seed)
    a, g = _signed(rng, (r, c)), _signed(rng, (r, c))
    ing = [dict(g=g, unmasked=g, unmasked_name="g", mask_of="a", mask_values=a)]
    return op_case("ReLU", ops.ReLU, [a], upstream=g, ing=ing)


def exp_case(seed, r, c):
    rng = np.random.default_rng(seed)
    a, g = rng.uniform(-2, 2, (r, c)), _signed(rng, (r, c))
    ing = [dict(g=g, exp_of_out=g * np.exp(np.exp(a)))]
    return op_case("Exp", ops.Exp, [a], upstream=g, ing=ing)


def log_case(seed, r, c):
    rng = np.random.default_rng(seed)
    a, g = rng.uniform(0.2, 3, (r, c)), _signed(rng, (r, c))
    ing = [dict(g=g, log_times_a=g * a, log_over_a_squared=g / a**2)]
    return op_case("Log", ops.Log, [a], upstream=g, ing=ing)


def _reduce_case(name, library_cls, seed, r, c, mean):
    rng = np.random.default_rng(seed)
    axis = int(rng.integers(2))
    a = rng.normal(size=(r, c))
    g = rng.normal(size=(r, c)[1 - axis])
    n = (r, c)[axis]
    ing = [dict(m=n, m_name="n") if mean else dict(sum_n=n)]
    hints = [("hint.spread", dict(grad="∂L/∂a", want=dims("", a.shape), target="a", g_shape=str(g.shape),
                                  axis=axis))]
    case = op_case(name, library_cls, [a], kwargs=dict(axis=axis), upstream=g, ing=ing, hints=hints)
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
    ing = [dict(m=m, m_name="m", one_hot_term=g * y / m, g=g)]
    hints = [elementwise_hint("∂L/∂z", "z", z.shape, "k×m")]
    return op_case("SoftmaxCrossEntropy", ops.SoftmaxCrossEntropy, [z, y], wants=[True, False],
                    library_kwargs=dict(axis=0), upstream=g, ing=ing, hints=hints, labels="zy")


# --- the tutorial's gradients: one formula each, graded on the right inputs --------------------------------


def _tutorial_case(name, args, f, x, upstream, ing, hint):
    """A Case for tutorial function `name`(**args): autograd of f at x (upstream upstream) is the reference."""
    (expected, numeric), = reference(f, [x], [True], upstream)
    request = {"function": name,
               "args": [[k, wire.encode(v) if isinstance(v, np.ndarray) else v] for k, v in args.items()]}
    return Case(shapes_text(**args), [Gradient(name, expected, numeric, ing, hint)], request)


def dZ2_case(seed, k, m):
    rng = np.random.default_rng(seed)
    Z2, Y = rng.normal(size=(k, m)), _one_hot(rng, k, m)
    f = lambda Z: Z.softmax_cross_entropy(Y, axis=0) * m   # noqa: E731   the summed loss: the tutorial's dZ2
    ing = dict(m=m, m_name="m", one_hot_term=Y)
    return _tutorial_case("dZ2", dict(A2=manual.softmax(Z2), one_hot_Y=Y), f, Z2, np.asarray(1.0), ing,
                          elementwise_hint("dZ2", "Z2", Z2.shape, "k×m"))


def _dW_case(name, dZ_name, A_name, sizes, seed, rows, cols, m):
    rng = np.random.default_rng(seed)
    dZ, A = rng.normal(size=(rows, m)), rng.normal(size=(cols, m))
    ing = dict(m=m, m_name="m")
    hint = product_hint(name, dims(f"{sizes[0]}×{sizes[1]}", (rows, cols)), name[1:], dZ_name,
                        dims(f"{sizes[0]}×m", dZ.shape), A_name, dims(f"{sizes[1]}×m", A.shape), f"{dZ_name}·{A_name}ᵀ")
    return _tutorial_case(name, {dZ_name: dZ, A_name: A, "m": m}, lambda W: W @ A, rng.normal(size=(rows, cols)),
                          dZ / m, ing, hint)


def _db_case(name, dZ_name, seed, rows, m):
    rng = np.random.default_rng(seed)
    dZ = rng.normal(size=(rows, m))
    ing = dict(m=m, m_name="m", **_sums(dZ, dZ_name, (1,), 1 / m, name[1:], (rows, 1)))
    P = Tensor(rng.normal(size=(rows, m)))
    return _tutorial_case(name, {dZ_name: dZ, "m": m}, lambda b: P + b, rng.normal(size=(rows, 1)), dZ / m, ing,
                          sum_hint(name, name[1:], ing))


def dW2_case(seed, k, h, m):
    return _dW_case("dW2", "dZ2", "A1", "kh", seed, k, h, m)


def db2_case(seed, k, m):
    return _db_case("db2", "dZ2", seed, k, m)


def dZ1_case(seed, k, h, m):
    rng = np.random.default_rng(seed)
    W2, dZ2, Z1 = rng.normal(size=(k, h)), rng.normal(size=(k, m)), _signed(rng, (h, m))
    ing = dict(m=m, m_name="m", unmasked=W2.T @ dZ2, unmasked_name="W2ᵀ·dZ2", mask_of="Z1", mask_values=Z1)
    hint = product_hint("dZ1", dims("h×m", Z1.shape), "Z1", "W2", dims("k×h", W2.shape), "dZ2", dims("k×m", dZ2.shape),
                        "W2ᵀ·dZ2")
    W2_t = Tensor(W2)
    return _tutorial_case("dZ1", dict(W2=W2, dZ2=dZ2, Z1=Z1), lambda Z: W2_t @ Z.relu(), Z1, dZ2, ing, hint)


def dW1_case(seed, h, n, m):
    return _dW_case("dW1", "dZ1", "X", "hn", seed, h, n, m)


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

# NOTE: imported here, below the helpers it builds on: part two's table (tinygrad_edu/exercises/part2.py)
from tinygrad_edu.exercises import part2  # noqa: E402

PARTS = {1: EXERCISES, 2: part2.EXERCISES}   # one table per part; the names are unique across parts
BY_NAME = {e.name: e for part in PARTS.values() for e in part}


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


def requests(cases: dict) -> dict:
    """What the child gets, {name: {"file", "cases": [request, ...]}}: the inputs of every example, nothing else."""
    return {name: {"file": BY_NAME[name].file, "cases": [c.request for c in cs]} for name, cs in cases.items()}


# --- the verdict -----------------------------------------------------------------------------------------


def record(name, passed, diagnosis, message) -> dict:
    """One exercise's result, as --json prints it."""
    return {"name": name, "passed": passed, "diagnosis": diagnosis, "message": message}


@dataclass
class Answers:
    """What the child sent for one exercise: the outputs per example, or the problem that stopped it."""
    outputs: dict = field(default_factory=dict)     # case index -> [array per gradient]
    forwards: dict = field(default_factory=dict)    # case index -> the op's forward output
    library: set = field(default_factory=set)       # the library rules the learner's code called
    problem: dict | None = None                     # {"key", "fields"}, as child.Stop made it
    problem_case: int | None = None
    done: bool = False

    def take(self, msg: dict) -> None:
        """Reads one {"answer": ...} message; a malformed one is left out (and the exercise cannot pass)."""
        try:
            i = msg["case"]
            outputs = [wire.decode(a) for a in msg["outputs"]]
            forward = wire.decode(msg["forward"]) if "forward" in msg else None
            library = {str(x) for x in msg.get("library", [])}
        except (KeyError, TypeError, wire.WireError):
            return
        if isinstance(i, int) and i not in self.outputs:
            self.outputs[i], self.library = outputs, self.library | library
            if forward is not None:
                self.forwards[i] = forward


# the problems the child may report (child.Stop's keys); each is a message problem.<key>
PROBLEMS = {"recursed", "exited", "raised", "not-function-class", "not-callable", "missing-class",
            "missing-function", "not-tuple", "count", "tensor", "none", "not-array", "dtype", "file-missing",
            "syntax", "import-exited", "import-raised"}
SHAPE_ERROR = re.compile(r"mismatch in its core dimension|could not be broadcast|not aligned|shapes? .* (do not|don't) "
                         r"match|cannot reshape|non-broadcastable|size \d+ is different from \d+")


def where_text(where: str, lang: str) -> str:
    """' (ops.py line 20)' from the child's 'ops.py:20', or ''."""
    file, _, line = where.rpartition(":")
    return f" ({say('where', lang, file=file, line=line)})" if file and line.isdigit() else ""


def problem_text(problem: dict, lang: str, label=None) -> str:
    """The child's problem in words; a problem in no known form reads as the checker's own failure to read it."""
    try:
        key, fields = problem["key"], dict(problem["fields"])
        if key not in PROBLEMS or not all(isinstance(v, str) for v in fields.values()):
            raise KeyError(key)
        if "where" in fields:
            fields["where"] = where_text(fields["where"], lang)
        if key == "not-tuple":
            n = int(fields.pop("inputs"))
            fields["example"] = "(" + ", ".join(f"∂L/∂{x}" for x in "abcd"[:n]) + "," * (n == 1) + ")"
        if "index" in fields:
            index = fields.pop("index")
            fields["label"] = label(index) if label else index
        text = say(f"problem.{key}", lang, **fields)
    except (KeyError, TypeError, AttributeError, ValueError):
        return say("unreadable", lang)
    return text.rstrip(": ")


def _label(grad: Gradient, lang: str) -> str:
    return grad.label if grad.label.startswith("∂") else say("result-of", lang, name=grad.label)


def hint_text(grad: Gradient, lang: str) -> str:
    key, fields = grad.hint
    return say(key, lang, **fields)


def grade(exercise: Exercise, cases: list[Case], answers: Answers, lang: str = "en") -> dict:
    """The exercise's record, from the learner's answers: passed, or the mistake named, or what is wrong."""
    name = exercise.name
    if answers.library:
        return record(name, False, "library-op", say("library-op", lang, name=name,
                                                     used=", ".join(sorted(answers.library))))
    if answers.problem is not None:
        return _problem_record(exercise, cases, answers, lang)
    failures = []   # (case, gradient, the learner's array)
    for i, case in enumerate(cases):
        outputs = answers.outputs.get(i)
        if outputs is None or len(outputs) != len(case.gradients):
            return record(name, False, None, say("incomplete", lang, name=name))
        if case.forward is not None and not close(answers.forwards.get(i, np.zeros(0)), case.forward):
            return record(name, False, "forward-changed", say("forward-changed", lang, name=name))
        for grad, arr in zip(case.gradients, outputs):
            bad = ~np.isfinite(arr)
            if bad.any():
                at = tuple(int(j) for j in np.argwhere(bad)[0]) if arr.ndim else ()
                value = "NaN" if np.isnan(arr[at]) else "inf"
                where = " " + say("at-element", lang, index=list(at)) if at else ""
                return record(name, False, None, say("not-finite", lang, label=_label(grad, lang), value=value,
                                                     at=where))
            if not close(arr, grad.expected):
                failures.append((case, grad, arr))
    if not failures:
        return record(name, True, None, say("passed", lang, n=len(cases)))
    return diagnose(exercise, failures, lang)


def _problem_record(exercise, cases, answers, lang) -> dict:
    problem, name = answers.problem, exercise.name
    fields = problem.get("fields") if isinstance(problem.get("fields"), dict) else {}
    if problem.get("key") == "not-done":
        return record(name, False, "not-done", say("not-done", lang, what=str(fields.get("what", name))))
    i = answers.problem_case
    case = cases[i] if isinstance(i, int) and 0 <= i < len(cases) else cases[0]
    if problem.get("key") == "raised" and SHAPE_ERROR.search(str(fields.get("message", ""))):
        hints = "; ".join(hint_text(g, lang) for g in case.gradients)
        return record(name, False, "shape-error", say(
            "shape-error", lang, what=str(fields.get("what", name)), error=str(fields.get("error", "ValueError")),
            where=where_text(str(fields.get("where", "")), lang), hints=hints, shapes=case.shapes))
    return record(name, False, None, problem_text(problem, lang, label=lambda j: _index_label(case, j, lang, name)))


def _index_label(case: Case, index: str, lang: str, name: str) -> str:
    if index == "forward":
        return say("forward-output", lang, name=name)
    try:
        return _label(case.gradients[int(index)], lang)
    except (ValueError, IndexError):
        return index


def diagnose(exercise: Exercise, failures: list, lang: str) -> dict:
    """The record of a wrong answer: the mistake of the table that fits every failing example, a constant
    factor, a wrong shape with the shape it must have, or the first wrong element."""
    name = exercise.name
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
        wrong = next(w for m in MISTAKES if m.key == keys[0] for w in mistakes.variants(m, grad.expected, grad.ing)
                     if same_values(arr, w))
        note = "" if arr.shape == np.shape(wrong) else " " + say("and-shape", lang, got=arr.shape,
                                                                 want=np.shape(wrong))
        return record(name, False, keys[0], prefix + describe(keys[0], grad.ing, lang) + note)
    factor = constant_factor([(a, g.expected) for _, g, a in same])
    if factor is not None:
        return record(name, False, "factor-constant", prefix + say("mistake.factor-constant", lang, factor=factor))
    exp = grad.expected
    if arr.shape != exp.shape:
        if same_values(arr, exp):
            if arr.ndim < exp.ndim:
                key = "keepdims-missing"
            elif arr.ndim > exp.ndim:
                key = "keepdims-extra"
            else:
                key = "reshape"
            return record(name, False, key, prefix + say(f"shape.{key}", lang, got=arr.shape, want=exp.shape,
                                                         hint=hint_text(grad, lang)))
        return record(name, False, "wrong-shape", prefix + say("shape.wrong", lang, got=arr.shape, want=exp.shape,
                                                               hint=hint_text(grad, lang), shapes=case.shapes))
    return record(name, False, None, prefix + first_wrong(grad, arr, case.shapes, lang))


def first_wrong(grad: Gradient, arr: np.ndarray, shapes: str, lang: str) -> str:
    exp = grad.expected
    scale = max(1.0, float(np.max(np.abs(exp), initial=0.0)))
    bad = ~np.isclose(arr, exp, rtol=1e-6, atol=1e-9 * scale)
    where = tuple(int(i) for i in np.argwhere(bad)[0]) if arr.ndim else ()
    at = f"[{', '.join(map(str, where))}]" if where else say("the-number", lang)
    return say("first-wrong", lang, at=at, expected=f"{exp[where]:.6g}", numeric=f"{grad.numeric[where]:.6g}",
               got=f"{arr[where]:.6g}", shapes=shapes)
