"""The `compare` and `gradcheck` commands: their tables, exit codes and errors, run through cli.main."""
import re

import numpy as np
import pytest

from tinygrad_edu import ops
from tinygrad_edu.cli import main
from tinygrad_edu.comparison import QUANTITIES
from tinygrad_edu.opspecs import REGISTRY


@pytest.fixture
def no_mnist(monkeypatch, tmp_path, no_bundled):
    """Nowhere to find MNIST (the bundled copy hidden): compare falls back to synthetic digits."""
    monkeypatch.setenv("TINYGRAD_EDU_DATA", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))




def gradient_rows(out: str) -> dict:
    """{quantity: (max abs, normwise rel, check)} from compare's main table."""
    main_table = out.split("as published")[0]
    rows = re.findall(r"^(d[ZWb][12]) .*?(\S+)  +(\S+)  +(ok|FAIL)$", main_table, flags=re.M)
    return {name: (float(a), float(r), check) for name, a, r, check in rows}


def published_rows(out: str) -> list[list[str]]:
    table = out.split("as published")[1]
    return [re.split(r"  +", line) for line in table.splitlines() if re.match(r"d[ZWb][12] ", line)]


# --- compare -------------------------------------------------------------------------------------------


def test_compare_on_synthetic_digits_says_so_and_agrees(no_mnist, capsys):
    assert main(["compare", "--batch-size", "300"]) == 0
    out = capsys.readouterr().out
    assert "note: MNIST not found" in out and "300 columns of the synthetic digits" in out
    rows = gradient_rows(out)
    assert list(rows) == list(QUANTITIES)
    assert all(rel <= 1e-10 and check == "ok" for _, rel, check in rows.values())
    assert "All 6 rows within 1e-10" in out


def test_compare_on_real_mnist_agrees_to_1e_10(mnist, capsys):
    assert main(["compare"]) == 0
    out = capsys.readouterr().out
    assert "1000 columns of the MNIST training set" in out and "note:" not in out
    rows = gradient_rows(out)
    assert list(rows) == list(QUANTITIES)
    assert all(rel <= 1e-10 for _, rel, _ in rows.values())
    assert "(10, 784)" in out   # dW1's shape, with the 67 always-blank pixels' columns exactly 0


def test_compare_in_float32_uses_float32_tolerance(no_mnist, capsys):
    assert main(["compare", "--batch-size", "200", "--dtype", "float32"]) == 0
    out = capsys.readouterr().out
    rels = [rel for _, rel, _ in gradient_rows(out).values()]
    assert "float32, 200 columns" in out and "All 6 rows within 1e-05" in out
    assert max(rels) <= 1e-5 and max(rels) > 1e-9   # float32's round-off, not float64's


def test_compare_as_published_shows_each_bug_and_still_exits_0(no_mnist, capsys):
    assert main(["compare", "--batch-size", "300", "--as-published"]) == 0
    out = capsys.readouterr().out
    rows = published_rows(out)
    by_code = {(r[0], r[1]): r for r in rows}
    # db summed over the whole layer: one number, far from the per-unit truth
    for name, dZ in (("db2", "dZ2"), ("db1", "dZ1")):
        _, _, shape, _, rel = by_code[(name, f"1/m * np.sum({dZ}): no axis, one number")]
        assert shape == "()" and float(rel) > 0.1
    # m from 42,000 rows while training on 41,000 columns: every gradient off by exactly 1 − 41/42
    m_rows = [r for r in rows if r[1] == "m = 42000, trained on 41000 columns"]
    assert [r[0] for r in m_rows] == ["dW2", "db2", "dW1", "db1"]
    assert all(float(r[4]) == pytest.approx(1 / 42, rel=1e-2) for r in m_rows)
    # one_hot sized by Y.max() + 1 on a batch without a 9: the shape error the published code raises
    (onehot,) = [r for r in rows if r[0] == "dZ2"]
    assert onehot[-1] == "ValueError, below"
    assert ("dZ2, one_hot sized Y.max() + 1, batch without a 9 (300 columns), raises:\n"
            "    ValueError: operands could not be broadcast together with shapes (10,300) (9,300)\n") in out
    assert "Comparing with autograd is the instrument that catches such bugs" in out
    assert all(check == "ok" for _, _, check in gradient_rows(out).values())


def test_compare_fails_when_an_op_backward_is_wrong(no_mnist, capsys, monkeypatch):
    monkeypatch.setattr(ops.ReLU, "backward", lambda self, g: (g,))   # forgets ⊙ ReLU′(Z1)
    assert main(["compare", "--batch-size", "200"]) == 1
    out = capsys.readouterr().out
    checks = {name: check for name, (_, _, check) in gradient_rows(out).items()}
    assert checks == {"dZ2": "ok", "dW2": "ok", "db2": "ok", "dZ1": "FAIL", "dW1": "FAIL", "db1": "FAIL"}
    assert "FAIL: dZ1, dW1, db1 above 1e-10" in out


def test_compare_rejects_a_bad_batch_size(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--batch-size", "0"])
    assert exit_info.value.code == 2
    assert "--batch-size: expected an integer ≥ 1, got '0'" in capsys.readouterr().err


def test_compare_rejects_a_batch_larger_than_the_data(mnist, capsys):
    assert main(["compare", "--batch-size", "60001"]) == 2
    assert "--batch-size 60001 is more than the 60000 images of the MNIST training set" in capsys.readouterr().err


# --- gradcheck -----------------------------------------------------------------------------------------


def gradcheck_rows(out: str) -> dict:
    """{op: [result, max abs, normwise rel, shapes]} from gradcheck's table."""
    rows = {}
    for line in out.splitlines():
        cells = re.split(r"  +", line)
        if cells[0] in REGISTRY and len(cells) == 5:
            rows[cells[0]] = cells[1:]
    return rows


def test_gradcheck_passes_every_registered_op(capsys):
    assert main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    rows = gradcheck_rows(out)
    assert list(rows) == list(REGISTRY)
    assert all(r[0] == "PASS" and float(r[1]) < 1e-5 and len(r[3].split("; ")) == 5 for r in rows.values())
    assert f"All {len(REGISTRY)} ops pass" in out


def test_gradcheck_fails_an_op_whose_backward_is_broken(capsys, monkeypatch):
    monkeypatch.setattr(ops.Tanh, "backward", lambda self, g: (g * (1 + self.saved[0] ** 2),))   # sign slip
    assert main(["gradcheck", "tanh", "exp", "--trials", "2"]) == 1
    out = capsys.readouterr().out
    rows = gradcheck_rows(out)
    assert rows["tanh"][0] == "FAIL" and float(rows["tanh"][1]) > 1e-3
    assert rows["exp"][0] == "PASS"
    assert re.search(r"^  tanh: gradcheck: input 0 of shape \(.*\), element .*: backward gives", out, re.M)


def test_gradcheck_fails_an_op_whose_backward_raises(capsys, monkeypatch):
    def backward(self, g):
        raise RuntimeError("not written yet")
    monkeypatch.setattr(ops.Exp, "backward", backward)
    assert main(["gradcheck", "exp", "--trials", "1"]) == 1
    out = capsys.readouterr().out
    assert gradcheck_rows(out)["exp"][:3] == ["FAIL", "nan", "nan"]
    assert "  exp: RuntimeError: not written yet" in out


def test_gradcheck_checks_an_op_on_the_same_examples_alone_or_with_all(capsys):
    main(["gradcheck"])
    everything = gradcheck_rows(capsys.readouterr().out)
    main(["gradcheck", "matmul"])
    assert gradcheck_rows(capsys.readouterr().out)["matmul"] == everything["matmul"]


def test_gradcheck_names_the_valid_ops_for_an_unknown_one(capsys):
    assert main(["gradcheck", "tanh", "softmaxx"]) == 2
    err = capsys.readouterr().err
    assert "tinygrad-edu gradcheck: error: unknown op 'softmaxx'; the ops are: add, sub, mul" in err
    assert all(name in err for name in REGISTRY)


def test_shapes_column_shows_broadcasting_pairs(capsys):
    main(["gradcheck", "add", "--trials", "20"])
    shapes = gradcheck_rows(capsys.readouterr().out)["add"][3].split("; ")
    pairs = [re.findall(r"\([\d,]*\)", s) for s in shapes]
    assert any(len(p) == 2 and p[0] != p[1] for p in pairs)
    assert np.all([len(p) == 2 for p in pairs])
