"""The lab's HTTP server: the page's static files and its JSON API, every request checked before it is used.

The standard library's ThreadingHTTPServer: the lab serves one learner (or a classroom) a handful of small JSON
requests, which needs no framework, and so the lab adds no dependency. What a browser on another site could send
is refused: a POST must say `Content-Type: application/json`, and the Host header must be the server's own address
(a name that resolves to 127.0.0.1 by DNS rebinding is not). Bodies are capped; every field is validated; a bad
request gets a 4xx JSON error with a message, and nothing of the server's internals is ever sent.
"""
from __future__ import annotations

import ipaddress
import json
import math
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

import numpy as np

from tinygrad_edu import messages
from tinygrad_edu.lab.digits import mnist_style
from tinygrad_edu.lab.session import EPS_RANGE, INITS, LR_RANGE, MAX_STEPS, PARAMS, Lab, LabError

MAX_BODY = 1 << 20            # bytes: a 280×280 drawing at 3 decimals is well under this
PIXELS = 784
DRAWING_SIDES = (28, 1024)    # a drawing's width and height lie in this range
MAX_DRAWING = 320 * 320       # and it has at most this many values
STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/index.html": ("index.html", "text/html; charset=utf-8"),
          "/lab.js": ("lab.js", "text/javascript; charset=utf-8"), "/lab.css": ("lab.css", "text/css; charset=utf-8")}
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
           "Referrer-Policy": "no-referrer",
           "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"}


class BadRequest(Exception):
    """A request the lab refuses, with the HTTP status and the message the page shows."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# --- validation ---------------------------------------------------------------------------------------


def _fields(body: dict, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, got {type(body).__name__}")
    missing = [k for k in required if k not in body]
    unknown = sorted(set(body) - set(required) - set(optional))
    if missing:
        raise BadRequest(f"missing field{'s' * (len(missing) > 1)}: {', '.join(missing)}")
    if unknown:
        raise BadRequest(f"unknown field{'s' * (len(unknown) > 1)}: {', '.join(unknown)}")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def unit_values(value, name: str, count: int | None = None) -> np.ndarray:
    """A flat list of finite numbers in [0, 1] (exactly `count` of them if given) as a float64 array."""
    if not isinstance(value, list):
        raise BadRequest(f"{name} must be a flat list of numbers in [0, 1], got {type(value).__name__}")
    if count is not None and len(value) != count:
        raise BadRequest(f"{name} must have exactly {count} values (28×28), got {len(value)}")
    if not set(map(type, value)) <= {int, float}:   # NOTE: one pass in C; bool is a type of its own here
        bad = next(v for v in value if type(v) not in (int, float))
        raise BadRequest(f"{name} must hold numbers only, got {json.dumps(bad)[:40]}")
    try:
        a = np.array(value, dtype=np.float64)
    except OverflowError:
        raise BadRequest(f"{name} values must be finite and in [0, 1], got an integer too large") from None
    if a.size and not (np.all(np.isfinite(a)) and a.min() >= 0 and a.max() <= 1):
        raise BadRequest(f"{name} values must be finite and in [0, 1], got values from {a.min()} to {a.max()}")
    return a


def image_field(body: dict) -> np.ndarray:
    return unit_values(body["image"], "image", PIXELS)


def label_field(body: dict, key: str = "label") -> int:
    label = body[key]
    if not (isinstance(label, int) and not isinstance(label, bool) and 0 <= label <= 9):
        raise BadRequest(f"{key} must be an integer digit 0-9, got {json.dumps(label)[:40]}")
    return label


def rate_field(body: dict, key: str) -> float:
    value, (low, high) = body[key], LR_RANGE
    if not (_number(value) and math.isfinite(value) and low <= value <= high):
        raise BadRequest(f"{key} must be a number from {low} to {high}, got {json.dumps(value)[:40]}")
    return float(value)


def int_field(body: dict, key: str, low: int, high: int) -> int:
    value = body[key]
    if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
        raise BadRequest(f"{key} must be an integer from {low} to {high}, got {json.dumps(value)[:40]}")
    return value


def batch_field(body: dict, n: int) -> int | None:
    """null: full batch; else a minibatch size 1..n."""
    return None if body["batch_size"] is None else int_field(body, "batch_size", 1, n)


def drawing_field(body: dict) -> np.ndarray:
    """{"width": w, "height": h, "alpha": [h·w values in [0, 1], row by row]} as an h×w array."""
    d = body["drawing"]
    if not isinstance(d, dict):
        raise BadRequest("drawing must be an object {width, height, alpha}")
    _fields(d, ("width", "height", "alpha"))
    low, high = DRAWING_SIDES
    w, h = (int_field(d, k, low, high) for k in ("width", "height"))
    if w * h > MAX_DRAWING:
        raise BadRequest(f"drawing is {w}×{h}: at most {MAX_DRAWING} values are accepted")
    return unit_values(d["alpha"], "drawing.alpha", w * h).reshape(h, w)


# --- the API --------------------------------------------------------------------------------------------


def api_state(lab: Lab, body: dict):
    _fields(body, ())
    return lab.state()


def api_forward(lab: Lab, body: dict):
    """{"image": [784]} or {"drawing": {...}}, optional "label": the forward pass (and the image it used)."""
    _fields(body, (), ("image", "drawing", "label"))
    if ("image" in body) == ("drawing" in body):
        raise BadRequest("give exactly one of image (784 values) and drawing")
    image = image_field(body) if "image" in body else mnist_style(drawing_field(body)).reshape(-1)
    return lab.forward(image, label_field(body) if "label" in body else None)


def api_backward(lab: Lab, body: dict):
    _fields(body, ("image", "label"))
    return lab.backward(image_field(body), label_field(body))


def api_step(lab: Lab, body: dict):
    _fields(body, ("image", "label", "alpha"))
    return lab.step(image_field(body), label_field(body), rate_field(body, "alpha"))


def api_test_image(lab: Lab, body: dict):
    """{"index": i} or {"misclassified": true}."""
    _fields(body, (), ("index", "misclassified"))
    if body.get("misclassified") is True and "index" not in body:
        return lab.pick(misclassified=True)
    if "index" not in body or "misclassified" in body:
        raise BadRequest('give either index (an integer) or misclassified: true')
    n = len(lab.y_test)
    return lab.pick(int_field(body, "index", 0, n - 1))


def api_reset(lab: Lab, body: dict):
    _fields(body, ())
    return lab.reset()


def api_save(lab: Lab, body: dict):
    _fields(body, ())
    return {"saved": lab.save()}


def api_messages(lab: Lab, body: dict):
    """{"lang": "vi"} (default: the lab's language, `lab --lang`): the page's words from the message catalogue
    (tinygrad_edu/messages/lab.json, and common.json's as `common.KEY`), {name} fields left for the page."""
    _fields(body, (), ("lang",))
    lang = body.get("lang", lab.language)
    if lang not in messages.LANGUAGES:
        raise BadRequest(f"lang must be one of {', '.join(messages.LANGUAGES)}, got {json.dumps(lang)[:40]}")
    common = {f"common.{k}": v for k, v in messages.in_language("common", lang).items()}
    return {"lang": lang, "languages": list(messages.LANGUAGES),
            "messages": {**common, **messages.in_language("lab", lang)}}


def api_nudge(lab: Lab, body: dict):
    """{"image", "label", "param": "W1"|"b1"|"W2"|"b2", "index": [row, column], "eps"}: finite differences for
    that one weight beside the backward pass's gradient (Lab.nudge)."""
    _fields(body, ("image", "label", "param", "index", "eps"))
    param = body["param"]
    if param not in PARAMS:
        raise BadRequest(f"param must be one of {', '.join(PARAMS)}, got {json.dumps(param)[:40]}")
    shape = getattr(lab.params, param).shape
    index = body["index"]
    if not (isinstance(index, list) and len(index) == 2 and all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n for i, n in zip(index, shape))):
        raise BadRequest(f"index must be [row, column] within {param}, which is {shape[0]}×{shape[1]}, "
                         f"got {json.dumps(index)[:40]}")
    row, col = index
    eps, (low, high) = body["eps"], EPS_RANGE
    if not (_number(eps) and math.isfinite(eps) and low <= eps <= high):
        raise BadRequest(f"eps must be a number from {low} to {high}, got {json.dumps(eps)[:40]}")
    return lab.nudge(image_field(body), label_field(body), param, (row, col), float(eps))


def api_train_start(lab: Lab, body: dict):
    _fields(body, ("lr", "batch_size"), ("steps", "init", "seed"))
    init_name = body.get("init", "tutorial")
    if init_name not in INITS:
        raise BadRequest(f"init must be one of {', '.join(INITS)}, got {json.dumps(init_name)[:40]}")
    steps = int_field(body, "steps", 1, MAX_STEPS) if "steps" in body else 500
    seed = int_field(body, "seed", 0, 2**32 - 1) if "seed" in body else None
    return with_weights(lab, lab.trainer.start(rate_field(body, "lr"), batch_field(body, len(lab.y_train)), steps,
                                               init_name, seed))


def api_train_pause(lab: Lab, body: dict):
    _fields(body, ())
    return with_weights(lab, lab.trainer.pause())


def api_train_resume(lab: Lab, body: dict):
    _fields(body, (), ("lr", "batch_size"))
    lr = rate_field(body, "lr") if "lr" in body else None
    batch = batch_field(body, len(lab.y_train)) if "batch_size" in body else "keep"
    return with_weights(lab, lab.trainer.resume(lr, batch))


def api_train_status(lab: Lab, body: dict):
    _fields(body, (), ("since",))
    since = int_field(body, "since", 0, 10**9) if "since" in body else 0
    return with_weights(lab, lab.trainer.status(since))


def with_weights(lab: Lab, status: dict) -> dict:
    """A training status with the weights the page draws beside it (W1's rows)."""
    return {**status, "weights": lab.weights()}


ROUTES = {"/api/state": api_state, "/api/forward": api_forward, "/api/backward": api_backward,
          "/api/step": api_step, "/api/test-image": api_test_image, "/api/reset": api_reset, "/api/save": api_save,
          "/api/train/start": api_train_start, "/api/train/pause": api_train_pause,
          "/api/train/resume": api_train_resume, "/api/train/status": api_train_status,
          "/api/messages": api_messages, "/api/nudge": api_nudge}


# --- the server -------------------------------------------------------------------------------------------


def host_allowed(header: str | None, bound_host: str, port: int) -> bool:
    """True when a Host header names this server: its port, and as host an IP address, `localhost`, or the
    name the server was started with. A DNS name an attacker controls (rebinding to our address) fails."""
    if not header:
        return False
    if header.startswith("["):                        # an IPv6 address: [::1]:8000
        name, _, rest = header[1:].partition("]")
        sep, port_text = rest[:1], rest[1:]
    else:
        name, sep, port_text = header.partition(":")
    if sep != ":" or port_text != str(port):
        return False
    if name.lower() in ("localhost", bound_host.lower()):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class Handler(BaseHTTPRequestHandler):
    server_version = "tinygrad_edu-lab"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def setup(self):
        # NOTE: a connection that sends nothing for idle_timeout seconds (a keep-alive socket left open, a
        # half-sent request) is closed: it would hold one of the server's bounded threads for as long as it lasts
        self.timeout = self.server.idle_timeout
        super().setup()

    def log_message(self, format, *args):   # noqa: A002 (the base class's name)
        if self.server.verbose:
            sys.stderr.write(f"lab: {self.address_string()} {format % args}\n")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in HEADERS.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj) -> None:
        self._send(status, json.dumps(obj, allow_nan=False).encode("utf-8"), "application/json")

    def _error(self, status: int, message: str) -> None:
        self.close_connection = True
        self._json(status, {"error": message, "status": status})

    def _host_ok(self) -> bool:
        host, port = self.server.server_address[:2]
        if host_allowed(self.headers.get("Host"), self.server.public_host, port):
            return True
        self._error(HTTPStatus.FORBIDDEN, "the Host header does not name this server")
        return False

    def do_GET(self):
        if not self._host_ok():
            return
        path = self.path.split("?", 1)[0]
        if path.startswith("/api/"):
            return self._error(HTTPStatus.METHOD_NOT_ALLOWED, "the API takes POST requests with a JSON body")
        if path == "/favicon.ico":
            return self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        if path not in STATIC:
            return self._error(HTTPStatus.NOT_FOUND, f"no such page: {path[:80]}")
        name, content_type = STATIC[path]
        self._send(HTTPStatus.OK, resources.files("tinygrad_edu.lab").joinpath("static", name).read_bytes(),
                   content_type)

    do_HEAD = do_GET

    def do_POST(self):
        if not self._host_ok():
            return
        try:
            route = ROUTES.get(self.path)
            if route is None:
                raise BadRequest(f"no such endpoint: {self.path[:80]}", HTTPStatus.NOT_FOUND)
            content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if content_type != "application/json":
                raise BadRequest("a POST must have Content-Type: application/json", HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
            length = content_length(self.headers.get("Content-Length"))
            try:
                raw = self.rfile.read(length)
            except TimeoutError:   # NOTE: the connection's idle timeout, while the body trickles in or stops
                raise BadRequest(f"the body did not arrive: nothing came for {self.server.idle_timeout:g} s",
                                 HTTPStatus.REQUEST_TIMEOUT) from None
            try:
                body = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant) if raw.strip() else {}
            except (ValueError, RecursionError) as e:   # JSONDecodeError, bad UTF-8, an int of 5000 digits
                raise BadRequest(f"the body is not valid JSON ({str(e)[:80]})") from None
            result = route(self.server.lab, body)
        except BadRequest as e:
            return self._error(e.status, str(e))
        except LabError as e:
            return self._error(e.status, str(e))
        except Exception as e:   # NOTE: a bug of ours: said in the server's terminal, never sent to the page
            sys.stderr.write(f"lab: {self.path}: {type(e).__name__}: {e}\n")
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "the lab could not do this (see the server's output)")
        self._json(HTTPStatus.OK, result)

    def _not_allowed(self):
        if self._host_ok():
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not supported: use GET for pages, "
                                                       "POST for /api/")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed


def content_length(header: str | None) -> int:
    """A Content-Length header as the body's size in bytes: ASCII digits only (str.isdigit also takes '²',
    which int() refuses), at most MAX_BODY (told from the digits, as int() refuses 5000 of them)."""
    text = (header or "").strip()
    if not text or not (text.isascii() and text.isdigit()):
        raise BadRequest("a POST must have a Content-Length of decimal digits", HTTPStatus.LENGTH_REQUIRED)
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(MAX_BODY)) or int(digits) > MAX_BODY:
        size = f"{digits} bytes" if len(digits) <= 20 else f"a {len(digits)}-digit number of bytes"
        raise BadRequest(f"the body is {size}; at most {MAX_BODY} are accepted", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    return int(digits)


def _refuse_constant(name: str):
    raise BadRequest(f"the body is not valid JSON ({name} is not a number)")


class LabServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer holding the Lab its handlers work on, made for a classroom's bursts: a listen backlog
    of BACKLOG connections (socketserver's 5 reset bursts of 40), at most max_threads connections served at once
    (the next ones wait in the backlog, none is refused), and a connection idle for idle_timeout seconds closed."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = BACKLOG = 256
    MAX_THREADS = 64
    IDLE_TIMEOUT = 60.0

    def __init__(self, lab: Lab, host: str = "127.0.0.1", port: int = 8000, verbose: bool = False,
                 idle_timeout: float = IDLE_TIMEOUT, max_threads: int = MAX_THREADS):
        if not (idle_timeout > 0 and max_threads >= 1):
            raise ValueError(f"LabServer: idle_timeout must be > 0 and max_threads ≥ 1, got {idle_timeout!r} and "
                             f"{max_threads!r}")
        self.lab, self.public_host, self.verbose = lab, host, verbose
        self.idle_timeout, self.max_threads = float(idle_timeout), int(max_threads)
        self._slots = threading.BoundedSemaphore(self.max_threads)
        if ":" in host:   # an IPv6 address such as ::1
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)

    def process_request(self, request, client_address):
        """Each connection in a thread of its own, at most max_threads at once: the accept loop waits for a free
        one, and the connections that arrive meanwhile wait in the listen backlog."""
        self._slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address):
        """A browser that closes its connection is not an error; anything else is said in one line."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError):
            sys.stderr.write(f"lab: a request from {client_address[0]} failed: {type(error).__name__}: {error}\n")

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def bind(lab: Lab, host: str, port: int | None, tries: int = 20, verbose: bool = False) -> LabServer:
    """A LabServer on host:port; with port None, the first free one from 8000 on."""
    if port is not None:
        return LabServer(lab, host, port, verbose)
    for candidate in range(8000, 8000 + tries):
        try:
            return LabServer(lab, host, candidate, verbose)
        except OSError:
            continue
    raise OSError(f"ports 8000 to {8000 + tries - 1} are all in use; pass --port N")
