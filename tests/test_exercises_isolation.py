"""The checker grades outside the learner's process: fakes that fooled an in-process grader fail, hanging or
lingering processes are bounded and killed, and the scratch folder goes on SIGTERM as on SIGINT."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_exercises import ANSWERS, NAMES, fill, run_check, solved

from tinygrad_edu.exercises import grading, wire

ROOT = Path(__file__).resolve().parent.parent

# every answer wrong (zeros of the right shape, or no tuple at all): a workbook no fake may pass
WRONG = {**{k: "return tuple(np.zeros_like(x) for x in (a, b))" for k in ("Add.backward", "Mul.backward",
                                                                            "MatMul.backward")},
         **{k: "return (np.zeros(3),)" for k in ("ReLU.backward", "Exp.backward", "Log.backward", "Sum.backward",
                                                 "Mean.backward")},
         "SoftmaxCrossEntropy.backward": "return (np.zeros(3), None)",
         **{k: "return np.zeros(1)" for k in ("dZ2", "dW2", "db2", "dZ1", "dW1", "db1")}}
WRONG["Add.backward"] = "return np.zeros(1), np.zeros(1)"

FAKES = {
    "allclose": "np.allclose = lambda *a, **k: True\nnp.isclose = lambda a, b, *r, **k: np.ones(np.shape(a), bool)\n",
    "grade": ("import tinygrad_edu.exercises.grading as G\n"
              "G.grade = lambda exercise, *a, **k: G.record(exercise.name, True, None, 'ok')\n"
              "G.close = lambda *a: True\n"),
    "pipe": ("import os, json\n"
             "def _fake_everything():\n"
             "    names = " + repr(NAMES) + "\n"
             "    lines = [json.dumps({'record': {'name': n, 'passed': True, 'diagnosis': None, 'message': 'ok'}})\n"
             "             for n in names] + [json.dumps({'done': n}) for n in names]\n"
             "    for fd in os.listdir('/proc/self/fd'):\n"
             "        try:\n"
             "            os.write(int(fd), ('\\n'.join(lines) + '\\n').encode())\n"
             "        except OSError:\n"
             "            pass\n"
             "_fake_everything()\n"),
    "frames": ("import sys, gc\n"
               "def _expected():\n"
               "    f = sys._getframe(1)\n"
               "    while f is not None:\n"
               "        for v in f.f_locals.values():\n"
               "            if hasattr(v, 'expected'):\n"
               "                return v.expected\n"
               "            if hasattr(v, 'gradients'):\n"
               "                return v.gradients[0].expected\n"
               "        f = f.f_back\n"
               "    for o in gc.get_objects():\n"
               "        if type(o).__name__ == 'Gradient':\n"
               "            return o.expected\n"
               "    return np.zeros(1)\n"),
}


def fake_workbook(folder: Path, fake: str) -> Path:
    answers = dict(WRONG)
    if fake == "frames":   # every answer is whatever the grader's frames or objects hold
        answers = {k: ("return tuple(_expected() for _ in range(2))" if k.startswith(("Add", "Mul", "MatMul"))
                       else "return (_expected(), None)" if k.startswith("Softmax")
                       else "return (_expected(),)" if "." in k else "return _expected()") for k in ANSWERS}
    fill(folder, answers)
    for f in ("ops.py", "tutorial.py"):
        text = (folder / f).read_text().replace("import numpy as np\n", "import numpy as np\n" + FAKES[fake], 1)
        (folder / f).write_text(text)
    return folder


@pytest.mark.parametrize("fake", sorted(FAKES))
def test_a_fake_in_the_learners_process_cannot_pass_a_wrong_workbook(tmp_path, capsys, fake):
    code, out = run_check(capsys, fake_workbook(tmp_path / "wb", fake), "--json")
    records = json.loads(out)
    assert code == 1
    assert [r["name"] for r in records] == NAMES
    assert [r["name"] for r in records if r["passed"]] == []


def test_the_learners_code_never_runs_in_the_checker(tmp_path, capsys):
    folder = solved(tmp_path / "wb")
    for f in ("ops.py", "tutorial.py"):
        pid = f"\nimport os\nopen({str(tmp_path / f)!r} + '.pid', 'w').write(str(os.getpid()))\n"
        text = (folder / f).read_text() + pid
        (folder / f).write_text(text)
    code, _ = run_check(capsys, folder, "Add", "dW2")
    assert code == 0
    pids = {int((tmp_path / f"{f}.pid").read_text()) for f in ("ops.py", "tutorial.py")}
    assert len(pids) == 1 and os.getpid() not in pids
    assert not [m for m in sys.modules if m.startswith("_tinygrad_edu_workbook_")]


def test_the_child_gets_inputs_only():
    cases = {n: grading.draw_cases(grading.BY_NAME[n], 2) for n in ("MatMul", "dW2")}
    requests = grading.requests(cases)
    assert [set(r) for r in requests["MatMul"]["cases"]] == [{"op", "inputs", "kwargs", "wants", "g"}] * 2
    assert [set(r) for r in requests["dW2"]["cases"]] == [{"function", "args"}] * 2
    assert [k for k, _ in requests["dW2"]["cases"][0]["args"]] == ["dZ2", "A1", "m"]
    text = json.dumps(requests)
    for cs in cases.values():
        for c in cs:
            for g in c.gradients:
                assert wire.encode(g.expected)["data"] not in text


@pytest.mark.parametrize("bad", [
    {"shape": [2], "data": "AAAA"},                                    # too few bytes for the shape
    {"shape": [1], "data": "gASVAAAAAAAAAAA=", "dtype": "object"},      # an extra key
    {"shape": [-1], "data": ""},
    {"shape": [True], "data": "AAAAAAAAAAA="},
    {"shape": [1], "data": "not base64!"},
    [1.0, 2.0],
])
def test_the_wire_refuses_anything_but_float64_bytes_of_its_shape(bad):
    with pytest.raises(wire.WireError):
        wire.decode(bad)


def test_the_wire_round_trips_arrays_of_any_shape():
    for a in (np.arange(6.0).reshape(2, 3), np.asarray(2.5), np.zeros((0, 3)), np.arange(4, dtype=np.int64)):
        b = wire.decode(wire.encode(a))
        assert b.dtype == np.float64 and b.shape == a.shape
        np.testing.assert_array_equal(b, a)


def alive(pid: int) -> bool:
    """True while the process runs (a zombie, killed but not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def wait_gone(pids, seconds=10.0) -> list:
    end = time.monotonic() + seconds
    while time.monotonic() < end and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def test_a_grandchild_holding_the_pipe_does_not_hang_the_check(tmp_path, capsys):
    pidfile, outlived = tmp_path / "grandchild.pid", tmp_path / "outlived"
    # the child forks; the fork keeps every descriptor (the report pipe too) and sleeps; the child dies. A check
    # that waited for the pipe to close would return only after the fork wrote `outlived` and exited.
    folder = solved(tmp_path / "wb", Exp__backward=(
        "import os, time\n        if os.fork() == 0:\n"
        f"            open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
        f"            time.sleep(60)\n            open({str(outlived)!r}, 'w').close()\n            os._exit(0)\n"
        "        time.sleep(0.5)\n        os._exit(3)"))
    code, out = run_check(capsys, folder, "Exp", "Log", "--timeout", "3", "--json")
    assert not outlived.exists()                      # the check ended while the fork still held the pipe
    records = {r["name"]: r for r in json.loads(out)}
    assert records["Exp"]["message"].startswith("Exp stopped the checker (the process exited with code 3")
    assert records["Log"]["passed"]
    assert wait_gone([int(pidfile.read_text())]) == []


def test_a_hanging_exercise_with_a_grandchild_is_bounded_by_the_timeout(tmp_path, capsys):
    pidfile, outlived = tmp_path / "grandchild.pid", tmp_path / "outlived"
    # the exercise never returns and its fork holds the pipe: a check bounded by neither --timeout nor the pipe
    # would still be waiting when the fork writes `outlived`, a minute on
    folder = solved(tmp_path / "wb", dZ2=(
        f"import os, time\n    if os.fork() == 0:\n        open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
        f"        time.sleep(60)\n        open({str(outlived)!r}, 'w').close()\n        os._exit(0)\n"
        "    while True:\n        time.sleep(0.1)"))
    code, out = run_check(capsys, folder, "dZ2", "db2", "--timeout", "2", "--json")
    assert not outlived.exists()
    records = {r["name"]: r for r in json.loads(out)}
    assert records["dZ2"]["message"] == "dZ2 did not finish within 2 s (an endless loop?)"
    assert records["db2"]["passed"]
    assert wait_gone([int(pidfile.read_text())]) == []


def test_processes_the_learners_code_starts_do_not_outlive_the_check(tmp_path, capsys):
    pids = tmp_path / "pids"
    sleeper = "[sys.executable, '-c', 'import time; time.sleep(120)']"
    # one plain child of the child, and one that leaves the session (setsid) and would escape a group kill
    folder = solved(tmp_path / "wb", dW2=(
        f"import subprocess, sys\n    ps = [subprocess.Popen({sleeper}), "
        f"subprocess.Popen({sleeper}, start_new_session=True)]\n"
        f"    open({str(pids)!r}, 'a').write(''.join(f'{{p.pid}}\\n' for p in ps))\n"
        "    return dZ2 @ A1.T / m"))
    code, out = run_check(capsys, folder, "dW2")
    assert code == 0
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 2 * grading.EXAMPLES
    assert wait_gone(started) == []


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_the_scratch_folder_and_the_child_go_on_sigterm_as_on_sigint(tmp_path, sig, code):
    pidfile = tmp_path / "child.pid"
    folder = solved(tmp_path / "wb", dZ2=(
        f"import os\n    open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n    while True:\n"
        "        pass"))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp), PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                                                   os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", "tinygrad_edu", "exercises", "check", str(folder), "dZ2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    end = time.monotonic() + 60
    while not pidfile.exists() and proc.poll() is None and time.monotonic() < end:
        time.sleep(0.05)
    assert [p.name[:len("tinygrad_edu_check_")] for p in tmp.iterdir()] == ["tinygrad_edu_check_"]
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert list(tmp.iterdir()) == []
    assert wait_gone([int(pidfile.read_text())]) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_DUMPABLE is Linux's")
def test_the_checker_is_closed_to_its_users_other_processes_while_it_checks():
    import ctypes

    from tinygrad_edu.exercises import runner

    libc = ctypes.CDLL(None)
    before = libc.prctl(runner.PR_GET_DUMPABLE, 0, 0, 0, 0)
    with runner.closed_to_the_child():
        assert libc.prctl(runner.PR_GET_DUMPABLE, 0, 0, 0, 0) == 0
    assert libc.prctl(runner.PR_GET_DUMPABLE, 0, 0, 0, 0) == before == 1


def test_a_step_forged_into_the_report_pipe_fails_its_exercise(tmp_path, capsys):
    # a right Mul that also says "done" on every pipe it holds, before its first answer is sent
    forge = ("import os, stat\n        for fd in range(3, 64):\n            try:\n"
             "                if stat.S_ISFIFO(os.fstat(fd).st_mode):\n"
             "                    os.write(fd, b'{\"done\": \"Mul\"}\\n')\n            except OSError:\n"
             "                pass\n        return g * b, g * a")
    code, out = run_check(capsys, solved(tmp_path / "wb", Mul__backward=forge), "Mul", "Add", "--json")
    records = {r["name"]: r for r in json.loads(out)}
    assert code == 1
    assert records["Mul"] == {"name": "Mul", "passed": False, "diagnosis": None, "message":
                              "the checker did not get every answer of Mul: your code wrote into the checker's own "
                              "pipe, or stopped it early"}
    assert records["Add"]["passed"]
