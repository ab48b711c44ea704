"""The lab in a real headless Chromium (Debian's, driven by Playwright): draw, forward, a step, training.

Skips when Playwright or /usr/bin/chromium is missing, except with CI=true, where that fails the test. With
TINYGRAD_EDU_SCREENSHOTS=DIR it also saves the screenshots that docs/lab.md shows (never on an ordinary run).
On real MNIST (TINYGRAD_EDU_DATA or the bundled copy) it uses the network the lab trains at startup; without it,
a small synthetic data set.
"""
import os
import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from test_lab_api import make_lab

from tinygrad_edu import datasets, training
from tinygrad_edu.lab import session
from tinygrad_edu.lab.server import LabServer

CHROMIUM = os.environ.get("TINYGRAD_EDU_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def browser_or_skip():
    """Playwright's sync API, or a skip (a failure under CI=true) saying what is missing."""
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "Playwright is not installed (pip install 'tinygrad_edu[lab]')"
    if missing is None and not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        missing = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the browser test must run in CI: {missing}")
        pytest.skip(missing)
    return sync_playwright


def real_lab():
    """The lab as `tinygrad-edu lab` starts it on real MNIST, or None when MNIST is not here."""
    try:
        data = training.load_data("mnist", download=False, progress=False)
    except datasets.DatasetNotFoundError:
        return None
    result = session.train_startup(data)
    origin = {"kind": "startup", "steps": result.iterations, "accuracy": f"{result.test_accuracy:.4f}"}   # as `lab`
    return session.Lab(result.model, data, source="trained at startup (the browser test)", origin=origin)


@pytest.fixture(scope="module")
def lab_url():
    lab = real_lab() or make_lab()
    server = LabServer(lab, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.url
    lab.close()
    server.shutdown()
    server.server_close()


def preview_ink(page) -> int:
    """How many of the preview's 28×28 pixels are not white."""
    return page.evaluate("""() => {
        const d = document.getElementById('preview').getContext('2d').getImageData(0, 0, 28, 28).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 250) n++; return n; }""")


def wait_until(page, check, timeout=60.0, what="the page"):
    """Polls check() from Python until it is true (the page's CSP allows no eval, so no wait_for_function)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true after {timeout} s")
        page.wait_for_timeout(50)


def points(page) -> int:
    return int(page.get_attribute("#curve", "data-points"))


def shown_probabilities(page, where="#probs"):
    return [float(p) for p in page.eval_on_selector_all(f"{where} .prob", "els => els.map(e => e.dataset.p)")]


def test_the_lab_in_a_real_browser(lab_url):
    sync_playwright = browser_or_skip()
    from playwright.sync_api import expect
    shots = os.environ.get("TINYGRAD_EDU_SCREENSHOTS")
    shots = Path(shots) if shots else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            # the page under its real Content-Security-Policy: any console error (a blocked inline style, a script
            # error) fails the test
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            errors = []
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
            page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
            page.goto(lab_url)
            expect(page.locator("#probs .prob")).to_have_count(10)
            expect(page.locator("#picked")).to_have_text(re.compile("^test image 0 of "))

            # nothing stale on load: no Before/After block (its .row's display: flex must not beat [hidden]); the
            # training status says what Start will do, not a run the controls contradict; the batch box follows
            # the batch mode
            expect(page.locator("#step-result")).to_be_hidden()
            expect(page.get_by_text("Before: L =")).to_be_hidden()
            expect(page.locator("#train-status")).to_have_text(re.compile(r"^Start trains W1, b1, W2, b2 .* \d+ "
                                                                          "training images"))
            page.select_option("#batch-mode", "full")
            expect(page.locator("#batch-size")).to_be_disabled()
            page.select_option("#batch-mode", "mini")
            expect(page.locator("#batch-size")).to_be_enabled()
            header = page.inner_text("#source")
            assert header.startswith("784-10-10, ")

            # draw a 7 with real pointer events (Clear first: the old caption goes)
            box = page.locator("#draw").bounding_box()
            page.click("#clear")
            expect(page.locator("#picked")).to_have_text(
                "the drawing area is clear: draw a digit, or show a test image")
            page.mouse.move(box["x"] + 70, box["y"] + 60)
            page.mouse.down()
            for x, y in [(130, 58), (210, 55), (190, 110), (160, 170), (135, 235)]:
                page.mouse.move(box["x"] + x, box["y"] + y, steps=8)
            page.mouse.up()
            expect(page.locator("#picked")).to_have_text(re.compile("^your drawing"))
            page.wait_for_timeout(300)
            page.wait_for_load_state("networkidle")
            assert preview_ink(page) > 20
            p = shown_probabilities(page)
            assert len(p) == 10 and abs(sum(p) - 1) < 1e-4 and min(p) >= 0
            assert page.inner_text("#prediction") == str(int(np.argmax(p)))
            assert len(page.query_selector_all("#hidden .unit canvas")) == 10

            # choose the label, see the backward pass, take a step: the loss goes down
            page.click("#labels button[data-digit='7']")
            page.wait_for_selector("#backward:not([hidden])")
            expect(page.locator("#dW1 .unit")).to_have_count(10)
            # the dW2 heat map has its colours (set through the CSSOM, which the CSP allows): red +, blue −
            colours = page.eval_on_selector_all("#dW2 td", "tds => tds.map(td => getComputedStyle(td).backgroundColor)")
            assert len(colours) == 10 * 10 and all(c.startswith("rgb(") for c in colours), colours[:3]
            assert len(set(colours)) > 10, "the heat map's cells are not coloured"
            assert page.inner_text("#rule-Z1") == "∂L/∂Z1 += ∂L/∂A1 ⊙ [Z1 > 0]"
            assert "∂L/∂W1 += " in page.inner_text("#rule-W1")
            page.fill("#alpha", "0.5")
            page.click("#step")
            page.wait_for_selector("#step-result:not([hidden])")
            before = float(page.get_attribute("#loss-before", "data-loss"))
            after = float(page.get_attribute("#loss-after", "data-loss"))
            assert after < before
            assert abs(sum(shown_probabilities(page, "#probs-after")) - 1) < 1e-4
            expect(page.locator("#status")).to_have_text(re.compile("^one step with α = 0.5: L "))
            expect(page.locator("#source")).to_have_text(header + "; then single steps on one image: 1")
            page.wait_for_load_state("networkidle")

            # the nudge: a dW2 cell chosen by a click, W2[7, 0] moved by ±ε; the finite difference matches dW2
            page.click("#dW2 tr:nth-child(9) td:nth-child(2)")
            assert (page.input_value("#nudge-param"), page.input_value("#nudge-row"),
                    page.input_value("#nudge-col")) == ("W2", "7", "0")
            page.click("#nudge")
            expect(page.locator("#nudge-result")).to_be_visible()
            expect(page.locator("#nudge-numeric")).to_have_text(re.compile(r"^\(L\(w \+ ε\) − L\(w − ε\)\) / 2ε = "))
            numeric = float(page.get_attribute("#nudge-numeric", "data-value"))
            backward = float(page.get_attribute("#nudge-backward", "data-value"))
            assert abs(numeric - backward) <= 1e-6 + 1e-3 * abs(backward), (numeric, backward)
            page.select_option("#nudge-param", "W1")
            page.fill("#nudge-row", "3")
            page.fill("#nudge-col", "400")
            page.click("#nudge")
            expect(page.locator("#nudge-backward")).to_have_text(re.compile(r"^the backward pass's dW1\[3, 400\] = "))
            numeric = float(page.get_attribute("#nudge-numeric", "data-value"))
            backward = float(page.get_attribute("#nudge-backward", "data-value"))
            assert abs(numeric - backward) <= 1e-6 + 1e-3 * abs(backward), (numeric, backward)
            page.wait_for_load_state("networkidle")
            if shots:
                page.locator("#panel-draw").screenshot(path=shots / "lab-draw.png")
                page.locator("#panel-forward").screenshot(path=shots / "lab-forward.png")
                page.locator("#panel-backward").screenshot(path=shots / "lab-backward.png")

            # at 1280 px the dW2 cells keep each number on one line
            page.set_viewport_size({"width": 1280, "height": 900})
            wrapped = page.eval_on_selector_all("#dW2 td", """tds => tds.filter(td => {
                const r = document.createRange(); r.selectNodeContents(td); return r.getClientRects().length > 1;
            }).map(td => td.textContent)""")
            assert wrapped == [], wrapped
            page.set_viewport_size({"width": 1500, "height": 1000})

            # another label: the step's Before/After and its status line belong to the old one, and go
            page.click("#labels button[data-digit='3']")
            expect(page.locator("#step-result")).to_be_hidden()
            expect(page.locator("#status")).to_have_text("")
            page.click("#labels button[data-digit='7']")
            page.wait_for_load_state("networkidle")

            # the training view: the curve grows while a run goes (a long run, paused once it has grown: each step
            # sleeps at least 0.5 ms, so 20,000 steps last over 10 s, many polls), then Reset ends it
            page.select_option("#batch-mode", "mini")
            page.fill("#batch-size", "64")
            page.fill("#steps", "20000")
            page.fill("#lr", "0.1")
            page.select_option("#init", "he")
            page.click("#train-start")
            # while it trains: no single step, and the header says whose weights these are
            expect(page.locator("#step")).to_be_disabled()
            expect(page.locator("#source")).to_have_text(re.compile(r"^784-10-10, the weights of the run below "
                                                                    r"\((running|paused|done), step \d+ of 20000\)"))
            expect(page.locator("#train-status")).to_have_text(re.compile("minibatches of 64$"))
            wait_until(page, lambda: points(page) >= 1, what="the curve's first point")
            first = points(page)
            wait_until(page, lambda: points(page) > first, what="the curve's growth")
            page.click("#train-pause")
            expect(page.locator("#train-status")).to_have_text(re.compile("^paused"))
            page.click("#reset")
            expect(page.locator("#train-start")).to_be_enabled()
            expect(page.locator("#train-status")).to_have_text(re.compile("^stopped: "))
            expect(page.locator("#source")).to_have_text(header)     # the starting weights again
            expect(page.locator("#step")).to_be_enabled()

            # a short run to its end: every entry arrives, once
            page.fill("#steps", "300")
            page.click("#train-start")
            expect(page.locator("#train-status")).to_have_text(re.compile("^done"), timeout=120000)
            assert int(page.get_attribute("#curve", "data-points")) == 30   # 300 steps, an entry every 10
            assert page.evaluate("lab.history.map(e => e.step)") == list(range(10, 301, 10))
            assert len(page.query_selector_all("#train-weights .unit canvas")) == 10
            expect(page.locator("#step")).to_be_enabled()
            expect(page.locator("#source")).to_have_text(re.compile(r"run below \(done, step 300 of 300\)"))
            page.wait_for_load_state("networkidle")
            if shots:
                page.locator("#panel-train").screenshot(path=shots / "lab-training.png")
                page.screenshot(path=shots / "lab.png", full_page=True)
            assert not errors, errors
            assert page.get_attribute("#status", "class") == "ok", page.inner_text("#status")   # no error shown
        finally:
            browser.close()


@pytest.fixture(scope="module")
def vietnamese_lab_url():
    """A lab started as `lab --lang vi` starts it: the page's language at first is Vietnamese."""
    lab = real_lab() or make_lab()
    lab.language = "vi"
    server = LabServer(lab, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.url
    lab.close()
    server.shutdown()
    server.server_close()


def test_the_page_in_vietnamese_and_its_language_switch(vietnamese_lab_url):
    sync_playwright = browser_or_skip()
    from playwright.sync_api import expect
    shots = os.environ.get("TINYGRAD_EDU_SCREENSHOTS")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            errors = []
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
            page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
            page.goto(vietnamese_lab_url)
            expect(page.locator("#probs .prob")).to_have_count(10)
            expect(page.locator("#panel-draw h2")).to_have_text("1 · Vẽ một chữ số")
            assert page.get_attribute("html", "lang") == "vi" and page.input_value("#lang") == "vi"
            expect(page.locator("#picked")).to_have_text(re.compile(r"^ảnh test 0 \(trong \d+ ảnh\): nhãn là \d, "
                                                                    r"mạng đoán \d \((đúng|sai)\)$"))
            expect(page.locator("#train-status")).to_have_text(re.compile("^Bắt đầu sẽ huấn luyện W1, b1, W2, b2"))
            expect(page.locator("#train-start")).to_have_text("Bắt đầu")
            # every word of the page comes from the catalogue: no element shows its bare key
            bare = page.eval_on_selector_all("[data-msg]", "els => els.filter(e => e.textContent === e.dataset.msg)"
                                                           ".map(e => e.dataset.msg)")
            assert bare == [], bare
            page.click("#labels button[data-digit='4']")
            expect(page.locator("#dZ1")).to_contain_text("ReLU′ = 1")
            page.wait_for_load_state("networkidle")
            if shots:
                page.screenshot(path=Path(shots) / "lab-vi.png", full_page=True)

            # the switch: the same page in English, the captions written so far reworded too
            page.select_option("#lang", "en")
            expect(page.locator("#panel-draw h2")).to_have_text("1 · Draw a digit")
            expect(page.locator("#picked")).to_have_text(re.compile(r"^test image 0 of \d+: its label is \d"))
            expect(page.locator("#train-status")).to_have_text(re.compile("^Start trains"))
            assert page.get_attribute("html", "lang") == "en"
            page.select_option("#lang", "vi")
            expect(page.locator("#panel-backward h2")).to_have_text(
                "3 · Lan truyền ngược với nhãn đúng Y, rồi đi một bước")
            assert not errors, errors
        finally:
            browser.close()


def test_a_missing_browser_skips_but_fails_under_ci(monkeypatch):
    import test_lab_browser as module
    monkeypatch.setattr(module, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="the browser test must run in CI: .*no Chromium at /nonexistent"):
        module.browser_or_skip()
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception):
        module.browser_or_skip()
