"""The docs' own checks: every block marked, every relative link resolving, every line link holding what it names,
and the expected-output markers (`...`, `~number`) and console sessions of tests/doc_blocks.py doing what they say.
(The pages' run blocks themselves are collected from the .md files by conftest.py.)"""
import json
import re
import sys
from pathlib import Path

import doc_blocks
import pytest
from doc_blocks import (
    ROOT,
    blocks,
    doc_pages,
    keep_machine_marks,
    mark_and_needs,
    matches,
    needing,
    parse_session,
    run_session,
    unmarked_blocks,
)
from sybil import Document

sys.path.insert(0, str(ROOT / "scripts"))
import code_links  # noqa: E402

# NOTE: README.md is rewritten as a landing page in this round (issue 13, item 1); its blocks get their marks and
# its line links their titles at the merge. These xfails are strict: once README passes, remove it from here.
PENDING: set[str] = set()


PENDING_CHECKS = ("marks", "code_links", "pictures")   # README's relative links already resolve


def _pages(check):
    pending = [pytest.mark.xfail(strict=True, reason="README.md: fixed at the merge")]
    return [pytest.param(p, id=str(p.relative_to(ROOT)),
                         marks=pending if check in PENDING_CHECKS and p.relative_to(ROOT).name in PENDING
                         and p.parent == ROOT else [])
            for p in doc_pages()]


@pytest.mark.parametrize("page", _pages("marks"))
def test_every_block_is_marked(page):
    assert unmarked_blocks(page) == []


@pytest.mark.parametrize("page", _pages("code_links"))
def test_line_links_hold_what_they_name(page):
    assert code_links.check(page) == []


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (word characters, spaces, - kept)."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    seen, anchors = {}, set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        slug = _slug(heading)
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


LINK = re.compile(r'!?\[(?:[^\[\]\n]|\[[^\[\]\n]*\])*\]\(([^)\s]+)(?:\s+"[^"]*")?\)|^\[[^\]]+\]:\s*(\S+)', re.M)


def broken_links(page: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    broken = []
    for m in LINK.finditer(text):
        target = m.group(1) or m.group(2)
        if re.match(r"[a-z][a-z0-9+.-]*:", target):      # http:, https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(f"{target}: {file.name} has no heading #{anchor}")
    return broken


@pytest.mark.parametrize("page", _pages("links"))
def test_relative_links_resolve(page):
    assert broken_links(page) == []


def test_a_broken_link_is_caught(tmp_path):
    (tmp_path / "a.md").write_text("# Title here\n\n[ok](#title-here) [gone](b.md) [bad](a.md#nowhere)\n")
    assert broken_links(tmp_path / "a.md") == ["b.md: no such file", "a.md#nowhere: a.md has no heading #nowhere"]


def test_a_stale_or_untitled_line_link_is_caught(tmp_path):
    (tmp_path / "m.py").write_text('def f(x):\n    """doc: y = 2"""\n    y = 2 * x\n    return y\n')
    (tmp_path / "p.md").write_text('[`f`](m.py#L1-L4 "f") [y = 2x](m.py#L2 "f: y = 2") [f](m.py#L3)\n'
                                   '[`g`](m.py#L1 "f") [z](m.py#L3 "f: z =") [h](m.py#L1 "h")\n')
    assert [p.split(": ", 1)[1] for p in code_links.check(tmp_path / "p.md")] == [
        "[y = 2x] points at #L2, 'f: y = 2' is at #L3: run python scripts/code_links.py",
        'line link [f](m.py#L3) has no title naming its symbol: add "Symbol" or "Symbol: code" '
        '(see scripts/code_links.py)',
        "the link says g but its title points at f",
        "f in m.py no longer holds 'z ='",
        "m.py defines no h",
    ]
    with pytest.raises(ValueError, match="has no title"):
        code_links.rewrite(tmp_path / "p.md")     # a page with a broken link is not rewritten

def test_the_readme_says_about_how_many_tests_there_are(request):
    """README.md's "about 1,800 tests" stays within 15% of the whole suite's size (counted when it is collected)."""
    size = request.config.stash.get(doc_blocks.SUITE_SIZE, None)
    if size is None:
        pytest.skip("the suite's size is known only when the whole suite is collected (plain `pytest`)")
    claimed = re.search(r"about ([\d,]+) tests", (ROOT / "README.md").read_text(encoding="utf-8")).group(1)
    assert abs(int(claimed.replace(",", "")) - size) <= 0.15 * size, \
        f"README.md says about {claimed} tests; the suite has {size}: round the new count"


def test_markers():
    assert matches("step 0\n...\nloss ~2.30 after ~4.1 s\n", "step 0\nstep 1\nstep 2\nloss 0.41 after 12 s")
    assert matches("a\n...\nb", "a\nb")                  # `...` alone: any number of lines, none included
    assert matches("x ... z", "x y y z") and not matches("x ... z", "x y\nz")   # inside a line: that line only
    assert matches("acc ~0.85", "acc 0.8542") and not matches("acc ~0.85", "acc n/a")
    assert matches("a  \n\n", "\na") and not matches("a", "a\nb") and not matches("0.85", "0.8542")
    assert keep_machine_marks("acc ~0.85 in ~40 s", "acc 0.8612 in 39.2 s") == "acc ~0.8612 in ~39.2 s"
    assert keep_machine_marks("acc ~0.85", "loss 3") == "loss 3"


def test_console_sessions(tmp_path):
    source = "$ echo hi > f.txt\n$ cat f.txt \\\n  missing.txt; echo $?\nhi\n...\n1\n$ (exit 3)\n$ echo $?\n3\n"
    cmds = parse_session(source)
    assert [c.command for c in cmds] == ["echo hi > f.txt", "cat f.txt   missing.txt; echo $?", "(exit 3)",
                                         "echo $?"]
    results = run_session(source, tmp_path)
    assert all(matches(cmd.want, got) for cmd, got in results), results
    assert (tmp_path / "f.txt").read_text() == "hi\n"
    with pytest.raises(TimeoutError, match="sleep 30: still running after 0.5 s"):
        run_session("$ sleep 30 & sleep 30\n", tmp_path, timeout=0.5)
    with pytest.raises(ValueError, match="first line must be a `\\$ ` command"):
        parse_session("output first\n$ echo\n")


def test_a_block_needing_a_missing_tool_skips_with_the_reason_and_fails_under_ci(monkeypatch):
    text = "<!-- run needs=dot,no-such-tool -->\n```python\nx = 1\n```\n"
    assert mark_and_needs(text, text.index("```")) == ("run", ("dot", "no-such-tool"))
    assert mark_and_needs("<!-- run -->\n```", 13) == ("run", ())
    evaluate = needing(("no-such-tool",), lambda example: None)
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="this block needs no-such-tool, not on PATH"):
        evaluate(None)
    monkeypatch.setenv("CI", "true")
    assert "this block needs no-such-tool, not on PATH" in evaluate(None)
    assert evaluate(None).endswith("CI must run it")
    assert needing(("sh",), lambda example: "ran")(None) == "ran"     # the tool is here: the block runs


OPTIONAL_TOOLS = {"dot": re.compile(r"viz\.render\(|^\$ dot ", re.M)}


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_run_block_using_an_optional_tool_says_it_needs_it(page):
    """A newcomer's `pytest` passes without Graphviz: a run block that draws with `dot` is marked needs=dot."""
    for block in blocks(Document(page.read_text(encoding="utf-8"), str(page))):
        for tool, uses in OPTIONAL_TOOLS.items():
            if block.mark == "run" and uses.search(block.source):
                assert tool in block.needs, f"{page.name}:{block.line} uses {tool}: mark it <!-- run needs={tool} -->"


PAGE = '''# A page

<!-- run -->
```console
$ echo 0.5 > seed.txt
```

Measured:

<!-- measurement -->
```console
$ cat seed.txt; echo took 12.5 s
0.25
took ~3.1 s
$ echo same
same
```

<!-- measurement -->
```python
>>> x = 40
>>> x + 2
41
```
'''


def test_record_docs_rewrites_only_the_measurements_outputs(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "scripts"))
    import record_docs

    page = tmp_path / "page.md"
    page.write_text(PAGE)
    assert record_docs.main(["--page", str(page), "--check"]) == 1
    assert "expected\n0.25\ntook ~3.1 s\ngot\n0.5\ntook 12.5 s" in capsys.readouterr().out
    assert record_docs.main(["--page", str(page), "--dry-run"]) == 0
    assert "-0.25\n-took ~3.1 s\n+0.5\n+took ~12.5 s\n" in capsys.readouterr().out
    assert page.read_text() == PAGE
    assert record_docs.main(["--page", str(page)]) == 0
    assert page.read_text() == PAGE.replace("0.25\ntook ~3.1 s", "0.5\ntook ~12.5 s").replace("41\n", "42\n")
    assert record_docs.main(["--page", str(page), "--check"]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["page.md"]     # written atomically, nothing left behind


# --- pictures: one script, one recorded run ------------------------------------------------------------------

IMAGES = ROOT / "docs" / "images"
RUN_PICTURES = ("curves.png", "weights.png", "misclassified.png", "confusion.png")


def test_every_picture_is_made_by_the_one_script():
    run = json.loads((IMAGES / "run.json").read_text(encoding="utf-8"))
    # docs/images/lab: the lab's screenshots, by its browser test; docs/images/examples: each by its example's run
    drawn = {p.name for p in IMAGES.glob("*.png")}
    assert drawn == set(run["pictures"]), "scripts/make_doc_images.py draws every picture in docs/images"


def quoted_run_numbers(page: Path) -> list[tuple[str, str]]:
    """(what, number) for each `test accuracy 0.9155` / `train accuracy ...` in a section showing the run's
    pictures (a section: from one heading to the next)."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    found = []
    for section in re.split(r"^#{1,6} .*$", text, flags=re.M):
        if any(f"images/{name}" in section for name in RUN_PICTURES):
            found += re.findall(r"(test|train) accuracy (?:of |is |was )?(\d\.\d+)", section)
    return found


@pytest.mark.parametrize("page", _pages("pictures"))
def test_numbers_beside_the_pictures_are_the_recorded_runs(page):
    run = json.loads((IMAGES / "run.json").read_text(encoding="utf-8"))
    for what, number in quoted_run_numbers(page):
        assert number == f"{run[what + '_accuracy']:.{len(number) - 2}f}", \
            f"{page.name} says {what} accuracy {number}; the pictures' run (docs/images/run.json) says " \
            f"{run[what + '_accuracy']}: python scripts/make_doc_images.py redraws both"


# --- the Vietnamese pages: one notation (the seed's), and lists that a decimal comma cannot blur -------------

VIETNAMESE = sorted((ROOT / "docs").glob("*.vi.md")) + sorted((ROOT / "notebooks").glob("*.vi.ipynb"))
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)


def prose(path: Path) -> str:
    """A page's text outside code blocks (a notebook's markdown cells)."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)


@pytest.mark.parametrize("page", VIETNAMESE, ids=lambda p: p.name)
def test_vietnamese_pages_write_the_seeds_notation(page):
    """z^[l] and dz^[l] in lower case, as the seed (and the Vietnamese notebook) write them; docs/tutorial.vi.md
    says so."""
    capitals = [m for m in MATH.findall(prose(page)) if re.search(r"(?<![A-Za-z\\])d?Z\^\{\[", m)]
    assert capitals == [], f"{page.name}: write z^{{[l]}}, dz^{{[l]}} (the seed's): {capitals[:3]}"


@pytest.mark.parametrize("page", VIETNAMESE, ids=lambda p: p.name)
def test_vietnamese_lists_of_decimals_are_separated_by_semicolons(page):
    """0,05; 0,1; 0,2 — not 0,05, 0,1, 0,2, where the decimal comma and the list's comma look alike."""
    text = re.sub(r"`[^`\n]*`", "", MATH.sub("", prose(page)))
    blurred = re.findall(r"\d,\d+, \d[\d,]*", text)
    assert blurred == [], f"{page.name}: separate decimals with '; ': {blurred[:3]}"


def test_the_derivation_is_on_both_tutorial_pages_in_both_languages():
    assert "(derivation.md)" in (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
    assert "(derivation.vi.md)" in (ROOT / "docs" / "tutorial.vi.md").read_text(encoding="utf-8")
    for name in ("derivation.md", "derivation.vi.md"):
        text = (ROOT / "docs" / name).read_text(encoding="utf-8")
        assert "<!-- run -->" in text and "dz^{[2]} = A^{[2]} - Y" in text and "A^{[1]T}" in text, name
