"""Where the time, FLOPs and memory of a step go: `with profiler.profile() as prof: ...`, then `prof.key_averages()`.

In the spirit of `torch.profiler.profile`. One row per key: each op's forward (`matmul`), each backward rule
(`matmul.backward`: fn.backward, and its gradients fitted to the inputs' shapes), the walk's own work
(`backward walk`: the order, the version checks, the sums of gradients, accumulating into leaves), each
optimizer's step (`SGD.step`), and each block that `record_function("name")` marks. Times are self times: a row
never includes another (an op called inside a marked block is the op's row), so the rows add up to the time
spent in them; what ran outside every row (the caller's own Python) is `untracked_us`. The profiler's own
bookkeeping is timed and left out of every figure. Unlike torch, `profile_memory` and `with_flops` default to
True: the point here is to see all three.

FLOPs count a multiply-add as 2, as torch.profiler does (each op's formula is its `flops`/`backward_flops`, see
docs/performance.md); a backward counts only the gradients it computes. Memory: `cpu_memory_usage` is the bytes
of the outputs an op allocated (a view allocates none); `saved_memory` the bytes an op saved for its backward
(the graph's memory), which the walk releases; `peak_saved_memory` is the most the graph held at once.
The profiler watches through `autograd.watchers`, the instrumentation point viz.trace and the lab use too.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass

from tinygrad_edu.autograd import memory_owner, watchers
from tinygrad_edu.files import write_atomic

WALK = "backward walk"
SORT_KEYS = ("cpu_time_total", "self_cpu_time_total", "cpu_time", "count", "flops", "cpu_memory_usage",
             "saved_memory", "key")


@dataclass
class Event:
    """One timed call: its key, when it began and how long it took (µs, from the profile's start), its self time."""
    key: str
    kind: str                 # "forward", "backward", "walk" or "region"
    start_us: float
    duration_us: float = 0.0
    self_us: float = 0.0
    flops: int = 0
    cpu_memory_usage: int = 0
    saved_memory: int = 0
    shapes: tuple = ()


@dataclass
class KeyAverage:
    """One row of key_averages(): torch's attribute names where torch has them; times in µs, memory in bytes."""
    key: str
    count: int = 0
    self_cpu_time_total: float = 0.0
    flops: int = 0
    cpu_memory_usage: int = 0
    saved_memory: int = 0
    input_shapes: tuple = ()
    share: float = 0.0        # of the profiled wall time

    @property
    def cpu_time_total(self) -> float:
        """The same as self_cpu_time_total: rows never nest."""
        return self.self_cpu_time_total

    @property
    def cpu_time(self) -> float:
        """The mean time of one call, µs."""
        return self.self_cpu_time_total / self.count if self.count else 0.0


class KeyAverages(list):
    """The rows of a profile (KeyAverage's), most time first; `.table()` prints them."""
    wall_us = 0.0               # the profiled block's wall time, µs
    untracked_us = 0.0          # of it, the time outside every row
    peak_saved_memory = 0       # bytes

    def table(self, sort_by: str = "cpu_time_total", row_limit: int = 100) -> str:
        """The rows as a text table, sorted by one of their attributes (most first; "key" alphabetically)."""
        if sort_by not in SORT_KEYS:
            raise ValueError(f"table: cannot sort by {sort_by!r}: choose one of {', '.join(SORT_KEYS)}")
        if not isinstance(row_limit, int) or row_limit < 1:
            raise ValueError(f"table: row_limit must be a positive integer, got {row_limit!r}")
        rows = sorted(self, key=lambda r: getattr(r, sort_by), reverse=sort_by != "key")[:row_limit]
        shapes = any(r.input_shapes for r in rows)
        head = ["name", "calls", "self ms", "mean µs", "share", "FLOPs", "GFLOP/s", "out bytes", "saved bytes"]
        lines = [[r.key, str(r.count), f"{r.self_cpu_time_total / 1e3:.3f}", f"{r.cpu_time:.1f}",
                  f"{100 * r.share:.1f}%", _count(r.flops),
                  f"{r.flops / r.self_cpu_time_total / 1e3:.2f}" if r.flops and r.self_cpu_time_total else "",
                  _count(r.cpu_memory_usage), _count(r.saved_memory)]
                 + ([" ".join("×".join(map(str, s)) or "()" for s in r.input_shapes)] if shapes else [])
                 for r in rows]
        head += ["input shapes"] if shapes else []
        widths = [max(len(x) for x in col) for col in zip(head, *lines)]

        def fmt(cells):   # names and shapes to the left, numbers to the right
            return "  ".join(c.ljust(w) if i in (0, 9) else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        rule = "-" * len(fmt(head))
        tracked = sum(r.self_cpu_time_total for r in self)
        foot = (f"profiled {self.wall_us / 1e3:.3f} ms: the rows {tracked / 1e3:.3f} ms "
                f"({100 * tracked / self.wall_us if self.wall_us else 0:.1f}%), outside them "
                f"{self.untracked_us / 1e3:.3f} ms; the graph held at most {_count(self.peak_saved_memory)} bytes")
        return "\n".join([rule, fmt(head), rule, *map(fmt, lines), rule, foot])

    def __str__(self) -> str:
        return self.table()


def _count(n: int) -> str:
    """1234567 as 1.23 M: counts and bytes at a glance."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)


def _allocated_bytes(arrays) -> int:
    """The bytes these arrays allocated: a view allocates none."""
    return sum({id(a): a.nbytes for a in arrays if a.base is None}.values())


def _owned_bytes(arrays) -> int:
    """The bytes of the memory these arrays use (a view: its owner's), each block counted once."""
    owners = {id(o): o for o in (memory_owner(a) for a in arrays)}
    return sum(getattr(o, "nbytes", 0) for o in owners.values())


class record_function:
    """`with record_function("data"):` makes the block's own time a row of the profile (as torch's): what it runs
    outside every op and every other row. Costs nothing when no profiler runs."""

    def __init__(self, name: str):
        if not isinstance(name, str) or not name:
            raise ValueError(f"record_function: the name must be a non-empty string, got {name!r}")
        self.name = name
        self._watching = ()

    def __enter__(self):
        self._watching = watchers.this_thread.watchers
        for w in self._watching:
            w.region_begins(self.name)
        return self

    def __exit__(self, *exc):
        for w in reversed(self._watching):
            w.region_ends(self.name)
        return False


class profile(watchers.Watcher):
    """`with profile() as prof:` records this thread's ops, backward walks and optimizer steps in the block."""

    def __init__(self, record_shapes: bool = False, profile_memory: bool = True, with_flops: bool = True):
        self.record_shapes, self.profile_memory, self.with_flops = record_shapes, profile_memory, with_flops
        self.events: list[Event] = []
        self.wall_us = 0.0
        self.peak_saved_memory = 0
        self._stack: list[list] = []          # [event, start ns, time of the calls inside it ns]
        self._held = 0                        # bytes saved for backward now
        self._saved: dict[int, int] = {}      # id(Function) -> bytes it saved, until the walk releases them
        self._retain = []                     # the retain_graph of each walk going on
        self._stop = None
        self._t0 = self._entered = 0          # ns: the first block's start (the trace's 0), this block's start
        self._overhead = self._overhead_at_entry = 0   # ns of the profiler's own bookkeeping, left out of all times
        self._thread = None

    # --- the block(s) ---

    def __enter__(self):
        """Starts recording this thread's work. A profile may be entered again after it ends (as the `train
        --profile` steps are): the blocks' events and wall times add up, and nothing between them counts."""
        if self._stop is not None:
            raise RuntimeError("profile: this profiler is already recording; blocks of one profile cannot nest")
        now = time.perf_counter_ns()
        if self._thread is None:
            self._thread, self._t0 = threading.get_ident(), now
        self._entered = now
        self._overhead_at_entry = self._overhead
        self._stop = watchers.watch(self)
        return self

    def __exit__(self, *exc):
        self._stop()
        self._stop = None
        block = time.perf_counter_ns() - self._entered - (self._overhead - self._overhead_at_entry)
        self.wall_us += block / 1e3
        self._stack.clear()
        return False

    # NOTE: the profiler's own bookkeeping is timed too (clock read on entry and on exit of each call) and left out
    # of every row and of the wall time: each row is the time of the op alone, as if nothing watched.

    def _begin(self, key: str, kind: str) -> None:
        entered = time.perf_counter_ns()
        event = Event(key, kind, (entered - self._t0 - self._overhead) / 1e3)
        left = time.perf_counter_ns()
        self._overhead += left - entered
        self._stack.append([event, left, 0, self._overhead])   # event, start, inner calls' time, overhead so far

    def _end(self) -> tuple[Event, int]:
        entered = time.perf_counter_ns()
        event, start, inner, overhead = self._stack.pop()
        took = entered - start - (self._overhead - overhead)   # without the bookkeeping of the calls inside
        event.duration_us, event.self_us = took / 1e3, (took - inner) / 1e3
        if self._stack:
            self._stack[-1][2] += took
        self.events.append(event)
        return event, entered

    def _done(self, entered: int) -> None:
        self._overhead += time.perf_counter_ns() - entered

    def op_begins(self, fn_cls) -> None:
        self._begin(fn_cls.name, "forward")

    def op_ends(self, fn_cls, inputs, out, fn) -> None:
        event, entered = self._end()
        if out is not None:   # (an op that raised: its time counts, nothing else)
            shapes = tuple(t.data.shape for t in inputs)
            if self.record_shapes:
                event.shapes = shapes
            if self.with_flops:
                event.flops = fn_cls.flops(shapes, out.data.shape)
            if self.profile_memory:
                event.cpu_memory_usage = _allocated_bytes((out.data,))
                if fn is not None and fn.saved:
                    saved = event.saved_memory = _owned_bytes(fn.saved_arrays())
                    self._saved[id(fn)] = saved
                    self._held += saved
                    self.peak_saved_memory = max(self.peak_saved_memory, self._held)
        self._done(entered)

    def walk_begins(self, root, retain_graph: bool) -> None:
        self._retain.append(retain_graph)
        self._begin(WALK, "walk")

    def walk_ends(self, root) -> None:
        _, entered = self._end()
        self._retain.pop()
        self._done(entered)

    def rule_begins(self, node, fn) -> None:
        self._begin(f"{fn.name}.backward", "backward")

    def rule_ends(self, node, fn, grad_out, raw_grads, parent_grads) -> None:
        event, entered = self._end()
        shapes = tuple(p.data.shape for p in fn.parents)
        if self.record_shapes:
            event.shapes = shapes
        if self.with_flops:   # the rule's own, and reduce_to's sum of each broadcast gradient (an add per element)
            event.flops = fn.backward_flops(shapes, node.data.shape, fn.needs_grad) + sum(
                raw.size for raw, fitted, shape in zip(raw_grads, parent_grads, shapes)
                if fitted is not None and raw.shape != shape)
        if self.profile_memory:
            event.cpu_memory_usage = _allocated_bytes(g for g in parent_grads if g is not None)
            if not (self._retain and self._retain[-1]):   # the walk releases what this op saved
                self._held -= self._saved.pop(id(fn), 0)
        self._done(entered)

    def region_begins(self, key: str) -> None:
        self._begin(key, "region")

    def region_ends(self, key: str) -> None:
        self._done(self._end()[1])

    # --- the results ---

    @property
    def untracked_us(self) -> float:
        """The profiled time spent outside every row (the caller's own code)."""
        return self.wall_us - sum(e.self_us for e in self.events)

    def key_averages(self, group_by_input_shape: bool = False) -> KeyAverages:
        """One row per key (and per input shapes, with group_by_input_shape and record_shapes), most time first."""
        rows: dict[tuple, KeyAverage] = {}
        for e in self.events:
            group = (e.key, e.shapes if group_by_input_shape else ())
            r = rows.get(group)
            if r is None:
                r = rows[group] = KeyAverage(e.key, input_shapes=group[1])
            r.count += 1
            r.self_cpu_time_total += e.self_us
            r.flops += e.flops
            r.cpu_memory_usage += e.cpu_memory_usage
            r.saved_memory += e.saved_memory
        out = KeyAverages(sorted(rows.values(), key=lambda r: r.self_cpu_time_total, reverse=True))
        for r in out:
            r.share = r.self_cpu_time_total / self.wall_us if self.wall_us else 0.0
        out.wall_us, out.untracked_us, out.peak_saved_memory = self.wall_us, self.untracked_us, self.peak_saved_memory
        return out

    def export_chrome_trace(self, path) -> None:
        """Writes the events in Chrome's trace format (about:tracing, Perfetto: ui.perfetto.dev opens it)."""
        pid, tid = os.getpid(), self._thread or threading.get_ident()
        events = [{"name": e.key, "cat": e.kind, "ph": "X", "ts": e.start_us, "dur": e.duration_us,
                   "pid": pid, "tid": tid,
                   "args": {"self_us": e.self_us, "flops": e.flops, "bytes": e.cpu_memory_usage,
                            "saved_bytes": e.saved_memory, **({"shapes": [list(s) for s in e.shapes]}
                                                               if e.shapes else {})}}
                  for e in sorted(self.events, key=lambda e: e.start_us)]
        trace = {"traceEvents": events, "displayTimeUnit": "ms",
                 "otherData": {"profiler": "tinygrad_edu", "wall_us": self.wall_us}}
        write_atomic(path, json.dumps(trace).encode("utf-8"))
