"""The character models of the makemore ladder: a bigram table, Bengio et al.'s MLP (2003) and an RNN.

Each predicts the next character's logits from the characters before it, and carries its tokenizer in its
architecture, so a weights file is all that sampling and evaluating need:

    bigram     logits = W[c_{t−1}]: a V×V table (models/text.py: Bigram)
    char-mlp   the last k characters' embeddings, concatenated, through a tanh layer (CharMLP)
    char-rnn   an embedding, nn.RNN over the whole prefix, a linear read-out at every step (CharRNN)

A model's `context` is how many previous characters it reads (None: all of them, the RNN). The bigram and the
MLP map an N×context array of ids to N×V logits (`model(contexts)`: text.Sequences.examples makes them); the RNN
maps N×T ids to N×T×V, the logits after each position from everything up to it.
"""
from __future__ import annotations

import numpy as np

from tinygrad_edu import nn
from tinygrad_edu.autograd import no_grad
from tinygrad_edu.models.registry import register
from tinygrad_edu.tensor import Tensor, as_generator
from tinygrad_edu.text import CharTokenizer

__all__ = ["Bigram", "CharMLP", "CharModel", "CharRNN", "TEXT_KINDS", "next_token", "sample"]


class CharModel(nn.Module):
    """What the three share: the tokenizer, the architecture's common keys, rebuilding from a file."""

    kind = ""
    context: int | None = None
    pads_text = True      # sampling running text starts from the boundary token, as a fixed context is padded

    def _start(self, tokenizer: CharTokenizer, dtype):
        if not isinstance(tokenizer, CharTokenizer):
            raise ValueError(f"{type(self).__name__}: tokenizer must be a text.CharTokenizer, got "
                             f"{type(tokenizer).__name__}")
        self.tokenizer = tokenizer
        self.vocab_size = tokenizer.vocab_size
        return str(nn.specs.model_dtype(type(self).__name__, dtype))

    @classmethod
    def _tokenizer(cls, arch: dict) -> CharTokenizer:
        try:
            return CharTokenizer.from_state(arch["tokenizer"])
        except Exception as e:   # NOTE: a file's architecture: any defect is the file's, said as a ValueError
            raise ValueError(f"{cls.__name__}: the architecture's tokenizer is not one: {e}") from None

    @classmethod
    def from_architecture(cls, arch: dict, *, seed=None):
        return cls(cls._tokenizer(arch), **cls._arguments(arch), seed=seed)

    @classmethod
    def parameter_shapes(cls, arch: dict) -> dict[str, tuple[tuple[int, ...], str]]:
        tokenizer = cls._tokenizer(arch)
        return cls.shapes(tokenizer.vocab_size, **cls._arguments(arch))

    def architecture(self) -> dict:
        return {"model": self.kind, **self._config(), "tokenizer": self.tokenizer.state()}


@register("bigram")
class Bigram(CharModel):
    """The first rung: logits of the next character = row c_{t−1} of a V×V table W (zeros at the start, so every
    character starts equally likely). Trained to the maximum likelihood, softmax(W) is the bigram counts,
    normalised: "a neural net is counting"."""

    kind, context = "bigram", 1

    def __init__(self, tokenizer: CharTokenizer, *, dtype=None, seed=None):
        dtype = self._start(tokenizer, dtype)
        self.W = nn.Parameter(np.zeros((self.vocab_size, self.vocab_size), dtype))

    @staticmethod
    def _arguments(arch: dict) -> dict:
        return {"dtype": arch.get("dtype", "float32")}

    @staticmethod
    def shapes(vocab_size: int, dtype="float32") -> dict:
        return {"W": ((vocab_size, vocab_size), str(nn.specs.model_dtype("Bigram", dtype)))}

    def forward(self, contexts) -> Tensor:
        """N×1 token ids → N×V logits: row c_{t−1} of W for each."""
        return self.W[np.asarray(contexts)[:, -1]]

    def _config(self) -> dict:
        return {"dtype": str(self.W.dtype)}


@register("char-mlp")
class CharMLP(CharModel):
    """Bengio et al. (2003), as makemore's part 2: the last `context` characters' embeddings (C: V×embedding),
    concatenated, h = tanh(x·W1 + b1), logits = h·W2 + b2. A prefix shorter than the context is padded with
    the boundary token (id 0), as makemore starts every word from "..."."""

    kind = "char-mlp"

    def __init__(self, tokenizer: CharTokenizer, context: int = 3, embedding: int = 10, hidden: int = 200, *,
                 dtype=None, seed=None):
        dtype = self._start(tokenizer, dtype)
        self.context = nn.specs.positive_int("CharMLP", "context", context)
        self.embedding, self.hidden = (nn.specs.positive_int("CharMLP", n, v)
                                       for n, v in (("embedding", embedding), ("hidden", hidden)))
        rng = as_generator(seed)
        self.C = nn.Embedding(self.vocab_size, self.embedding, dtype=dtype, seed=rng)
        self.layer1 = nn.Linear(self.context * self.embedding, self.hidden, dtype=dtype, seed=rng)
        self.layer2 = nn.Linear(self.hidden, self.vocab_size, dtype=dtype, seed=rng)

    @staticmethod
    def _arguments(arch: dict) -> dict:
        return {"context": arch["context"], "embedding": arch["embedding"], "hidden": arch["hidden"],
                "dtype": arch.get("dtype", "float32")}

    @staticmethod
    def shapes(vocab_size: int, context: int, embedding: int, hidden: int, dtype="float32") -> dict:
        """The state's shapes, from the layers' own specs (nn.specs), so the checks are the layers'."""
        d = str(nn.specs.model_dtype("CharMLP", dtype))
        context = nn.specs.positive_int("CharMLP", "context", context)
        layers = {"C": {"type": "Embedding", "num_embeddings": vocab_size, "embedding_dim": embedding, "dtype": d},
                  "layer1": {"type": "Linear", "in_features": context * embedding, "out_features": hidden, "dtype": d},
                  "layer2": {"type": "Linear", "in_features": hidden, "out_features": vocab_size, "dtype": d}}
        return {f"{name}.{key}": shape for name, spec in layers.items()
                for key, shape in nn.specs.state_shapes(spec).items()}

    def forward(self, contexts) -> Tensor:
        """N×context token ids → N×V logits of the character after each context."""
        x = self.C(contexts)                                  # N × context × embedding
        return self.layer2(self.layer1(x.reshape(x.shape[0], -1)).tanh())

    def _config(self) -> dict:
        return {"context": self.context, "embedding": self.embedding, "hidden": self.hidden,
                "dtype": str(self.C.weight.dtype)}


@register("char-rnn")
class CharRNN(CharModel):
    """An embedding (V×embedding), nn.RNN (embedding → hidden, tanh) over the prefix, and a linear read-out
    (hidden → V) at every step: the next character from everything before it."""

    kind = "char-rnn"

    def __init__(self, tokenizer: CharTokenizer, embedding: int = 16, hidden: int = 128, num_layers: int = 1, *,
                 dtype=None, seed=None):
        dtype = self._start(tokenizer, dtype)
        rng = as_generator(seed)
        self.embedding, self.hidden, self.num_layers = embedding, hidden, num_layers
        self.C = nn.Embedding(self.vocab_size, embedding, dtype=dtype, seed=rng)
        self.rnn = nn.RNN(embedding, hidden, num_layers, batch_first=True, dtype=dtype, seed=rng)
        self.head = nn.Linear(hidden, self.vocab_size, dtype=dtype, seed=rng)

    @staticmethod
    def _arguments(arch: dict) -> dict:
        return {"embedding": arch["embedding"], "hidden": arch["hidden"], "num_layers": arch.get("num_layers", 1),
                "dtype": arch.get("dtype", "float32")}

    @staticmethod
    def shapes(vocab_size: int, embedding: int, hidden: int, num_layers: int = 1, dtype="float32") -> dict:
        d = str(nn.specs.model_dtype("CharRNN", dtype))
        rnn = nn.specs.state_shapes({"type": "RNN", "input_size": embedding, "hidden_size": hidden,
                                     "num_layers": num_layers, "batch_first": True, "dtype": d})
        return {"C.weight": ((vocab_size, nn.specs.positive_int("CharRNN", "embedding", embedding)), d),
                **{f"rnn.{k}": v for k, v in rnn.items()},
                "head.weight": ((vocab_size, hidden), d), "head.bias": ((vocab_size,), d)}

    def forward(self, ids, h0=None):
        """N×T token ids → (N×T×V logits, h_n)."""
        out, h_n = self.rnn(self.C(ids), h0)
        return self.head(out), h_n

    def _config(self) -> dict:
        return {"embedding": self.embedding, "hidden": self.hidden, "num_layers": self.num_layers,
                "dtype": str(self.C.weight.dtype)}


TEXT_KINDS = {cls.kind: cls for cls in (Bigram, CharMLP, CharRNN)}


def sample(model: CharModel, kind: str, *, num: int = 10, prompt: str = "", temperature: float = 1.0,
           top_k: int | None = None, max_chars: int = 200, lines: int | None = None, seed=None) -> list[str]:
    """num samples from model, each drawn one character at a time from softmax(logits / temperature) (only the
    top_k most likely, if given), with rng = default_rng(seed): the same seed, the same samples.

    kind "words": each sample is a word, from its start (after prompt, which it begins with), until the boundary
    token or max_chars. kind "text": each sample starts at a line start (after a newline, then prompt) and runs
    for `lines` complete lines, or max_chars characters when lines is None.
    """
    if not (isinstance(temperature, (int, float)) and temperature > 0 and np.isfinite(temperature)):
        raise ValueError(f"sample: temperature must be a positive number, got {temperature!r}")
    if top_k is not None and not (isinstance(top_k, int) and top_k >= 1):
        raise ValueError(f"sample: top_k must be a positive integer, got {top_k!r}")
    tok, rng = model.tokenizer, np.random.default_rng(seed)
    start = ([CharTokenizer.BOUNDARY] if kind == "words" or model.pads_text else []) + \
        ([] if kind == "words" else tok.encode("\n").tolist())
    primed = start + tok.encode(prompt).tolist()
    out = []
    with no_grad():
        model.eval()
        try:
            for _ in range(num):
                out.append(prompt + _draw(model, kind, primed, temperature, top_k, max_chars, lines, rng))
        finally:
            model.train()
    return out


def next_token(logits, temperature: float, top_k: int | None, rng, banned: int | None = None) -> int:
    """One token drawn from softmax(logits / temperature), only the top_k most likely if given, never `banned`."""
    logits = np.asarray(logits, dtype=np.float64) / temperature
    if banned is not None:
        logits[banned] = -np.inf
    if top_k is not None and top_k < len(logits):
        logits[logits < np.sort(logits)[-top_k]] = -np.inf
    p = np.exp(logits - logits.max())
    return int(rng.choice(len(p), p=p / p.sum()))


def _draw(model, kind, ids, temperature, top_k, max_chars, lines, rng) -> str:
    tok, ids, drawn, newlines = model.tokenizer, list(ids), [], 0
    state = None
    decoder = model.decoder() if hasattr(model, "decoder") else None   # the GPT: its key/value cache
    while len(drawn) < max_chars:
        if decoder is not None:
            logits = decoder.next_logits(np.array([ids]))[0]
        elif model.context is not None:
            window = ([CharTokenizer.BOUNDARY] * model.context + ids)[-model.context:]
            logits = model(np.array([window])).data[0]
        else:   # the RNN: the prefix once, then one character at a time from its hidden state
            feed = np.array([ids if state is None else ids[-1:]])
            out, state = model(feed, state)
            logits = out.data[0, -1]
        # running text has no end: never the boundary
        nxt = next_token(logits, temperature, top_k, rng, CharTokenizer.BOUNDARY if kind == "text" else None)
        if kind == "words" and nxt == CharTokenizer.BOUNDARY:
            break
        ids.append(nxt)
        drawn.append(nxt)
        if kind == "text" and lines is not None and tok.chars[nxt - 1] == "\n":
            newlines += 1
            if newlines == lines:
                break
    return tok.decode(drawn)
