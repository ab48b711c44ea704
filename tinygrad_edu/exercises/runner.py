"""`exercises check`: draws the examples, has a child process compute the learner's answers, and grades them here.

The learner's code runs only in the child (child.py), in a session of its own, under a time limit per step.
The child gets the examples' inputs in a file of the scratch folder and sends back, on a private copy of its
stdout, one JSON line per step with the learner's outputs as plain float64 arrays (wire.py); the expected
gradients never leave this process, and nothing the child sends can pass an exercise except outputs that equal
them. When a step's time runs out or the child dies, this process records that exercise (or every exercise of
a file that would not import), kills the child's whole session, starts a new child for the rest, and goes on.
Every wait is bounded (the pipe is read with select, never by a thread that could block), processes the
learner's code started are killed with the child, and the scratch folder goes on SIGINT and SIGTERM alike.
"""
from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

TIMEOUT = 10.0   # seconds per exercise (and per file import)
STARTUP = 60.0   # seconds for the child to import numpy and the library on a busy machine
TOKEN = "TINYGRAD_EDU_CHECK"   # in the child's environment: how processes it left behind are found


class Terminated(SystemExit):
    """SIGTERM during a check: raised so that the cleanup runs, then the process exits with 128 + 15."""


@contextlib.contextmanager
def _sigterm_raises():
    """SIGTERM raises Terminated while the check runs (in the main thread), so its finally blocks clean up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(128 + signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def closed_to_the_child():
    """While the check runs, this process is closed to other processes of its user: Linux's PR_SET_DUMPABLE = 0
    makes /proc/PID/mem and /proc/PID/fd root's only, so the learner's code can neither read the expected
    gradients out of this process's memory nor write into its stdout. Restored after; elsewhere, nothing."""
    libc = None
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
    before = libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) if libc is not None else -1
    if before < 0:
        yield
        return
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    try:
        yield
    finally:
        libc.prctl(PR_SET_DUMPABLE, before, 0, 0, 0)


PR_GET_DUMPABLE, PR_SET_DUMPABLE = 3, 4   # linux/prctl.h


def check(workbook, names, timeout: float = TIMEOUT, lang: str = "en") -> list[dict]:
    """One record per exercise, in the order of names: {"name", "passed", "diagnosis", "message"}."""
    from tinygrad_edu.exercises import grading

    workbook = Path(workbook).resolve()
    scratch = None
    with _sigterm_raises(), closed_to_the_child():
        try:
            scratch = tempfile.mkdtemp(prefix="tinygrad_edu_check_")   # the child's cwd: nothing lands in the workbook
            requests = Path(scratch) / "requests.json"
            child = _Child(workbook, requests, names, scratch)   # started first: its imports overlap the drawing
            try:
                cases = {n: grading.draw_cases(grading.BY_NAME[n]) for n in names}
                requests.write_text(json.dumps(grading.requests(cases)), encoding="utf-8")
                answers = {n: grading.Answers() for n in names}
                failed: dict[str, dict] = {}
                while True:
                    pending = [n for n in names if not answers[n].done and n not in failed]
                    if not pending:
                        break
                    if child is None:
                        child = _Child(workbook, requests, pending, scratch)
                    child.go()
                    before = len(pending)
                    child.collect(pending, answers, failed, timeout, lang)
                    child.close()
                    child = None
                    if len([n for n in pending if not answers[n].done and n not in failed]) == before:
                        for n in pending:   # no progress: never loop forever
                            failed[n] = grading.record(n, False, None, grading.say("could-not-run", lang))
            finally:
                if child is not None:
                    child.close()
            return [failed[n] if n in failed else _grade(grading, n, cases[n], answers[n], lang) for n in names]
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)


def _grade(grading, name, cases, answers, lang) -> dict:
    try:
        return grading.grade(grading.BY_NAME[name], cases, answers, lang)
    except Exception as e:   # NOTE: a bug of the checker's, not the learner's: say so rather than crash
        return grading.record(name, False, None, grading.say("checker-failed", lang, name=name,
                                                             error=f"{type(e).__name__}: {e}"))


class _Child:
    """One child process: started in a session of its own, told to go once the requests are written, read
    with bounded waits, and closed by killing its session and whatever it left behind."""

    def __init__(self, workbook: Path, requests: Path, names, scratch: str):
        self.token = uuid.uuid4().hex
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONIOENCODING="utf-8", **{TOKEN: self.token})
        # NOTE: the child imports this very tree, first on its path, whatever else PYTHONPATH holds
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                          env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-B", "-m", "tinygrad_edu.exercises.child", str(workbook), str(requests), *names],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=scratch, env=env, start_new_session=True)
        self.buffer = b""

    def go(self) -> None:
        """Tells the child that the requests are written (one short line: never blocks)."""
        if self.proc.stdin is None:
            return
        with contextlib.suppress(OSError):
            self.proc.stdin.write(b"go\n")
            self.proc.stdin.close()
        self.proc.stdin = None

    def lines(self, deadline_of):
        """The child's lines as they come; yields None when the deadline (deadline_of(), re-read after each
        line) passes, and stops when the child has exited (whoever still holds its pipe)."""
        from tinygrad_edu.exercises import wire

        fd = self.proc.stdout.fileno()
        os.set_blocking(fd, False)
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                left = deadline_of() - time.monotonic()
                if left <= 0:
                    yield None
                    return
                ready = sel.select(timeout=min(left, 0.1))
                exited = self.proc.poll() is not None
                data = self._read(fd) if ready or exited else b""
                eof = data is None
                self.buffer += data or b""
                *complete, self.buffer = self.buffer.split(b"\n")
                if len(self.buffer) > wire.MAX_LINE:   # no line of the child's is that long: not one, dropped
                    self.buffer = b""
                yield from complete
                if eof or (exited and not data):
                    return

    @staticmethod
    def _read(fd):
        """What can be read now (b"" if nothing yet), or None at the pipe's end."""
        chunks = []
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                return b"".join(chunks)
            if not chunk:
                return b"".join(chunks) if chunks else None
            chunks.append(chunk)

    def collect(self, pending, answers, failed, timeout, lang) -> None:
        """Reads the child's steps into answers until every pending exercise is done, a step times out, or
        the child is gone; the exercise (or file) it was on then gets a failed record."""
        from tinygrad_edu.exercises import grading, wire

        files = {n: grading.BY_NAME[n].file for n in pending}
        step, begun = None, set()
        deadline = [time.monotonic() + max(STARTUP, timeout)]

        def finished():
            return all(answers[n].done or n in failed for n in pending)

        for line in self.lines(lambda: deadline[0]):
            if line is None:
                _step_failed(step, pending, files, failed, lang, "timeout", seconds=f"{timeout:g}")
                return
            msg = wire.read_message(line)
            if msg is None:
                continue
            name = step[1] if step and step[0] == "begin" else None
            if "import" in msg and msg["import"] in files.values():
                if "problem" in msg:
                    text = grading.problem_text(msg["problem"], lang)
                    for n in pending:
                        if files[n] == msg["import"] and n not in failed and not answers[n].done:
                            failed[n] = grading.record(n, False, None, text)
                    step = None
                else:
                    step = ("import", msg["import"])
            elif "begin" in msg and msg["begin"] in files and msg["begin"] not in begun:
                step = ("begin", msg["begin"])
                begun.add(msg["begin"])
            elif "answer" in msg and msg["answer"] == name:
                answers[name].take(msg)
                continue   # NOTE: answers do not extend the time limit: only a new step does
            elif "problem" in msg and msg.get("name") == name and isinstance(msg["problem"], dict):
                if answers[name].problem is None:
                    answers[name].problem, answers[name].problem_case = msg["problem"], msg.get("case")
                continue
            elif "done" in msg and msg["done"] == name:
                answers[name].done = True
                step = None
            else:
                continue
            deadline[0] = time.monotonic() + timeout
            if finished():
                return
        if not finished():
            code = self.proc.poll()
            if code is None:   # its end of the pipe closed, the process still running: ended here
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = self.proc.wait(timeout=5)
            _step_failed(step, pending, files, failed, lang, "stopped", code=code)

    def close(self) -> None:
        """Kills the child's session and every process that carries its token, then reaps the child."""
        self.go()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        kill_left_behind(self.proc.pid, self.token)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.proc.stdout.close()   # no thread reads it: closing cannot block


def kill_left_behind(session: int, token: str) -> list[int]:
    """Kills the processes in the child's session, or with its token in their environment (a process that
    left the session with setsid still carries it); Linux's /proc only, elsewhere the session's kill does it."""
    killed = []
    proc = Path("/proc")
    if not proc.is_dir():
        return killed
    marker = f"{TOKEN}={token}".encode()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            ours = int(fields[3]) == session or marker in (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ours:
            with contextlib.suppress(OSError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
    return killed


def _step_failed(step, pending, files, failed, lang, key, **fields) -> None:
    """Records the exercise (or every exercise of the file) the child was on when it hung or died."""
    from tinygrad_edu.exercises import grading

    if step is None:
        return
    kind, which = step
    if kind == "begin":
        failed[which] = grading.record(which, False, None, grading.say(key, lang, name=which, **fields))
        return
    for n in pending:
        if files[n] == which and n not in failed:
            failed[n] = grading.record(n, False, None, grading.say(f"import-{key}", lang, file=which, **fields))
