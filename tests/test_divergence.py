"""train's divergence warning (training.divergence, a pure function of the history) and Ctrl-C during train."""
from __future__ import annotations

import io
import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from processes import take_sigint

from tinygrad_edu import training
from tinygrad_edu.cli.train import interrupted_path
from tinygrad_edu.training import Progress, TrainConfig, divergence

ROOT = Path(__file__).resolve().parents[1]
HISTORIES = Path(__file__).parent / "histories"   # recorded runs of the docs (see docs/cli.md)


def entry(step, loss, acc=0.5):
    return {"step": step, "epoch": 1, "loss": loss, "train_accuracy": acc}


def first_warning(history, steps_per_epoch):
    """(step, text) of the first prefix of history that divergence() flags, as train meets them; None if none."""
    for i in range(len(history)):
        if seen := divergence(history[:i + 1], steps_per_epoch):
            return history[i]["step"], seen
    return None


# --- the rules, on made-up histories ------------------------------------------------------------------------


def test_loss_above_twice_the_first_at_three_log_points_in_a_row():
    h = [entry(1, 2.0), entry(10, 4.5), entry(20, 5.0), entry(30, 4.1)]
    assert divergence(h[:3], 1) is None                               # two points are not three
    assert divergence(h, 1) == ("the loss is 4.1 at step 30, above 2 × its first value (2 at step 1) at 3 log "
                                "points in a row")
    assert first_warning(h, 1)[0] == 30


def test_loss_rule_is_strict_and_needs_the_points_in_a_row():
    assert first_warning([entry(1, 2.0)] + [entry(10 * k, 4.0) for k in range(1, 10)], 1) is None   # = 2×, not above
    spikes = [entry(1, 2.0), entry(10, 9.0), entry(20, 9.0), entry(30, 1.0), entry(40, 9.0), entry(50, 9.0)]
    assert first_warning(spikes, 1) is None


def test_accuracy_below_the_floor_after_max_of_an_epoch_and_50_steps():
    full = [entry(1, 2.3, 0.1)] + [entry(s, 2.3, 0.1) for s in (10, 20, 30, 40, 50)]
    assert divergence(full[:-1], 1) is None                           # step 40 < 50
    assert divergence(full, 1) == "train accuracy is 0.1000 at step 50, below 0.2 (chance is 0.1)"
    assert divergence(full[:-1] + [entry(50, 2.3, 0.2)], 1) is None   # 0.2 is not below 0.2
    batches = [entry(1, 2.3, 0.1), entry(100, 2.3, 0.1), entry(400, 2.3, 0.1), entry(469, 2.3, 0.1)]
    assert first_warning(batches, 469) == (469, "train accuracy is 0.1000 at step 469, below 0.2 (chance is 0.1)")
    assert divergence([], 1) is None


# --- no false alarms: the docs' recorded runs -----------------------------------------------------------------


def recorded_runs():
    runs = sorted(HISTORIES.glob("*.json")) + sorted((ROOT / "docs" / "conv_study").rglob("*.json"))
    return [pytest.param(p, id=str(p.relative_to(ROOT))) for p in runs]


@pytest.mark.parametrize("path", recorded_runs())
def test_no_recorded_run_warns(path):
    run = json.loads(path.read_text())
    config, history = run["config"], run["history"]
    n = 60000 - (config.get("validation") or 0)
    per_epoch = 1 if config["batch_size"] is None else math.ceil(n / config["batch_size"])
    assert len(history) >= 7
    assert first_warning(history, per_epoch) is None


# --- the warning in a run -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(mnist_data):
    """5000 training and 1000 test images of MNIST: quick full-batch steps."""
    (X, y), (Xt, yt) = mnist_data
    return (X[:5000], y[:5000]), (Xt[:1000], yt[:1000])


def run_logged(config, data):
    stream = io.StringIO()
    try:
        result = training.train(config, data, Progress(stream, prefix="tinygrad-edu train: "))
    except training.TrainingDiverged as e:
        return e, stream.getvalue().splitlines()
    return result, stream.getvalue().splitlines()


@pytest.mark.parametrize("lr", [100.0, 1e4])
def test_an_absurd_lr_warns_within_50_full_batch_steps_and_the_run_goes_on(small, lr):
    result, lines = run_logged(TrainConfig(lr=lr, iterations=60), small)
    warnings = [line for line in lines if "warning" in line]
    if isinstance(result, training.TrainingDiverged):   # a non-finite loss stops the run, as before
        assert re.search(r"became (nan|inf|-inf) at step (\d+)", str(result))
        assert len(warnings) <= 1
        return
    assert len(warnings) == 1 and result.iterations == 60 and result.warning == warnings[0].split("warning: ")[1]
    assert warnings[0].startswith("tinygrad-edu train: warning: ")
    assert warnings[0].endswith(f"the run looks like it is diverging; try a smaller --lr, e.g. --lr {lr / 10:g} "
                                "(this run goes on)")
    assert int(re.search(r"at step (\d+)", warnings[0]).group(1)) <= 50
    assert lines.index(warnings[0]) < next(i for i, line in enumerate(lines) if line.startswith("iteration 60/60"))


def test_an_absurd_lr_warns_within_the_first_epoch_of_minibatches(small):
    config = TrainConfig(model="mlp", hidden=(64,), init="torch", lr=10.0, batch_size=50, iterations=None, epochs=2,
                         optimizer="adam", normalize="standard")   # 100 steps an epoch
    result, lines = run_logged(config, small)
    assert not isinstance(result, Exception)
    warnings = [line for line in lines if "warning" in line]
    assert len(warnings) == 1 and int(re.search(r"at step (\d+)", warnings[0]).group(1)) <= 100


def test_a_low_accuracy_with_a_loss_falling_at_every_log_point_is_called_slow_not_diverging(small):
    slow = [entry(1, 2.84, 0.10)] + [entry(s, 2.84 - s / 1000, 0.15) for s in (10, 20, 30, 40, 50)]
    seen = divergence(slow, 1)
    assert seen == ("train accuracy is 0.1500 at step 50, below 0.2 (chance is 0.1) while the loss falls at every "
                    "log point (2.84 at step 1, 2.79 now): the run is learning slowly")
    assert training.divergence_advice(seen, 0.001) == seen + "; try a larger --lr, e.g. --lr 0.01 (this run goes on)"
    result, lines = run_logged(TrainConfig(lr=1e-4, iterations=60), small)   # a real run, far too slow
    assert result.warning.endswith("the run is learning slowly; try a larger --lr, e.g. --lr 0.001 (this run goes on)")


def test_a_sane_run_does_not_warn_even_when_quiet_would_hide_progress(small):
    stream = io.StringIO()
    result = training.train(TrainConfig(iterations=60), small, Progress(stream, quiet=True))
    assert result.warning is None and stream.getvalue() == ""
    stream = io.StringIO()
    result = training.train(TrainConfig(lr=100.0, iterations=40), small, Progress(stream, quiet=True))
    assert stream.getvalue() == f"warning: {result.warning}\n"          # quiet silences progress, not warnings


# --- Ctrl-C ---------------------------------------------------------------------------------------------------


def test_interrupted_path_never_overwrites_without_force(tmp_path):
    save = tmp_path / "W.npz"
    assert interrupted_path(save, False) == tmp_path / "W.interrupted.npz"
    assert interrupted_path(tmp_path / "weights", False) == tmp_path / "weights.interrupted.npz"
    (tmp_path / "W.interrupted.npz").write_text("kept")
    assert interrupted_path(save, False) == tmp_path / "W.interrupted-2.npz"
    assert interrupted_path(save, True) == tmp_path / "W.interrupted.npz"


def interrupt(tmp_path, *more):
    """Runs train with minibatches of 100 and a progress line per step, sends SIGINT once step 3 is logged;
    returns (exit code, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYGRAD_EDU_")}
    env.update(PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.Popen([sys.executable, "-m", "tinygrad_edu", "train", "--batch-size", "100", "--epochs", "1000",
                             "--log-every", "1", *more], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=take_sigint)
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if " step 3/" in line:
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    return proc.returncode, "".join(seen) + err


def test_ctrl_c_saves_the_weights_so_far_and_exits_130(tmp_path):
    code, err = interrupt(tmp_path, "--save", "W.npz")
    assert code == 130 and "Traceback" not in err
    last = err.splitlines()[-1]
    match = re.fullmatch(r"tinygrad-edu train: interrupted after step (\d+) of 600000; the weights so far are in "
                         r"W\.interrupted\.npz", last)
    assert match, last
    step = int(match.group(1))
    assert step >= 3
    assert sorted(os.listdir(tmp_path)) == ["W.interrupted.npz"]      # no W.npz, no temporary file
    model, architecture = training.load_model(tmp_path / "W.interrupted.npz")
    assert architecture["interrupted"] == {"step": step, "of": 600000}
    assert architecture["config"]["batch_size"] == 100 and architecture["model"] == "tutorial"
    start = training.TutorialNet.create(TrainConfig(), np.random.default_rng(0), 1, training.PIXELS)
    for trained, initial in zip(model.arrays, start.arrays):   # trained from the seed's init, by `step` steps
        assert trained.shape == initial.shape and trained.dtype == initial.dtype and not np.array_equal(trained,
                                                                                                       initial)


def test_ctrl_c_without_save_exits_130_with_one_line(tmp_path):
    code, err = interrupt(tmp_path)
    assert code == 130 and "Traceback" not in err
    assert re.fullmatch(r"tinygrad-edu train: interrupted after step \d+ of 600000; nothing saved \(no --save\)",
                        err.splitlines()[-1])
    assert os.listdir(tmp_path) == []


class _SigintAt(Progress):
    """Progress that sends this process a SIGINT when it draws the line of iteration `at`."""

    def __init__(self, at: int):
        super().__init__(io.StringIO())
        self.at = at

    def update(self, text, **kwargs):
        if text.startswith(f"iteration {self.at}/"):
            os.kill(os.getpid(), signal.SIGINT)
        super().update(text, **kwargs)


def test_ctrl_c_during_the_last_step_lets_the_finished_run_end_normally(small):
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)   # as in a terminal, whatever pytest had
    try:
        result = training.train(TrainConfig(iterations=3), small, _SigintAt(3))
        assert result.iterations == 3 and result.test_accuracy is not None
        with pytest.raises(training.TrainingInterrupted):   # one step earlier, it stops after that step
            training.train(TrainConfig(iterations=3), small, _SigintAt(2))
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_ignored_sigint_stays_ignored(small):
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        result = training.train(TrainConfig(iterations=3), small, _SigintAt(2))
        assert result.iterations == 3 and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
