"""The `lab` command: its options and errors, and a real run that serves, saves only where --save says, and stops
cleanly on Ctrl-C (SIGINT)."""
import gzip
import http.client
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from processes import take_sigint
from test_lab_api import tiny_mnist
from test_train_cli import NAMES, idx

from tinygrad_edu import checkpoint, training
from tinygrad_edu.cli import build_parser, main
from tinygrad_edu.cli.lab import is_loopback

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_dir(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (train, test) = tiny_mnist()
    for name, a in zip(NAMES, (*train, *test)):
        (folder / f"{name}.gz").write_bytes(gzip.compress(idx(a), mtime=0))
    return folder


def test_options_and_defaults():
    args = build_parser().parse_args(["lab"])
    assert (args.host, args.port, args.weights, args.save, args.no_browser) == ("127.0.0.1", None, None, None, False)
    args = build_parser().parse_args(["lab", "--port", "0", "--host", "0.0.0.0", "--no-browser"])
    assert (args.port, args.host, args.no_browser) == (0, "0.0.0.0", True)


def test_a_bad_port_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["lab", "--port", "70000"])
    assert e.value.code == 2 and "expected a port number 0-65535, got '70000'" in capsys.readouterr().err


def test_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("example.org")


def test_bad_weights_file_is_a_clear_error(data_dir, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    assert main(["lab", "--no-browser", "--data", str(data_dir), "--weights", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"tinygrad-edu lab: error: {bad}: not an .npz weights file")


def test_an_mlp_weights_file_is_refused(data_dir, tmp_path, capsys):
    (X, y), test = tiny_mnist()
    config = training.TrainConfig(model="mlp", hidden=(8,), init="torch", lr=1e-3, optimizer="adam",
                                  batch_size=100, iterations=1)
    result = training.train(config, ((X, y), test))
    checkpoint.save(tmp_path / "mlp.npz", result.model.state_dict(), result.model.architecture())
    assert main(["lab", "--no-browser", "--data", str(data_dir), "--weights", str(tmp_path / "mlp.npz")]) == 2
    assert "the lab shows the tutorial's 784-H-10 network, not a mlp model" in capsys.readouterr().err


def test_save_never_overwrites_without_force(data_dir, tmp_path, capsys):
    (tmp_path / "w.npz").write_bytes(b"precious")
    assert main(["lab", "--no-browser", "--data", str(data_dir), "--save", str(tmp_path / "w.npz")]) == 2
    assert "exists; pass --force to overwrite it" in capsys.readouterr().err
    assert (tmp_path / "w.npz").read_bytes() == b"precious"


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    assert main(["lab", "--no-browser", "--data", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("tinygrad-edu lab: error: ")


def test_serves_saves_and_stops_on_ctrl_c(data_dir, tmp_path):
    save = tmp_path / "out" / "lab.npz"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tinygrad_edu", "lab", "--no-browser", "--port", "0", "--data",
                             str(data_dir), "--save", str(save)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, preexec_fn=take_sigint)
    try:
        lines = []
        while not (lines and "serving on" in lines[-1]):
            line = proc.stdout.readline()
            assert line, (lines, proc.stderr.read())
            lines.append(line)
        assert lines[0].startswith("lab: network trained at startup: He init")
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", lines[-1]).group(1))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/api/save", b"{}", {"Content-Type": "application/json"})
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read()) == {"saved": str(save)}
        model, _ = training.load_model(save)
        assert model.params.W1.shape == (10, 784)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "lab: stopping" in out and "Traceback" not in err
        assert sorted(p.name for p in save.parent.iterdir()) == ["lab.npz"]   # no temporary file left
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_exposing_it_prints_a_warning(data_dir):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tinygrad_edu", "lab", "--no-browser", "--port", "0", "--host",
                             "0.0.0.0", "--data", str(data_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, preexec_fn=take_sigint)
    try:
        lines = []
        while not (lines and "serving on" in lines[-1]):
            line = proc.stdout.readline()
            assert line, (lines, proc.stderr.read())
            lines.append(line)
        assert any(line.startswith("lab: warning: listening on 0.0.0.0 (every interface): anyone who can reach "
                                   "this machine") for line in lines)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
