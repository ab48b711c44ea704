"""`predict`: one MNIST digit as terminal art, its true label, the saved model's prediction and probabilities."""
from __future__ import annotations

import argparse

from tinygrad_edu.cli.common import fail
from tinygrad_edu.cli.train import DATASETS, add_data_arguments

HELP = "show one test digit, its true label and the prediction of a saved model"
DESCRIPTION = """\
Rebuild the model from a weights file written by `train --save` and show one image of the test set (or of
--split train or validation) as terminal art, with its true label, the predicted label and the ten softmax
probabilities.

example:
  tinygrad-edu predict --weights weights.npz --index 7
"""

RAMP = " .:-=+*#%@"   # pixel intensity 0..255, dark to bright, in 10 steps
BAR = 40              # characters of a probability-1 bar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, metavar="WEIGHTS.npz", help="a file written by train --save")
    parser.add_argument("--index", type=int, default=0, help="which image (default: 0)")
    add_split_argument(parser)
    add_data_arguments(parser, dataset_default=None)


def add_split_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", choices=("test", "train", "validation"), default="test",
                        help="test: the test set (10000 images); train: the images the model trained on; "
                             "validation: the training images it held out (train --validation N) (default: test)")


def digit_art(image) -> list[str]:
    """A 28×28 uint8 image as 28 lines of text in a frame, two characters per pixel (a terminal cell is about
    twice as tall as wide), each pixel p drawn as RAMP[p·10 // 256]."""
    rows = ["".join(RAMP[p * len(RAMP) // 256] * 2 for p in row) for row in image.tolist()]
    edge = "+" + "-" * len(rows[0]) + "+"
    return [edge, *(f"|{r}|" for r in rows), edge]


def load(args):
    """(model, dataset name, images, labels) for args.weights and args.split ("train" and "validation" are the
    training images the model trained on and those it held out, by the --validation N in the file's config).

    Raises CheckpointError for a bad weights file and DatasetError when the images cannot be loaded."""
    from tinygrad_edu import checkpoint, datasets, training

    model, architecture = training.load_model(args.weights)
    dataset = args.dataset or architecture.get("dataset", "mnist")
    if dataset not in DATASETS:
        raise checkpoint.CheckpointError(f"{args.weights}: unknown dataset {dataset!r}; pass --dataset "
                                         f"{' or '.join(DATASETS)}")
    data = training.load_data(dataset, args.data, download=not args.no_download)
    held_out = (architecture.get("config") or {}).get("validation") or 0
    if type(held_out) is not int or held_out < 0:
        raise checkpoint.CheckpointError(f"{args.weights}: config.validation must be a number of images ≥ 0, the "
                                         f"file says {held_out!r}")
    if args.split == "validation" and not held_out:
        raise checkpoint.CheckpointError(f"{args.weights}: its model was trained without --validation, so it has no "
                                         "validation images; use --split test or train")
    try:
        train, validation = training.split_validation(data, held_out)
    except training.ConfigError:
        raise datasets.DatasetError(f"{args.weights} held out the last {held_out} training images, but the "
                                    f"{dataset} training set here has {len(data[0][1])}") from None
    images, labels = {"test": data[1], "train": train, "validation": validation}[args.split]
    if not len(labels):
        raise datasets.DatasetError(f"the {dataset} {args.split} set is empty")
    return model, dataset, images, labels


def run(args) -> int:
    from tinygrad_edu import checkpoint, datasets, training

    try:
        model, dataset, images, labels = load(args)
    except (checkpoint.CheckpointError, datasets.DatasetError) as e:
        return fail("predict", e)
    if not 0 <= args.index < len(images):
        return fail("predict", f"--index {args.index} is out of range: the {args.split} set has "
                               f"{len(images)} images (0..{len(images) - 1})")
    image, label = images[args.index], int(labels[args.index])
    p = model.probabilities(training.as_input(images[args.index:args.index + 1], model))[0]
    prediction = int(p.argmax())
    print(f"{dataset} {args.split} image {args.index}")
    print("\n".join(digit_art(image)))
    print(f"true label  {label}")
    print(f"prediction  {prediction} ({'right' if prediction == label else 'wrong'})")
    for digit, q in enumerate(p.tolist()):
        bar = "#" * round(q * BAR)
        line = f"  {digit}  {q:.4f}  " + (f"{bar:<{BAR}}  <- prediction" if digit == prediction else bar)
        print(line.rstrip())
    return 0
