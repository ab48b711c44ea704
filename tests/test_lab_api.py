"""The lab's JSON API over real HTTP on loopback (no browser): its numbers against manual.py, its refusals."""
import http.client
import json
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinygrad_edu import manual, training
from tinygrad_edu.lab import server as lab_server
from tinygrad_edu.lab.digits import mnist_style
from tinygrad_edu.lab.session import Lab
from tinygrad_edu.ops import MatMul, ReLU, SoftmaxCrossEntropy


def tiny_mnist(n_train=300, n_test=60, seed=0):
    """Images whose label k is a bright bar in column band k, over faint noise: learnable in a few steps."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.integers(0, 10, n).astype(np.uint8)
        X = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, k in enumerate(y):
            X[i, 4:24, 2 + 2 * k:4 + 2 * k] = 255
        return X, y
    return make(n_train), make(n_test)


def make_lab(tmp_path=None, save=False, seed=0):
    rng = np.random.default_rng(seed)
    net = training.TutorialNet(*manual.init_params(rng, np.float64, 10), init="tutorial")
    return Lab(net, tiny_mnist(), save_path=(tmp_path / "w.npz") if save else None, source="test")


class Client:
    """Real HTTP requests to a LabServer on 127.0.0.1 (an ephemeral port), served by a thread."""

    def __init__(self, lab):
        self.lab = lab
        self.server = lab_server.LabServer(lab, "127.0.0.1", 0)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def request(self, method, path, body=b"", headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"Host": f"127.0.0.1:{self.port}", "Content-Type": "application/json"}
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in h.items():
            conn.putheader(k, v)
        if method == "POST" and "Content-Length" not in (headers or {}):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body if body else None)
        r = conn.getresponse()
        data, ctype = r.read(), r.getheader("Content-Type")
        conn.close()
        return r.status, data, ctype

    def post(self, path, body=None, **kw):
        status, data, ctype = self.request("POST", path, {} if body is None else body, **kw)
        assert ctype == "application/json"
        return status, json.loads(data)

    def ok(self, path, body=None):
        status, data = self.post(path, body)
        assert status == 200, data
        return data

    def close(self):
        self.lab.close()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def client(tmp_path):
    c = Client(make_lab(tmp_path, save=True))
    yield c
    c.close()


def image_of(lab, i=0):
    return (lab.X_test[i].reshape(-1) / 255).tolist()


# --- pages ---------------------------------------------------------------------------------------------------


def test_serves_the_page_and_its_files_with_a_strict_policy(client):
    status, body, ctype = client.request("GET", "/")
    assert status == 200 and ctype.startswith("text/html") and b'<canvas id="draw"' in body
    for path, kind in (("/lab.js", "text/javascript"), ("/lab.css", "text/css")):
        status, body, ctype = client.request("GET", path)
        assert status == 200 and ctype.startswith(kind) and body
    conn = http.client.HTTPConnection("127.0.0.1", client.port)
    conn.request("GET", "/", headers={"Host": f"localhost:{client.port}"})
    r = conn.getresponse()
    assert r.status == 200 and "default-src 'self'" in r.getheader("Content-Security-Policy")
    assert "http" not in r.read().decode().replace('href="/', "").replace('src="/', "")   # no CDN


def test_unknown_paths_and_methods_get_json_errors(client):
    status, body, _ = client.request("GET", "/../../etc/passwd")
    assert status == 404 and json.loads(body)["error"].startswith("no such page")
    status, body, _ = client.request("GET", "/api/forward")
    assert status == 405 and "POST" in json.loads(body)["error"]
    status, body, _ = client.request("PUT", "/api/forward")
    assert status == 405
    assert client.post("/api/nothing") == (404, {"error": "no such endpoint: /api/nothing", "status": 404})


# --- the numbers ----------------------------------------------------------------------------------------------


def test_forward_matches_the_tutorials_forward_prop(client):
    lab = client.lab
    image = image_of(lab, 3)
    f = client.ok("/api/forward", {"image": image, "label": 2})
    Z1, A1, Z2, A2 = manual.forward_prop(*lab.net.arrays, np.array(image)[:, None])
    for name, want in zip(("Z1", "A1", "Z2", "A2"), (Z1, A1, Z2, A2)):
        assert np.allclose(f[name], want[:, 0], atol=1e-6), name
    assert np.isclose(sum(f["A2"]), 1) and f["prediction"] == int(np.argmax(A2))
    assert np.isclose(f["loss"], -np.log(A2[2, 0]))
    assert np.allclose(f["W1"], lab.net.arrays[0], atol=1e-6) and len(f["W1"][0]) == 784


def test_forward_of_a_drawing_makes_the_mnist_style_image(client):
    alpha = np.zeros((280, 280))
    alpha[40:240, 130:150] = 1
    f = client.ok("/api/forward", {"drawing": {"width": 280, "height": 280, "alpha": alpha.ravel().tolist()}})
    assert np.allclose(f["image"], mnist_style(alpha).ravel(), atol=1e-4)
    assert len(f["image"]) == 784 and max(f["image"]) == 1


def test_backward_gives_the_tutorials_gradients_and_rules(client):
    lab = client.lab
    image, label = image_of(lab, 5), 7
    before = [a.copy() for a in lab.net.arrays]
    b = client.ok("/api/backward", {"image": image, "label": label})
    X = np.array(image)[:, None]
    Z1, A1, Z2, A2 = manual.forward_prop(*before, X)
    g = manual.backward_prop(Z1, A1, Z2, A2, before[0], before[2], X, np.array([label]))
    assert np.allclose(b["dZ2"], (A2 - manual.one_hot(np.array([label]), 10, A2.dtype))[:, 0], atol=1e-6)
    for name in ("dW2", "dW1"):
        assert np.allclose(b[name], getattr(g, name), atol=1e-6), name
    for name in ("db2", "dZ1", "db1"):
        assert np.allclose(b[name], getattr(g, name)[:, 0], atol=1e-6), name
    assert b["mask"] == (Z1[:, 0] > 0).astype(int).tolist()
    assert b["m"] == 1 and np.isclose(b["loss"], -np.log(A2[label, 0]))
    # the ops' own rules, filled in with the graph's names, as the trace prints them
    assert b["rules"]["Z1"] == ReLU.rules[0].format(a="Z1", out="A1")
    assert b["rules"]["W1"] == MatMul.rules[0].format(a="W1", b="X", out="(W1·X)")
    assert b["rules"]["Z2"] == SoftmaxCrossEntropy.rules[0].format(a="Z2", b="Y", out="L")
    assert any(line.startswith("∂L/∂b1 += ∂L/∂Z1") for line in b["trace"])
    assert all(np.array_equal(a, w) for a, w in zip(lab.net.arrays, before))   # nothing changed
    assert all(p.grad is None for p in lab.params)


def test_a_step_is_w_minus_alpha_dw_and_lowers_the_loss(client):
    lab = client.lab
    image, label, alpha = image_of(lab, 1), 4, 0.05
    before = [a.copy() for a in lab.net.arrays]
    s = client.ok("/api/step", {"image": image, "label": label, "alpha": alpha})
    X = np.array(image)[:, None]
    Z1, A1, Z2, A2 = manual.forward_prop(*before, X)
    g = manual.backward_prop(Z1, A1, Z2, A2, before[0], before[2], X, np.array([label]))
    want = manual.update_params(*before, g.dW1, g.db1, g.dW2, g.db2, alpha)
    assert all(np.allclose(a, w, atol=1e-12) for a, w in zip(lab.net.arrays, want))
    assert s["after"]["loss"] < s["before"]["loss"]
    assert np.isclose(s["before"]["loss"], -np.log(A2[label, 0]))
    assert np.isclose(sum(s["after"]["A2"]), 1)
    # Reset returns to the starting weights
    client.ok("/api/reset")
    assert all(np.array_equal(a, w) for a, w in zip(lab.net.arrays, before))


def test_test_images_by_index_and_misclassified(client):
    lab = client.lab
    t = client.ok("/api/test-image", {"index": 7})
    assert t["label"] == int(lab.y_test[7]) and t["count"] == len(lab.y_test)
    assert np.allclose(t["image"], lab.X_test[7].reshape(-1) / 255, atol=1e-4)
    for _ in range(3):
        m = client.ok("/api/test-image", {"misclassified": True})
        assert m["prediction"] != m["label"] == int(lab.y_test[m["index"]])
    assert client.post("/api/test-image", {"index": 60})[0] == 400


def test_training_runs_pauses_resumes_and_one_run_at_a_time(client):
    s = client.ok("/api/train/start", {"lr": 0.5, "batch_size": 32, "steps": 100000, "init": "he", "seed": 1})
    assert s["state"] == "running"
    paused = client.ok("/api/train/pause")
    assert paused["state"] == "paused"
    status, err = client.post("/api/train/start", {"lr": 0.1, "batch_size": None})
    assert status == 409 and "already" in err["error"]
    step = client.ok("/api/train/status")["step"]
    time.sleep(0.2)
    assert client.ok("/api/train/status")["step"] == step          # paused means paused
    assert client.ok("/api/train/resume", {"lr": 0.2, "batch_size": None})["state"] == "running"
    deadline = time.monotonic() + 60
    while client.ok("/api/train/status")["step"] < step + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    client.ok("/api/reset")                                         # stops the run
    s = client.ok("/api/train/status")
    assert s["state"] == "stopped" and s["step"] >= step + 3 and s["lr"] == 0.2 and s["batch_size"] is None


def test_a_short_run_finishes_and_learns(client):
    client.ok("/api/train/start", {"lr": 0.5, "batch_size": None, "steps": 30, "init": "he", "seed": 0})
    deadline = time.monotonic() + 120
    while (s := client.ok("/api/train/status"))["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert s["state"] == "done" and s["step"] == 30 and len(s["history"]) == 30
    assert [e["step"] for e in s["history"]] == list(range(1, 31))
    assert s["history"][-1]["loss"] < s["history"][0]["loss"]
    assert "test_accuracy" in s["history"][0] and "test_accuracy" in s["history"][-1]
    assert len(client.ok("/api/train/status", {"since": 25})["history"]) == 5


def test_save_writes_the_command_lines_file_only(client, tmp_path):
    client.ok("/api/step", {"image": image_of(client.lab), "label": 1, "alpha": 0.1})
    assert client.ok("/api/save") == {"saved": str(tmp_path / "w.npz")}
    model, architecture = training.load_model(tmp_path / "w.npz")
    assert all(np.array_equal(a, b) for a, b in zip(model.arrays, client.lab.net.arrays))
    status, err = client.post("/api/save", {"path": str(tmp_path / "other.npz")})
    assert status == 400 and err["error"] == "unknown field: path"
    assert not (tmp_path / "other.npz").exists()


def test_save_without_save_option_is_refused():
    c = Client(make_lab())
    try:
        status, err = c.post("/api/save")
        assert status == 409 and "--save" in err["error"]
    finally:
        c.close()


# --- refusals -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host, ok", [
    ("127.0.0.1:{p}", True), ("localhost:{p}", True), ("[::1]:{p}", True), ("127.0.0.1:1", False),
    ("evil.example:{p}", False), ("127.0.0.1", False), ("", False), ("localhost.evil.example:{p}", False)])
def test_host_header_must_name_this_server(client, host, ok):
    status, body, _ = client.request("POST", "/api/state", {}, headers={"Host": host.format(p=client.port)})
    assert (status == 200) == ok
    if not ok:
        assert status == 403 and json.loads(body)["error"] == "the Host header does not name this server"


def test_host_allowed_when_exposed():
    assert lab_server.host_allowed("192.168.1.5:8000", "0.0.0.0", 8000)
    assert lab_server.host_allowed("classroom.local:8000", "classroom.local", 8000)
    assert not lab_server.host_allowed("rebind.attacker.example:8000", "0.0.0.0", 8000)
    assert not lab_server.host_allowed(None, "127.0.0.1", 8000)


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_post_must_be_json(client, ctype):
    status, err = client.post("/api/state", {}, headers={"Content-Type": ctype})
    assert status == 415 and "application/json" in err["error"]


def test_body_size_is_capped(client):
    # the server answers from the header alone, before reading any of the body
    status, body, _ = client.request("POST", "/api/forward", b"", {"Content-Length": str(lab_server.MAX_BODY + 1)})
    assert status == 413 and "at most" in json.loads(body)["error"]


def test_missing_content_length(client):
    status, body, _ = client.request("POST", "/api/state", b"", headers={"Content-Length": None})
    assert status == 411


GOOD = {"image": [0.5] * 784, "label": 3}


@pytest.mark.parametrize("path, body, message", [
    ("/api/forward", {"image": [0.5] * 783}, "exactly 784 values"),
    ("/api/forward", {"image": [0.5] * 783 + [1.5]}, "in [0, 1]"),
    ("/api/forward", {"image": [0.5] * 783 + [-0.1]}, "in [0, 1]"),
    ("/api/forward", {"image": [0.5] * 783 + [True]}, "numbers only"),
    ("/api/forward", {"image": [0.5] * 783 + ["1"]}, "numbers only"),
    ("/api/forward", {"image": [0.5] * 783 + [10**400]}, "too large"),
    ("/api/forward", {"image": "0.5"}, "flat list"),
    ("/api/forward", {}, "exactly one of image"),
    ("/api/forward", {"image": [0] * 784, "drawing": {}}, "exactly one of image"),
    ("/api/forward", {"drawing": {"width": 280, "height": 280, "alpha": [0] * 10}}, "exactly 78400"),
    ("/api/forward", {"drawing": {"width": 5000, "height": 280, "alpha": []}}, "width must be"),
    ("/api/forward", {"drawing": {"width": 1000, "height": 1000, "alpha": []}}, "at most"),
    ("/api/backward", {**GOOD, "label": 10}, "digit 0-9"),
    ("/api/backward", {**GOOD, "label": 3.0}, "digit 0-9"),
    ("/api/backward", {**GOOD, "label": True}, "digit 0-9"),
    ("/api/backward", {"image": GOOD["image"]}, "missing field: label"),
    ("/api/step", {**GOOD, "alpha": 0}, "alpha must be"),
    ("/api/step", {**GOOD, "alpha": 1e6}, "alpha must be"),
    ("/api/step", {**GOOD, "alpha": "0.1"}, "alpha must be"),
    ("/api/step", {**GOOD, "alpha": 0.1, "path": "/tmp/x"}, "unknown field: path"),
    ("/api/test-image", {"index": -1}, "index must be"),
    ("/api/test-image", {"index": 1, "misclassified": True}, "either index"),
    ("/api/train/start", {"lr": 0.1, "batch_size": 0}, "batch_size must be"),
    ("/api/train/start", {"lr": 0.1, "batch_size": None, "steps": 10**9}, "steps must be"),
    ("/api/train/start", {"lr": 0.1, "batch_size": None, "init": "zeros"}, "init must be"),
    ("/api/train/pause", {}, "no training run to pause"),
    ("/api/train/resume", {}, "no paused training run"),
    ("/api/state", [], "JSON object"),
])
def test_bad_requests_get_a_message(client, path, body, message):
    status, err = client.post(path, body)
    assert 400 <= status < 500 and message in err["error"], err


@pytest.mark.parametrize("raw", [b"{", b"NaN", b'{"image": [NaN]}', b"\xff\xfe", b"[" * 100000, b'{"a": 1e999999}'])
def test_malformed_json_is_a_400(client, raw):
    status, body, _ = client.request("POST", "/api/forward", raw)
    assert status == 400 and "error" in json.loads(body)


def test_infinity_spelled_as_a_number_is_refused(client):
    raw = b'{"image": [' + b"0.5, " * 783 + b"1e400]}"     # Python's JSON reads 1e400 as inf
    status, body, _ = client.request("POST", "/api/forward", raw)
    assert status == 400 and "finite" in json.loads(body)["error"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)
bodies = json_values | st.fixed_dictionaries({}, optional={
    "image": json_values | st.lists(st.floats(-1, 2), min_size=784, max_size=784),
    "label": json_values, "alpha": json_values, "index": json_values, "misclassified": json_values,
    "drawing": json_values, "lr": json_values, "batch_size": json_values, "steps": json_values})


@settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(path=st.sampled_from(sorted(set(lab_server.ROUTES) - {"/api/train/start", "/api/reset"})), body=bodies)
def test_fuzzed_bodies_never_cause_a_server_error(client, path, body):
    status, data = client.post(path, body)
    assert status == 200 or (400 <= status < 500 and isinstance(data["error"], str)), (status, data)
    assert "Traceback" not in json.dumps(data)


def test_serves_on_ipv6_loopback_too():
    try:
        server = lab_server.LabServer(make_lab(), "::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert server.url == f"http://[::1]:{port}/"
        conn = http.client.HTTPConnection("::1", port, timeout=30)
        conn.request("POST", "/api/state", b"{}", {"Content-Type": "application/json", "Host": f"[::1]:{port}"})
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        server.lab.close()
        server.shutdown()
        server.server_close()


def test_requests_while_training_see_whole_steps_and_their_own_trace(client):
    """The training thread steps (forward, backward, an update under no_grad) while requests run traced
    backward passes: each answer is consistent in itself and its trace holds its own nine lines only."""
    lab = client.lab
    client.ok("/api/train/start", {"lr": 0.1, "batch_size": 16, "steps": 100000, "init": "he", "seed": 2})
    try:
        image = image_of(lab, 2)
        X = np.array(image)
        for label in range(10):
            b = client.ok("/api/backward", {"image": image, "label": label})
            assert len(b["trace"]) == 9 and b["rules"]["Z1"] == "∂L/∂Z1 += ∂L/∂A1 ⊙ [Z1 > 0]"
            assert np.allclose(b["dZ2"], np.array(b["A2"]) - np.eye(10)[label], atol=1e-5)
            assert np.allclose(b["dW1"], np.outer(b["dZ1"], X), atol=1e-5)
            assert np.allclose(b["dW2"], np.outer(b["dZ2"], b["A1"]), atol=1e-5)
        assert client.ok("/api/train/status")["step"] > 0
    finally:
        client.ok("/api/reset")
