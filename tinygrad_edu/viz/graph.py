"""The graph under a tensor as Graphviz DOT text, a rendered picture, or an indented tree in the terminal."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from tinygrad_edu.autograd import topological_order
from tinygrad_edu.files import write_atomic
from tinygrad_edu.tensor import Tensor

# The op settings worth showing next to the op's name (the rest of fn.attrs is bookkeeping for backward).
_SHOWN_ATTRS = ("axis", "keepdims", "exponent", "new_shape", "index")
_RENDER_FORMATS = ("svg", "png", "pdf")


# --- the nodes and their labels ----------------------------------------------------------------------------


def graph_nodes(root: Tensor) -> list[Tensor]:
    """Every tensor in the graph under root, each after the inputs of the op that made it (root last).

    The backward walk's own order (autograd.topological_order), leaves included and reversed: it depends only
    on the graph, so the numbers in labels are the same on every run.
    """
    if not isinstance(root, Tensor):
        raise TypeError(f"expected a Tensor, got {type(root).__name__}")
    return topological_order(root, leaves=True)[::-1]


# What an unnamed op result computes, in the tutorial's notation, when its inputs have names (a, b: the rules'
# placeholders): W1·X is the Z1 before b1 is added. Deeper results keep their op and number (matmul#3).
FORMULAS = {"matmul": "{a}·{b}", "add": "{a} + {b}", "sub": "{a} − {b}", "mul": "{a} ⊙ {b}", "div": "{a} / {b}",
            "neg": "−{a}", "relu": "ReLU({a})", "exp": "exp({a})", "log": "log({a})"}


def _is_symbol(name) -> bool:
    return isinstance(name, str) and re.fullmatch(r"[^\W\d]\w*", name) is not None


def node_labels(nodes: list[Tensor]) -> dict[int, str]:
    """id(tensor) -> its label: its name; else, for an op's result, what it computes from named inputs (W1·X,
    see FORMULAS) or its op and its number in `nodes` (e.g. matmul#3).

    An unnamed leaf is `leaf#k` if it requires grad, its value if it is a one-number constant (e.g. 0.5),
    else `const#k`. Two results of the same formula are told apart by their numbers.
    """
    labels, used = {}, set()
    for k, t in enumerate(nodes, start=1):
        if t.name:
            labels[id(t)] = str(t.name)
        elif t.grad_fn is not None:
            formula, parents = FORMULAS.get(t.grad_fn.name), t.grad_fn.parents
            label = f"{t.grad_fn.name}#{k}"
            if formula and len(parents) == formula.count("{") and all(_is_symbol(p.name) for p in parents):
                label = formula.format(**{ph: str(p.name) for ph, p in zip("ab", parents)})
                label = f"{label}#{k}" if label in used else label
            labels[id(t)] = label
            used.add(label)
        elif t.requires_grad:
            labels[id(t)] = f"leaf#{k}"
        elif t.size == 1:
            labels[id(t)] = f"{t.data.item():.4g}"
        else:
            labels[id(t)] = f"const#{k}"
    return labels


def op_text(t: Tensor) -> str:
    """The op that made t with its settings, e.g. `softmax_cross_entropy axis=0`; `leaf` for a leaf."""
    fn = t.grad_fn
    if fn is None:
        return "leaf" if t.requires_grad else "constant"
    keys = [k for k in _SHOWN_ATTRS if fn.attrs.get(k) is not None and fn.attrs[k] is not False]
    if fn.name == "transpose":
        keys.append("axes")
    shown = [f"{k}={_short(repr(fn.attrs[k]))}" for k in keys]
    return " ".join([fn.name, *shown])


def _short(text: str, limit: int = 40) -> str:
    """A long setting (an index array, say) cut to its first characters."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _tensor_lines(t: Tensor, label: str) -> list[str]:
    """What a node shows: label, op, shape and dtype, and ∂L/∂'s shape when backward has left one."""
    lines = [label, op_text(t), f"{t.shape} {t.dtype}"]
    if t.grad is not None:
        lines.append(f"∂L/∂{label}: {t.grad.shape}")
    return lines


# --- DOT -----------------------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    """A DOT double-quoted string; lines joined by DOT's centred line break."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(t: Tensor, rankdir: str = "TB") -> str:
    """Graphviz DOT text of the graph under t: one node per tensor, an edge from each op input to its output.

    A node shows the tensor's name (or op#k), the op that made it, shape and dtype, and the shape of its
    gradient once backward has run. Parameters (leaves that require grad) are blue boxes, constants grey
    boxes, op results yellow ellipses; t itself has a double border. Edges into two-input ops are
    labelled a and b, the placeholders of the ops' backward rules.
    """
    if rankdir not in ("TB", "BT", "LR", "RL"):
        raise ValueError(f"to_dot: rankdir must be TB, BT, LR or RL, got {rankdir!r}")
    nodes = graph_nodes(t)
    labels = node_labels(nodes)
    ids = {id(n): f"n{k}" for k, n in enumerate(nodes, start=1)}
    out = ["digraph tinygrad_edu {", f"  rankdir={rankdir};",
           '  node [fontname="Helvetica", fontsize=11, style=filled];', '  edge [fontname="Helvetica", fontsize=9];']
    for n in nodes:
        if n.grad_fn is not None:
            style = 'shape=ellipse, fillcolor="#fff3c4"'
        elif n.requires_grad:
            style = 'shape=box, fillcolor="#cfe3ff"'
        else:
            style = 'shape=box, fillcolor="#eeeeee"'
        if n is t:
            style += ", peripheries=2"
        out.append(f"  {ids[id(n)]} [label={_quote(chr(10).join(_tensor_lines(n, labels[id(n)])))}, {style}];")
    for n in nodes:
        if n.grad_fn is None:
            continue
        parents = n.grad_fn.parents
        for place, p in zip("ab", parents) if len(parents) == 2 else ((None, p) for p in parents):
            attrs = f" [label={_quote(place)}]" if place else ""
            out.append(f"  {ids[id(p)]} -> {ids[id(n)]}{attrs};")
    out.append("}")
    return "\n".join(out) + "\n"


def _graphviz_missing(detail: str) -> RuntimeError:
    return RuntimeError(
        f"render: {detail}. Drawing the graph needs Graphviz's `dot` program: install Graphviz "
        "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; conda: conda install graphviz; "
        "others: https://graphviz.org/download), optionally with its Python package "
        '(pip install "tinygrad_edu[graph]"). Without it, to_dot(t) gives the DOT text to paste into any '
        "Graphviz viewer.")


def dot_available() -> bool:
    """Whether render can draw: Graphviz's `dot` program is on PATH (the graphviz Python package runs it too)."""
    return shutil.which("dot") is not None


def run_dot(dot: str, fmt: str) -> bytes:
    """The picture from Graphviz: its Python package when installed, else the `dot` program on PATH."""
    try:
        import graphviz
    except ModuleNotFoundError:
        graphviz = None
    if graphviz is not None:
        try:
            return graphviz.Source(dot).pipe(format=fmt)
        except graphviz.ExecutableNotFound:
            raise _graphviz_missing("the graphviz Python package is installed but not the `dot` program") from None
    exe = shutil.which("dot")
    if exe is None:
        raise _graphviz_missing("neither the graphviz Python package nor the `dot` program was found")
    proc = subprocess.run([exe, f"-T{fmt}"], input=dot.encode(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"render: dot failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def render(t: Tensor, path, rankdir: str = "TB") -> Path:
    """Draws the graph under t into path (.svg, .png or .pdf, by its suffix) with Graphviz; returns the path.

    t may also be DOT text (network_dot's, say). The file is written whole or not at all. Without Graphviz,
    raises RuntimeError saying how to get it.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in _RENDER_FORMATS:
        raise ValueError(f"render: {path}: the suffix must be one of .svg, .png, .pdf (or use to_dot for .dot)")
    write_atomic(path, run_dot(t if isinstance(t, str) else to_dot(t, rankdir), fmt))
    return path


def network_shapes(n_in: int = 784, hidden: int = 10, n_out: int = 10) -> list[tuple[str, str, str]]:
    """The tutorial's network as (from, to, shape) arrows, each with the shape of what it carries (m examples)."""
    return [("X", "Z1", f"{n_in}×m"), ("W1", "Z1", f"{hidden}×{n_in}"), ("b1", "Z1", f"{hidden}×1"),
            ("Z1", "A1", f"{hidden}×m"), ("A1", "Z2", f"{hidden}×m"), ("W2", "Z2", f"{n_out}×{hidden}"),
            ("b2", "Z2", f"{n_out}×1"), ("Z2", "A2", f"{n_out}×m"), ("A2", "L", f"{n_out}×m"),
            ("Y", "L", f"{n_out}×m")]


def network_dot(n_in: int = 784, hidden: int = 10, n_out: int = 10) -> str:
    """Graphviz DOT text of the tutorial's network, left to right, with the shape on each arrow:
    X 784×m → Z1 = W1·X + b1 → A1 = ReLU(Z1) → Z2 = W2·A1 + b2 → A2 = softmax(Z2) → L, Y one-hot beside it."""
    what = {"X": f"X\\n{n_in} pixels × m images", "Y": "Y\\none-hot labels",
            "W1": "W1", "b1": "b1", "W2": "W2", "b2": "b2",
            "Z1": "Z1 = W1·X + b1", "A1": "A1 = ReLU(Z1)", "Z2": "Z2 = W2·A1 + b2", "A2": "A2 = softmax(Z2)",
            "L": "L = −(1/m) Σ Y ⊙ log A2"}
    style = {"W1": 'shape=box, fillcolor="#cfe3ff"', "X": 'shape=box, fillcolor="#eeeeee"'}
    style.update({k: style["W1"] for k in ("b1", "W2", "b2")}, Y=style["X"])
    out = ["digraph network {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=11, style=filled];',
           '  edge [fontname="Helvetica", fontsize=10];']
    for node, label in what.items():
        shape = style.get(node, 'shape=ellipse, fillcolor="#fff3c4"' + (", peripheries=2" if node == "L" else ""))
        out.append(f'  {node} [label="{label}", {shape}];')
    out += [f'  {a} -> {b} [label="{shape}"];' for a, b, shape in network_shapes(n_in, hidden, n_out)]
    return "\n".join(out + ["}"]) + "\n"


# --- the text tree -------------------------------------------------------------------------------------------


def format_graph(t: Tensor) -> str:
    """The graph under t as an indented tree, t at the top and each op's inputs below it.

    A tensor used twice is drawn in full the first time and as `label (see above)` after that.
    """
    labels = node_labels(graph_nodes(t))
    lines, shown = [], set()
    stack = [(t, "", "")]            # (tensor, prefix of its own line, prefix of its children's lines)
    while stack:
        n, prefix, child_prefix = stack.pop()
        label = labels[id(n)]
        if id(n) in shown:
            lines.append(f"{prefix}{label} (see above)")
            continue
        shown.add(id(n))
        text = "  ".join([label if n.grad_fn is None else f"{label} = {op_text(n)}",
                          f"{n.shape} {n.dtype}"]
                         + (["leaf, requires grad"] if n.grad_fn is None and n.requires_grad else [])
                         + ([f"∂L/∂: {n.grad.shape} ‖{np.linalg.norm(n.grad):.4g}‖"]
                            if n.grad is not None else []))
        lines.append(prefix + text)
        parents = n.grad_fn.parents if n.grad_fn is not None else ()
        for i in reversed(range(len(parents))):
            last = i == len(parents) - 1
            stack.append((parents[i], child_prefix + ("└─ " if last else "├─ "),
                          child_prefix + ("   " if last else "│  ")))
    return "\n".join(lines)


def print_graph(t: Tensor, file=None) -> None:
    """Prints format_graph(t): the graph under t as an indented tree (to file, default stdout)."""
    print(format_graph(t), file=sys.stdout if file is None else file)
