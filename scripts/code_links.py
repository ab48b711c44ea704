"""Line links from the docs into the code, generated from the code's symbols: `python scripts/code_links.py`.

A line link names what it points at in its title, and the line numbers are computed from that, never typed:

    [`MatMul.backward`](../tinygrad_edu/ops.py#L215-L237 "MatMul.backward")             the whole definition
    [dZ2 = A2 − Y](../tinygrad_edu/manual.py#L89 "backward_prop: dZ2 = A2 - one_hot")   the line in it holding that
    [forward pass](../tinygrad_edu/tutorial.py#L49-L55 "forward_prop: Z1 = W1 @ X + b1 .. loss.name")   a range

The symbol is a dotted name defined in the file (a function, class or method); the code after `:` is searched in
its lines (its docstring excluded), and `A .. B` spans from the line holding A to the next line holding B.
Without arguments the script rewrites every page's line numbers (README.md and docs/**/*.md); with --check it
writes nothing and exits 1 if any link is stale, untitled or names what the code no longer holds.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# [text](target "title"): the text may hold one level of brackets ($dz^{[2]}$)
LINK = re.compile(r'(?<!!)\[(?P<text>(?:[^\[\]\n]|\[[^\[\]\n]*\])*)\]\((?P<target>[^)\s]+)(?:\s+"(?P<title>[^"]*)")?\)')
LINE_ANCHOR = re.compile(r"#L(\d+)(?:-L(\d+))?$")


def pages(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


@dataclass
class LineLink:
    page: Path
    line: int          # in the page
    text: str
    path: str          # the target without its anchor
    anchor: str        # "#L12" or "#L12-L20"
    title: str | None
    span: tuple[int, int]   # in the page's text: the target and title part, which the script rewrites

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page}:{self.line}"


def _outside_code_blocks(text: str) -> str:
    """text with its fenced blocks blanked out (same length), so examples of links in them are not links."""
    return re.sub(r"^```.*?^```", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S | re.M)


def line_links(page: Path, text: str | None = None) -> list[LineLink]:
    text = page.read_text(encoding="utf-8") if text is None else text
    found = []
    for m in LINK.finditer(_outside_code_blocks(text)):
        target = m.group("target")
        anchor = LINE_ANCHOR.search(target)
        if anchor:
            found.append(LineLink(page, text.count("\n", 0, m.start()) + 1, m.group("text"),
                                  target[:anchor.start()], anchor.group(0), m.group("title"),
                                  (m.start("target"), m.end())))
    return found


def _definition(tree: ast.Module, symbol: str):
    body, node = tree.body, None
    for part in symbol.split("."):
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            return None
        body = node.body
    return node


def resolve(link: LineLink) -> tuple[int, int]:
    """The lines the link's title names, or ValueError saying what is missing."""
    if not link.title:
        raise ValueError(f'{link.where()}: line link [{link.text}]({link.path}{link.anchor}) has no title naming '
                         'its symbol: add "Symbol" or "Symbol: code" (see scripts/code_links.py)')
    file = (link.page.parent / link.path).resolve()
    if not file.is_file():
        raise ValueError(f"{link.where()}: {link.path}: no such file")
    symbol, _, code = (s.strip() for s in link.title.partition(":"))
    source = file.read_text(encoding="utf-8")
    node = _definition(ast.parse(source), symbol)
    if node is None:
        raise ValueError(f"{link.where()}: {link.path} defines no {symbol}")
    name = re.fullmatch(r"`([\w.]+)`", link.text.strip())
    if name and not (name.group(1) == symbol or name.group(1).endswith("." + symbol)
                     or name.group(1) == f"{file.stem}.{symbol}"):
        raise ValueError(f"{link.where()}: the link says {name.group(1)} but its title points at {symbol}")
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    if not code:
        return first, node.end_lineno
    lines = source.splitlines()
    skip = set()
    if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
        skip = set(range(node.body[0].lineno, node.body[0].end_lineno + 1))
    start_code, _, end_code = (s.strip() for s in code.partition(" .. "))

    def find(snippet, after):
        for n in range(after, node.end_lineno + 1):
            if n not in skip and snippet in lines[n - 1]:
                return n
        raise ValueError(f"{link.where()}: {symbol} in {link.path} no longer holds {snippet!r}")

    start = find(start_code, first)
    return start, find(end_code, start) if end_code else start


def anchor(lines: tuple[int, int]) -> str:
    return f"#L{lines[0]}" if lines[0] == lines[1] else f"#L{lines[0]}-L{lines[1]}"


def check(page: Path) -> list[str]:
    """What is wrong with the page's line links (stale numbers, no title, a symbol or code that is gone)."""
    problems = []
    for link in line_links(page):
        try:
            want = anchor(resolve(link))
        except ValueError as e:
            problems.append(str(e))
            continue
        if want != link.anchor:
            problems.append(f"{link.where()}: [{link.text}] points at {link.anchor}, {link.title!r} is at {want}: "
                            "run python scripts/code_links.py")
    return problems


def rewrite(page: Path) -> bool:
    """Regenerate the page's line numbers; True if it changed. A link that does not resolve raises ValueError."""
    text = page.read_text(encoding="utf-8")
    out, last = [], 0
    for link in line_links(page, text):
        a, b = link.span
        out += [text[last:a], f'{link.path}{anchor(resolve(link))} "{link.title}")']
        last = b
    new = "".join(out) + text[last:]
    if new != text:
        sys.path.insert(0, str(ROOT))
        from tinygrad_edu.files import write_atomic
        write_atomic(page, new.encode("utf-8"))
    return new != text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a link is stale or broken")
    parser.add_argument("pages", nargs="*", type=Path, help="default: README.md and docs/**/*.md")
    args = parser.parse_args(argv)
    targets = [p.resolve() for p in args.pages] or pages()
    if args.check:
        problems = [p for page in targets for p in check(page)]
        print("\n".join(problems) or "every line link holds what it names")
        return 1 if problems else 0
    status = 0
    for page in targets:
        try:
            changed = rewrite(page)
        except ValueError as e:    # a link that names what the code no longer holds: a person must fix it
            print(f"{e} (the page is left as it was)", file=sys.stderr)
            status = 1
            continue
        if changed:
            print(f"rewrote {page.relative_to(ROOT) if page.is_relative_to(ROOT) else page}")
    return status


if __name__ == "__main__":
    sys.exit(main())
