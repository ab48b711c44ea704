"""Exercises, part two (the layers): start --part 2, the reference answers pass, the stubs fail, and each named
mistake of the issue, written into a workbook, gets its own diagnosis."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
from test_exercises import cases_of, grade, run_check, snapshot

from tinygrad_edu import messages
from tinygrad_edu.cli import main
from tinygrad_edu.exercises import child, grading, part2, workbook
from tinygrad_edu.exercises.mistakes import KEYS, PART_TWO

NAMES2 = ["BatchNorm", "LayerNorm", "Softmax", "Attention", "Embedding", "Conv2d", "MaxPool2d", "RNN", "Dropout"]

# The reference answers: written here, never shipped in the workbook.
NORM = ("dxhat = g * gamma\n"
        "        dx = (dxhat - dxhat.mean(axis={a}, keepdims=True)"
        " - xhat * (dxhat * xhat).mean(axis={a}, keepdims=True)) / std\n"
        "        return dx, (g * xhat).sum(axis=0), g.sum(axis=0)")
ATTENTION = ("d = q.shape[1]\n"
             "        scores = np.where(mask, q @ k.T / np.sqrt(d), -np.inf)\n"
             "        e = np.exp(scores - scores.max(axis=-1, keepdims=True))\n"
             "        p = e / e.sum(axis=-1, keepdims=True)\n"
             "        dp = g @ v.T\n"
             "        ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))\n"
             "        return ds @ k / np.sqrt(d), ds.T @ q / np.sqrt(d), p.T @ g")
CONV = ("xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))\n"
        "        dxp, dw = np.zeros_like(xp), np.zeros_like(w)\n"
        "        kh, kw = w.shape[2:]\n"
        "        for i in range(g.shape[2]):\n"
        "            for j in range(g.shape[3]):\n"
        "                rows, cols = slice(i * stride, i * stride + kh), slice(j * stride, j * stride + kw)\n"
        "                dxp[:, :, rows, cols] += np.einsum('no,ocpq->ncpq', g[:, :, i, j], w)\n"
        "                dw += np.einsum('no,ncpq->ocpq', g[:, :, i, j], xp[:, :, rows, cols])\n"
        "        H, W = x.shape[2:]\n"
        "        return dxp[:, :, padding:padding + H, padding:padding + W], dw")
MAXPOOL = ("dx = np.zeros_like(x)\n"
           "        for i in range(g.shape[2]):\n"
           "            for j in range(g.shape[3]):\n"
           "                window = x[:, :, i * s:i * s + k, j * s:j * s + k]\n"
           "                at_max = window == out[:, :, i, j, None, None]\n"
           "                dx[:, :, i * s:i * s + k, j * s:j * s + k] += at_max * g[:, :, i, j, None, None]\n"
           "        return (dx,)")
RNN = ("dx, dWxh, dWhh = np.zeros_like(x), np.zeros_like(Wxh), np.zeros_like(Whh)\n"
       "        db, dh = np.zeros(Whh.shape[0]), np.zeros_like(h0)\n"
       "        for t in reversed(range(x.shape[0])):\n"
       "            prev = hs[t - 1] if t > 0 else h0\n"
       "            da = (g[t] + dh) * (1 - hs[t] ** 2)\n"
       "            dx[t] = da @ Wxh.T\n"
       "            dWxh, dWhh, db = dWxh + x[t].T @ da, dWhh + prev.T @ da, db + da.sum(axis=0)\n"
       "            dh = da @ Whh.T\n"
       "        return dx, dh, dWxh, dWhh, db")
ANSWERS2 = {
    "BatchNorm.backward": NORM.format(a=0),
    "LayerNorm.backward": NORM.format(a=1),
    "Softmax.backward": "return (s * (g - (g * s).sum(axis=-1, keepdims=True)),)",
    "Attention.backward": ATTENTION,
    "Embedding.backward": "dW = np.zeros(shape)\n        np.add.at(dW, indices, g)\n        return (dW,)",
    "Conv2d.backward": CONV,
    "MaxPool2d.backward": MAXPOOL,
    "RNN.backward": RNN,
    "Dropout.backward": "return (g * mask / (1 - p),)",
}


def fill2(folder: Path, answers: dict, lang: str = "en") -> Path:
    """A part-two workbook in folder, its NotImplementedError lines replaced by answers, with its README."""
    folder.mkdir(parents=True, exist_ok=True)
    text = workbook.template("layers.py", lang)
    for key, code in answers.items():
        text = text.replace(f'raise NotImplementedError("{key}")', code)
    (folder / "layers.py").write_text(text)
    (folder / "README.md").write_text(workbook.template("README.md", lang, part=2))
    return folder


def solved2(folder: Path, **changes) -> Path:
    return fill2(folder, {**ANSWERS2, **{k.replace("__", "."): v for k, v in changes.items()}})


def test_part_two_is_its_own_table_with_the_issues_names():
    assert [e.name for e in grading.PARTS[2]] == NAMES2 == [e.name for e in part2.EXERCISES]
    assert {e.file for e in grading.PARTS[2]} == {"layers.py"}
    assert not {e.name for e in grading.PARTS[1]} & set(NAMES2)


@pytest.mark.parametrize("name", NAMES2)
def test_the_reference_agrees_with_finite_differences(name):
    for case in grading.draw_cases(grading.BY_NAME[name], 4):
        for g in case.gradients:
            np.testing.assert_allclose(g.expected, g.numeric, rtol=1e-6, atol=1e-8)


def test_the_mistakes_formulas_without_a_mistake_give_autograds_gradient():
    for case in cases_of("Conv2d"):
        x, w = (child.wire.decode(a) for a in case.request["inputs"])
        kw = case.request["kwargs"]
        g = child.wire.decode(case.request["g"])
        np.testing.assert_allclose(part2.conv_input_grad(g, w, x.shape, kw["stride"], kw["padding"]),
                                   case.gradients[0].expected, atol=1e-12)
    for case in cases_of("RNN"):
        x, h0, Wxh, Whh, b = (child.wire.decode(a) for a in case.request["inputs"])
        g = child.wire.decode(case.request["g"])
        for got, grad in zip(part2.bptt(x, h0, Wxh, Whh, b, case.forward, g), case.gradients):
            np.testing.assert_allclose(got, grad.expected, atol=1e-12)


def test_the_examples_cover_stride_padding_and_overlapping_pools():
    convs = [c.request["kwargs"] for c in cases_of("Conv2d")]
    assert {k["stride"] for k in convs} == {1, 2} and {k["padding"] for k in convs} == {0, 1}
    assert any(k["stride"] == 2 and k["padding"] == 1 for k in convs)
    pools = [c.request["kwargs"] for c in cases_of("MaxPool2d")]
    assert any(k["stride"] < k["kernel_size"] for k in pools) and any(k["stride"] == k["kernel_size"] for k in pools)
    for case in cases_of("Embedding"):   # a repeated index in every example
        indices = np.array(case.request["kwargs"]["indices"]["int64"])
        assert len(np.unique(indices)) < indices.size


@pytest.mark.parametrize("name", NAMES2)
def test_reference_answers_pass(tmp_path, name):
    r = grade(solved2(tmp_path), name)
    assert r == {"name": name, "passed": True, "diagnosis": None,
                 "message": f"matches autograd and finite differences on {grading.EXAMPLES} examples"}


@pytest.mark.parametrize("name", NAMES2)
def test_the_given_stub_fails_as_not_done(tmp_path, name):
    r = grade(fill2(tmp_path, {}), name)
    assert (r["passed"], r["diagnosis"]) == (False, "not-done")
    assert r["message"] == f"not yet done: {name}.backward raises NotImplementedError"


# --- each named mistake of the issue, planted ------------------------------------------------------------

BN_DX = "dxhat = g * gamma\n        dx = {dx}\n        return dx, (g * xhat).sum(axis=0), g.sum(axis=0)"
# BatchNorm written stage by stage, CS231n's way, with the variance's derivative over `n` (N, or the mistake's N − 1)
BN_STAGED = ("N = xhat.shape[0]\n"
             "        dxhat = g * gamma\n"
             "        xmu = xhat * std\n"
             "        dvar = (dxhat * xmu * -0.5 * std ** -3).sum(axis=0)\n"
             "        dmu = (-dxhat / std).sum(axis=0) + dvar * (-2 * xmu).mean(axis=0)\n"
             "        dx = dxhat / std + dvar * 2 * xmu / {n} + dmu / N\n"
             "        return dx, (g * xhat).sum(axis=0), g.sum(axis=0)")
ATTENTION_NO_MASK = ATTENTION.replace("np.where(mask, q @ k.T / np.sqrt(d), -np.inf)", "q @ k.T / np.sqrt(d)")
RNN_DERIVATIVE = RNN.replace("(1 - hs[t] ** 2)", "(1 - {h} ** 2)")

PLANTED2 = [
    ("batchnorm-stats-constant", "BatchNorm", BN_DX.format(dx="dxhat / std"), "treated as constants"),
    ("batchnorm-mean-term-missing", "BatchNorm",
     BN_DX.format(dx="(dxhat - xhat * (dxhat * xhat).mean(axis=0)) / std"), "the batch mean's term is missing"),
    ("batchnorm-var-term-missing", "BatchNorm", BN_DX.format(dx="(dxhat - dxhat.mean(axis=0)) / std"),
     "the batch variance's term is missing"),
    ("batchnorm-unbiased-variance", "BatchNorm", BN_STAGED.format(n="(N - 1)"), "the unbiased variance (÷ (N − 1))"),
    ("batchnorm-unbiased-variance", "BatchNorm",   # the statistics recomputed, with np.var's ddof=1
     "N = xhat.shape[0]\n        x = xhat * std\n        std = np.sqrt(x.var(axis=0, ddof=1) + 1e-5)\n"
     "        xhat = (x - x.mean(axis=0)) / std\n        dxhat = g * gamma\n"
     "        dx = (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).sum(axis=0) / (N - 1)) / std\n"
     "        return dx, (g * xhat).sum(axis=0), g.sum(axis=0)", "the unbiased variance"),
    ("gamma-beta-wrong-axis", "BatchNorm", NORM.format(a=0).replace("axis=0)", "axis=1)"),
     "∂L/∂γ: summed over the wrong axis"),
    ("gamma-beta-wrong-axis", "LayerNorm", NORM.format(a=1).replace("axis=0)", "axis=1)"),
     "γ and β hold one number per feature"),
    ("layernorm-stats-constant", "LayerNorm", "return g * gamma / std, (g * xhat).sum(axis=0), g.sum(axis=0)",
     "the row's mean μ and variance σ² are treated as constants"),
    ("layernorm-batch-axis", "LayerNorm", NORM.format(a=0), "as in BatchNorm"),
    ("softmax-row-term-missing", "Softmax", "return (g * s,)", "the row term − s ⊙ Σ(g ⊙ s) is missing"),
    ("softmax-diagonal-only", "Softmax", "return (g * s * (1 - s),)", "only the Jacobian's diagonal"),
    ("attention-scale-missing", "Attention", ATTENTION.replace(" / np.sqrt(d), ds.T", ", ds.T").replace(
        "ds.T @ q / np.sqrt(d)", "ds.T @ q"), "∂L/∂q: the 1/√d is missing"),
    ("attention-scale-missing", "Attention", ATTENTION.replace("/ np.sqrt(d)", ""), "the 1/√d is missing"),
    ("attention-mask-not-applied", "Attention", ATTENTION_NO_MASK, "the causal mask is not applied in backward"),
    ("attention-qk-swapped", "Attention", ATTENTION.replace(
        "return ds @ k / np.sqrt(d), ds.T @ q / np.sqrt(d)", "return ds.T @ q / np.sqrt(d), ds @ k / np.sqrt(d)"),
     "∂L/∂q and ∂L/∂k are swapped"),
    ("embedding-repeats-lost", "Embedding", "dW = np.zeros(shape)\n        dW[indices] = g\n        return (dW,)",
     "dW[indices] = g (or dW[indices] += g)"),
    ("embedding-repeats-lost", "Embedding", "dW = np.zeros(shape)\n        dW[indices] += g\n        return (dW,)",
     "np.add.at(dW, indices, g)"),
    ("conv-kernel-not-flipped", "Conv2d", CONV.replace("g[:, :, i, j], w)", "g[:, :, i, j], w[:, :, ::-1, ::-1])"),
     "the kernel is not flipped"),
    ("conv-stride-forgotten", "Conv2d", CONV.replace(
        "dxp[:, :, rows, cols] +=", "dxp[:, :, i:i + kh, j:j + kw] +="), "the stride is forgotten"),
    ("conv-padding-not-cropped", "Conv2d", CONV.replace("dxp[:, :, padding:padding + H, padding:padding + W]", "dxp"),
     "the padding is not cropped"),
    ("maxpool-gradient-everywhere", "MaxPool2d", MAXPOOL.replace("+= at_max * g", "+= g"),
     "the gradient is sent to every position of the window"),
    ("rnn-hidden-gradient-not-carried", "RNN", RNN.replace("(g[t] + dh)", "g[t]"),
     "the hidden state's gradient is not carried to the step before"),
    ("rnn-tanh-derivative-wrong-tensor", "RNN", RNN_DERIVATIVE.format(h="prev"), "tanh′ is taken from the wrong"),
    ("rnn-tanh-derivative-wrong-tensor", "RNN", RNN_DERIVATIVE.format(h="a[t]"),
     "1 − h_t²"),
    ("rnn-tanh-derivative-wrong-tensor", "RNN", RNN_DERIVATIVE.format(h="np.tanh(hs[t])"), "from the wrong tensor"),
    ("dropout-not-rescaled", "Dropout", "return (g * mask,)", "the mask is not rescaled by 1/(1 − p)"),
]


@pytest.mark.parametrize("key,name,code,says", PLANTED2, ids=[f"{k}-{i}" for i, (k, *_) in enumerate(PLANTED2)])
def test_each_named_mistake_gets_its_diagnosis(tmp_path, key, name, code, says):
    r = grade(fill2(tmp_path, {**ANSWERS2, f"{name}.backward": code}), name)
    assert (r["passed"], r["diagnosis"]) == (False, key), r
    assert says in r["message"], r["message"]


def test_every_mistake_of_part_two_is_planted_and_worded_in_both_languages():
    assert {k for k, *_ in PLANTED2} == set(PART_TWO) <= set(KEYS)
    catalogue = messages.catalogue("exercises")
    for key in PART_TWO:
        assert set(catalogue[f"mistake.{key}"]) == set(messages.LANGUAGES)


def test_a_mistake_is_named_in_vietnamese_too(tmp_path):
    r = grade(fill2(tmp_path, {**ANSWERS2, "Dropout.backward": "return (g * mask,)"}, "vi"), "Dropout", "vi")
    assert r["diagnosis"] == "dropout-not-rescaled"
    assert r["message"].startswith("∂L/∂x: mặt nạ chưa được nhân với 1/(1 − p)")


def test_a_wrong_shape_names_the_shape_the_gradient_must_have(tmp_path):
    r = grade(solved2(tmp_path, Embedding__backward="return (g.sum(axis=0),)"), "Embedding")
    assert r["diagnosis"] == "wrong-shape"
    assert re.search(r"∂L/∂W must have the shape of W, V×D = \d×\d; given W \(\d, \d\), indices \(\d, \d\)",
                     r["message"]), r["message"]


def test_calling_the_librarys_own_rule_is_named(tmp_path):
    code = ('from tinygrad_edu import ops as library\n        self.attrs["axis"] = -1\n'
            "        return library.Softmax.backward(self, g)")
    r = grade(solved2(tmp_path, Softmax__backward=code), "Softmax")
    assert (r["passed"], r["diagnosis"]) == (False, "library-op"), r
    assert r["message"].startswith("Softmax calls the library's own Softmax.backward")


def test_the_part_two_workbook_ships_no_solution(tmp_path):
    assert main(["exercises", "start", str(tmp_path / "wb"), "--part", "2"]) == 0
    assert sorted(p.name for p in (tmp_path / "wb").iterdir()) == ["README.md", "layers.py"]
    code = (tmp_path / "wb" / "layers.py").read_text()
    assert code.count("raise NotImplementedError") == len(NAMES2)
    for answer in ANSWERS2.values():   # each answer's return, and the accumulating calls
        assert answer.splitlines()[-1].strip() not in code
    for line in ("np.add.at", "+= np.einsum", "da = (g[t] + dh)", "ds = p * (dp"):
        assert line not in code


@pytest.mark.parametrize("lang,words", [("en", "## The order"), ("vi", "## Thứ tự làm bài")])
def test_the_readme_has_a_section_per_exercise_with_its_forward_shapes_and_hint(tmp_path, lang, words):
    readme = workbook.template("README.md", lang, part=2)
    assert readme.startswith(f"<!-- tinygrad-edu workbook: lang={lang} part=2 -->\n") and words in readme
    sections = re.findall(r"^### (\w+)\n(.*?)(?=^##)", readme + "\n##", re.M | re.S)
    assert [n for n, _ in sections] == NAMES2
    for name, body in sections:
        for part in (("Forward", "Shapes", "Hint") if lang == "en" else ("Forward", "Kích thước", "Gợi ý")):
            assert f"**{part}" in body, (name, part)


# --- the command line: start --part 2, check reads the part ---------------------------------------------


def test_check_reads_the_part_from_the_workbook(tmp_path, capsys):
    folder = tmp_path / "wb"
    assert main(["exercises", "start", str(folder), "--part", "2"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote a part-two workbook in {folder}: layers.py and README.md")
    assert workbook.part(folder) == 2
    before = snapshot(folder)
    code, out = run_check(capsys, folder, "--json")
    assert code == 1
    records = json.loads(out)
    assert [r["name"] for r in records] == NAMES2
    assert {r["diagnosis"] for r in records} == {"not-done"}
    assert snapshot(folder) == before


def test_a_solved_part_two_workbook_passes_and_a_mistake_is_named(tmp_path, capsys):
    folder = solved2(tmp_path / "wb", Softmax__backward="return (g * s,)")
    code, out = run_check(capsys, folder)
    assert code == 1
    lines = out.splitlines()
    assert [line.split()[:2] for line in lines[:len(NAMES2)]] == [
        ["✗" if n == "Softmax" else "✓", n] for n in NAMES2]
    assert lines[-1].startswith(f"{len(NAMES2) - 1} of {len(NAMES2)} done.")
    code, out = run_check(capsys, folder, "Softmax", "Dropout", "--json")
    assert [(r["name"], r["diagnosis"]) for r in json.loads(out)] == [
        ("Softmax", "softmax-row-term-missing"), ("Dropout", None)]


def test_part_one_names_are_not_part_twos(tmp_path, capsys):
    folder = solved2(tmp_path / "wb")
    assert main(["exercises", "check", str(folder), "Add"]) == 2
    assert "no exercise named Add; the exercises are BatchNorm, LayerNorm, " in capsys.readouterr().err


def test_without_its_readme_a_part_two_workbook_is_still_part_two(tmp_path):
    folder = solved2(tmp_path / "wb")
    (folder / "README.md").unlink()
    assert workbook.part(folder) == 2
    assert workbook.part(tmp_path) == 1


def test_start_refuses_a_folder_holding_either_parts_workbook(tmp_path, capsys):
    folder = solved2(tmp_path / "wb")
    assert main(["exercises", "start", str(folder)]) == 2
    assert "already holds a workbook (README.md, layers.py)" in capsys.readouterr().err


def test_start_in_vietnamese_writes_every_comment_of_layers_in_vietnamese(tmp_path):
    from test_exercises_doctor import prose

    assert main(["exercises", "start", str(tmp_path / "wb"), "--lang", "vi", "--part", "2"]) == 0
    en, vi = workbook.template("layers.py", "en"), (tmp_path / "wb" / "layers.py").read_text()
    assert workbook.language(tmp_path / "wb") == "vi" and workbook.part(tmp_path / "wb") == 2
    code = [line for line in en.splitlines() if "#" not in line and '"""' not in line and line.startswith("        ")]
    assert code == [line for line in vi.splitlines() if "#" not in line and '"""' not in line
                    and line.startswith("        ")]
    assert len(prose(vi)) == len(prose(en)) > 10
    for text in prose(en):
        english = re.search(r"\b(the|and|of|is|a|an|one|each|with|from|for|Return)\b", text)
        assert not english or text.strip() not in vi, text


# answers written independently of the reference ones: the same verdict
OTHER_ANSWERS2 = {
    "Softmax.backward": "J = np.einsum('rj,ji->rji', s, np.eye(s.shape[1])) - np.einsum('rj,ri->rji', s, s)\n"
                        "        return (np.einsum('rj,rji->ri', g, J),)",
    "Embedding.backward": "one_hot = np.eye(shape[0])[indices.reshape(-1)]\n"
                          "        return (one_hot.T @ g.reshape(-1, shape[1]),)",
    "MaxPool2d.backward": "dx = np.zeros(x.shape)\n"
                          "        for n, c, i, j in np.ndindex(*g.shape):\n"
                          "            window = x[n, c, i * s:i * s + k, j * s:j * s + k]\n"
                          "            p, q = np.unravel_index(np.argmax(window), window.shape)\n"
                          "            dx[n, c, i * s + p, j * s + q] += g[n, c, i, j]\n"
                          "        return (dx,)",
    "Dropout.backward": "return (np.where(mask > 0, g / (1 - p), 0.0),)",
    "BatchNorm.backward": BN_STAGED.format(n="N"),
}


@pytest.mark.parametrize("answer", sorted(OTHER_ANSWERS2))
def test_a_correct_answer_written_another_way_passes(tmp_path, answer):
    r = grade(fill2(tmp_path, {**ANSWERS2, answer: OTHER_ANSWERS2[answer]}), answer.split(".")[0])
    assert r["passed"], r


def test_the_child_gets_the_inputs_only_never_a_gradient_right_or_wrong():
    cases = {n: cases_of(n)[:3] for n in NAMES2}
    text = json.dumps(grading.requests(cases))
    for cs in cases.values():
        for c in cs:
            assert set(c.request) == {"op", "inputs", "kwargs", "wants", "g"}
            for g in c.gradients:
                assert child.wire.encode(g.expected)["data"] not in text
                for wrong in g.ing.values():
                    for w in wrong if isinstance(wrong, list) else [wrong]:
                        if isinstance(w, np.ndarray) and w.size > 1:
                            assert child.wire.encode(w)["data"] not in text
