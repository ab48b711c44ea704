"""`plot`: redraws a training run's pictures (curves, W1's rows, mistakes, confusion matrix) from its files."""
from __future__ import annotations

import importlib.util
from pathlib import Path

HELP = "draw a run's loss/accuracy curves, first-layer weights, misclassified digits and confusion matrix"
DESCRIPTION = """\
Reads the metrics.json that `train` writes and draws, as PNG files in --out:
  curves.png         loss and accuracy against the step
  weights.png        the first layer's weights (the tutorial's W1), one 28×28 image per hidden unit
  misclassified.png  test digits the model gets wrong, with true and predicted labels
  confusion.png      the confusion matrix on the test set
The last three need the weights file (--weights, default: the one metrics.json names); the last two also
need the test set (the copy bundled with the package, or $TINYGRAD_EDU_DATA). Needs matplotlib:
pip install "tinygrad_edu[plot]".
Files of these names already in --out are refused unless --force; the command lists what it wrote."""


def add_arguments(parser) -> None:
    parser.add_argument("metrics", type=Path, help="the metrics.json of a training run")
    parser.add_argument("--weights", type=Path, metavar="FILE", help="the run's weights .npz (default: as in metrics)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="folder for the PNG files (default: the metrics file's folder)")
    parser.add_argument("--force", action="store_true", help="replace pictures of the same names in --out")


def run(args) -> int:
    from tinygrad_edu import training
    from tinygrad_edu.checkpoint import CheckpointError
    from tinygrad_edu.cli.common import check_outputs, fail
    from tinygrad_edu.viz import plots

    out = args.out if args.out is not None else args.metrics.parent
    outputs = [("--out picture", out / name) for name in plots.FILES.values()]
    if problem := check_outputs(outputs, args.force, [("the metrics file", args.metrics), ("--weights", args.weights)]):
        return fail("plot", problem)
    if importlib.util.find_spec("matplotlib") is None:
        return fail("plot", 'plot needs matplotlib, which is not installed: pip install "tinygrad_edu[plot]"')
    try:
        written = plots.plot_run(args.metrics, args.weights, out, load_model=training.load_model,
                                 evaluated_set=training.evaluated_set)
    except (OSError, ValueError, TypeError, CheckpointError, ModuleNotFoundError) as e:
        return fail("plot", e)
    for path in written:
        print(f"wrote {path}")
    return 0
