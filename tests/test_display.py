"""viz's rich display for notebooks: the graph as SVG with Graphviz and as text without it, tables as text and HTML."""
import io
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_edu import comparison, tutorial, viz
from tinygrad_edu.cli import main
from tinygrad_edu.tensor import Tensor
from tinygrad_edu.viz.display import NO_GRAPHVIZ, Report, Table, format_table


def tutorial_loss(m=4, seed=0, backward=True):
    rng = np.random.default_rng(seed)
    X = Tensor(rng.random((784, m)).astype(np.float32), name="X")
    Y = Tensor(rng.integers(0, 10, m), name="Y")
    loss = tutorial.forward_prop(tutorial.init_params(seed), X, Y).loss
    if backward:
        loss.backward()
    return loss


@pytest.fixture
def no_graphviz(monkeypatch, tmp_path):
    """Graphviz hidden: no `dot` on PATH and no graphviz Python package."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "graphviz", None)
    assert shutil.which("dot") is None


# --- the graph ----------------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_graph_shows_as_svg_drawn_by_graphviz_with_the_text_tree_beside_it():
    loss = tutorial_loss()
    bundle = viz.graph(loss)._repr_mimebundle_()
    assert set(bundle) == {"image/svg+xml", "text/plain"}
    svg = bundle["image/svg+xml"]
    assert svg.lstrip().startswith("<?xml") and svg.rstrip().endswith("</svg>")
    for label in ("W1", "b1", "Z1", "A1", "W2", "b2", "Z2", "softmax_cross_entropy axis=0", "W1·X"):
        assert f">{label}</text>" in svg, label
    assert bundle["text/plain"] == viz.format_graph(loss)


def test_graph_without_graphviz_shows_the_text_tree_and_says_why(no_graphviz):
    loss = tutorial_loss()
    g = viz.graph(loss)
    assert g.svg() is None
    assert g._repr_mimebundle_() == {"text/plain": viz.format_graph(loss) + "\n" + NO_GRAPHVIZ}
    assert repr(g) == viz.format_graph(loss)


def test_graph_when_dot_fails_falls_back_to_text(monkeypatch, tmp_path):
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho 'Error: syntax error in line 1' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "graphviz", None)
    bundle = viz.graph(tutorial_loss())._repr_mimebundle_()
    assert list(bundle) == ["text/plain"] and bundle["text/plain"].endswith(NO_GRAPHVIZ)


def test_graph_is_a_snapshot_and_checks_rankdir_at_once():
    loss = tutorial_loss(backward=False)
    before = viz.graph(loss, rankdir="LR")
    assert "rankdir=LR;" in before.dot and "∂L/∂" not in before.text
    loss.backward()
    assert "∂L/∂" not in before.text and "∂L/∂" in viz.graph(loss).text
    with pytest.raises(ValueError, match="rankdir must be TB, BT, LR or RL"):
        viz.graph(loss, rankdir="sideways")
    with pytest.raises(TypeError, match="expected a Tensor"):
        viz.graph(np.ones(3))


def test_tensor_repr_stays_plain_and_the_core_never_imports_viz():
    for name in ("_repr_html_", "_repr_svg_", "_repr_mimebundle_", "_repr_png_"):
        assert not hasattr(Tensor, name)
    code = ("import sys, tinygrad_edu, tinygrad_edu.tensor, tinygrad_edu.autograd, tinygrad_edu.ops; "
            "print(sorted(m for m in sys.modules if m.startswith('tinygrad_edu.viz')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


# --- tables -------------------------------------------------------------------------------------------------


def test_table_prints_as_the_commands_tables_and_shows_as_escaped_html():
    t = Table(["op", "max|a − b|"], [["a<b & c", 1.5], ["relu", "2.00e-16"]])
    assert str(t) == format_table(["op", "max|a − b|"], [["a<b & c", "1.5"], ["relu", "2.00e-16"]])
    assert str(t).splitlines() == ["op       max|a − b|", "-------  ----------", "a<b & c  1.5",
                                   "relu     2.00e-16"]
    assert t._repr_html_() == (
        '<table><thead><tr><th style="text-align: left">op</th><th style="text-align: left">max|a − b|</th></tr>'
        '</thead><tbody><tr><td style="text-align: left">a&lt;b &amp; c</td><td style="text-align: left">1.5</td>'
        '</tr><tr><td style="text-align: left">relu</td><td style="text-align: left">2.00e-16</td></tr></tbody>'
        '</table>')
    with pytest.raises(ValueError, match=r"a row has 1 cells for 2 headers: \['x'\]"):
        Table(["a", "b"], [["x"]])


def test_report_joins_blocks_with_a_blank_line_and_keeps_a_tuple_together():
    t = Table(["a", "b"], [["1", "2"]])
    r = Report(["title", t, (t, "  indented\nnext"), "end"])
    assert str(r) == f"title\n\n{t}\n\n{t}\n  indented\nnext\n\nend"
    html = r._repr_html_()
    assert html.count("<table>") == 2 and html.startswith("<div><p") and html.endswith("</div>")
    assert '<p style="white-space: pre-wrap">  indented\nnext</p>' in html


def test_comparison_prints_exactly_what_the_compare_command_prints(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TINYGRAD_EDU_DATA", str(tmp_path))      # an empty folder: synthetic digits
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert main(["compare", "--batch-size", "300", "--as-published"]) == 0
    printed = capsys.readouterr().out
    images, labels, source, note = comparison.load_digits(n_synthetic=600, seed=0)
    report = comparison.compare(images, labels, 300, as_published=True, source=source, note=note)
    assert printed == str(report) + "\n"
    assert report.failed == [] and [r.quantity for r in report.rows] == list(comparison.QUANTITIES)
    assert all(r.rel_error <= 1e-10 for r in report.rows)


def test_comparison_shows_as_html_tables_and_names_what_failed():
    images, labels = comparison.synthetic_digits(400)
    report = comparison.compare(images, labels, 200, as_published=True)
    html = report._repr_html_()
    assert html.count("<table>") == 2 and html.count(">ok</td>") == 6
    assert "ValueError, below" in html and "operands could not be broadcast together" in html
    report.rows[4] = report.rows[4]._replace(rel_error=2e-10)
    assert report.failed == ["dW1"]
    assert ">FAIL</td>" in report._repr_html_()
    assert "FAIL: dW1 above 1e-10: the hand derivation and autograd disagree." in str(report)
    with pytest.raises(ValueError, match="dtype must be one of float64, float32, got float16"):
        comparison.compare(images, labels, 10, dtype="float16")


def test_float32_comparison_uses_its_own_tolerance():
    images, labels = comparison.synthetic_digits(100)
    report = comparison.compare(images, labels, 50, dtype=np.float32)
    assert report.tolerance == 1e-5 and report.dtype == "float32" and "All 6 rows within 1e-05" in str(report)


# --- the trace and the plots ------------------------------------------------------------------------------------


def test_trace_shows_its_lines_as_an_html_table():
    loss = tutorial_loss(backward=False)
    with viz.trace(file=io.StringIO()) as tr:
        loss.backward()
    table = tr.table()
    assert table.headers == ["node", "rule", "op", "shape", "norm"]
    assert len(table.rows) == len(tr.gradients) == 9
    assert table.rows[0][:4] == ["L", "∂L/∂Z2 = ∂L/∂L · (softmax(Z2) − onehot(Y))/m", "softmax_cross_entropy",
                                 "(10, 4)"]
    html = tr._repr_html_()
    assert html.count("<tr>") == 10 and "∂L/∂Z1 += ∂L/∂A1 ⊙ [Z1 &gt; 0]" in html


def test_plots_without_a_path_return_the_figure_and_write_nothing(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    labels, predictions = rng.integers(0, 10, 50), rng.integers(0, 10, 50)
    figures = [viz.plot_curves([{"step": 1, "loss": 2.0, "train_accuracy": 0.1}, {"step": 2, "loss": 1.0}]),
               viz.plot_weights(rng.normal(size=(3, 784))),
               viz.plot_misclassified(rng.integers(0, 256, (50, 28, 28)), labels, predictions),
               viz.plot_confusion(labels, predictions)]
    assert all(isinstance(f, Figure) for f in figures)
    assert [tuple(f.get_size_inches() * f.dpi) for f in figures[:1]] == [(1000.0, 400.0)]
    assert list(tmp_path.iterdir()) == []
    written = viz.plot_confusion(labels, predictions, tmp_path / "c.png")
    assert written == tmp_path / "c.png" and written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
