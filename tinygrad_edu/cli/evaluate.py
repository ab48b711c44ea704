"""`evaluate`: a saved model's accuracy on the MNIST test set and its confusion matrix (a text model: its loss)."""
from __future__ import annotations

import argparse

from tinygrad_edu.cli.common import fail
from tinygrad_edu.cli.predict import add_split_argument, load
from tinygrad_edu.cli.train import add_data_arguments

HELP = "print a saved model's test accuracy and confusion matrix (a text model: its loss on each split)"
DESCRIPTION = """\
Rebuild the model from a weights file written by `train --save`, predict every image of the test set (or of
--split train or validation: the images it trained on, or those it held out with train --validation N), and
print the accuracy and the 10×10 confusion matrix (rows: true label, columns: predicted label), with each
digit's recall (the fraction of its images predicted right) at the end of its row.

example:
  tinygrad-edu evaluate --weights weights.npz
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, metavar="WEIGHTS.npz", help="a file written by train --save")
    add_split_argument(parser)
    add_data_arguments(parser, dataset_default=None)


def confusion_matrix(labels, predictions, n: int = 10):
    """C[i, j] = the number of examples of true label i predicted as j."""
    import numpy as np

    return np.bincount(np.asarray(labels, np.intp) * n + predictions, minlength=n * n).reshape(n, n)


def format_matrix(C) -> list[str]:
    """The matrix as aligned text: a header of predicted labels, one row per true label ending in its recall."""
    width = max(len(str(C.max())), 3) + 2
    lines = ["true \\ predicted", "     " + "".join(f"{j:>{width}}" for j in range(len(C))) + "   recall"]
    for i, row in enumerate(C):
        total = row.sum()
        recall = f"{row[i] / total:.3f}" if total else "  -  "
        lines.append(f"  {i}  " + "".join(f"{c:>{width}}" for c in row.tolist()) + f"    {recall}")
    return lines


def run(args) -> int:
    from tinygrad_edu import checkpoint, datasets, training
    from tinygrad_edu.cli.text import evaluate_text, load_text_model

    try:
        model, dataset, images, labels = load(args)
    except checkpoint.CheckpointError as e:
        try:   # NOTE: a text model's file: its losses on each split, in place of accuracy
            return evaluate_text(args.weights, *load_text_model(args.weights, "evaluate"))
        except checkpoint.CheckpointError:
            return fail("evaluate", e)
    except datasets.DatasetError as e:
        return fail("evaluate", e)
    loss, predictions = model.evaluate(training.as_input(images, model), labels)
    C = confusion_matrix(labels, predictions)
    right = int(C.trace())
    print(f"{args.weights}: {training.describe(model)}")
    print(f"{dataset} {args.split} set: accuracy {right / len(labels):.4f} ({right} of {len(labels)}), "
          f"loss {loss:.4f}")
    print()
    print("\n".join(format_matrix(C)))
    return 0
