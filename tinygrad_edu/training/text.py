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
from tinygrad_edu.models.gpt import GPT
from tinygrad_edu.models.text import TEXT_KINDS, Bigram, CharMLP, CharRNN
from tinygrad_edu.nn import functional as F
from tinygrad_edu.nn.utils import clip_grad_norm_
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
# The GPT's recipe per corpus. shakespeare is nanoGPT's CPU recipe of shakespeare_char (its README): 4 layers,
# 4 heads, embedding 128, block 64, batches of 12, 2000 steps, AdamW (β₂ 0.99, weight decay 0.1 on the matrices)
# with lr 1e-3 warmed up over 100 steps then cosine to 1e-4, gradients clipped to norm 1, no dropout, no biases.
GPT_RECIPE = {"optimizer": "adamw", "lr": 1e-3, "batch_size": 12, "steps": 2000, "layers": 4, "heads": 4,
              "embedding": 128, "block_size": 64, "dropout": 0.0, "warmup": 100, "weight_decay": 0.1,
              "grad_clip": 1.0}
GPT_DEFAULTS = {
    "shakespeare": GPT_RECIPE,
    "kieu": GPT_RECIPE,
    "names": {**GPT_RECIPE, "batch_size": 32, "steps": 4000, "embedding": 64, "block_size": 16},
    "vi-words": {**GPT_RECIPE, "batch_size": 32, "steps": 4000, "embedding": 64, "block_size": 48},
    "text": GPT_RECIPE,          # another file of running text
    "words": {**GPT_RECIPE, "batch_size": 32, "steps": 4000, "embedding": 64, "block_size": None},  # the longest
}
TEXT_DEFAULTS["gpt"] = GPT_RECIPE
MODEL_KINDS = {"bigram": "bigram", "mlp": "char-mlp", "rnn": "char-rnn", "gpt": "gpt"}
GPT_ONLY = ("layers", "heads", "block_size", "dropout", "warmup", "weight_decay", "grad_clip")
MIN_LR_RATIO = 0.1     # the cosine ends at lr/10 (nanoGPT's min_lr 1e-4 for lr 1e-3)
BETA2 = 0.99           # nanoGPT's β₂ for its small character models
EVAL_TOKENS = 16384    # positions per chunk when a sequence model scores a whole split
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
    layers: int | None = None          # the GPT's (GPT_DEFAULTS, by corpus)
    heads: int | None = None
    block_size: int | None = None      # None for a word list: its longest word and the boundary
    dropout: float | None = None
    warmup: int | None = None
    weight_decay: float | None = None
    grad_clip: float | None = None     # 0: no clipping
    corpus: str = "text"               # which row of GPT_DEFAULTS: a bundled corpus's name, or "text"/"words"

    def __post_init__(self):
        if self.model not in TEXT_DEFAULTS:
            raise ConfigError(f"unknown text model {self.model!r}; choose one of {', '.join(TEXT_DEFAULTS)}")
        if self.model == "gpt":
            if self.corpus not in GPT_DEFAULTS:
                raise ConfigError(f"no GPT recipe for {self.corpus!r}; one of {', '.join(GPT_DEFAULTS)}")
            defaults = GPT_DEFAULTS[self.corpus]
        else:
            defaults = TEXT_DEFAULTS[self.model]
            if given := [k for k in GPT_ONLY if getattr(self, k) is not None]:
                raise ConfigError(f"{', '.join('--' + k.replace('_', '-') for k in given)} applies only to the "
                                  f"gpt model, not {self.model}")
        for key, value in defaults.items():
            if getattr(self, key) is None and key != "batch_size":
                setattr(self, key, value)
        if self.batch_size is None:
            self.batch_size = defaults["batch_size"]
        for key in ("context", "embedding", "hidden"):
            if getattr(self, key) is not None and key not in defaults:
                raise ConfigError(f"--{key} does not apply to the {self.model} model")
        for key in ("steps", "batch_size", "context", "embedding", "hidden", "log_every", "layers", "heads",
                    "block_size"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{key} must be a positive integer, got {value!r}")
        if self.warmup is not None and (isinstance(self.warmup, bool) or not isinstance(self.warmup, int)
                                        or self.warmup < 0):
            raise ConfigError(f"warmup must be an integer ≥ 0, got {self.warmup!r}")
        for key in ("dropout", "weight_decay", "grad_clip"):
            value = getattr(self, key)
            if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                          and math.isfinite(value) and value >= 0):
                raise ConfigError(f"{key} must be a number ≥ 0, got {value!r}")
        if self.dropout is not None and self.dropout >= 1:
            raise ConfigError(f"dropout must be below 1, got {self.dropout!r}")
        if self.model == "gpt" and self.embedding % self.heads:
            raise ConfigError(f"the embedding {self.embedding} is not divisible by the heads {self.heads}: each "
                              "head takes embedding/heads of it")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a positive number, got {self.lr!r}")
        if self.optimizer not in (("adamw",) if self.model == "gpt" else ("sgd", "adam")):
            raise ConfigError(f"optimizer must be {'adamw' if self.model == 'gpt' else 'sgd or adam'}, got "
                              f"{self.optimizer!r}")

    @property
    def window(self) -> int:
        """The windows' length on running text: the model's context (the MLP's, the GPT's block), else
        BLOCK_SIZE."""
        return self.context if self.model == "mlp" else self.block_size if self.model == "gpt" else BLOCK_SIZE


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
    if config.model == "gpt":
        return GPT(tokenizer, config.layers, config.heads, config.embedding, config.block_size, config.dropout,
                   dtype=config.dtype, seed=config.seed)
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
    logits = model(batch.inputs)
    logits = logits[0] if isinstance(logits, tuple) else logits     # the RNN's (logits, h_n)
    logits, targets = logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1)
    if batch.mask.all():     # running text: every position counts
        return F.cross_entropy(logits, targets)
    flat = batch.mask.reshape(-1)
    return F.cross_entropy(logits[flat], targets[flat])


class Windows:
    """Running text as the GPT trains on it, as nanoGPT's get_batch: row i of a batch is the block_size
    characters from a random offset, its targets the same shifted by one. len() is the number of offsets."""

    def __init__(self, ids: np.ndarray, block_size: int):
        if len(ids) <= block_size:
            raise text.TextError(f"the text is {len(ids)} characters long, shorter than one window of "
                                 f"{block_size + 1}")
        self.ids, self.block_size = ids, block_size

    def __len__(self) -> int:
        return len(self.ids) - self.block_size

    def rows(self, offsets) -> text.Sequences:
        at = np.asarray(offsets)[:, None] + np.arange(self.block_size + 1)
        windows = self.ids[at]
        return text.Sequences(windows[:, :-1], windows[:, 1:], np.ones((len(at), self.block_size), bool))


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
    step = max(1, EVAL_TOKENS // rows.inputs.shape[1]) if isinstance(model, GPT) else EVAL_ROWS
    with no_grad():
        for i in range(0, size(data), step):
            chunk = take(data, slice(i, i + step))
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


def optimizer(config: TextConfig, model):
    """The run's optimizer and lr schedule. The GPT's: AdamW with weight decay on the matrices (the parameters
    of two or more dims: the Linear layers' weights and the embeddings) and none on the gains and biases, as
    nanoGPT groups them, and the warm-up + cosine schedule."""
    params = list(model.parameters())
    if config.model == "gpt":
        groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
                  {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
        opt = optim.AdamW([g for g in groups if g["params"]], lr=config.lr, betas=(0.9, BETA2))
        # (a run no longer than its warm-up only warms up: the cosine would start after its last step)
        decay = max(config.steps, config.warmup + 1)
        return opt, optim.WarmupCosineLR(opt, config.warmup, decay, config.lr * MIN_LR_RATIO)
    if config.optimizer == "sgd":
        return optim.SGD(params, lr=config.lr), None
    opt = optim.Adam(params, lr=config.lr)
    return opt, optim.CosineAnnealingLR(opt, T_max=config.steps)


def train_text(config: TextConfig, data: text.TextData, progress: Progress | None = None,
               profile: int | None = None) -> TextResult:
    """Trains config's model on data's train split; its val_loss and train_loss are nll over each whole split.
    A Ctrl-C lets the step under way finish and raises TrainingInterrupted (holding the model), as for MNIST;
    profile = N profiles N steps as train does (the result's .profile)."""
    progress = progress or Progress(quiet=True)
    tokenizer = text.CharTokenizer.from_data(data)
    if config.model == "gpt" and config.block_size is None:   # a word list: the longest word and its end
        config.block_size = max(len(w) for w in data.train) + 1
    train = text.sequences(data.train, tokenizer, config.window)
    val = text.sequences(data.val, tokenizer, config.window)
    model = build(config, tokenizer)
    opt, schedule = optimizer(config, model)
    rng = np.random.default_rng([config.seed, 1])
    start, history, window, warning = time.perf_counter(), [], [], None
    data = Windows(tokenizer.encode(data.train), config.block_size) if config.model == "gpt" and \
        data.kind == "text" else batches(model, train)
    clip = config.grad_clip if config.model == "gpt" and config.grad_clip else None
    profiled = Profiled(profile, config.steps)
    with interrupt_between_steps() as interrupted:
        for step in range(1, config.steps + 1):
            with profiled.step(step):
                full = config.batch_size is None or config.batch_size >= size(data)
                value = loss(model, data if full else take(data, rng.integers(0, size(data), config.batch_size)))
                opt.zero_grad()
                value.backward()
                if clip is not None:
                    clip_grad_norm_(model.parameters(), clip)
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


__all__ = ["BLOCK_SIZE", "GPT_DEFAULTS", "GPT_RECIPE", "MODEL_KINDS", "TEXT_DEFAULTS", "TEXT_KINDS", "TextConfig",
           "TextResult", "Windows", "build", "count_model", "count_nll", "loss", "nll", "optimizer", "train_text"]
