"""benchmarks/step.py --against: a smoke run against HEAD prints its ratio line, a bad revision is one error line.

Timings are never asserted (this is a shared machine); only that the run works and says what it measured."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEP = ROOT / "benchmarks" / "step.py"


def _run(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(STEP), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


def _git_checkout() -> bool:
    if shutil.which("git") is None:
        return False
    out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                         check=False)
    return out.returncode == 0 and Path(out.stdout.strip()).resolve() == ROOT


needs_git = pytest.mark.skipif(not _git_checkout(), reason="needs git and a git checkout of the repository")


@needs_git
def test_against_head_quick_prints_the_ratio_line(tmp_path):
    out = _run("--against", "HEAD", "--quick", "--sizes", "64", "--json", str(tmp_path / "against.json"))
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert "new/old" in out.stdout
    assert re.search(r"^\s+64 \| float32 \|.*\d\.\d{3}× \| \d+\.\d{3}–\d+\.\d{3} \| .*target ≤ 1\.03", out.stdout,
                     re.MULTILINE), out.stdout
    assert "load average (1, 5, 15 min) at start" in out.stdout and "at end" in out.stdout
    assert (tmp_path / "against.json").exists()


def test_against_a_bad_revision_is_one_error_line():
    out = _run("--against", "no-such-revision-xyz", "--quick")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("step.py: error: --against no-such-revision-xyz: ")
    assert "Traceback" not in out.stderr


def test_text_step_quick_prints_both_ratios():
    pytest.importorskip("torch")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "text_step.py"), "--quick"], capture_output=True,
                         text=True, env=env, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert re.search(r"^mlp +\d+\.\d+ +\d+\.\d+ +\d+\.\d+×$", out.stdout, re.M)
    assert re.search(r"^rnn +\d+\.\d+ +\d+\.\d+ +\d+\.\d+× \(UnfusedRNN\)$", out.stdout, re.M)


def test_gpt_step_quick_checks_both_models_agree_then_prints_the_ratio():
    pytest.importorskip("torch")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpt_step.py"), "--quick"], capture_output=True,
                         text=True, env=env, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert re.search(r"^tinygrad_edu +\d+\.\d ms/step \(median\)$", out.stdout, re.M)
    assert re.search(r"^ours/torch +\d+\.\d\d× \(median of the rounds' ratios; min \d+\.\d\d, max \d+\.\d\d\); "
                     r"goal ≤ 1\.5×$", out.stdout, re.M)
