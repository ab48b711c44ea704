"""The profiler: one row per op, backward rule, walk and step, self times that add up, exact FLOPs and memory."""
import gzip
import io
import json
import re
import threading

import numpy as np
import pytest

from tinygrad_edu import nn, optim, profiler, tutorial, viz
from tinygrad_edu.autograd import Function, watchers
from tinygrad_edu.cli import main
from tinygrad_edu.tensor import Tensor

TUTORIAL_KEYS = {"matmul", "add", "relu", "softmax_cross_entropy", "backward walk", "matmul.backward",
                 "add.backward", "relu.backward", "softmax_cross_entropy.backward"}


def tutorial_batch(m=32, hidden=10, seed=0):
    rng = np.random.default_rng(seed)
    return (tutorial.init_params(seed, np.float64, hidden), rng.random((784, m)), rng.integers(0, 10, m))


def rows(prof) -> dict:
    return {r.key: r for r in prof.key_averages()}


def test_a_tutorial_step_has_a_row_per_op_and_rule_with_its_calls():
    params, X, Y = tutorial_batch()
    with profiler.profile() as prof:
        for _ in range(3):
            tutorial.gradient_descent_step(params, X, Y)
    r = rows(prof)
    assert set(r) == TUTORIAL_KEYS
    assert {k: v.count for k, v in r.items()} == {
        "matmul": 6, "add": 6, "relu": 3, "softmax_cross_entropy": 3, "backward walk": 3,
        "matmul.backward": 6, "add.backward": 6, "relu.backward": 3, "softmax_cross_entropy.backward": 3}
    assert all(v.cpu_time_total > 0 for v in r.values())
    assert watchers.this_thread.watchers == ()   # nothing watches after the block


def test_matmul_flops_are_2nkm_and_a_backward_counts_only_the_gradients_it_computes():
    m, hidden = 32, 10
    params, X, Y = tutorial_batch(m, hidden)
    with profiler.profile() as prof:
        tutorial.gradient_descent_step(params, X, Y)
    r = rows(prof)
    assert r["matmul"].flops == 2 * hidden * 784 * m + 2 * 10 * hidden * m        # W1·X, W2·A1
    # W1·X: only ∂L/∂W1 (X needs none); W2·A1: ∂L/∂W2 and ∂L/∂A1
    assert r["matmul.backward"].flops == 2 * hidden * 784 * m + 2 * (2 * 10 * hidden * m)
    # + b: one add per element; its backward passes ∂L/∂Z on for free and sums it over the m columns for b
    assert r["add"].flops == hidden * m + 10 * m
    assert r["add.backward"].flops == hidden * m + 10 * m
    assert r["relu"].flops == r["relu.backward"].flops == hidden * m
    assert r["backward walk"].flops == 0


def test_conv2d_flops_are_two_per_multiply_add_of_each_output_patch():
    x = Tensor(np.ones((2, 3, 8, 8)))
    w = Tensor(np.ones((4, 3, 3, 3)), requires_grad=True)
    with profiler.profile() as prof:
        x.conv2d(w, stride=2, padding=1).sum().backward()
    r = rows(prof)
    outputs = 2 * 4 * 4 * 4                      # N·O·Ho·Wo, Ho = (8 + 2 − 3)//2 + 1 = 4
    assert r["conv2d"].flops == 2 * outputs * 3 * 3 * 3
    assert r["conv2d.backward"].flops == 2 * outputs * 3 * 3 * 3    # only ∂L/∂w: x needs none


def test_memory_saved_for_backward_is_released_by_the_walk_and_its_peak_kept():
    params, X, Y = tutorial_batch(m=16)
    with profiler.profile() as prof:
        tutorial.gradient_descent_step(params, X, Y)
        tutorial.gradient_descent_step(params, X, Y)
    r = rows(prof)
    assert r["relu"].saved_memory == 2 * 10 * 16 * 8                      # Z1, once per step
    assert r["relu"].cpu_memory_usage == 2 * 10 * 16 * 8                  # A1
    # W1·X saves W1 and X, W2·A1 saves W2 and A1; add saves nothing
    per_step_matmul = (10 * 784 + 784 * 16 + 10 * 10 + 10 * 16) * 8
    assert r["matmul"].saved_memory == 2 * per_step_matmul
    assert r["add"].saved_memory == 0
    one_graph = (per_step_matmul + 10 * 16 * 8 + r["softmax_cross_entropy"].saved_memory // 2)
    assert prof.peak_saved_memory == one_graph   # the first step's graph was released before the second was built


def test_a_graph_kept_by_retain_graph_stays_counted():
    x = Tensor(np.ones(1000), requires_grad=True)
    with profiler.profile() as prof:
        y = (x * x).sum()
        y.backward(retain_graph=True)
        z = (x * 3).sum()
        z.backward()
    # x·x saves x twice over, one block counted once (8000 bytes), kept by retain_graph; x·3 saves x and the 3
    assert prof.peak_saved_memory == 8000 + (8000 + 8)


class Clock:
    """A stand-in for the profiler's clock: time moves only when the test moves it (ns), so every self time is
    exact and nothing depends on how fast the machine is."""

    def __init__(self):
        self.now = 0

    def perf_counter_ns(self) -> int:
        return self.now


CLOCK = Clock()


class Slow(Function):
    """A fake op whose forward takes 20 ms and whose backward takes 30 ms, by the test's clock."""
    name = "slow"
    rules = ("∂L/∂{a} += ∂L/∂{out}",)

    def forward(self, a):
        CLOCK.now += 20_000_000
        return a + 0

    def backward(self, g):
        CLOCK.now += 30_000_000
        return (g,)


def test_self_times_never_nest_and_add_up_to_the_profiled_time(monkeypatch):
    monkeypatch.setattr(profiler, "time", CLOCK)
    CLOCK.now = 0
    x = Tensor(np.ones(3), requires_grad=True)
    with profiler.profile() as prof:
        with profiler.record_function("outer"):
            CLOCK.now += 10_000_000                       # the block's own work, outside every op
            y = Slow.apply(x).sum()
        CLOCK.now += 5_000_000                            # the caller's code between the rows
        y.backward()
    r = rows(prof)
    assert r["slow"].cpu_time_total == 20_000 and r["slow.backward"].cpu_time_total == 30_000
    assert r["outer"].cpu_time_total == 10_000            # its own time, not the op's inside it
    assert r["backward walk"].cpu_time_total == 0 and r["sum"].cpu_time_total == 0
    averages = prof.key_averages()
    assert averages.wall_us == 65_000 and averages.untracked_us == 5_000
    assert sum(v.cpu_time_total for v in averages) + averages.untracked_us == averages.wall_us
    assert r["slow.backward"].share == 30 / 65


def test_an_optimizer_step_is_a_row_and_its_updates_are_not_ops():
    model = nn.Linear(4, 3)
    opt = optim.AdamW(model.parameters(), lr=0.1)
    x = Tensor(np.ones((5, 4), np.float32))
    with profiler.profile() as prof:
        model(x).sum().backward()
        opt.step()
    assert "AdamW.step" in rows(prof) and rows(prof)["AdamW.step"].count == 1


def test_key_averages_carry_torchs_attribute_names_and_sort_by_them():
    params, X, Y = tutorial_batch()
    with profiler.profile(record_shapes=True) as prof:
        tutorial.gradient_descent_step(params, X, Y)
    averages = prof.key_averages()
    first = averages[0]
    for name in ("key", "count", "cpu_time_total", "self_cpu_time_total", "cpu_time", "flops", "cpu_memory_usage"):
        assert hasattr(first, name)
    assert [r.cpu_time_total for r in averages] == sorted((r.cpu_time_total for r in averages), reverse=True)
    by_flops = prof.key_averages().table(sort_by="flops", row_limit=2)
    lines = by_flops.splitlines()
    assert lines[3].startswith("matmul.backward") and lines[4].startswith("matmul ")
    assert len([line for line in lines if line and not line.startswith(("-", "name", "profiled"))]) == 2
    grouped = {(r.key, r.input_shapes) for r in prof.key_averages(group_by_input_shape=True)}
    assert ("matmul", ((10, 784), (784, 32))) in grouped and ("matmul", ((10, 10), (10, 32))) in grouped
    assert "10×784 784×32" in prof.key_averages(group_by_input_shape=True).table()
    with pytest.raises(ValueError, match="cannot sort by 'time': choose one of cpu_time_total"):
        averages.table(sort_by="time")
    with pytest.raises(ValueError, match="row_limit must be a positive integer, got 0"):
        averages.table(row_limit=0)


def test_the_chrome_trace_is_json_with_complete_events_that_nest_in_time(tmp_path):
    params, X, Y = tutorial_batch()
    with profiler.profile() as prof:
        tutorial.gradient_descent_step(params, X, Y)
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    trace = json.loads(path.read_text())
    events = trace["traceEvents"]
    assert len(events) == len(prof.events) and {e["ph"] for e in events} == {"X"}
    assert {e["name"] for e in events} == TUTORIAL_KEYS
    assert all(isinstance(e["ts"], float) and e["dur"] >= 0 and e["pid"] and e["tid"] for e in events)
    walk = next(e for e in events if e["name"] == "backward walk")
    for e in events:
        if e["name"].endswith(".backward"):
            assert walk["ts"] <= e["ts"] and e["ts"] + e["dur"] <= walk["ts"] + walk["dur"] + 1e-3
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)


def test_the_trace_and_the_profiler_watch_the_same_walk_together():
    params, X, Y = tutorial_batch()
    out = io.StringIO()
    with profiler.profile() as prof, viz.trace(file=out) as tr:
        tutorial.gradient_descent_step(params, X, Y)
    assert len(tr.gradients) == 9 and rows(prof)["matmul.backward"].count == 2
    assert watchers.this_thread.watchers == ()


def test_a_profile_sees_only_its_own_thread_and_blocks_add_up():
    params, X, Y = tutorial_batch()
    prof = profiler.profile()
    with prof:
        worker = threading.Thread(target=tutorial.gradient_descent_step, args=tutorial_batch(seed=1))
        worker.start()
        worker.join()
    assert prof.events == []
    with prof:
        tutorial.gradient_descent_step(params, X, Y)
    with prof:
        tutorial.gradient_descent_step(params, X, Y)
    assert rows(prof)["relu"].count == 2
    with prof, pytest.raises(RuntimeError, match="already recording; blocks of one profile cannot nest"):
        prof.__enter__()


def test_an_op_that_raises_inside_a_profile_leaves_it_consistent():
    with profiler.profile() as prof:
        with pytest.raises(Exception, match="matmul"):
            Tensor(np.ones((2, 3))) @ Tensor(np.ones((2, 3)))
        (Tensor(np.ones(3), requires_grad=True) * 2).sum().backward()
    r = rows(prof)
    assert r["matmul"].count == 1 and r["matmul"].flops == 0 and r["mul.backward"].count == 1


def test_record_function_needs_a_name_and_costs_nothing_unwatched():
    with pytest.raises(ValueError, match="non-empty string, got ''"):
        profiler.record_function("")
    with profiler.record_function("alone"):
        pass
    assert watchers.this_thread.watchers == ()


def test_profile_memory_and_flops_can_be_left_out():
    params, X, Y = tutorial_batch()
    with profiler.profile(profile_memory=False, with_flops=False) as prof:
        tutorial.gradient_descent_step(params, X, Y)
    assert all(r.flops == 0 and r.cpu_memory_usage == 0 and r.saved_memory == 0 for r in prof.key_averages())
    assert prof.peak_saved_memory == 0


def idx(a: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, a.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in a.shape)
    return header + a.astype(np.uint8).tobytes()


@pytest.fixture
def tiny_mnist(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (60, 28, 28)),
              "train-labels-idx1-ubyte": np.arange(60) % 10,
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28)),
              "t10k-labels-idx1-ubyte": np.arange(20) % 10}
    for name, a in arrays.items():
        (folder / f"{name}.gz").write_bytes(gzip.compress(idx(a), mtime=0))
    return folder


def test_train_profile_prints_the_table_after_the_results_even_quiet(tiny_mnist, capsys):
    assert main(["train", "--data", str(tiny_mnist), "--no-download", "--iterations", "4", "--quiet",
                 "--profile", "3"]) == 0
    out = capsys.readouterr().out
    results, table = out.split("profile of 3 steps (tutorial, full batch):")
    assert "test accuracy" in results
    cells = [re.split(r"\s{2,}", line) for line in table.splitlines()
             if line and not line.startswith(("-", "name", "profiled"))]
    calls = {row[0]: int(row[1]) for row in cells}
    assert calls == {**{k: 3 for k in TUTORIAL_KEYS}, "matmul": 6, "add": 6, "matmul.backward": 6,
                     "add.backward": 6, "train_step": 3}


def test_train_profile_without_a_number_profiles_up_to_ten_steps_and_refuses_zero(tiny_mnist, capsys):
    assert main(["train", "--data", str(tiny_mnist), "--no-download", "--iterations", "3", "--quiet",
                 "--model", "mlp", "--batch-size", "20", "--profile"]) == 0
    out = capsys.readouterr().out
    assert "profile of 3 steps (mlp, batches of 20):" in out and "\nAdam.step " in out   # the mlp's default
    assert main(["train", "--data", str(tiny_mnist), "--no-download", "--iterations", "12", "--quiet",
                 "--profile"]) == 0
    out = capsys.readouterr().out
    assert "profile of 10 steps (tutorial, full batch):" in out and re.search(r"\nrelu +10 ", out)
    with pytest.raises(SystemExit) as stop:
        main(["train", "--data", str(tiny_mnist), "--no-download", "--profile", "0"])
    assert stop.value.code == 2
    assert "argument --profile: expected an integer ≥ 1, got '0'" in capsys.readouterr().err


def op_classes() -> dict:
    """Each op of ops.py by its name (the first class of a name: pow's two classes count alike)."""
    from tinygrad_edu import ops
    found = {}
    for c in vars(ops).values():
        if isinstance(c, type) and issubclass(c, Function) and c is not Function and "name" in vars(c):
            found.setdefault(c.name, c)
    return found


MOVES = {"reshape", "transpose", "getitem", "cat", "where"}


def test_every_op_states_its_flops_and_only_moves_count_none():
    for name, c in op_classes().items():
        declared = any("flops_per_element" in vars(k) or "flops" in vars(k) for k in c.__mro__[:-2])
        assert declared == (name not in MOVES), name


def test_the_docs_flop_table_is_the_ops_own():
    from pathlib import Path
    text = (Path(__file__).parents[1] / "docs" / "performance.md").read_text(encoding="utf-8")
    table = {m[0]: (int(m[1]), m[2]) for m in re.findall(r"^\| `(\w+)` \| (\d+) \| ([\d, ]+) \|$", text, re.M)}
    expected = {}
    for name, c in op_classes().items():
        if name in ("matmul", "conv2d"):
            continue
        f, b = c.flops_per_element
        expected[name] = (f, ", ".join(map(str, b)) if isinstance(b, tuple) else str(b))
    assert table == expected
