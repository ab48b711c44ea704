"""tinygrad_edu.viz: the DOT graph, the text tree, the backward trace, the plots, and the explain/plot commands."""
import io
import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import HypothesisChooser

from tinygrad_edu import autograd, checkpoint, opspecs, training, tutorial, viz
from tinygrad_edu.cli import main
from tinygrad_edu.tensor import Tensor

M = 4  # examples in the tiny batch


def tutorial_graph(m=M, seed=0):
    """The tutorial's network on m random images, before backward: (params, Forward)."""
    rng = np.random.default_rng(seed)
    X = Tensor(rng.random((784, m)).astype(np.float32), name="X")
    Y = Tensor(rng.integers(0, 10, m), name="Y")
    params = tutorial.init_params(seed)
    return params, tutorial.forward_prop(params, X, Y)


def renamed_graph(m=M, seed=0):
    """The same network, written out with other names: H_pre, H, logits, J."""
    rng = np.random.default_rng(seed)
    X = Tensor(rng.random((784, m)).astype(np.float32), name="pixels")
    U, c, V, d = (Tensor(p.data, requires_grad=True, name=n)
                  for p, n in zip(tutorial.init_params(seed), ("U", "c", "V", "d")))
    H_pre = U @ X + c
    H_pre.name = "H_pre"
    H = H_pre.relu()
    H.name = "H"
    logits = V @ H + d
    logits.name = "logits"
    J = logits.softmax_cross_entropy(rng.integers(0, 10, m), axis=0)
    J.name = "J"
    return J


def traced(loss):
    out = io.StringIO()
    with viz.trace(file=out) as tr:
        loss.backward()
    return tr, out.getvalue()


# --- DOT -------------------------------------------------------------------------------------------------------

NODE = re.compile(r'^\s*(n\d+) \[label="((?:[^"\\]|\\.)*)"(.*)\];$')
EDGE = re.compile(r"^\s*(n\d+) -> (n\d+)( \[label=\"[ab]\"\])?;$")


def parse_dot(text):
    """(nodes id -> label lines, edges [(from, to)]); fails on any line that is neither."""
    lines = text.strip().splitlines()
    assert lines[0] == "digraph tinygrad_edu {" and lines[-1] == "}"
    nodes, edges = {}, []
    for line in lines[1:-1]:
        if (mo := NODE.match(line)):
            assert mo.group(1) not in nodes, f"node declared twice: {line}"
            nodes[mo.group(1)] = mo.group(2).split("\\n")
        elif (mo := EDGE.match(line)):
            edges.append((mo.group(1), mo.group(2)))
        else:
            assert re.match(r"^\s*(rankdir=\w+|node \[.*\]|edge \[.*\]);$", line), f"unexpected DOT line: {line}"
    return nodes, edges


def test_dot_is_well_formed_and_names_the_tutorial_nodes():
    _, fwd = tutorial_graph()
    nodes, edges = parse_dot(viz.to_dot(fwd.loss))
    assert all(a in nodes and b in nodes for a, b in edges)
    # 12 tensors: W1, X, W1·X, b1, Z1, A1, W2, W2·A1, b2, Z2, the labels, L; one edge per op input
    assert len(nodes) == 12 and len(edges) == 11
    names = {lines[0]: lines for lines in nodes.values()}
    assert {"W1", "b1", "W2", "b2", "X", "Z1", "A1", "Z2", "L", "W1·X", "W2·A1", "Y"} <= names.keys()
    assert names["Z1"][1:3] == ["add", "(10, 4) float32"]
    assert names["L"][1:3] == ["softmax_cross_entropy axis=0", "() float32"]
    assert names["W1"][1:3] == ["leaf", "(10, 784) float32"]
    assert not any(line.startswith("∂L/∂") for lines in nodes.values() for line in lines)  # no backward yet


def test_dot_shows_gradient_shapes_after_backward():
    _, fwd = tutorial_graph()
    fwd.loss.backward()
    nodes, _ = parse_dot(viz.to_dot(fwd.loss))
    names = {lines[0]: lines for lines in nodes.values()}
    assert names["W1"][-1] == "∂L/∂W1: (10, 784)"
    assert names["b2"][-1] == "∂L/∂b2: (10, 1)"
    assert names["Z2"][-1] == "∂L/∂Z2: (10, 4)"     # the tutorial retains Z1's and Z2's gradients
    assert names["A1"][-1] == "(10, 4) float32"     # A1 keeps none


def test_dot_labels_are_stable_and_escaped():
    a = Tensor([1.0, 2.0], requires_grad=True, name='say "hi" \\ bye')
    y = (a * a + 0.5).sum()
    text = viz.to_dot(y)
    assert text == viz.to_dot(y)
    nodes, edges = parse_dot(text)
    labels = [lines[0] for lines in nodes.values()]
    # a (1), a·a (2), the constant 0.5 (3), + (4), sum (5): a shared input is one node with two edges
    assert labels == ['say \\"hi\\" \\\\ bye', "mul#2", "0.5", "add#4", "sum#5"]
    assert edges.count(("n1", "n2")) == 2


def test_render_writes_a_picture_where_graphviz_is_present(tmp_path):
    if shutil.which("dot") is None:   # the graphviz Python package needs it too
        pytest.skip("Graphviz's dot program is not installed")
    _, fwd = tutorial_graph()
    svg = viz.render(fwd.loss, tmp_path / "graph.svg")
    text = svg.read_text()
    assert "<svg" in text and ">Z2<" in text and ">W1·X<" in text
    assert viz.render(fwd.loss, tmp_path / "graph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_without_graphviz_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    _, fwd = tutorial_graph()
    with pytest.raises(RuntimeError, match=r"apt-get install graphviz.*to_dot"):
        viz.render(fwd.loss, tmp_path / "graph.svg")
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match=r"\.svg, \.png, \.pdf"):
        viz.render(fwd.loss, tmp_path / "graph.jpg")


def test_print_graph_draws_the_tree():
    _, fwd = tutorial_graph()
    out = io.StringIO()
    viz.print_graph(fwd.loss, file=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "L = softmax_cross_entropy axis=0  () float32"
    assert lines[1] == "├─ Z2 = add  (10, 4) float32"
    assert "│  │        │  ├─ W1  (10, 784) float32  leaf, requires grad" in lines
    assert lines[-1] == "└─ Y  (4,) int64"
    a = Tensor([3.0], requires_grad=True, name="a")
    assert viz.format_graph(a * a).splitlines() == ["a ⊙ a = mul  (1,) float32",
                                                    "├─ a  (1,) float32  leaf, requires grad",
                                                    "└─ a (see above)"]


# --- the trace ---------------------------------------------------------------------------------------------------


def test_trace_lists_every_gradient_in_backward_order():
    params, fwd = tutorial_graph()
    tr, text = traced(fwd.loss)
    got = [(g.node, g.op, g.input, g.shape) for g in tr.gradients]
    assert got == [
        ("L", "softmax_cross_entropy", "Z2", (10, M)),
        ("Z2", "add", "W2·A1", (10, M)), ("Z2", "add", "b2", (10, 1)),
        ("W2·A1", "matmul", "W2", (10, 10)), ("W2·A1", "matmul", "A1", (10, M)),
        ("A1", "relu", "Z1", (10, M)),
        ("Z1", "add", "W1·X", (10, M)), ("Z1", "add", "b1", (10, 1)),
        ("W1·X", "matmul", "W1", (10, 784)),   # X needs no gradient, so gets no line
    ]
    rules = [g.rule for g in tr.gradients]
    assert rules[0].startswith("∂L/∂Z2 = ∂L/∂L · (softmax(Z2) − onehot(")
    assert rules[2] == "∂L/∂b2 += Σ over axis 1 of ∂L/∂Z2"
    assert rules[3] == "∂L/∂W2 += ∂L/∂(W2·A1) · A1ᵀ"
    assert rules[4] == "∂L/∂A1 += W2ᵀ · ∂L/∂(W2·A1)"
    assert rules[5] == "∂L/∂Z1 += ∂L/∂A1 ⊙ [Z1 > 0]"
    assert rules[8] == "∂L/∂W1 += ∂L/∂(W1·X) · Xᵀ"
    norms = {g.input: g.norm for g in tr.gradients}
    for p in params:
        assert norms[p.name] == pytest.approx(float(np.linalg.norm(p.grad)), rel=1e-6)
    assert norms["Z2"] == pytest.approx(float(np.linalg.norm(fwd.Z2.grad)), rel=1e-6)
    # printed: the header once, each node, each rule with the op, its shape and norm
    assert text.count("Backward trace") == 1 and "the tutorial's dZ divided by m" in text
    assert "Z1 = add(W1·X, b1)  (10, 4) float32" in text
    assert re.search(r"∂L/∂b2 \+= Σ over axis 1 of ∂L/∂Z2 +\[add\] +\(10, 1\) +‖[0-9.]+‖", text)


def test_trace_uses_the_graphs_own_names():
    tr, text = traced(renamed_graph())
    assert [g.input for g in tr.gradients] == ["logits", "V·H", "d", "V", "H", "H_pre", "U·pixels", "c", "U"]
    assert tr.gradients[2].rule == "∂J/∂d += Σ over axis 1 of ∂J/∂logits"
    assert tr.gradients[3].rule == "∂J/∂V += ∂J/∂(V·H) · Hᵀ"
    assert tr.gradients[8].rule == "∂J/∂U += ∂J/∂(U·pixels) · pixelsᵀ"
    for old in ("Z1", "Z2", "A1", "W1", "b2"):
        assert old not in text


def test_trace_numbers_gradients_the_same_as_the_unrenamed_network():
    tr1, _ = traced(tutorial_graph()[1].loss)
    tr2, _ = traced(renamed_graph())
    assert [(g.shape, round(g.norm, 5)) for g in tr1.gradients] == [(g.shape, round(g.norm, 5)) for g in tr2.gradients]


def test_trace_header_once_over_several_backward_passes_and_hooks_removed():
    before = autograd.watchers.this_thread.watchers
    out = io.StringIO()
    with pytest.raises(RuntimeError, match="stop"), viz.trace(file=out) as tr:
        for seed in (0, 1):
            tutorial_graph(seed=seed)[1].loss.backward()
        raise RuntimeError("stop")
    assert autograd.watchers.this_thread.watchers == before
    text = out.getvalue()
    assert text.count("Backward trace") == 1 and text.count("backward from L ():") == 2
    assert len(tr.gradients) == 18


def test_trace_sums_in_rows_layout_and_leaves_matmul_and_reshape_alone():
    x = Tensor(np.ones((5, 3)), name="x")
    W = Tensor(np.ones((2, 3)), requires_grad=True, name="W")
    b = Tensor(np.zeros(2), requires_grad=True, name="b")
    u = Tensor(np.ones((3, 1)), requires_grad=True, name="u")
    v = Tensor(np.ones((1, 4)), requires_grad=True, name="v")
    r = Tensor(np.ones(3), requires_grad=True, name="r")
    y = x @ W.T + b                               # the rows layout: b is summed over the batch axis 0
    loss = y.sum() + (u @ v).sum() + r.reshape(1, 3).sum()
    tr, _ = traced(loss)
    rules = {g.input: g.rule for g in tr.gradients}
    assert rules["b"].endswith("+= Σ over axis 0 of ∂L/∂add#6")
    assert rules["u"] == "∂L/∂u += ∂L/∂(u·v) · vᵀ"         # (3,1)·(1,4): no broadcast, no Σ
    assert rules["r"] == "∂L/∂r += ∂L/∂reshape#14 reshaped back"


@given(data=st.data())
def test_trace_sum_axes_reproduce_the_gradient(data):
    c = HypothesisChooser(data)
    out_shape = opspecs.shape(c, min_dims=1)
    b_shape = opspecs.broadcast_partner(c, out_shape)
    a = Tensor(c.floats(out_shape, -1, 1), requires_grad=True, name="a")
    b = Tensor(c.floats(b_shape, -1, 1), requires_grad=True, name="b")
    w = c.floats(out_shape, -1, 1)
    tr, _ = traced(((a + b) * w).sum())
    (g,) = [g for g in tr.gradients if g.input == "b"]
    mo = re.fullmatch(r"∂L/∂b \+= (?:Σ over axis (\d+)|Σ over axes ([\d, ]+))? ?(?:of )?∂L/∂\(a \+ b\)", g.rule)
    assert mo, g.rule
    axes = tuple(int(a) for a in (mo.group(1) or mo.group(2) or "").replace(",", " ").split())
    assert (axes == ()) == (b_shape == out_shape)
    np.testing.assert_allclose(np.sum(w, axis=axes, keepdims=True).reshape(b_shape), b.grad)


# --- plots ------------------------------------------------------------------------------------------------------


def png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_importing_viz_does_not_import_matplotlib():
    code = "import sys, tinygrad_edu, tinygrad_edu.viz; print('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_plots_without_matplotlib_say_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ModuleNotFoundError, match=re.escape('pip install "tinygrad_edu[plot]"')):
        viz.plot_confusion([1, 2], [1, 2], tmp_path / "c.png")


HISTORY = [{"step": s, "loss": 2.3 / (1 + s / 50), "train_accuracy": 0.1 + s / 400, **({"test_accuracy": 0.1 + s / 420}
            if s % 100 == 0 else {})} for s in range(0, 301, 25)]


def test_plot_curves(tmp_path):
    pytest.importorskip("matplotlib")
    path = viz.plot_curves(HISTORY, tmp_path / "curves.png", test_accuracy=0.8)
    assert png_size(path) == (1000, 400) and path.stat().st_size > 10_000
    with pytest.raises(ValueError, match="history entry 1 must be a dict with 'step' and 'loss'"):
        viz.plot_curves([{"step": 0, "loss": 1.0}, {"step": 1}], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="the history is empty"):
        viz.plot_curves([], tmp_path / "bad.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png"]


def test_plot_weights(tmp_path):
    pytest.importorskip("matplotlib")
    W1 = np.random.default_rng(0).standard_normal((10, 784)).astype(np.float32)
    assert png_size(viz.plot_weights(W1, tmp_path / "w.png")) == (750, 400)        # 5 per line, 2 lines
    assert png_size(viz.plot_weights(W1[:3], tmp_path / "w3.png")) == (450, 225)   # 3 on one line
    assert png_size(viz.plot_weights(np.zeros((128, 784)), tmp_path / "w128.png")) == (1500, 925)  # 50: 10×5
    with pytest.raises(ValueError, match="784 = 28×28"):
        viz.plot_weights(np.zeros((10, 780)), tmp_path / "bad.png")


def test_plot_misclassified_and_confusion(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 30)
    predictions = labels.copy()
    predictions[[3, 7, 11, 20, 29]] = (labels[[3, 7, 11, 20, 29]] + 1) % 10
    assert png_size(viz.plot_misclassified(images, labels, predictions, tmp_path / "m.png")) == (625, 200)
    assert png_size(viz.plot_misclassified(images, labels, labels, tmp_path / "none.png")) == (125, 200)
    counts = viz.confusion_matrix(labels, predictions)
    assert counts.sum() == 30 and np.trace(counts) == 25
    for i in (3, 7, 11, 20, 29):
        assert counts[labels[i], predictions[i]] >= 1
    assert png_size(viz.plot_confusion(labels, predictions, tmp_path / "c.png")) == (650, 600)
    with pytest.raises(ValueError, match="labels must lie in 0..9"):
        viz.confusion_matrix([10], [1])


def fake_run(folder, rng):
    """A metrics.json and tutorial weights as `train` writes them, in folder."""
    arrays = {"W1": rng.standard_normal((10, 784)).astype(np.float32), "b1": np.zeros((10, 1), np.float32),
              "W2": rng.standard_normal((10, 10)).astype(np.float32), "b2": np.zeros((10, 1), np.float32)}
    checkpoint.save(folder / "weights.npz", arrays,
                    {"model": "tutorial", "sizes": [784, 10, 10], "dtype": "float32", "init": "tutorial"})
    metrics = {"history": HISTORY, "train_accuracy": 0.85, "test_accuracy": 0.84, "final_loss": 0.5,
               "config": {"dataset": "mnist"}, "weights": "weights.npz"}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return arrays


def test_plot_run_and_predict(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(1)
    arrays = fake_run(tmp_path, rng)
    images = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    pred = viz.predict(training.load_model(tmp_path / "weights.npz")[0], images)
    Z1 = arrays["W1"] @ (images.reshape(40, 784).T / np.float32(255)) + arrays["b1"]
    expected = np.argmax(arrays["W2"] @ np.maximum(Z1, 0) + arrays["b2"], axis=0)
    np.testing.assert_array_equal(pred, expected)
    model = training.TutorialNet(*arrays.values())        # a model still in memory, as `train --plot` has it
    np.testing.assert_array_equal(viz.predict(model, images), expected)
    labels = rng.integers(0, 10, 40)
    written = viz.plot_run(tmp_path / "metrics.json", out_dir=tmp_path / "plots", test_data=(images, labels),
                           load_model=training.load_model)
    assert [p.name for p in written] == ["curves.png", "weights.png", "misclassified.png", "confusion.png"]
    lines = -(-min(int(np.sum(expected != labels)), 24) // 8)     # 8 mistakes per line, at most 24 shown
    assert [png_size(p) for p in written] == [(1000, 400), (750, 400), (1000, 150 * lines + 50), (650, 600)]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    del metrics["weights"]
    written = viz.plot_run(metrics, out_dir=tmp_path / "mem", model=model, test_data=(images, labels))
    assert len(written) == 4


def test_plot_run_without_weights_draws_the_curves_only(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    written = viz.plot_run({"history": HISTORY}, out_dir=tmp_path)
    assert [p.name for p in written] == ["curves.png"]
    assert "only the curves" in capsys.readouterr().err


# --- the commands ----------------------------------------------------------------------------------------------


@pytest.fixture
def no_mnist(tmp_path, monkeypatch, no_bundled):
    monkeypatch.setenv("TINYGRAD_EDU_DATA", str(tmp_path / "nothing"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_explain_traces_a_tiny_batch(no_mnist, tmp_path, capsys):
    dot = tmp_path / "graph.dot"
    assert main(["explain", "--batch-size", "3", "--seed", "2", "--dot", str(dot)]) == 0
    out = capsys.readouterr().out
    assert "MNIST is not on disk" in out and "m = 3 random images" in out
    assert "∂L/∂W1 += ∂L/∂(W1·X) · Xᵀ" in out and "(10, 784)" in out
    diffs = [float(x) for x in re.findall(r"− d\w+ ([0-9.e+-]+)", out)]
    assert len(diffs) == 6 and max(diffs) < 1e-5
    nodes, _ = parse_dot(dot.read_text())
    assert "Z2" in {lines[0] for lines in nodes.values()}
    assert main(["explain", "--dot", str(dot)]) == 2
    assert f"tinygrad-edu explain: error: --dot {dot} exists; pass --force" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:   # argparse refuses it, as train refuses its own bad numbers
        main(["explain", "--batch-size", "0"])
    assert e.value.code == 2
    assert "tinygrad-edu explain: error: argument --batch-size: expected an integer ≥ 1, got '0'" in \
        capsys.readouterr().err


def test_explain_on_real_mnist(mnist, capsys):
    assert main(["explain", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "MNIST training images" in out and "∂L/∂b1 += Σ over axis 1 of ∂L/∂Z1" in out


def test_plot_command(no_mnist, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    fake_run(tmp_path, np.random.default_rng(0))
    out_dir = tmp_path / "plots"
    assert main(["plot", str(tmp_path / "metrics.json"), "--out", str(out_dir)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"wrote {out_dir / 'curves.png'}", f"wrote {out_dir / 'weights.png'}"]
    assert "no test set on disk" in captured.err
    before = (out_dir / "curves.png").read_bytes()
    assert main(["plot", str(tmp_path / "metrics.json"), "--out", str(out_dir)]) == 2   # the user's pictures stay
    assert "curves.png exists; pass --force to overwrite it" in capsys.readouterr().err
    assert (out_dir / "curves.png").read_bytes() == before
    assert main(["plot", str(tmp_path / "metrics.json"), "--out", str(out_dir), "--force"]) == 0
    assert main(["plot", str(tmp_path / "missing.json"), "--out", str(tmp_path / "empty")]) == 2
    assert "tinygrad-edu plot: error:" in (err := capsys.readouterr().err) and "no such metrics file" in err


def test_train_draws_its_pictures(mnist, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "pictures"
    assert main(["train", "--iterations", "3", "--quiet", "--no-download", "--plot", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["confusion.png", "curves.png", "misclassified.png",
                                                      "weights.png"]
    assert main(["train", "--iterations", "3", "--quiet", "--no-download", "--plot", str(out)]) == 2
    assert "pass --force" in capsys.readouterr().err


def test_dev_extra_includes_plot():
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    own = {name for req in extras["dev"] if req.startswith("tinygrad_edu[")
           for name in req[len("tinygrad_edu["):-1].split(",")}
    assert "plot" in own or set(extras["plot"]) <= set(extras["dev"])


def test_the_network_picture_shows_the_shapes_of_the_real_forward_pass():
    m, hidden = 3, 7
    params = tutorial.init_params(0, hidden=hidden)
    fwd = tutorial.forward_prop(params, np.zeros((784, m), np.float32), np.arange(m))
    shapes = {"X": (784, m), "Y": (10, m), **{p.name: p.shape for p in params}, "Z1": fwd.Z1.shape,
              "A1": fwd.A1.shape, "Z2": fwd.Z2.shape, "A2": fwd.Z2.softmax(axis=0).shape}
    arrows = viz.network_shapes(784, hidden, 10)
    assert {a for a, _, _ in arrows} == set(shapes)
    for a, b, shape in arrows:
        assert shape.replace("m", str(m)) == "×".join(map(str, shapes[a])), (a, b)
        assert f'{a} -> {b} [label="{shape}"];' in viz.network_dot(784, hidden, 10)
