"""The exercises: start's workbook, and check's grades, diagnoses and behaviour on hostile learner code."""
import functools
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu import Tensor
from tinygrad_edu.cli import main
from tinygrad_edu.exercises import child, grading, workbook
from tinygrad_edu.exercises.mistakes import KEYS, PART_TWO

# The reference answers: written here, never shipped in the workbook.
ANSWERS = {
    "Add.backward": "from tinygrad_edu.autograd import unbroadcast\n"
                    '        return unbroadcast(g, self.attrs["a_shape"]), unbroadcast(g, self.attrs["b_shape"])',
    "Mul.backward": "return g * b, g * a",
    "MatMul.backward": "return g @ b.T, a.T @ g",
    "ReLU.backward": "return (g * (a > 0),)",
    "Exp.backward": "return (g * out,)",
    "Log.backward": "return (g / a,)",
    "Sum.backward": "return (np.broadcast_to(np.expand_dims(g, axis), shape),)",
    "Mean.backward": "return (np.broadcast_to(np.expand_dims(g, axis), shape) / n,)",
    "SoftmaxCrossEntropy.backward": "return (g * (softmax - y) / m, None)",
    "dZ2": "return A2 - one_hot_Y",
    "dW2": "return dZ2 @ A1.T / m",
    "db2": "return np.sum(dZ2, axis=1, keepdims=True) / m",
    "dZ1": "return W2.T @ dZ2 * (Z1 > 0)",
    "dW1": "return dZ1 @ X.T / m",
    "db1": "return np.sum(dZ1, axis=1, keepdims=True) / m",
}
NAMES = [e.name for e in grading.EXERCISES]


def fill(folder: Path, answers: dict, top: str = "") -> Path:
    """A workbook in folder with the template's NotImplementedError lines replaced by answers."""
    folder.mkdir(exist_ok=True)
    for f in ("ops.py", "tutorial.py"):
        text = workbook.template(f)
        for key, code in answers.items():
            text = text.replace(f'raise NotImplementedError("{key}")', code)
        (folder / f).write_text(text + top.get(f, "") if isinstance(top, dict) else text)
    return folder


def solved(folder: Path, **changes) -> Path:
    """The correct workbook, with some answers replaced (keys with dots written as Op__backward)."""
    return fill(folder, {**ANSWERS, **{k.replace("__", "."): v for k, v in changes.items()}})


@functools.cache
def cases_of(name: str) -> list:
    return grading.draw_cases(grading.BY_NAME[name])


def grade(folder: Path, name: str, lang: str = "en") -> dict:
    """One exercise graded with the child's code run in this process, to keep the suite fast: the same
    requests and messages (through JSON) as the checker's child sends, and the same verdict."""
    exercise, cases = grading.BY_NAME[name], cases_of(name)
    requests = json.loads(json.dumps(grading.requests({name: cases})))
    sent = []
    child.run(folder.resolve(), requests, [name], lambda **msg: sent.append(json.loads(json.dumps(msg))))
    answers = grading.Answers()
    for msg in sent:
        if "import" in msg and "problem" in msg:
            return grading.record(name, False, None, grading.problem_text(msg["problem"], lang))
        if "answer" in msg:
            answers.take(msg)
        elif "problem" in msg:
            answers.problem, answers.problem_case = msg["problem"], msg["case"]
    return grading.grade(exercise, cases, answers, lang)


def run_check(capsys, *args) -> tuple[int, str]:
    code = main(["exercises", "check", *map(str, args)])
    return code, capsys.readouterr().out


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


# --- the reference -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_autograd_reference_agrees_with_finite_differences(name):
    for case in grading.draw_cases(grading.BY_NAME[name], 4):
        for g in case.gradients:
            np.testing.assert_allclose(g.expected, g.numeric, rtol=1e-6, atol=1e-8)


def test_examples_are_derandomised():
    a, b = (grading.draw_cases(grading.BY_NAME["dW2"], 3) for _ in range(2))
    for x, y in zip(a, b):
        assert x.shapes == y.shapes
        np.testing.assert_array_equal(x.gradients[0].expected, y.gradients[0].expected)


@pytest.mark.parametrize("name", NAMES)
def test_reference_answers_pass(tmp_path, name):
    r = grade(solved(tmp_path), name)
    assert r == {"name": name, "passed": True, "diagnosis": None,
                 "message": f"matches autograd and finite differences on {grading.EXAMPLES} examples"}


def test_a_passed_op_applies_to_tensors_like_the_librarys(tmp_path):
    ops = child.load(solved(tmp_path) / "ops.py", tmp_path)
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    b = Tensor(np.ones((2, 1)), requires_grad=True)
    ops.ReLU.apply(ops.Add.apply(x, b)).sum().backward()
    np.testing.assert_array_equal(b.grad, [[3.0], [3.0]])
    np.testing.assert_array_equal(x.grad, np.ones((2, 3)))


# --- diagnoses: one planted mistake each ---------------------------------------------------------------

PLANTED = [
    ("factor-m", "db2", "return np.sum(dZ2, axis=1, keepdims=True)", "off by a factor m"),
    ("factor-m", "Mean.backward", "return (np.broadcast_to(np.expand_dims(g, axis), shape),)", "off by a factor n"),
    ("factor-1/m", "dZ2", "return (A2 - one_hot_Y) / A2.shape[1]", "off by a factor 1/m"),
    ("factor-1/m", "dW1", "return dZ1 @ X.T / m / m", "off by a factor 1/m"),
    ("transposed", "dW2", "return A1 @ dZ2.T / m", "transposed"),
    ("transposed", "MatMul.backward", "return b @ g.T, a.T @ g", "∂L/∂a: transposed"),
    ("sign-flipped", "Log.backward", "return (-g / a,)", "sign flipped"),
    ("sign-flipped", "dZ2", "return one_hot_Y - A2", "sign flipped"),
    ("relu-mask-missing", "dZ1", "return W2.T @ dZ2", "multiply W2ᵀ·dZ2 by ReLU′(Z1) = [Z1 > 0]"),
    ("relu-mask-missing", "ReLU.backward", "return (g,)", "the ReLU mask is missing"),
    ("relu-mask-wrong-tensor", "dZ1", "return np.maximum(W2.T @ dZ2, 0)", "[W2ᵀ·dZ2 > 0] instead of [Z1 > 0]"),
    ("relu-mask-wrong-tensor", "ReLU.backward", "return (g * (g > 0),)", "[g > 0] instead of [a > 0]"),
    ("summed-wrong-axis", "db1", "return np.sum(dZ1, axis=0, keepdims=True) / m",
     "b1 (2, 1) sums dZ1 over axis 1: np.sum(dZ1, axis=1, keepdims=True)"),
    ("summed-all-axes", "db2", "return 1 / m * np.sum(dZ2)", "summed over all axes into one number"),
    ("not-summed-back", "Add.backward", "return g, g", "was broadcast"),
    ("not-summed-back", "db1", "return dZ1 / m", "not summed back to the shape of b1 (h, 1)".replace("(h, 1)", "")),
    ("one-hot-not-subtracted", "dZ2", "return A2", "the one-hot Y is not subtracted"),
    ("one-hot-not-subtracted", "SoftmaxCrossEntropy.backward", "return (g * softmax / m, None)",
     "the one-hot Y is not subtracted"),
    ("sum-as-mean", "Sum.backward", "return (np.broadcast_to(np.expand_dims(g, axis), shape) / shape[axis],)",
     "divided by n: that is Mean's rule"),
    ("factor-m^2", "dW2", "return dZ2 @ A1.T * m", "off by a factor m²"),
    ("factor-m^2", "Mean.backward", "return (np.broadcast_to(np.expand_dims(g, axis), shape) * n,)",
     "off by a factor n²"),
    ("factor-1/m^2", "db1", "return np.sum(dZ1, axis=1, keepdims=True) / m**3", "off by a factor 1/m²"),
    ("factor-m/(m-1)", "dW1", "return dZ1 @ X.T / (m - 1)", "divided by m − 1 where it should be m"),
    ("factor-m/(m-1)", "SoftmaxCrossEntropy.backward", "return (g * (softmax - y) / (m - 1), None)",
     "off by a factor m/(m − 1)"),
    ("factor-constant", "dW2", "return 2 * dZ2 @ A1.T / m", "off by a constant factor: exactly 2 times"),
    ("factor-constant", "Mul.backward", "return g * b / 2, g * a",
     "∂L/∂a: off by a constant factor: exactly 1/2 times"),
    ("factor-constant", "Exp.backward", "return (-3 * g * out,)", "exactly −3 times"),
    ("upstream-missing", "Mul.backward", "return b, g * a", "∂L/∂a: the upstream gradient g is missing"),
    ("upstream-missing", "Exp.backward", "return (out,)", "the upstream gradient g is missing"),
    ("upstream-missing", "ReLU.backward", "return ((a > 0) * 1.0,)", "the upstream gradient g is missing"),
    ("upstream-missing", "SoftmaxCrossEntropy.backward", "return ((softmax - y) / m, None)",
     "the upstream gradient g is missing"),
    ("factors-swapped", "Mul.backward", "return g * a, g * b", "∂L/∂a: g ⊙ a instead of g ⊙ b"),
    ("relu-activation-not-mask", "dZ1", "return W2.T @ dZ2 * np.maximum(Z1, 0)",
     "multiplied by ReLU(Z1) instead of its derivative"),
    ("relu-activation-not-mask", "ReLU.backward", "return (g * np.maximum(a, 0),)", "ReLU′(a) = [a > 0]"),
    ("log-times-a", "Log.backward", "return (g * a,)", "multiplied by a: the derivative of log a is 1/a"),
    ("log-over-a-squared", "Log.backward", "return (g / a**2,)", "divided by a²"),
    ("exp-of-out", "Exp.backward", "return (g * np.exp(out),)", "exp applied twice"),
]


@pytest.mark.parametrize("key,answer,code,says", PLANTED, ids=[f"{k}-{a}" for k, a, _, _ in PLANTED])
def test_each_planted_mistake_gets_its_diagnosis(tmp_path, key, answer, code, says):
    name = answer.split(".")[0]
    r = grade(fill(tmp_path, {**ANSWERS, answer: code}), name)
    assert (r["passed"], r["diagnosis"]) == (False, key), r
    assert says in r["message"]


def test_every_mistake_in_the_table_is_planted():
    # part two's are planted in tests/test_exercises_part2.py
    assert {k for k, *_ in PLANTED} == set(KEYS) - set(PART_TWO)


def test_an_unknown_mistake_gets_the_first_wrong_element(tmp_path):
    r = grade(solved(tmp_path, Log__backward="return (g / (a + 1),)"), "Log")
    assert (r["passed"], r["diagnosis"]) == (False, None)
    assert r["message"].startswith("∂L/∂a: element [0, 0] should be ")
    assert "(autograd; finite differences give " in r["message"] and "given a (" in r["message"]


def test_a_diagnosis_must_fit_every_failing_example(tmp_path):
    # a factor 2 equals a factor m only where m = 2: the examples with m = 3 or 4 make it the constant 2
    r = grade(solved(tmp_path, dW2="return 2 * dZ2 @ A1.T / m"), "dW2")
    assert (r["passed"], r["diagnosis"]) == (False, "factor-constant")
    # a factor that is neither constant nor one of m's is no diagnosis
    r = grade(solved(tmp_path, dW2="return dZ2 @ A1.T / m * A1.shape[0]"), "dW2")
    assert (r["passed"], r["diagnosis"]) == (False, None)
    assert "should be " in r["message"]


def test_a_wrong_shape_names_both_shapes_and_the_shape_it_must_have(tmp_path):
    r = grade(solved(tmp_path, dW2="return dZ2"), "dW2")
    assert r["diagnosis"] == "wrong-shape"
    assert re.fullmatch(r"shape \(\d, \d\), not \(\d, \d\): dW2 must be k×h = \d×\d like W2; dZ2 is k×m = \d×\d and "
                        r"A1 is h×m = \d×\d, so the product is dZ2·A1ᵀ; given dZ2 \(\d, \d\), A1 \(\d, \d\), m = \d",
                        r["message"])
    r = grade(solved(tmp_path, db2="return np.sum(dZ2, axis=1) / m"), "db2")
    assert r["diagnosis"] == "keepdims-missing"
    assert r["message"].startswith("the right numbers, but shape (")
    assert "keep the summed axis with keepdims=True" in r["message"]
    r = grade(solved(tmp_path, db2="return np.sum(dZ2, axis=1)"), "db2")
    assert r["diagnosis"] == "factor-m"
    assert re.search(r"\(a /m is missing\) \(and its shape is \(\d,\), not \(\d, 1\)\)$", r["message"])


# --- hostile learner code, graded in this process --------------------------------------------------------


@pytest.mark.parametrize("answer,code,says", [
    ("ReLU.backward", "return (g * undefined_name,)", "ReLU.backward raised NameError (ops.py line "),
    ("ReLU.backward", "return g * (a > 0)", "ReLU.backward returned a value of type ndarray, not a tuple; return a "
                                             "tuple with one gradient per input, e.g. (∂L/∂a,)"),
    ("Add.backward", "return (g,)", "Add.backward returned 1 gradient(s) for 2 input(s)"),
    ("dW2", "dZ2 @ A1.T / m", "dW2's result is None, not a numpy array (a missing return?)"),
    ("dW2", "return (dZ2 @ A1.T / m).tolist()", "dW2's result is of type list, not a numpy array"),
    ("dW2", "from tinygrad_edu import Tensor; return Tensor(dZ2 @ A1.T / m)",
     "dW2's result is a Tensor; return a numpy array (its .data)"),
    ("dW2", "raise ValueError('two\\nlines')", "dW2 raised ValueError (tutorial.py line "),
    ("Log.backward", "return (g * np.nan,)", "∂L/∂a contains NaN at [0, 0]"),
    ("Log.backward", "return (g / (a - a),)", "∂L/∂a contains inf at [0, 0]"),
    ("dZ1", "import sys; sys.exit(3)", "dZ1 called exit() (tutorial.py line "),
    ("dZ1", "return dZ1(W2, dZ2, Z1)", "dZ1 recursed without end"),
])
def test_hostile_answers_get_one_clear_line(tmp_path, answer, code, says):
    name = answer.split(".")[0]
    with np.errstate(all="ignore"):
        r = grade(solved(tmp_path, **{answer.replace(".", "__"): code}), name)
    assert (r["passed"], r["diagnosis"]) == (False, None)
    assert says in r["message"] and "\n" not in r["message"], r["message"]


def test_the_package_and_its_commands_import_without_hypothesis():
    code = ("import sys; import tinygrad_edu.cli as cli, tinygrad_edu.exercises.runner, "
            "tinygrad_edu.exercises.workbook; cli.build_parser(); assert 'hypothesis' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_check_without_hypothesis_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "hypothesis" else
                        find_spec(name, *a))
    assert main(["exercises", "check", str(solved(tmp_path))]) == 2
    assert "pip install hypothesis (or the package's [exercises] extra)" in capsys.readouterr().err


def test_a_changed_forward_is_named(tmp_path):
    folder = solved(tmp_path)
    ops = folder / "ops.py"
    ops.write_text(ops.read_text().replace("return np.exp(a)", "return a").replace("out = np.exp(a)", "out = a"))
    assert "Exp.forward was changed" in grade(folder, "Exp")["message"]


@pytest.mark.parametrize("top,says", [
    ("def broken(:\n", "tutorial.py line {n}: syntax error: "),
    ("raise ValueError('oops')\n", "tutorial.py raised ValueError while importing (tutorial.py line {n}): oops"),
])
def test_a_file_that_does_not_import_fails_each_of_its_exercises(tmp_path, top, says):
    folder = solved(tmp_path)
    text = (folder / "tutorial.py").read_text()
    (folder / "tutorial.py").write_text(text + top)
    assert grade(folder, "dW2")["message"].startswith(says.format(n=len(text.splitlines()) + 1))
    assert grade(folder, "Add")["passed"]


def test_a_missing_exercise_is_named(tmp_path):
    folder = solved(tmp_path)
    (folder / "tutorial.py").write_text((folder / "tutorial.py").read_text().replace("def db1(", "def db_1("))
    assert grade(folder, "db1")["message"] == "tutorial.py has no function db1 (the exercise names are fixed)"
    (folder / "ops.py").unlink()
    assert grade(folder, "Mul")["message"] == "ops.py is missing from the workbook"


# --- the command line: start ---------------------------------------------------------------------------


@pytest.mark.parametrize("lang,words", [("en", "## The order"), ("vi", "## Thứ tự làm bài")])
def test_start_writes_the_workbook_without_solutions(tmp_path, capsys, lang, words):
    folder = tmp_path / "wb"
    assert main(["exercises", "start", str(folder), "--lang", lang]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "ops.py", "tutorial.py"]
    assert words in (folder / "README.md").read_text()
    code = (folder / "ops.py").read_text() + (folder / "tutorial.py").read_text()
    assert code.count("raise NotImplementedError") == len(NAMES)
    for answer in ANSWERS.values():
        assert answer.splitlines()[-1].strip() not in code


def test_start_refuses_an_existing_workbook_and_keeps_it(tmp_path, capsys):
    folder = solved(tmp_path / "wb")
    before = snapshot(folder)
    assert main(["exercises", "start", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tinygrad-edu exercises: error: {folder} already holds a workbook (ops.py, tutorial.py)")
    assert snapshot(folder) == before


def test_start_refuses_a_file(tmp_path, capsys):
    (tmp_path / "notes").write_text("mine")
    assert main(["exercises", "start", str(tmp_path / "notes")]) == 2
    assert capsys.readouterr().err == f"tinygrad-edu exercises: error: {tmp_path / 'notes'} is a file, not a folder\n"
    assert (tmp_path / "notes").read_text() == "mine"


def test_start_leaves_nothing_behind_when_writing_fails(tmp_path, monkeypatch):
    def refuse(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "rename", refuse)
    with pytest.raises(workbook.WorkbookError, match="No space left on device"):
        workbook.start(tmp_path / "wb")
    assert list(tmp_path.iterdir()) == []


# --- the command line: check, in its child process ---------------------------------------------------------


def test_an_untouched_workbook_is_not_yet_done(tmp_path, capsys):
    folder = tmp_path / "wb"
    workbook.start(folder)
    before = snapshot(folder)
    code, out = run_check(capsys, folder, "--json")
    assert code == 1
    records = json.loads(out)
    assert [r["name"] for r in records] == NAMES
    for r in records:
        assert set(r) == {"name", "passed", "diagnosis", "message"}
        assert (r["passed"], r["diagnosis"]) == (False, "not-done")
        assert r["message"].startswith("not yet done: ") and r["message"].endswith(" raises NotImplementedError")
    assert snapshot(folder) == before    # nothing written, no __pycache__


def test_check_prints_a_mark_per_exercise_and_exits_0_when_all_pass(tmp_path, capsys):
    folder = solved(tmp_path / "wb")
    before = snapshot(folder)
    code, out = run_check(capsys, folder)
    assert code == 0
    assert [line.split()[:2] for line in out.splitlines()[:len(NAMES)]] == [["✓", n] for n in NAMES]
    assert out.splitlines()[-1] == f"{len(NAMES)} of {len(NAMES)} done."
    assert snapshot(folder) == before


def test_check_one_mistake_in_text_and_json(tmp_path, capsys):
    folder = solved(tmp_path / "wb", db2="return 1 / m * np.sum(dZ2)")
    code, out = run_check(capsys, folder, "db2", "dW2")
    assert code == 1
    assert out.splitlines()[0].startswith("✗ db2  summed over all axes into one number")
    assert out.splitlines()[1] == "✓ dW2"
    code, out = run_check(capsys, folder, "db2", "--json")
    assert code == 1
    assert json.loads(out) == [{"name": "db2", "passed": False, "diagnosis": "summed-all-axes",
                                "message": grade(folder, "db2")["message"]}]


def test_endless_loops_and_dying_processes_fail_their_exercise_only(tmp_path, capsys):
    folder = solved(tmp_path / "wb", dZ2="while True:\n            pass",
                    Exp__backward="import os; os._exit(3)",
                    dW2='print(\'{"record": {"name": "dW2", "passed": true}}\'); return dZ2 @ A1.T / m')
    code, out = run_check(capsys, folder, "dZ2", "Exp", "dW2", "Mul", "--timeout", "3", "--json")
    assert code == 1
    records = {r["name"]: r for r in json.loads(out)}
    assert records["dZ2"]["message"] == "dZ2 did not finish within 3 s (an endless loop?)"
    assert records["Exp"]["message"].startswith("Exp stopped the checker (the process exited with code 3")
    assert records["dW2"]["passed"] and records["Mul"]["passed"]   # the learner's prints cannot fake a record


def test_a_file_that_hangs_on_import_fails_its_exercises(tmp_path, capsys):
    folder = solved(tmp_path / "wb")
    (folder / "ops.py").write_text((folder / "ops.py").read_text() + "while True:\n    pass\n")
    code, out = run_check(capsys, folder, "Add", "db1", "Mul", "--timeout", "3", "--json")
    assert code == 1
    records = {r["name"]: r for r in json.loads(out)}
    assert records["Add"]["message"] == records["Mul"]["message"] == \
        "importing ops.py did not finish within 3 s (an endless loop?)"
    assert records["db1"]["passed"]


@pytest.mark.parametrize("args,says", [
    (["nowhere"], "no workbook in "),
    (["WB", "Add", "Conv2d"], "no exercise named Conv2d; the exercises are Add, Mul, "),
])
def test_check_usage_errors(tmp_path, capsys, args, says):
    solved(tmp_path / "WB")
    code = main(["exercises", "check", *[str(tmp_path / a) if i == 0 else a for i, a in enumerate(args)]])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("tinygrad-edu exercises: error: ") and says in err
