"""Times the lab's answer to a drawn digit: the server's work for POST /api/forward with a 280×280 drawing.

    python benchmarks/lab.py             # 200 rounds
    python benchmarks/lab.py --quick     # 20 rounds

Server time is what the handler does with the request body: parse the JSON (78,400 alpha values), validate it,
make the MNIST-style 28×28 image, run the forward pass with Tensor ops and encode the JSON answer. The baseline,
timed in the same interleaved rounds, is the same request with a ready 784-value image (no drawing to convert).
The round trip over HTTP on loopback is shown too (it adds the client's encoding and the socket). The issue's
target: under 100 ms of server time for a drawn digit.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import threading
import time

import numpy as np

from tinygrad_edu import manual, training
from tinygrad_edu.lab import server
from tinygrad_edu.lab.session import Lab

TARGET_MS = 100.0


def stroke(size: int = 280, width: float = 10.0) -> np.ndarray:
    """A drawn 7 as an alpha map: ink within `width` of two segments, antialiased over one pixel."""
    y, x = np.mgrid[0:size, 0:size] + 0.5
    d = np.full((size, size), np.inf)
    for (x0, y0), (x1, y1) in (((70, 60), (210, 55)), ((210, 55), (135, 235))):
        t = np.clip(((x - x0) * (x1 - x0) + (y - y0) * (y1 - y0)) / ((x1 - x0) ** 2 + (y1 - y0) ** 2), 0, 1)
        d = np.minimum(d, np.hypot(x - x0 - t * (x1 - x0), y - y0 - t * (y1 - y0)))
    return np.round(np.clip(width - d, 0, 1), 2)   # as the page sends it


def make_lab() -> Lab:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (100, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, 100).astype(np.uint8)
    net = training.TutorialNet(*manual.init_params(rng, np.float32, 10))
    return Lab(net, ((images, labels), (images, labels)))


def handle(lab: Lab, body: bytes) -> bytes:
    """The server's work for one POST /api/forward body (the handler's steps, without the socket)."""
    return json.dumps(server.api_forward(lab, json.loads(body)), allow_nan=False).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 rounds instead of 200")
    args = parser.parse_args()
    rounds = 20 if args.quick else 200
    lab = make_lab()
    alpha = stroke()
    # NOTE: as the page's JSON.stringify writes it: no spaces, and whole numbers without ".0"
    values = [int(v) if v.is_integer() else v for v in alpha.ravel().tolist()]
    drawing = json.dumps({"drawing": {"width": 280, "height": 280, "alpha": values}}, separators=(",", ":")).encode()
    image = json.dumps({"image": json.loads(handle(lab, drawing))["image"]}, separators=(",", ":")).encode()

    httpd = server.LabServer(lab, "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]

    def round_trip(body: bytes) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("POST", "/api/forward", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        conn.close()

    timings = {"drawing": [], "image": [], "drawing over HTTP": [], "image over HTTP": []}
    for _ in range(rounds):   # NOTE: interleaved, so the shared machine's drift hits every kind alike
        for name, body in (("drawing", drawing), ("image", image)):
            start = time.perf_counter()
            handle(lab, body)
            timings[name].append(time.perf_counter() - start)
            start = time.perf_counter()
            round_trip(body)
            timings[f"{name} over HTTP"].append(time.perf_counter() - start)
    httpd.shutdown()
    httpd.server_close()

    base = statistics.median(timings["image"])
    print(f"POST /api/forward, median of {rounds} interleaved rounds (request body: drawing {len(drawing)} bytes, "
          f"image {len(image)} bytes)")
    for name, ts in timings.items():
        median = statistics.median(ts)
        print(f"  {name:<20} {1000 * median:8.2f} ms   {median / base:6.1f}× the image's server time")
    server_ms = 1000 * statistics.median(timings["drawing"])
    verdict = "met" if server_ms < TARGET_MS else "NOT met"
    print(f"server time for a drawn digit's prediction: {server_ms:.1f} ms (target < {TARGET_MS:.0f} ms: {verdict})")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(machine: {os.cpu_count()} CPUs, load average {load:.1f} during the run: a loaded machine slows all rows)")


if __name__ == "__main__":
    main()
