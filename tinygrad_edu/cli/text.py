"""`train` on text: which --data is text, which options apply to which data, and the text run's results."""
from __future__ import annotations

import os

from tinygrad_edu.cli.common import check_outputs, fail

TEXT_NAMES = ("names", "vi-words", "kieu", "shakespeare")
MNIST_NAMES = ("mnist", "fashion-mnist")
TEXT_MODELS = ("bigram", "mlp", "rnn", "gpt")
# Options that only one kind of data takes: given (not at their default) for the other, they are refused.
MNIST_ONLY = {"channels": None, "init": None, "backprop": "autograd", "momentum": 0.0, "weight_decay": None,
              "schedule": None, "dropout": None, "normalize": None, "validation": 0, "epochs": None, "plot": None,
              "dataset": "mnist"}
TEXT_ONLY = {"context": None, "embedding": None, "text_kind": None, "layers": None, "heads": None,
             "block_size": None, "warmup": None, "grad_clip": None}
GPT_TAKES = ("dropout", "weight_decay")   # MNIST options the gpt takes too


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def source(args):
    """The text --data names (a bundled corpus's name, or a path to a file), or None for MNIST. A data set's own
    name (--data mnist) becomes --dataset, as a name always means the bundled set, never a folder of that name."""
    data = args.data
    if data in TEXT_NAMES:
        return data
    if data in MNIST_NAMES:
        args.dataset, args.data = data, None
        return None
    if data is not None and os.path.exists(data) and not os.path.isdir(data):
        return data
    return None


def mnist_refusal(args) -> str | None:
    """Why these options cannot train on MNIST (a text model, or a text option), or None."""
    if args.model in ("bigram", "rnn", "gpt"):
        return f"--model {args.model} is a text model: give it text, e.g. --data names ({', '.join(TEXT_NAMES)})"
    given = [_flag(d) for d, default in TEXT_ONLY.items() if getattr(args, d, default) != default]
    if given:
        return f"{', '.join(given)} applies only to text (--data names, ...), not to {args.dataset}"
    return None


def text_refusal(args) -> str | None:
    """Why these options cannot train on text (an MNIST model, or an MNIST option), or None."""
    if args.model not in (None, *TEXT_MODELS):
        return f"--model {args.model} trains on MNIST images; on text choose one of {', '.join(TEXT_MODELS)}"
    given = [_flag(d) for d, default in MNIST_ONLY.items() if getattr(args, d, default) != default
             and not (args.model == "gpt" and d in GPT_TAKES)]
    if given:
        return f"{', '.join(given)} does not apply to {'the gpt' if args.model == 'gpt' else 'text models'} (it is " \
               "for MNIST)"
    if args.hidden is not None and len(args.hidden) != 1:
        return f"--hidden takes one width for a text model, got {','.join(map(str, args.hidden))}"
    return None


def run_train(args, name) -> int:
    """`train --data TEXT`: trains a character model, prints its losses (nats per character), saves it."""
    from tinygrad_edu import checkpoint, datasets, text, training
    from tinygrad_edu.training import text as text_training

    if problem := text_refusal(args):
        return fail("train", problem)
    model = args.model or "bigram"
    if problem := check_outputs([("--save", args.save), ("--metrics-out", args.metrics_out)], args.force):
        return fail("train", problem)
    try:
        config = text_training.TextConfig(
            model=model, steps=args.iterations, batch_size=None if args.batch_size == "full" else args.batch_size,
            lr=args.lr, optimizer=args.optimizer, context=args.context, embedding=args.embedding,
            hidden=None if args.hidden is None else args.hidden[0], seed=args.seed, dtype=args.dtype,
            log_every=args.log_every or 100, layers=args.layers, heads=args.heads, block_size=args.block_size,
            dropout=args.dropout, warmup=args.warmup, weight_decay=args.weight_decay, grad_clip=args.grad_clip,
            corpus=_corpus(name, args.text_kind) if model == "gpt" else "text")
        data = datasets.load_text(name, args.text_kind)
    except (training.ConfigError, datasets.DatasetError) as e:
        return fail("train", e)
    progress = training.Progress(quiet=args.quiet, prefix="tinygrad-edu train: ")
    sizes = {split: len(getattr(data, split)) for split in ("train", "val", "test") if getattr(data, split)}
    unit = "words" if data.kind == "words" else "characters"
    progress.message(f"{data.name} ({data.kind}): " + ", ".join(f"{n} {split}" for split, n in sizes.items())
                     + f" {unit}")
    progress.message(f"training {model} ({_shape(config)}) by {config.optimizer} lr {config.lr}, "
                     f"{'full batch' if config.batch_size is None else f'batches of {config.batch_size}'}, "
                     f"{config.steps} steps, seed {config.seed}")
    try:
        result = text_training.train_text(config, data, progress, profile=args.profile)
    except training.TrainingDiverged as e:
        return fail("train", e, 1)
    except training.TrainingInterrupted as e:
        return _interrupted(args, e, data, config)
    except text.TextError as e:
        return fail("train", e)
    parameters = sum(p.data.size for p in result.model.parameters())
    print(f"{'train loss':<16}{result.train_loss:.4f}")
    print(f"{'val loss':<16}{result.val_loss:.4f}")
    if result.count_val_loss is not None:
        print(f"{'count model':<16}{result.count_val_loss:.4f} (val; the bigram counts with add-one smoothing)")
    print(f"{'parameters':<16}{parameters}")
    print(f"{'time':<16}{result.seconds:.1f} s for {result.steps} steps ({_cpus()} CPUs)")
    metrics = {"data": data.name, "kind": data.kind, "splits": sizes, "model": result.model.kind,
               "train_loss": result.train_loss, "val_loss": result.val_loss, "parameters": parameters,
               "seconds": result.seconds, "steps": result.steps, "config": _config(config),
               "count_val_loss": result.count_val_loss, "warning": result.warning, "history": result.history}
    try:
        if args.save:
            checkpoint.save(args.save, result.model.state_dict(), _architecture(result.model, data, config))
            print(f"{'weights':<16}{args.save}")
        if args.metrics_out:
            training.write_json(args.metrics_out, metrics)
            print(f"{'metrics':<16}{args.metrics_out}")
    except (OSError, checkpoint.CheckpointError) as e:
        return fail("train", f"cannot write the results: {e}")
    if result.profile is not None:
        n = min(args.profile, result.steps)
        batch = "full batch" if config.batch_size is None else f"batches of {config.batch_size}"
        print(f"\nprofile of {n} step{'s' if n > 1 else ''} ({model} on {data.name}, {batch}):")
        print(result.profile.key_averages().table())
    return 0


def _corpus(name, kind) -> str:
    """The row of GPT_DEFAULTS a --data takes: a bundled corpus's own, else a file's kind ("text" or "words")."""
    from tinygrad_edu import text

    if name in TEXT_NAMES:
        return name
    return kind or text.guess_kind(text.read_text(name))


def _shape(config) -> str:
    if config.model == "gpt":
        return (f"{config.layers} layers, {config.heads} heads, embedding {config.embedding}, block "
                f"{config.block_size or 'the longest word + 1'}, dropout {config.dropout}; warm-up {config.warmup}, "
                f"weight decay {config.weight_decay}, grad clip {config.grad_clip}")
    if config.model == "bigram":
        return "a V×V table of logits"
    if config.model == "mlp":
        return f"context {config.context}, embedding {config.embedding}, hidden {config.hidden}"
    return f"embedding {config.embedding}, hidden {config.hidden}"


def _config(config) -> dict:
    keys = ("model", "steps", "batch_size", "lr", "optimizer", "context", "embedding", "hidden", "seed", "dtype")
    if config.model == "gpt":
        keys += ("layers", "heads", "block_size", "dropout", "warmup", "weight_decay", "grad_clip", "corpus")
    return {k: getattr(config, k) for k in keys}


def _architecture(model, data, config) -> dict:
    """What a text model's file holds beside its own architecture: the data it learnt (for evaluate, sample)."""
    return {**model.architecture(), "data": data.name, "text_kind": data.kind, "config": _config(config)}


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _interrupted(args, stop, data, config) -> int:
    from tinygrad_edu.cli.train import save_interrupted

    return save_interrupted(args, stop, _architecture(stop.model, data, config))


def load_text_model(path, command: str):
    """(model, architecture) of a text model's weights file, or a CheckpointError in the loader's words."""
    from tinygrad_edu import checkpoint, models
    from tinygrad_edu.models.text import TEXT_KINDS

    model, architecture = models.load_with_architecture(path)
    if architecture.get("model") not in TEXT_KINDS:
        raise checkpoint.CheckpointError(
            f"{path} holds a {architecture.get('model')} model, not a text model: {command} needs one of "
            f"{', '.join(TEXT_KINDS)} (train --data names ...); use predict or evaluate for the MNIST models")
    return model, architecture


def text_kind(architecture: dict) -> str:
    return architecture.get("text_kind") if architecture.get("text_kind") in ("words", "text") else "words"


def evaluate_text(path, model, architecture) -> int:
    """`evaluate` on a text model: its loss on each split of the data it was trained on."""
    from tinygrad_edu import datasets, text
    from tinygrad_edu.training import text as text_training

    name = architecture.get("data")
    try:
        data = datasets.load_text(name, text_kind(architecture))
        block = model.context if model.context is not None else text_training.BLOCK_SIZE
        print(f"{path}: {model.kind} on {data.name} ({data.kind}), {sum(p.data.size for p in model.parameters())} "
              "parameters")
        for split in ("train", "val", "test"):
            if getattr(data, split):
                rows = text.sequences(getattr(data, split), model.tokenizer, block)
                print(f"{split + ' loss':<12}{text_training.nll(model, rows):.4f} nats per character "
                      f"({rows.predictions} characters)")
    except (datasets.DatasetError, TypeError) as e:
        return fail("evaluate", f"{path}: cannot read the data it was trained on ({name!r}): {e}")
    return 0


__all__ = ["evaluate_text", "load_text_model", "mnist_refusal", "run_train", "source", "text_refusal"]
