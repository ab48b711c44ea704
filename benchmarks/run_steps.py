"""Runs the tutorial's step N times (m = 64, float32), for instruction counts under callgrind, tree against tree.

    PYTHONPATH=TREE PYTHONHASHSEED=0 OPENBLAS_NUM_THREADS=1 \\
        valgrind --tool=callgrind --callgrind-out-file=cg.N python benchmarks/run_steps.py N

Run it for N = 10 and N = 1010 in each tree (PYTHONPATH picks the tree's tinygrad_edu); the difference of the two
totals over 1000 is the tree's instructions per step, and the ratio of two trees' figures is their cost ratio.
Instruction counts do not depend on the machine's load, unlike benchmarks/trees.py's timings. Give valgrind the
Python binary itself (`python -c "import sys; print(sys.executable)"`), not a shell shim such as pyenv's.
"""
import sys

import numpy as np

from tinygrad_edu import tutorial

n = int(sys.argv[1])
rng = np.random.default_rng(0)
X, Y = rng.random((784, 64)).astype(np.float32), rng.integers(0, 10, 64)   # as benchmarks/trees.py
params = tutorial.init_params(0, np.float32)
for _ in range(n):
    tutorial.gradient_descent_step(params, X, Y, 0.10)
print(f"{n} steps with {tutorial.__file__}")
