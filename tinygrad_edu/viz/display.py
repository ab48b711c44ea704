"""Rich display for Jupyter: the graph inline (SVG with Graphviz, the text tree without), tables as text and HTML.

Objects here have IPython's display methods (`_repr_mimebundle_`, `_repr_html_`), so a notebook shows them
when they are a cell's value; in a terminal they print as plain text. Nothing here is needed to use the core,
and the core never imports it: `Tensor`'s own repr stays plain text.

    viz.graph(loss)                    # the picture under the cell (or the text tree when `dot` is missing)
"""
from __future__ import annotations

import html

from tinygrad_edu.tensor import Tensor
from tinygrad_edu.viz.graph import format_graph, run_dot, to_dot

NO_GRAPHVIZ = ("(the text tree: Graphviz's `dot` was not found, so no picture; "
               "install Graphviz, e.g. apt-get install graphviz, to draw it)")


# --- the graph -----------------------------------------------------------------------------------------------


class Graph:
    """The graph under a tensor as it was when made: `.dot` (Graphviz DOT text) and `.text` (the indented tree).

    In Jupyter it shows as an SVG picture drawn by Graphviz when `dot` is present, and as the text tree
    otherwise; showing it never raises. repr() and print() give the text tree.
    """

    def __init__(self, t: Tensor, rankdir: str = "TB"):
        self.dot = to_dot(t, rankdir)
        self.text = format_graph(t)

    def svg(self) -> str | None:
        """The picture as SVG text, or None when Graphviz cannot draw it."""
        try:
            return run_dot(self.dot, "svg").decode("utf-8")
        except Exception:   # NOTE: a display must never fail; without a picture, the text tree is shown
            return None

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        svg = self.svg()
        if svg is None:
            return {"text/plain": f"{self.text}\n{NO_GRAPHVIZ}"}
        return {"image/svg+xml": svg, "text/plain": self.text}

    def __repr__(self) -> str:
        return self.text


def graph(t: Tensor, rankdir: str = "TB") -> Graph:
    """The graph under t for display: a picture inline in a notebook (Graphviz), the text tree elsewhere.

    rankdir as in to_dot: TB (the default, inputs at the top), BT, LR or RL.
    """
    return Graph(t, rankdir)


# --- tables ----------------------------------------------------------------------------------------------------


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell, a dashed rule under the headers; the last column is not padded
    (its rule is as wide as its header), so one long cell there does not widen the whole table."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells) -> str:
        padded = [str(c).ljust(w) for c, w in zip(cells[:-1], widths)] + [str(cells[-1])]
        return "  ".join(padded).rstrip()

    rule = ["-" * w for w in widths[:-1]] + ["-" * len(headers[-1])]
    return "\n".join([line(headers), line(rule), *(line(r) for r in rows)])


def sci(x: float) -> str:
    """A float in the tables' format: 1.67e-16."""
    return f"{x:.2e}"


class Table:
    """Rows of cells under headers: format_table's text when printed, an HTML table in Jupyter."""

    def __init__(self, headers: list[str], rows: list[list]):
        self.headers = [str(h) for h in headers]
        self.rows = [[str(c) for c in r] for r in rows]
        for r in self.rows:
            if len(r) != len(self.headers):
                raise ValueError(f"Table: a row has {len(r)} cells for {len(self.headers)} headers: {r}")

    def __str__(self) -> str:
        return format_table(self.headers, self.rows)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        def cells(tag, row):
            return "".join(f"<{tag} style=\"text-align: left\">{html.escape(c)}</{tag}>" for c in row)
        body = "".join(f"<tr>{cells('td', r)}</tr>" for r in self.rows)
        return f"<table><thead><tr>{cells('th', self.headers)}</tr></thead><tbody>{body}</tbody></table>"


class Report:
    """Blocks in order, each a paragraph of text, a Table, or a tuple of these kept together: printed as plain
    text with a blank line between blocks (none inside a tuple), shown in Jupyter as HTML. A paragraph keeps
    its line breaks and indentation in both."""

    def __init__(self, blocks: list):
        self.blocks = list(blocks)

    def __str__(self) -> str:
        return "\n\n".join("\n".join(map(str, b)) if isinstance(b, tuple) else str(b) for b in self.blocks)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        def part(b) -> str:
            if isinstance(b, tuple):
                return "".join(map(part, b))
            if isinstance(b, Table):
                return b._repr_html_()
            return f"<p style=\"white-space: pre-wrap\">{html.escape(str(b))}</p>"
        return "<div>" + "".join(map(part, self.blocks)) + "</div>"
