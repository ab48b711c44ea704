"""Times `exercises check` on a whole workbook, as a learner runs it: a fresh one and a solved one.

    python benchmarks/exercises_check.py             # part 1: 7 runs of each, medians: about half a minute
    python benchmarks/exercises_check.py --part 2    # part 2, the nine layers
    python benchmarks/exercises_check.py --runs 2    # a smoke run

Each run is the command in a new process (`python -m tinygrad_edu exercises check DIR`), so the time includes
starting Python, importing numpy, the child process and grading every exercise of the part (15 in part 1, 9 in
part 2). The solved workbook is the one the tests grade (ANSWERS of tests/test_exercises.py, ANSWERS2 of
tests/test_exercises_part2.py). The targets on 2 idle cores: 3 s for part 1, 10 s for part 2; the load average
is printed.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(folder: Path, env: dict) -> tuple[float, int]:
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "tinygrad_edu", "exercises", "check", str(folder)], env=env,
                         capture_output=True, text=True, check=False)
    return time.perf_counter() - start, run.returncode


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each workbook (default: 7)")
    parser.add_argument("--part", type=int, choices=[1, 2], default=1, help="the workbook's part (default: 1)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests"))
    if args.part == 1:
        from test_exercises import solved  # the tests' correct answers
    else:
        from test_exercises_part2 import solved2 as solved

    from tinygrad_edu.exercises.workbook import start

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; part {args.part}")
    with tempfile.TemporaryDirectory() as tmp:
        fresh, done = start(Path(tmp) / "fresh", part=args.part), solved(Path(tmp) / "solved")
        for name, folder, expected in (("fresh workbook", fresh, 1), ("solved workbook", done, 0)):
            times = []
            for _ in range(args.runs):
                seconds, code = timed(folder, env)
                if code != expected:
                    raise SystemExit(f"{name}: exercises check exited {code}, expected {expected}")
                times.append(seconds)
            print(f"{name:<16} median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}) "
                  f"over {args.runs} runs")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
