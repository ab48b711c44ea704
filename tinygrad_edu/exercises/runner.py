"""`exercises check`: grades a workbook in a child process, with a time limit per exercise.

The learner's code runs only in the child (`python -m tinygrad_edu.exercises.runner DIR NAME ...`), which
reports on a private copy of its stdout, one JSON line per step: {"import": file} before importing a file,
{"begin": name} before an exercise, {"record": {...}} after it. The parent gives each step its time limit;
when one runs out or the child dies, the parent records that exercise (or every exercise of a file that
would not import), starts a new child for the rest, and goes on. So the checker itself never hangs or
crashes, whatever the learner's code does.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TIMEOUT = 10.0   # seconds per exercise (and per file import)
STARTUP = 60.0   # seconds for the child to import numpy, hypothesis and the library on a busy machine


def _names_by_file(names):
    from tinygrad_edu.exercises.grading import BY_NAME

    return {n: BY_NAME[n].file for n in names}


def check(workbook, names, timeout: float = TIMEOUT) -> list[dict]:
    """One record per exercise, in the order of names: {"name", "passed", "diagnosis", "message"}."""
    from tinygrad_edu.exercises.grading import record

    workbook = Path(workbook).resolve()
    files = _names_by_file(names)
    results: dict[str, dict] = {}
    scratch = tempfile.mkdtemp(prefix="tinygrad_edu_check_")   # the child's cwd: nothing lands in the workbook
    try:
        while len(results) < len(names):
            pending = [n for n in names if n not in results]
            _run_child(workbook, pending, files, timeout, scratch, results)
            if all(n not in results for n in pending):   # no progress: never loop forever
                for n in pending:
                    results[n] = record(n, False, None, "the checker could not run this exercise")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return [results[n] for n in names]


def _reader(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _run_child(workbook: Path, pending, files, timeout, scratch, results) -> None:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONIOENCODING="utf-8")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                      env.get("PYTHONPATH")]))
    child = subprocess.Popen([sys.executable, "-B", "-m", "tinygrad_edu.exercises.runner", str(workbook), *pending],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, cwd=scratch, env=env,
                             text=True, encoding="utf-8", errors="replace")
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_reader, args=(child.stdout, lines), daemon=True)
    reader.start()
    step, deadline = None, time.monotonic() + max(STARTUP, timeout)
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                _step_failed(step, pending, files, results, f"did not finish within {timeout:g} s (an endless loop?)")
                return
            if line is None:   # the child is gone
                code = child.wait()
                _step_failed(step, pending, files, results,
                             f"stopped the checker (the process exited with code {code}: exit() or a crash)")
                return
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "record" in msg:
                results[msg["record"]["name"]] = msg["record"]
                step = None
            else:
                step = ("import", msg["import"]) if "import" in msg else ("begin", msg["begin"])
            deadline = time.monotonic() + timeout
            if all(n in results for n in pending):
                return
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        reader.join(timeout=5)   # it ends at the pipe's end, now that the child is gone
        child.stdout.close()


def _step_failed(step, pending, files, results, what: str) -> None:
    """Records the exercise (or every exercise of the file) the child was on when it hung or died."""
    from tinygrad_edu.exercises.grading import record

    if step is None:
        return
    kind, which = step
    if kind == "begin":
        results[which] = record(which, False, None, f"{which} {what}")
        return
    for n in pending:
        if files[n] == which and n not in results:
            results[n] = record(n, False, None, f"importing {which} {what}")


# --- the child -------------------------------------------------------------------------------------------


def _exit_with_parent() -> None:
    """Ends this child if the checker that started it is gone (killed, interrupted), even mid-loop."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def child_main(argv) -> int:
    sys.dont_write_bytecode = True
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    # NOTE: the reports go to a private copy of stdout; fd 1 then points at stderr, so the learner's prints
    # (Python or C level) cannot corrupt them and still show.
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def say(**msg) -> None:
        out.write(json.dumps(msg, ensure_ascii=False) + "\n")
        out.flush()

    import hypothesis  # noqa: F401  (imported before the first time limit starts)

    from tinygrad_edu.exercises import grading

    workbook, names = Path(argv[0]), argv[1:]
    grading.WORKBOOK = workbook
    modules = {}
    for name in names:
        exercise = grading.BY_NAME[name]
        if exercise.file not in modules:
            say(**{"import": exercise.file})
            modules[exercise.file] = grading.load(workbook / exercise.file)
        say(begin=name)
        try:
            rec = grading.grade(exercise, modules[exercise.file])
        except Exception as e:   # NOTE: a bug of the checker's, not the learner's: say so rather than crash
            rec = grading.record(name, False, None, f"the checker failed on {name}: {type(e).__name__}: {e}")
        say(record=rec)
    return 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
