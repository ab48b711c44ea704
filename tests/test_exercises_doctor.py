"""The gradient doctor's hints: shapes explained, each hint followed to the fix, answers written other ways
diagnosed alike, the library's own rules refused, and every message in Vietnamese with --lang vi."""
import ast
import json
import re

import pytest
from test_exercises import ANSWERS, NAMES, fill, grade, run_check, solved

from tinygrad_edu import messages
from tinygrad_edu.cli import main
from tinygrad_edu.exercises import workbook
from tinygrad_edu.exercises.mistakes import KEYS

# --- shape errors inside the learner's code, and wrong shapes ---------------------------------------------

SHAPE_ERRORS = [
    ("dW1", "return dZ1 @ X / m", "dW1 must be h×n = ", "so the product is dZ1·Xᵀ"),
    ("dW1", "return dZ1.T @ X / m", "dZ1 is h×m = ", "so the product is dZ1·Xᵀ"),
    ("dZ1", "return W2 @ dZ2 * (Z1 > 0)", "dZ1 must be h×m = ", "so the product is W2ᵀ·dZ2"),
    ("MatMul.backward", "return b @ g, a.T @ g", "∂L/∂a must be n×k = ", "so the product is g·bᵀ"),
    ("Sum.backward", "return (np.broadcast_to(g, shape),)", "∂L/∂a must have the shape of a, (",
     "put that axis back with np.expand_dims(g, "),
]


@pytest.mark.parametrize("answer,code,shape,product", SHAPE_ERRORS, ids=[c for _, c, _, _ in SHAPE_ERRORS])
def test_a_shape_error_in_the_learners_code_is_explained_with_the_shapes(tmp_path, answer, code, shape, product):
    name = answer.split(".")[0]
    r = grade(fill(tmp_path, {**ANSWERS, answer: code}), name)
    assert (r["passed"], r["diagnosis"]) == (False, "shape-error")
    assert re.match(rf"{re.escape(answer)} raised ValueError \((ops|tutorial)\.py line \d+\): the shapes of a "
                    "product or a sum do not fit\\. ", r["message"]), r["message"]
    assert shape in r["message"] and product in r["message"]
    assert "gufunc" not in r["message"] and "operands could not" not in r["message"]   # numpy's own words are gone


def test_the_product_hint_gives_the_shapes_of_this_example(tmp_path):
    r = grade(solved(tmp_path, dW1="return dZ1 @ X / m"), "dW1")
    h, n, m = map(int, re.search(r"dW1 must be h×n = (\d)×(\d) like W1; dZ1 is h×m = \d×(\d)", r["message"]).groups())
    assert f"and X is n×m = {n}×{m}, so the product is dZ1·Xᵀ; given dZ1 ({h}, {m}), X ({n}, {m}), m = {m}" \
        in r["message"]


# --- each hint, followed, leads to the fix ------------------------------------------------------------------

# Add.backward written shape by shape, with one mistake where a is 1-D (broadcast as a row of g)
ADD = ('def fit(x, shape):\n            if x.shape == shape:\n                return x\n'
       '            if len(shape) == 1:\n                return {one_d}\n'
       '            return np.sum(x, axis=0 if shape[0] == 1 else 1, keepdims=True)\n'
       '        return fit(g, self.attrs["a_shape"]), fit(g, self.attrs["b_shape"])')

WALKS = {
    # the impossible hint of issue 27: summed over the wrong axis, then keepdims=True as told, then the fix
    "Add-1d": ("Add.backward", [
        (ADD.format(one_d="np.sum(x, axis=1)"), {"summed-wrong-axis", "wrong-shape"}, "np.sum(g, axis=0)"),
        (ADD.format(one_d="np.sum(x, axis=0, keepdims=True)"), {"keepdims-extra"}, "np.sum(g, axis=0)"),
        (ADD.format(one_d="np.sum(x, axis=0)"), None, None)]),
    "db2-all": ("db2", [
        ("return 1 / m * np.sum(dZ2)", {"summed-all-axes"}, "np.sum(dZ2, axis=1, keepdims=True)"),
        ("return 1 / m * np.sum(dZ2, axis=1)", {"keepdims-missing"}, "np.sum(dZ2, axis=1, keepdims=True)"),
        ("return 1 / m * np.sum(dZ2, axis=1, keepdims=True)", None, None)]),
    "db1-axis": ("db1", [
        ("return np.sum(dZ1, axis=0, keepdims=True) / m", {"summed-wrong-axis"}, "np.sum(dZ1, axis=1, keepdims=True)"),
        ("return np.sum(dZ1, axis=1, keepdims=True) / m", None, None)]),
    "dW1-product": ("dW1", [
        ("return dZ1 @ X / m", {"shape-error"}, "dZ1·Xᵀ"),
        ("return dZ1 @ X.T / m", None, None)]),
    "dZ1-product": ("dZ1", [
        ("return W2 @ dZ2 * (Z1 > 0)", {"shape-error"}, "W2ᵀ·dZ2"),
        ("return W2.T @ dZ2", {"relu-mask-missing"}, "[Z1 > 0]"),
        ("return W2.T @ dZ2 * (Z1 > 0)", None, None)]),
    "Sum-spread": ("Sum.backward", [
        ("return (np.broadcast_to(g, shape),)", {"shape-error"}, "np.expand_dims(g, "),
        ("return (np.expand_dims(g, axis),)", {"wrong-shape"}, "np.broadcast_to"),
        ("return (np.broadcast_to(np.expand_dims(g, axis), shape),)", None, None)]),
    "dW2-shape": ("dW2", [
        ("return dZ2 / m", {"wrong-shape"}, "dZ2·A1ᵀ"),
        ("return dZ2 @ A1.T / m", None, None)]),
}
# how a hint's formula is written in numpy
IN_CODE = {"dZ1·Xᵀ": "dZ1 @ X.T", "W2ᵀ·dZ2": "W2.T @ dZ2", "dZ2·A1ᵀ": "dZ2 @ A1.T", "[Z1 > 0]": "(Z1 > 0)",
           "np.sum(g, axis=0)": "np.sum(x, axis=0)"}


@pytest.mark.parametrize("walk", sorted(WALKS))
def test_following_each_hint_leads_to_the_fix(tmp_path, walk):
    answer, steps = WALKS[walk]
    name = answer.split(".")[0]
    told = []
    for i, (code, keys, hint) in enumerate(steps):
        r = grade(fill(tmp_path / str(i), {**ANSWERS, answer: code}), name)
        if keys is None:
            assert r["passed"], (walk, told, r)
            return
        assert not r["passed"] and r["diagnosis"] in keys, (walk, code, r)
        assert hint in r["message"], (walk, code, r["message"])
        # the fix does what every hint said, and no later message undoes an earlier one
        assert IN_CODE.get(hint, hint) in steps[-1][0], (walk, hint)
        for earlier in told:
            if "no keepdims=True" in earlier:
                assert "with keepdims=True" not in r["message"]
            if "with keepdims=True" in earlier:
                assert "no keepdims=True" not in r["message"]
        told.append(r["message"])


# --- answers written independently of the templates' tests -----------------------------------------------

OTHER_ANSWERS = {
    "Add.backward": ("def back(shape):\n            out = g\n            while out.ndim > len(shape):\n"
                     "                out = out.sum(axis=0)\n            for i, n in enumerate(shape):\n"
                     "                if n == 1 and out.shape[i] != 1:\n"
                     "                    out = out.sum(axis=i, keepdims=True)\n            return out\n"
                     '        return back(self.attrs["a_shape"]), back(self.attrs["b_shape"])'),
    "Mul.backward": "return np.multiply(g, b), np.multiply(a, g)",
    "MatMul.backward": "return np.dot(g, b.T), np.einsum('nk,np->kp', a, g)",
    "ReLU.backward": "return (np.where(a > 0, g, 0.0),)",
    "Exp.backward": "return (out * g,)",
    "Log.backward": "return (g * a ** -1,)",
    "Sum.backward": "return (np.repeat(np.expand_dims(g, axis), shape[axis], axis=axis),)",
    "Mean.backward": "return (np.ones(shape) * np.expand_dims(g, axis) / n,)",
    "SoftmaxCrossEntropy.backward": "return ((softmax - y) * (g / m), None)",
    "dZ2": "return -(one_hot_Y - A2)",
    "dW2": "return np.einsum('km,hm->kh', dZ2, A1) / m",
    "db2": "return dZ2.mean(axis=1).reshape(-1, 1)",
    "dZ1": "return np.dot(W2.T, dZ2) * np.heaviside(Z1, 0)",
    "dW1": "return (1 / m) * np.matmul(dZ1, X.transpose())",
    "db1": "return dZ1.sum(axis=1, keepdims=True) * (1 / m)",
}


@pytest.mark.parametrize("name", NAMES)
def test_a_correct_answer_written_another_way_passes(tmp_path, name):
    answer = next(k for k in OTHER_ANSWERS if k.split(".")[0] == name)
    assert grade(fill(tmp_path, {**ANSWERS, answer: OTHER_ANSWERS[answer]}), name)["passed"]


OTHER_MISTAKES = [
    ("factor-m", "dW2", "return np.einsum('km,hm->kh', dZ2, A1)"),
    ("factor-1/m", "db1", "return dZ1.mean(axis=1, keepdims=True) / m"),
    ("transposed", "dW1", "return np.matmul(X, dZ1.T) / m"),
    ("sign-flipped", "dZ2", "return (A2 - one_hot_Y) * -1"),
    ("relu-mask-missing", "dZ1", "return np.dot(W2.T, dZ2)"),
    ("upstream-missing", "ReLU.backward", "return (np.heaviside(a, 0),)"),
    ("factors-swapped", "Mul.backward", "return np.multiply(a, g), np.multiply(b, g)"),
    ("summed-all-axes", "db2", "return np.array(dZ2.mean() * dZ2.shape[0])"),
    ("not-summed-back", "db1", "return dZ1 * (1 / m)"),
    ("one-hot-not-subtracted", "dZ2", "return A2.copy()"),
    ("log-times-a", "Log.backward", "return (np.multiply(a, g),)"),
    ("exp-of-out", "Exp.backward", "return (np.exp(out) * g,)"),
    ("factor-constant", "MatMul.backward", "return 2 * np.dot(g, b.T), np.dot(a.T, g)"),
]


@pytest.mark.parametrize("key,answer,code", OTHER_MISTAKES, ids=[f"{k}-{a}" for k, a, _ in OTHER_MISTAKES])
def test_a_mistake_written_another_way_gets_the_same_diagnosis(tmp_path, key, answer, code):
    r = grade(fill(tmp_path, {**ANSWERS, answer: code}), answer.split(".")[0])
    assert (r["passed"], r["diagnosis"]) == (False, key), r


# --- the library's own rules are not a derivation ---------------------------------------------------------

LIBRARY = [
    ("ReLU.backward", "from tinygrad_edu import ops as library\n        return library.ReLU.backward(self, g)",
     "ReLU calls the library's own ReLU.backward"),
    ("Mul.backward", "import tinygrad_edu.ops as L\n        return L.Mul.backward(self, g)",
     "Mul calls the library's own Mul.backward"),
    ("dW2", "from tinygrad_edu import Tensor\n"
            "    W = Tensor(np.zeros((dZ2.shape[0], A1.shape[0])), requires_grad=True)\n"
            "    ((W @ Tensor(A1)) * Tensor(dZ2 / m)).sum().backward()\n    return W.grad",
     "dW2 calls the library's own MatMul.backward, Mul.backward, Sum.backward, backward()"),
    # a call counts even when it fails, and even when the answer is right
    ("dZ1", "from tinygrad_edu import manual\n    try:\n        manual.backward_prop()\n    except TypeError:\n"
            "        pass\n    return W2.T @ dZ2 * (Z1 > 0)",
     "dZ1 calls the library's own backward_prop"),
]


@pytest.mark.parametrize("answer,code,says", LIBRARY, ids=[a for a, _, _ in LIBRARY])
def test_calling_the_librarys_own_rule_is_named(tmp_path, answer, code, says):
    r = grade(fill(tmp_path, {**ANSWERS, answer: code}), answer.split(".")[0])
    assert (r["passed"], r["diagnosis"]) == (False, "library-op"), r
    assert r["message"].startswith(says) and r["message"].endswith("write it yourself with numpy")


def test_the_librarys_helpers_are_allowed_and_its_rules_restored(tmp_path):
    from tinygrad_edu import ops

    backward = ops.ReLU.backward
    assert grade(solved(tmp_path), "Add")["passed"]   # the reference Add uses autograd's unbroadcast
    assert ops.ReLU.backward is backward


# --- every message in Vietnamese, the language remembered -------------------------------------------------


def test_start_in_vietnamese_writes_every_comment_in_vietnamese(tmp_path, capsys):
    assert main(["exercises", "start", str(tmp_path / "wb"), "--lang", "vi"]) == 0
    assert capsys.readouterr().out.startswith("đã tạo sổ bài tập trong ")
    for f in ("ops.py", "tutorial.py"):
        en, vi = workbook.template(f, "en"), (tmp_path / "wb" / f).read_text()
        assert [line for line in vi.splitlines() if "NotImplementedError" in line] == \
            [line for line in en.splitlines() if "NotImplementedError" in line]
        assert len(prose(vi)) >= len(prose(en)) > 5
        for text in prose(en):
            # NOTE: a text with English words in it is translated; formulas and shapes ("∂L/∂W2 (k×h).") stay
            english = re.search(r"\b(the|and|of|is|a|an|one|each|with|from|for|Return)\b", text)
            assert not english or text.strip() not in vi, text


def prose(code: str) -> list[str]:
    """A file's docstrings and comments, in order."""
    tree = ast.parse(code)
    nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef))]
    found = [d for d in (ast.get_docstring(n, clean=False) for n in nodes) if d]
    comments = [line.split("#", 1)[1] for line in code.splitlines() if "#" in line and '"' not in line.split("#")[0]]
    return found + comments


def test_check_speaks_the_workbooks_language_and_json_keys_stay_neutral(tmp_path, capsys):
    folder = tmp_path / "wb"
    workbook.start(folder, "vi")
    fill(folder, {**ANSWERS, "db2": "return 1 / m * np.sum(dZ2)"})
    (folder / "README.md").write_text(workbook.template("README.md", "vi"))
    code, out = run_check(capsys, folder, "db2", "Add")
    assert code == 1
    assert out.splitlines()[0].startswith("✗ db2  cộng theo mọi trục thành một số duy nhất: ")
    assert out.splitlines()[-1] == "đã xong 1 trên 2 bài. Hãy sửa ✗ đầu tiên rồi kiểm tra lại."
    _, vi = run_check(capsys, folder, "db2", "--json")
    _, en = run_check(capsys, folder, "db2", "--json", "--lang", "en")
    vi, en = json.loads(vi), json.loads(en)
    assert [r["diagnosis"] for r in vi] == [r["diagnosis"] for r in en] == ["summed-all-axes"]
    assert en[0]["message"].startswith("summed over all axes into one number: ")
    assert vi[0]["message"] != en[0]["message"]


def test_a_workbook_without_its_marker_is_checked_in_english(tmp_path):
    folder = tmp_path / "wb"
    workbook.start(folder, "vi")
    assert workbook.language(folder) == "vi"
    (folder / "README.md").write_text("# my notes\n")
    assert workbook.language(folder) == "en"
    (folder / "README.md").unlink()
    assert workbook.language(folder) == "en"


def test_usage_errors_speak_the_chosen_language(tmp_path, capsys):
    solved(tmp_path / "wb")
    assert main(["exercises", "check", str(tmp_path / "wb"), "Conv2d", "--lang", "vi"]) == 2
    assert capsys.readouterr().err.startswith("tinygrad-edu exercises: lỗi: không có bài tập tên Conv2d; ")


@pytest.mark.parametrize("lang", messages.LANGUAGES)
def test_every_diagnosis_has_its_message_and_a_row_in_the_docs(lang):
    catalogue = messages.catalogue("exercises")
    for key in KEYS:
        assert f"mistake.{key}" in catalogue
    docs = (workbook.Path(__file__).resolve().parent.parent / "docs" /
            ("exercises.md" if lang == "en" else "exercises.vi.md")).read_text()
    table = {k for row in re.findall(r"^\| (`.*?`) \|", docs, re.M) for k in re.findall(r"`([^`]+)`", row)}
    others = {"not-done", "shape-error", "wrong-shape", "keepdims-missing", "keepdims-extra", "reshape",
              "library-op", "forward-changed"}
    assert table == set(KEYS) | others
