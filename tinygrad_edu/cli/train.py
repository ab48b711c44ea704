"""`train`: trains a model on MNIST with live progress, prints train/test accuracy, saves weights and metrics."""
from __future__ import annotations

import argparse
import importlib.util
import os
import time
from pathlib import Path

from tinygrad_edu.cli.common import (
    check_outputs,
    fail,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
)
from tinygrad_edu.dtypes import MODEL_DTYPES
from tinygrad_edu.init import INITS

OPTIMIZERS = ("sgd", "adam", "adamw")   # training.OPTIMIZERS, SCHEDULES and NORMALIZATIONS (not imported here:
SCHEDULES = ("none", "step", "cosine")  # the help stays fast)
NORMALIZATIONS = ("none", "standard")

HELP = ("train the tutorial's network (or an MLP or a CNN) on MNIST, or a character model on text, and report how "
        "well it does")
DESCRIPTION = """\
Train a network on MNIST (pixels/255 as in the tutorial, or standardised) and print its train and test (or
validation) accuracy and the wall time. Progress (step, loss, train accuracy, elapsed time) goes to stderr:
redrawn in place on a terminal, one line per log entry otherwise; --quiet turns it off. The results go to
stdout.

examples:
  tinygrad-edu train                                            # the tutorial: 784-10-10, 500 full-batch steps
  tinygrad-edu train --init he --batch-size 64 --epochs 5 --lr 0.1 --save weights.npz
  tinygrad-edu train --backprop manual --dtype float64          # the hand-derived backprop, same weights
  tinygrad-edu train --model mlp                                # 784-256-10, Adam + cosine, 15 epochs: ~98%
  tinygrad-edu train --model mlp --validation 10000 --dropout 0.2   # try a setting on held-out training images
  tinygrad-edu train --model cnn                                # LeNet-style, see docs/conv.md
  tinygrad-edu train --data names --model bigram                # text: the makemore ladder, see docs/text.md
  tinygrad-edu train --data vi-words --model mlp --save vi.npz  # then: tinygrad-edu sample --weights vi.npz
"""

# Per-model defaults. Options whose argparse default is None take their model's value from this table, so a
# model brings its own defaults by adding a row (and the help below lists them). Exactly one of "iterations"
# and "epochs" gives a model's default length of training.
MODEL_DEFAULTS = {
    "tutorial": {"hidden": (10,), "init": "tutorial", "lr": 0.1, "batch_size": None, "iterations": 500,
                 "optimizer": "sgd", "schedule": "none", "normalize": "none"},
    "mlp": {"hidden": (256,), "init": "torch", "lr": 1e-3, "batch_size": 128, "epochs": 15,
            "optimizer": "adam", "schedule": "cosine", "normalize": "standard"},
    # the recipe chosen on validation images by the second study's rule in docs/conv_study.md (candidate E)
    "cnn": {"channels": (16, 32), "hidden": (128,), "init": "torch", "lr": 2e-3, "batch_size": 128, "epochs": 5,
            "optimizer": "adam", "schedule": "cosine", "normalize": "standard"},
}
PER_MODEL = ("channels", "hidden", "init", "lr", "batch_size", "optimizer", "schedule", "normalize")
DATASETS = ("mnist", "fashion-mnist")
FULL_BATCH = "full"


def _defaults(key: str, show=str) -> str:
    """The help's "(default: ...)" for a per-model option, e.g. "(default: 10 for tutorial)"."""
    values = [f"{show(d[key])} for {model}" for model, d in MODEL_DEFAULTS.items() if key in d]
    return f"(default: {', '.join(values)})"


def _widths(text: str) -> tuple[int, ...]:
    parts = text.split(",")
    if not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected widths ≥ 1 separated by commas (e.g. 256,128), got {text!r}")
    return tuple(int(p) for p in parts)


def _batch_size(text: str):
    return FULL_BATCH if text == FULL_BATCH else positive_int(text)


def _batches(n) -> str:
    return "full batch" if n is None else f"batches of {n}"


def _update_rule(config) -> str:
    """e.g. "lr 0.1" (plain gradient descent) or "adam lr 0.001, cosine schedule"."""
    parts = [f"lr {config.lr}" if config.optimizer == "sgd" else f"{config.optimizer} lr {config.lr}"]
    parts += [f"momentum {config.momentum}"] if config.momentum else []
    parts += [] if config.weight_decay is None else [f"weight decay {config.weight_decay}"]
    parts += [] if config.schedule == "none" else [f"{config.schedule} schedule"]
    parts += [f"dropout {config.dropout}"] if config.dropout else []
    return ", ".join(parts)


def cpu_count() -> int:
    """The CPUs this process may run on (what `nproc` prints)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def add_data_arguments(parser: argparse.ArgumentParser, dataset_default: str | None = "mnist") -> None:
    """--data, --dataset, --no-download: shared by train, predict and evaluate."""
    parser.add_argument("--dataset", choices=DATASETS, default=dataset_default,
                        help=f"which data set (default: {dataset_default or 'the one the weights were trained on'})")
    parser.add_argument("--data", metavar="NAME|DIR|FILE",
                        help="a data set's name (mnist, fashion-mnist, or the bundled text: names, vi-words, kieu, "
                             "shakespeare; a name always means the bundled set), a folder, the only one searched: "
                             "it holds the four IDX files, or they are downloaded into it, and it must exist, or a "
                             "UTF-8 text FILE (default: $TINYGRAD_EDU_DATA, then the copy of MNIST bundled with "
                             "tinygrad_edu, then the cache ~/.cache/tinygrad_edu)")
    parser.add_argument("--no-download", action="store_true",
                        help="never download; fail with the list of missing files instead")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    model = parser.add_argument_group("model")
    model.add_argument("--model", choices=[*MODEL_DEFAULTS, "bigram", "rnn", "gpt"], default=None,
                       help="tutorial: 784-H-10 in the tutorial's column layout, plain gradient descent; mlp: "
                            "784-H-...-10 nn.Linear layers with ReLU, one row per image, an optimizer and an lr "
                            "schedule; cnn: LeNet-style, two 5×5 convolutions (C1, C2 channels) with ReLU and 2×2 "
                            "max-pooling, then Linear layers H,...,10, trained as mlp; each model has its own "
                            "defaults (default: tutorial). On text (--data names, ...): bigram, mlp (the character "
                            "MLP), rnn or gpt (a character transformer, docs/text.md) (default: bigram)")
    model.add_argument("--hidden", type=_widths, metavar="W[,W...]",
                       help="hidden widths, a comma list such as 256,128 (for cnn: its Linear layers' after the "
                            "convolutions) "
                            + _defaults("hidden", lambda h: ",".join(map(str, h))))
    model.add_argument("--channels", type=_widths, metavar="C1,C2",
                       help="the cnn's two convolutions' widths (output channels) (cnn model only) "
                            + _defaults("channels", lambda c: ",".join(map(str, c))))
    model.add_argument("--init", choices=INITS,
                       help="tutorial: U[-0.5, 0.5) (rand - 0.5); he: N(0, 2/fan_in), b = 0; xavier: "
                            "U(±√(6/(fan_in+fan_out))), b = 0; torch: U(±1/√fan_in) for W and b "
                            "(PyTorch's Linear) " + _defaults("init"))
    model.add_argument("--dtype", choices=MODEL_DTYPES, default="float32",
                       help="float64 is the exact mode (default: float32)")
    fit = parser.add_argument_group("training")
    fit.add_argument("--lr", type=positive_float, help="learning rate (alpha) " + _defaults("lr"))
    fit.add_argument("--batch-size", type=_batch_size, metavar="N|full",
                     help="N: minibatches of N images, reshuffled each epoch; full: every step uses all the training "
                          "images " + _defaults("batch_size", _batches))
    length = fit.add_mutually_exclusive_group()
    length.add_argument("--iterations", "--steps", type=positive_int, metavar="N",
                        help="number of update steps " + _defaults("iterations"))
    length.add_argument("--epochs", type=positive_int, metavar="N",
                        help="number of passes over the training set (not with --iterations) "
                             + _defaults("epochs"))
    fit.add_argument("--backprop", choices=("autograd", "manual"), default="autograd",
                     help="manual: the tutorial's hand-derived backprop (tutorial model only) (default: autograd)")
    fit.add_argument("--optimizer", choices=OPTIMIZERS,
                     help="sgd: p ← p − lr·g (the tutorial's); adam, adamw: torch.optim's rules (mlp model only) "
                          + _defaults("optimizer"))
    fit.add_argument("--momentum", type=non_negative_float, default=0.0, metavar="μ",
                     help="SGD's momentum (mlp model, --optimizer sgd) (default: 0)")
    fit.add_argument("--weight-decay", type=non_negative_float, metavar="λ",
                     help="weight decay (mlp model; the gpt: AdamW's, on its matrices only) (default: the "
                          "optimizer's own, 0 for sgd and adam, 0.01 for adamw; 0.1 for gpt)")
    fit.add_argument("--schedule", choices=SCHEDULES,
                     help="the lr over the run, stepped every iteration: cosine anneals it to 0 at the last step, "
                          "step multiplies it by 0.1 after each third of the run (mlp model only) "
                          + _defaults("schedule"))
    fit.add_argument("--dropout", type=probability, default=None, metavar="P",
                     help="inverted dropout after each hidden layer's activation while training (the gpt: on the "
                          "embeddings, the attention weights and each residual branch): zero a unit with "
                          "probability P, scale the rest by 1/(1 − P) (mlp and gpt models) (default: 0)")
    fit.add_argument("--normalize", choices=NORMALIZATIONS,
                     help="none: inputs pixels/255 (the tutorial's); standard: (pixels/255 − mean)/std, the mean and "
                          "std of the training images' pixels (0.1307 and 0.3081 for MNIST), recorded with the "
                          "weights " + _defaults("normalize"))
    fit.add_argument("--validation", type=non_negative_int, default=0, metavar="N",
                     help="hold out the last N training images: train on the others and report accuracy on these "
                          "N in place of the test set, which is not used; for choosing settings without looking "
                          "at the test set (default: 0, no hold-out)")
    fit.add_argument("--seed", type=non_negative_int, default=0,
                     help="seeds the initial weights and the shuffling (default: 0)")
    data = parser.add_argument_group("data")
    add_data_arguments(data)
    data.add_argument("--text-kind", choices=("words", "text"),
                      help="how a text FILE given to --data is read: words (one per line) or running text "
                           "(default: words when its lines are short, see docs/data.md)")
    text = parser.add_argument_group("text models")
    text.add_argument("--context", type=positive_int, metavar="K",
                      help="the characters the mlp reads to predict the next (text only) (default: 3)")
    text.add_argument("--embedding", type=positive_int, metavar="E",
                      help="each character's embedding size (text mlp, rnn and gpt) (default: 10 for mlp, 16 for "
                           "rnn, 128 for gpt, 64 for gpt on a word list)")
    text.add_argument("--layers", type=positive_int, metavar="N",
                      help="the gpt's transformer blocks (default: 4)")
    text.add_argument("--heads", type=positive_int, metavar="H",
                      help="the gpt's attention heads per block; they divide the embedding (default: 4)")
    text.add_argument("--block-size", type=positive_int, metavar="T",
                      help="the gpt's context: the characters it reads at most (default: 64 on running text, 16 "
                           "for names, 48 for vi-words, the longest word + 1 for another word list)")
    text.add_argument("--warmup", type=non_negative_int, metavar="N",
                      help="the gpt's warm-up steps: the lr rises linearly over them, then follows a cosine down "
                           "to lr/10 at the last step (default: 100)")
    text.add_argument("--grad-clip", type=non_negative_float, metavar="C",
                      help="the gpt's gradients are scaled down when their total norm exceeds C; 0: never "
                           "(default: 1)")
    out = parser.add_argument_group("output")
    out.add_argument("--save", metavar="WEIGHTS.npz", help="write the trained weights and the architecture (for "
                     "mlp also the optimizer's and schedule's state, under optim/ keys)")
    out.add_argument("--metrics-out", metavar="METRICS.json",
                     help="write accuracies, loss, time, the configuration and the history as JSON")
    out.add_argument("--plot", metavar="DIR", type=Path,
                     help="at the end, draw the run's pictures into DIR (curves, first-layer weights, misclassified "
                          "digits, confusion matrix; needs matplotlib)")
    out.add_argument("--force", action="store_true",
                     help="overwrite existing --save/--metrics-out/--plot files (by default they are refused, "
                          "before training starts)")
    out.add_argument("--log-every", type=positive_int, metavar="N",
                     help="steps between history entries and progress lines (default: 10 in full batch, "
                          "100 with minibatches)")
    out.add_argument("--quiet", action="store_true", help="no progress on stderr; results still go to stdout")
    out.add_argument("--profile", type=positive_int, nargs="?", const=10, metavar="N",
                     help="profile N steps (default 10; from step 2, after the warm-up) and print where their time, "
                          "FLOPs and memory went, after the results (also with --quiet)")


def resolve(args):
    """The TrainConfig of the parsed options: every option left out takes its model's default."""
    from tinygrad_edu.training import TrainConfig

    args.model = args.model or "tutorial"
    defaults = MODEL_DEFAULTS[args.model]
    pick = {key: defaults.get(key) if getattr(args, key) is None else getattr(args, key) for key in PER_MODEL}
    if pick["batch_size"] == FULL_BATCH:
        pick["batch_size"] = None
    if args.iterations is None and args.epochs is None:
        length = {"iterations": defaults.get("iterations"), "epochs": defaults.get("epochs")}
    else:
        length = {"iterations": args.iterations, "epochs": args.epochs}
    return TrainConfig(model=args.model, dtype=args.dtype, seed=args.seed, dataset=args.dataset,
                       log_every=args.log_every, backprop=args.backprop, momentum=args.momentum,
                       weight_decay=args.weight_decay, dropout=args.dropout or 0.0, validation=args.validation, **pick,
                       **length)


def run(args) -> int:
    from tinygrad_edu import checkpoint, datasets, training
    from tinygrad_edu.cli import text

    source = text.source(args)
    if source is not None:
        return text.run_train(args, source)
    if problem := text.mnist_refusal(args):
        return fail("train", problem)
    try:
        config = resolve(args)
    except training.ConfigError as e:
        return fail("train", e)
    outputs = [("--save", args.save), ("--metrics-out", args.metrics_out)]
    if args.plot is not None:
        from tinygrad_edu.viz.plots import FILES
        outputs += [("--plot picture", args.plot / name) for name in FILES.values()]
        if importlib.util.find_spec("matplotlib") is None:
            return fail("train", '--plot needs matplotlib, which is not installed: pip install "tinygrad_edu[plot]"')
    if problem := check_outputs(outputs, args.force):
        return fail("train", problem)

    progress = training.Progress(quiet=args.quiet, prefix="tinygrad-edu train: ")
    start = time.perf_counter()
    try:
        data = training.load_data(config.dataset, args.data, download=not args.no_download,
                                  progress=not args.quiet)
    except datasets.DatasetError as e:
        return fail("train", e)
    try:
        (X_train, _), evaluation = training.split_validation(data, config.validation)
    except training.ConfigError as e:
        return fail("train", e)
    held_out = (f"validation images (the last {config.validation} training images; the test set is not used)"
                if config.validation else "test images")
    progress.message(f"{config.dataset} ({data.source}): {len(X_train)} training and {len(evaluation[0])} {held_out} "
                     f"({time.perf_counter() - start:.1f} s)")
    length = (f"{config.iterations} iterations" if config.iterations is not None else f"{config.epochs} epochs")
    inputs = "" if config.normalize == "none" else ", standardised inputs"
    channels = "" if config.channels is None else f"channels {','.join(map(str, config.channels))}, "
    progress.message(f"training {config.model} ({channels}hidden {','.join(map(str, config.hidden))}, "
                     f"init {config.init}, {config.dtype}{inputs}) by {config.backprop}: {_update_rule(config)}, "
                     f"{_batches(config.batch_size)}, {length}, seed {config.seed}")
    try:
        result = training.train(config, data, progress, profile=args.profile)
    except training.TrainingDiverged as e:
        return fail("train", e, 1)
    except training.TrainingInterrupted as e:
        return interrupted(args, config, e)

    cpus = cpu_count()
    evaluated = f"{result.evaluated_on}_accuracy"
    width = max(16, len(f"{result.evaluated_on} accuracy  "))   # the values' column: 16, 21 for validation
    print(f"{'train accuracy':<{width}}{result.train_accuracy:.4f}")
    print(f"{result.evaluated_on + ' accuracy':<{width}}{getattr(result, evaluated):.4f}")
    print(f"{'final loss':<{width}}{result.final_loss:.4f}")
    print(f"{'time':<{width}}{result.seconds:.1f} s for {result.iterations} iterations ({cpus} CPUs)")
    config_json = {**config.as_dict(), "data": args.data}
    metrics = {"train_accuracy": result.train_accuracy, evaluated: getattr(result, evaluated),
               "final_loss": result.final_loss, "iterations": result.iterations, "epochs": result.epochs,
               "seconds": result.seconds, "cpu_count": cpus, "config": config_json, "weights": args.save,
               "warning": result.warning, "history": result.history}
    try:   # NOTE: checked before training (check_outputs); this catches what changed on disk since
        if args.save:
            architecture = {**result.model.architecture(), "dataset": config.dataset, "config": config_json}
            checkpoint.save(args.save, result.model.state_dict(), architecture)
            print(f"{'weights':<{width}}{args.save}")
        if args.metrics_out:
            training.write_json(args.metrics_out, metrics)
            print(f"{'metrics':<{width}}{args.metrics_out}")
    except (OSError, checkpoint.CheckpointError) as e:
        return fail("train", f"cannot write the results: {e}")
    if args.plot is not None:
        from tinygrad_edu.viz.plots import plot_run
        try:
            written = plot_run(metrics, out_dir=args.plot, model=result.model, test_data=evaluation)
        except ModuleNotFoundError as e:   # matplotlib is an optional extra
            return fail("train", e)
        except OSError as e:   # NOTE: checked before training too; this catches what changed on disk since
            return fail("train", f"cannot write the results: {e}")
        print(f"{'pictures':<{width}}{', '.join(str(p) for p in written)}")
    if result.profile is not None:
        n = min(args.profile, result.iterations)   # (all the steps of a run shorter than N + 1)
        steps = f"{n} steps" if n > 1 else "1 step"
        print(f"\nprofile of {steps} ({config.model}, {_batches(config.batch_size)}):")
        print(result.profile.key_averages().table())
    return 0



def interrupted_path(save, force: bool) -> Path:
    """Where Ctrl-C puts the weights of `--save W.npz`: W.interrupted.npz, or, when that exists and not force,
    the first free W.interrupted-2.npz, W.interrupted-3.npz, ... (a file saved before is never overwritten)."""
    save = Path(save)
    stem = save.stem if save.suffix == ".npz" else save.name
    path, n = save.with_name(f"{stem}.interrupted.npz"), 1
    while not force and os.path.lexists(path):
        n += 1
        path = save.with_name(f"{stem}.interrupted-{n}.npz")
    return path


def interrupted(args, config, stop) -> int:
    """Ctrl-C during training: the weights so far (whole steps) go to the --save file's .interrupted.npz, written
    atomically as --save writes, and the run exits 130 (128 + SIGINT, as a shell reports it)."""
    return save_interrupted(args, stop, {**stop.model.architecture(), "dataset": config.dataset,
                                         "config": {**config.as_dict(), "data": args.data}})


def save_interrupted(args, stop, architecture: dict) -> int:
    """What interrupted() does for any run: architecture is the file's (its `interrupted` entry is added here)."""
    import sys

    from tinygrad_edu import checkpoint

    where = f"tinygrad-edu train: interrupted after step {stop.step} of {stop.total}"
    if not args.save:
        print(f"{where}; nothing saved (no --save)", file=sys.stderr)
        return 130
    path = interrupted_path(args.save, args.force)
    architecture = {**architecture, "interrupted": {"step": stop.step, "of": stop.total}}
    try:
        checkpoint.save(path, stop.model.state_dict(), architecture)
    except (OSError, checkpoint.CheckpointError) as e:
        print(f"{where}; cannot write the weights so far: {e}", file=sys.stderr)
        return 130
    print(f"{where}; the weights so far are in {path}", file=sys.stderr)
    return 130
