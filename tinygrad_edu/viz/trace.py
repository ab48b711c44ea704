"""The backward trace: each node backward visits, with the ∂L/∂ rule it applies written in the graph's own names."""
from __future__ import annotations

import contextlib
import re
import sys
from typing import NamedTuple

import numpy as np

from tinygrad_edu import autograd
from tinygrad_edu.viz.display import Table
from tinygrad_edu.viz.graph import graph_nodes, node_labels

HEADER = (
    "Backward trace: ∂L/∂x is the gradient of L, the loss as computed. When L is a mean over m examples\n"
    "(softmax_cross_entropy is), ∂L/∂Z of an activation Z is the tutorial's dZ divided by m (its dZ are\n"
    "gradients of the summed loss), while ∂L/∂W and ∂L/∂b equal its dW and db (which already divide by m).\n"
    "Σ over an axis: the input was broadcast along it, so its gradient is summed there.")


class Gradient(NamedTuple):
    """One line of the trace: the gradient one op's backward sends to one of its inputs."""
    node: str       # the label of the tensor backward is at (the op's output)
    op: str         # the op's name
    input: str      # the label of the input that receives the gradient
    rule: str       # the rule, in the graph's names, e.g. "∂L/∂W2 += ∂L/∂(W2·A1) · A1ᵀ"
    shape: tuple    # the gradient's shape (the input's)
    norm: float     # its Euclidean (Frobenius) norm


def _term(label: str) -> str:
    """A label as a term of a rule: a formula label in parentheses, ∂L/∂(W1·X), so the rule reads unambiguously."""
    return label if re.fullmatch(r"[\w#.]+", label) else f"({label})"


class _Fill(dict):
    """Placeholders of a rule: the known ones filled in, any other left as written."""

    def __missing__(self, key):
        return "{" + key + "}"


def summed_axes(raw: np.ndarray | None, shape: tuple) -> tuple[int, ...]:
    """The axes the backward walk summed an input's raw gradient over to fit the input's shape, () if none."""
    if raw is None or raw.shape == shape:
        return ()
    return autograd.broadcast_axes(raw.shape, shape)


def _with_sum(rule: str, axes: tuple[int, ...]) -> str:
    """`∂L/∂b += ∂L/∂Z` -> `∂L/∂b += Σ over axis 1 of ∂L/∂Z` (the right side in parentheses if compound)."""
    for sep in (" += ", " = "):
        lhs, found, rhs = rule.partition(sep)
        if found:
            break
    else:
        lhs, sep, rhs = "", "", rule
    over = f"axis {axes[0]}" if len(axes) == 1 else "axes " + ", ".join(map(str, axes))
    rhs = f"({rhs})" if " " in re.sub(r"\([^()]*\)", "", rhs) else rhs   # compound outside parentheses
    return f"{lhs}{sep}Σ over {over} of {rhs}"


class trace(contextlib.ContextDecorator):
    """Prints each node that backward visits, in order, with the rule its backward applies to each input.

    >>> with trace():
    ...     loss.backward()
    L = softmax_cross_entropy(Z2, Y)  ...
      ∂L/∂Z2 = ∂L/∂L · (softmax(Z2) − onehot(Y))/m      [softmax_cross_entropy]  (10, 4)  ‖0.2093‖

    The rules are the ops' own (`Function.rules`), filled in with the graph's labels: a tensor's name, else
    what it computes from named inputs (W1·X), else its op and number (matmul#3). When the loss tensor has a
    name, it is the L of ∂L/∂. Every backward() run inside the block is traced, printed to `file` (default
    stdout) and collected in `.gradients` (Gradient's).
    Shown in a notebook (`with viz.trace() as tr: ...`, then `tr`), the collected lines are an HTML table.
    """

    def __init__(self, file=None):
        self.file = file
        self.gradients: list[Gradient] = []
        self._nodes: list = []
        self._labels: dict[int, str] = {}
        self._visited: set[int] = set()
        self._loss = "L"
        self._header_done = False
        self._remove = None

    def __enter__(self):
        self._remove = autograd.add_backward_hook(self._hook)
        return self

    def __exit__(self, *exc):
        self._remove()
        self._nodes, self._labels, self._visited = [], {}, set()
        return False

    def table(self) -> Table:
        """The collected gradients, one row each: the rule, its op, the gradient's shape and norm."""
        return Table(["node", "rule", "op", "shape", "norm"],
                     [[g.node, g.rule, g.op, g.shape, f"{g.norm:.4g}"] for g in self.gradients])

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()

    def _print(self, text: str) -> None:
        print(text, file=sys.stdout if self.file is None else self.file)

    def _start(self, root, grad_out) -> None:
        """A new backward pass (its first node is the root): label its graph, print its heading."""
        # NOTE: the nodes are kept while their labels are in use, so no new tensor can reuse one of their ids.
        self._nodes = graph_nodes(root)
        self._labels = node_labels(self._nodes)
        self._visited = set()
        self._loss = root.name or "L"
        if not self._header_done:
            self._print(HEADER)
            self._header_done = True
        seed = f"{grad_out.item():.4g}" if grad_out.size == 1 else f"the given gradient {grad_out.shape}"
        self._print(f"\nbackward from {self._labels[id(root)]} {root.shape}: "
                    f"∂{self._loss}/∂{self._labels[id(root)]} = {seed}")

    def _hook(self, node, fn, grad_out, raw_grads, parent_grads) -> None:
        if id(node) not in self._labels or id(node) in self._visited:
            self._start(node, grad_out)
        self._visited.add(id(node))
        lab = self._labels
        out = lab[id(node)]
        fill = _Fill({k: v for k, v in fn.attrs.items() if isinstance(v, (int, float, str))})
        fill.update(out=_term(out), **{ph: _term(lab[id(p)]) for ph, p in zip("ab", fn.parents)})
        args = ", ".join(lab[id(p)] for p in fn.parents)
        self._print(f"{out} = {fn.name}({args})  {node.shape} {node.dtype}")
        for i, (p, g) in enumerate(zip(fn.parents, parent_grads)):
            if g is None:
                continue
            if i < len(fn.rules):
                rule = fn.rules[i].replace("∂L/∂", f"∂{self._loss}/∂").format_map(fill)
            else:
                rule = f"∂{self._loss}/∂{_term(lab[id(p)])} += ... ({fn.name} has no rule written)"
            axes = summed_axes(raw_grads[i], p.shape)
            if axes:
                rule = _with_sum(rule, axes)
            grad = Gradient(out, fn.name, lab[id(p)], rule, g.shape, float(np.linalg.norm(g)))
            self.gradients.append(grad)
            self._print(f"  {rule:<52} {'[' + fn.name + ']':<24} {str(g.shape):<10} ‖{grad.norm:.4g}‖")
