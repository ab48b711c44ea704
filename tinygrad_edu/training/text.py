"""Training the character models on text: the run, the metric (nats per character) and the bigram count model.

The loss of a step and the metric of a split are the same thing: the mean negative log-likelihood of the
characters a Sequences' mask marks, each from its prefix (softmax cross-entropy, the tutorial's dZ2 = A2 − Y
once per position). train_text runs minibatches of rows (words, or windows of running text) through the model's
logits and an optimizer, with the progress and the divergence check of the MNIST runs.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from tinygrad_edu import optim, text
from tinygrad_edu.autograd import no_grad
from tinygrad_edu.models.text import TEXT_KINDS, Bigram, CharMLP, CharRNN
from tinygrad_edu.nn import functional as F
from tinygrad_edu.training.config import ConfigError
from tinygrad_edu.training.loop import Profiled, TrainingDiverged, TrainingInterrupted, interrupt_between_steps
from tinygrad_edu.training.progress import Progress, divergence, divergence_advice

# Each model's recipe when the command line leaves an option out: chosen by the study of docs/text_study.md.
TEXT_DEFAULTS = {
    "bigram": {"optimizer": "sgd", "lr": 50.0, "batch_size": None, "steps": 200},
    "mlp": {"optimizer": "adam", "lr": 3e-3, "batch_size": 256, "steps": 60000, "context": 3, "embedding": 10,
            "hidden": 200},
    "rnn": {"optimizer": "adam", "lr": 3e-3, "batch_size": 64, "steps": 8000, "embedding": 16, "hidden": 128},
}
MODEL_KINDS = {"bigram": "bigram", "mlp": "char-mlp", "rnn": "char-rnn"}
BLOCK_SIZE = 8         # running text's windows, for the models without a context of their own (bigram, rnn)
EVAL_ROWS = 4096       # rows per chunk when a whole split is scored


@dataclass
class TextConfig:
    """What decides a text run; None takes the model's default (TEXT_DEFAULTS). batch_size None: every row at once."""
    model: str = "bigram"
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    context: int | None = None
    embedding: int | None = None
    hidden: int | None = None
    seed: int = 0
    dtype: str = "float32"
    log_every: int = 100

    def __post_init__(self):
        if self.model not in TEXT_DEFAULTS:
            raise ConfigError(f"unknown text model {self.model!r}; choose one of {', '.join(TEXT_DEFAULTS)}")
        defaults = TEXT_DEFAULTS[self.model]
        for key, value in defaults.items():
            if getattr(self, key) is None and key != "batch_size":
                setattr(self, key, value)
        if self.batch_size is None:
            self.batch_size = defaults["batch_size"]
        for key in ("context", "embedding", "hidden"):
            if getattr(self, key) is not None and key not in defaults:
                raise ConfigError(f"--{key} does not apply to the {self.model} model")
        for key in ("steps", "batch_size", "context", "embedding", "hidden", "log_every"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{key} must be a positive integer, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a positive number, got {self.lr!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ConfigError(f"optimizer must be sgd or adam, got {self.optimizer!r}")

    @property
    def block_size(self) -> int:
        """The windows' length on running text: the model's context (the MLP's), else BLOCK_SIZE."""
        return self.context if self.model == "mlp" else BLOCK_SIZE


@dataclass
class TextResult:
    model: object
    train_loss: float
    val_loss: float
    steps: int
    seconds: float
    history: list = field(default_factory=list)
    count_val_loss: float | None = None     # the bigram's count model, beside the trained net
    profile: object = None                  # the profiler.profile of train_text(profile=N)'s steps
    warning: str | None = None              # the divergence warning, if the run printed one


def build(config: TextConfig, tokenizer: text.CharTokenizer):
    """The model of a config, its weights drawn from config.seed."""
    if config.model == "bigram":
        return Bigram(tokenizer, dtype=config.dtype)
    if config.model == "mlp":
        return CharMLP(tokenizer, config.context, config.embedding, config.hidden, dtype=config.dtype,
                       seed=config.seed)
    return CharRNN(tokenizer, config.embedding, config.hidden, dtype=config.dtype, seed=config.seed)


def loss(model, batch):
    """The mean negative log-likelihood (nats) of a batch's targets under model: the loss of a step. A batch is
    (X, y) examples for a model of fixed context (bigram, mlp), Sequences rows for the RNN (their marked targets)."""
    if model.context is not None:
        X, y = batch
        return F.cross_entropy(model(X), y)
    logits, _ = model(batch.inputs)
    flat = batch.mask.reshape(-1)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1])[flat], batch.targets.reshape(-1)[flat])


def batches(model, rows: text.Sequences):
    """What a model trains on and is scored on: rows' examples for a fixed context, the rows for the RNN."""
    return rows.examples(model.context) if model.context is not None else rows


def size(data) -> int:
    return len(data[1]) if isinstance(data, tuple) else len(data)


def take(data, index):
    return (data[0][index], data[1][index]) if isinstance(data, tuple) else data.rows(index)


def nll(model, rows: text.Sequences) -> float:
    """The loss over a whole split, in chunks (no graph): nats per predicted character."""
    data, total = batches(model, rows), 0.0
    with no_grad():
        for i in range(0, size(data), EVAL_ROWS):
            chunk = take(data, slice(i, i + EVAL_ROWS))
            predicted = len(chunk[1]) if isinstance(chunk, tuple) else chunk.predictions
            total += loss(model, chunk).item() * predicted
    return total / rows.predictions


def count_model(rows: text.Sequences, vocab_size: int, smoothing: float = 1.0) -> np.ndarray:
    """The bigram count model: P[a, b] = (N[a, b] + smoothing) / Σ_b (N[a, b] + smoothing), N counted over rows'
    marked (previous, next) pairs. smoothing 1 is add-one (Laplace) smoothing."""
    counts = np.zeros((vocab_size, vocab_size))
    np.add.at(counts, (rows.inputs[rows.mask], rows.targets[rows.mask]), 1)
    counts += smoothing
    return counts / counts.sum(axis=1, keepdims=True)


def count_nll(P: np.ndarray, rows: text.Sequences) -> float:
    """The count model's mean negative log-likelihood of rows' marked targets."""
    return float(-np.log(P[rows.inputs[rows.mask], rows.targets[rows.mask]]).mean())


def train_text(config: TextConfig, data: text.TextData, progress: Progress | None = None,
               profile: int | None = None) -> TextResult:
    """Trains config's model on data's train split; its val_loss and train_loss are nll over each whole split.
    A Ctrl-C lets the step under way finish and raises TrainingInterrupted (holding the model), as for MNIST;
    profile = N profiles N steps as train does (the result's .profile)."""
    progress = progress or Progress(quiet=True)
    tokenizer = text.CharTokenizer.from_data(data)
    train = text.sequences(data.train, tokenizer, config.block_size)
    val = text.sequences(data.val, tokenizer, config.block_size)
    model = build(config, tokenizer)
    params = list(model.parameters())
    opt = optim.SGD(params, lr=config.lr) if config.optimizer == "sgd" else optim.Adam(params, lr=config.lr)
    schedule = optim.CosineAnnealingLR(opt, T_max=config.steps) if config.optimizer == "adam" else None
    rng = np.random.default_rng([config.seed, 1])
    start, history, window, warning = time.perf_counter(), [], [], None
    data = batches(model, train)
    profiled = Profiled(profile, config.steps)
    with interrupt_between_steps() as interrupted:
        for step in range(1, config.steps + 1):
            with profiled.step(step):
                full = config.batch_size is None or config.batch_size >= size(data)
                value = loss(model, data if full else take(data, rng.integers(0, size(data), config.batch_size)))
                opt.zero_grad()
                value.backward()
                opt.step()
                if schedule is not None:
                    schedule.step()
            window.append(value.item())
            if not math.isfinite(window[-1]):
                raise TrainingDiverged(f"the loss became {window[-1]} at step {step}: training diverged; try a "
                                       f"smaller --lr than {config.lr}")
            if step % config.log_every == 0 or step == config.steps:
                history.append({"step": step, "loss": float(np.mean(window)),
                                "seconds": time.perf_counter() - start})
                window = []
                progress.update(f"step {step}/{config.steps}  loss {history[-1]['loss']:.4f}  "
                                f"{history[-1]['seconds']:.1f} s", log=True)
                if warning is None and (sign := divergence(history, 1)):   # the MNIST runs' rules, loss only
                    warning = divergence_advice(sign, config.lr)
                    progress.warn(warning)
            if step < config.steps and interrupted():
                raise TrainingInterrupted(model, step, config.steps, history)
    result = TextResult(model, nll(model, train), nll(model, val), config.steps, time.perf_counter() - start,
                        history, profile=profiled.profile, warning=warning)
    if config.model == "bigram":
        result.count_val_loss = count_nll(count_model(train, tokenizer.vocab_size), val)
    return result


__all__ = ["BLOCK_SIZE", "MODEL_KINDS", "TEXT_DEFAULTS", "TEXT_KINDS", "TextConfig", "TextResult", "build",
           "count_model", "count_nll", "loss", "nll", "train_text"]
