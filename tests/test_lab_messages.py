"""The lab's words: the page's and the `lab` command's, from the one message catalogue (messages/lab.json, cli.json),
served per language by POST /api/messages; every key the page uses is there; `lab --lang vi` speaks Vietnamese."""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
from importlib import resources

import pytest
from processes import take_sigint
from test_lab_api import Client, make_lab
from test_lab_cli import ROOT, data_dir  # noqa: F401  (a fixture)

from tinygrad_edu import messages
from tinygrad_edu.lab.session import Lab

STATIC = resources.files("tinygrad_edu.lab") / "static"


@pytest.fixture
def client():
    c = Client(make_lab())
    yield c
    c.close()


def test_messages_are_served_per_language_with_the_labs_own_as_default(client):
    en = client.ok("/api/messages")
    assert en["lang"] == "en" and en["languages"] == ["en", "vi"]
    assert en["messages"]["panel_draw"] == "1 · Draw a digit"
    assert en["messages"]["common.language_switch"] == "Language"
    vi = client.ok("/api/messages", {"lang": "vi"})
    assert vi["messages"]["panel_draw"] == "1 · Vẽ một chữ số"
    assert vi["messages"]["common.language_switch"] == "Ngôn ngữ"
    assert set(vi["messages"]) == set(en["messages"])
    client.lab.language = "vi"          # as `lab --lang vi` makes it
    assert client.ok("/api/messages")["lang"] == "vi"
    state = client.ok("/api/state")
    assert state["lang"] == "vi" and state["languages"] == ["en", "vi"] and state["origin"] is None


@pytest.mark.parametrize("lang", ["fr", None, 1, ["vi"]])
def test_an_unknown_language_is_a_400_naming_the_choices(client, lang):
    status, err = client.post("/api/messages", {"lang": lang})
    assert status == 400 and err["error"].startswith("lang must be one of en, vi, got "), err


def test_a_lab_in_an_unknown_language_is_refused():
    lab = make_lab()
    with pytest.raises(ValueError, match="no messages in language 'fr'"):
        Lab(lab.net, ((lab.X_train, lab.y_train), (lab.X_test, lab.y_test)), language="fr")


def test_every_key_the_page_uses_is_in_the_catalogue():
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    js = (STATIC / "lab.js").read_text(encoding="utf-8")
    known = set(messages.catalogue("lab")) | {f"common.{k}" for k in messages.catalogue("common")}
    used = set(re.findall(r'data-msg(?:-aria)?="([^"]+)"', html))
    used |= set(re.findall(r'\b(?:t|say)\("([A-Za-z_.]+)"', js)) | set(re.findall(r'key: "([A-Za-z_]+)"', js))
    used |= set(re.findall(r'\? "(resume)" : "(pause)"', js)[0])
    used |= set(re.findall(r'verdict: f\.prediction === f\.label \? "(\w+)" : "(\w+)"', js)[0])
    used |= {f"state_{s}" for s in ("idle", "running", "paused", "done", "stopped")}   # t(`state_${s.state}`)
    assert len(used) > 50 and used - known == set(), used - known
    unused = {k for k in known - used if not k.startswith("common.")}     # common.json is shared with the CLI
    assert unused == set(), f"messages no part of the page uses: {sorted(unused)}"


def test_the_page_fills_fields_as_python_does():
    """lab.js's t() replaces {name} fields with the same pattern as messages.FIELD."""
    js = (STATIC / "lab.js").read_text(encoding="utf-8")
    assert r"/\{([A-Za-z_][A-Za-z0-9_]*)\}/g" in js and messages.FIELD.pattern == r"\{([A-Za-z_][A-Za-z0-9_]*)\}"


def test_the_command_speaks_vietnamese_and_the_page_starts_in_it(data_dir):  # noqa: F811
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tinygrad_edu", "lab", "--no-browser", "--port", "0", "--data",
                             str(data_dir), "--lang", "vi"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, preexec_fn=take_sigint)
    try:
        lines = []
        while not (lines and "đang phục vụ tại" in lines[-1]):
            line = proc.stdout.readline()
            assert line, (lines, proc.stderr.read())
            lines.append(line)
        assert lines[0].startswith("lab: mạng huấn luyện lúc khởi động: khởi tạo He, ")
        assert re.fullmatch(r"lab: đang phục vụ tại http://127\.0\.0\.1:\d+/ \(sẵn sàng sau [\d.]+ giây; Ctrl-C để "
                            r"dừng\)\n", lines[-1])
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", lines[-1]).group(1))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/api/state", b"{}", {"Content-Type": "application/json"})
        state = json.loads(conn.getresponse().read())
        assert state["lang"] == "vi" and state["origin"]["kind"] == "startup"
        assert set(state["origin"]) == {"kind", "steps", "accuracy"}
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "lab: đang dừng" in out and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_lang_is_an_option_with_english_by_default():
    from tinygrad_edu.cli import build_parser
    assert build_parser().parse_args(["lab"]).lang == "en"
    assert build_parser().parse_args(["lab", "--lang", "vi"]).lang == "vi"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["lab", "--lang", "fr"])
