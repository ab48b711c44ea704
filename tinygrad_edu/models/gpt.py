"""A GPT of characters: token and position embeddings, pre-LayerNorm transformer blocks, a linear head (model "gpt").

    x_0 = wte[idx] + wpe[0..T−1]                                  (then dropout)
    x   = x + attn(ln_1(x))                 causal self attention, n_head heads (nn.CausalSelfAttention)
    x   = x + mlp(ln_2(x))                  Linear n_embd → 4·n_embd, GELU (exact), Linear back, dropout
    logits = head(ln_f(x))                  the head's weight is wte's (tie_weights): one Parameter

The weights start as GPT-2's: every Linear and embedding weight ~ N(0, 0.02), biases 0, and the projections that
end a residual branch (attn.proj, mlp.2) ~ N(0, 0.02/√(2·n_layer)), so the residual stream's variance does not
grow with depth. `model(idx)` maps N×T token ids (T ≤ block_size) to N×T×V logits: at each position, the next
character's, from the characters up to it. `generate` writes any length, reading the last block_size tokens, with
a key/value cache (`Decoder`) while the text still fits in the window.
"""
from __future__ import annotations

import math

import numpy as np

from tinygrad_edu import nn
from tinygrad_edu.autograd import no_grad
from tinygrad_edu.models.registry import register
from tinygrad_edu.models.text import TEXT_KINDS, CharModel, next_token
from tinygrad_edu.tensor import Tensor, as_generator
from tinygrad_edu.text import CharTokenizer

__all__ = ["GPT", "Block", "Decoder"]

STD = 0.02   # GPT-2's init


class Block(nn.Module):
    """One pre-LayerNorm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool, dtype, rng):
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias, dtype=dtype)
        self.attn = nn.CausalSelfAttention(n_embd, n_head, dropout, bias, dtype=dtype, seed=rng)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias, dtype=dtype)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd, bias, dtype=dtype, seed=rng), nn.GELU(),
                                 nn.Linear(4 * n_embd, n_embd, bias, dtype=dtype, seed=rng),
                                 nn.Dropout(dropout, seed=rng))

    def forward(self, x: Tensor, cache: dict | None = None) -> Tensor:
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp(self.ln_2(x))


@register("gpt")
class GPT(CharModel):
    """A character GPT (see the module's docstring). n_embd must be a multiple of n_head; bias=False leaves out
    the biases of the Linear layers and LayerNorms (nanoGPT's default); tie_weights=True makes the head's weight
    the token embedding's own Parameter (listed once, as wte.weight)."""

    kind = "gpt"
    pads_text = False     # running text is read as it is: its windows start on a character, not a boundary token

    def __init__(self, tokenizer: CharTokenizer, n_layer: int = 4, n_head: int = 4, n_embd: int = 128,
                 block_size: int = 64, dropout: float = 0.0, bias: bool = False, tie_weights: bool = True, *,
                 dtype=None, seed=None):
        dtype = self._start(tokenizer, dtype)
        a = self.check(n_layer, n_head, n_embd, block_size, dropout, bias, tie_weights)
        self.n_layer, self.n_head, self.n_embd = a["n_layer"], a["n_head"], a["n_embd"]
        self.block_size, self.dropout, self.bias, self.tie_weights = (
            a["block_size"], a["dropout"], a["bias"], a["tie_weights"])
        rng = as_generator(seed)
        self.wte = nn.Embedding(self.vocab_size, self.n_embd, dtype=dtype)
        self.wpe = nn.Embedding(self.block_size, self.n_embd, dtype=dtype)
        self.drop = nn.Dropout(self.dropout, seed=rng)
        self.blocks = [Block(self.n_embd, self.n_head, self.dropout, self.bias, dtype, rng)
                       for _ in range(self.n_layer)]
        self.ln_f = nn.LayerNorm(self.n_embd, bias=self.bias, dtype=dtype)
        self.head = nn.Linear(self.n_embd, self.vocab_size, bias=False, dtype=dtype)
        if self.tie_weights:
            self.head.weight = self.wte.weight
        self._init_weights(rng)

    @staticmethod
    def check(n_layer, n_head, n_embd, block_size, dropout=0.0, bias=False, tie_weights=True) -> dict:
        """The architecture's numbers checked; ValueError naming the one that is wrong."""
        a = {"n_layer": nn.specs.positive_int("GPT", "n_layer", n_layer),
             "block_size": nn.specs.positive_int("GPT", "block_size", block_size),
             "bias": nn.specs.flag("GPT", "bias", bias), "tie_weights": nn.specs.flag("GPT", "tie_weights",
                                                                                       tie_weights)}
        attn = nn.CausalSelfAttention.arguments(n_embd, n_head, dropout, bias)
        return {**a, "n_head": attn["n_head"], "n_embd": attn["n_embd"], "dropout": attn["dropout"]}

    def _init_weights(self, rng: np.random.Generator) -> None:
        residual = STD / math.sqrt(2 * self.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("weight") and ".ln_" not in name and not name.startswith("ln_f"):
                std = residual if name.endswith(("attn.proj.weight", "mlp.2.weight")) else STD
                p.data[...] = rng.standard_normal(p.shape) * std
            elif name.endswith("bias") and ".ln_" not in name and not name.startswith("ln_f"):
                p.data[...] = 0

    @staticmethod
    def _arguments(arch: dict) -> dict:
        return {k: arch[k] for k in ("n_layer", "n_head", "n_embd", "block_size")} | {
            "dropout": arch.get("dropout", 0.0), "bias": arch.get("bias", False),
            "tie_weights": arch.get("tie_weights", True), "dtype": arch.get("dtype", "float32")}

    @classmethod
    def shapes(cls, vocab_size: int, n_layer: int, n_head: int, n_embd: int, block_size: int, dropout=0.0,
               bias=False, tie_weights=True, dtype="float32") -> dict:
        """The state's shapes, from the layers' specs (nn.specs), in the model's order; nothing is allocated."""
        a = cls.check(n_layer, n_head, n_embd, block_size, dropout, bias, tie_weights)
        d = str(nn.specs.model_dtype("GPT", dtype))
        C, b = a["n_embd"], a["bias"]

        def spec(name, **args):
            return {f"{name}.{k}": v for k, v in nn.specs.state_shapes(args).items()}
        shapes = {**spec("wte", type="Embedding", num_embeddings=vocab_size, embedding_dim=C, dtype=d),
                  **spec("wpe", type="Embedding", num_embeddings=a["block_size"], embedding_dim=C, dtype=d)}
        for i in range(a["n_layer"]):
            shapes |= spec(f"blocks.{i}.ln_1", type="LayerNorm", normalized_shape=C, bias=b, dtype=d)
            shapes |= spec(f"blocks.{i}.attn", type="CausalSelfAttention", n_embd=C, n_head=a["n_head"], bias=b,
                           dtype=d)
            shapes |= spec(f"blocks.{i}.ln_2", type="LayerNorm", normalized_shape=C, bias=b, dtype=d)
            shapes |= spec(f"blocks.{i}.mlp.0", type="Linear", in_features=C, out_features=4 * C, bias=b, dtype=d)
            shapes |= spec(f"blocks.{i}.mlp.2", type="Linear", in_features=4 * C, out_features=C, bias=b, dtype=d)
        shapes |= spec("ln_f", type="LayerNorm", normalized_shape=C, bias=b, dtype=d)
        if not a["tie_weights"]:
            shapes |= spec("head", type="Linear", in_features=C, out_features=vocab_size, bias=False, dtype=d)
        return shapes

    def check_ids(self, idx, past: int = 0, window: bool = True) -> np.ndarray:
        """idx as an N×T int64 array, every id in the vocabulary and (window) T + past ≤ block_size; ValueError
        naming the value otherwise."""
        ids = np.asarray(idx.data if isinstance(idx, Tensor) else idx)
        if ids.ndim != 2 or (ids.size and ids.dtype.kind not in "iu"):
            raise ValueError(f"GPT: idx must be an N×T array of token ids (integers), got {ids.dtype} of shape "
                             f"{ids.shape}")
        if window and past + ids.shape[1] > self.block_size:
            raise ValueError(f"GPT: {past + ids.shape[1]} positions"
                             f"{f' ({past} cached and {ids.shape[1]} new)' if past else ''} are more than the "
                             f"block_size {self.block_size} the model has position embeddings for")
        bad = (ids < 0) | (ids >= self.vocab_size)
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"GPT: token id {int(ids[at])} at position {at} is outside the vocabulary "
                             f"0..{self.vocab_size - 1}")
        return ids.astype(np.int64, copy=False)

    def forward(self, idx, caches: list | None = None) -> Tensor:
        """N×T token ids → N×T×V logits. With caches (one dict per block, as Decoder keeps them), these T
        tokens follow the cached ones: their positions start after them."""
        past = caches[0]["k"].shape[2] if caches and "k" in caches[0] else 0
        ids = self.check_ids(idx, past)
        x = self.drop(self.wte(ids) + self.wpe(np.arange(past, past + ids.shape[1])))
        for i, block in enumerate(self.blocks):
            x = block(x, None if caches is None else caches[i])
        return self.head(self.ln_f(x))

    def decoder(self, use_cache: bool = True) -> Decoder:
        return Decoder(self, use_cache)

    @no_grad()
    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None, *,
                 seed=None, use_cache: bool = True) -> np.ndarray:
        """idx (N×T token ids) followed by max_new_tokens tokens, each drawn from softmax(logits/temperature)
        (only the top_k most likely, if given) of the last block_size tokens, with rng = default_rng(seed).
        use_cache=False recomputes every position at each step: the same tokens, slower."""
        ids = self.check_ids(idx, window=False)
        if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 0:
            raise ValueError(f"generate: max_new_tokens must be an integer ≥ 0, got {max_new_tokens!r}")
        rng, decoder, training = as_generator(seed), self.decoder(use_cache), self.training
        self.eval()
        try:
            for _ in range(max_new_tokens):
                logits = decoder.next_logits(ids)
                nxt = [next_token(row, temperature, top_k, rng) for row in logits]
                ids = np.concatenate([ids, np.array(nxt, np.int64)[:, None]], axis=1)
        finally:
            self.train(training)
        return ids

    def _config(self) -> dict:
        return {"n_layer": self.n_layer, "n_head": self.n_head, "n_embd": self.n_embd,
                "block_size": self.block_size, "dropout": self.dropout, "bias": self.bias,
                "tie_weights": self.tie_weights, "dtype": str(self.wte.weight.dtype)}


class Decoder:
    """The next token's logits for a growing sequence, with a key/value cache.

    While the sequence fits in the window (≤ block_size tokens), the cache holds each block's keys and values of
    the positions seen, so only the new tokens are computed. Once it is longer, the window slides: every token's
    position changes at each step, so no cached key or value holds, and each step computes its window whole (the
    cache starts again when a shorter sequence comes). use_cache=False computes the window whole at every step."""

    def __init__(self, model: GPT, use_cache: bool = True):
        self.model, self.use_cache = model, use_cache
        self.caches: list | None = None
        self.length = 0          # the tokens the cache holds (the sequence's first `length`)

    def next_logits(self, ids) -> np.ndarray:
        """ids: N×t tokens so far (t ≥ 1) → N×V float64 logits of the token after them."""
        ids = np.asarray(ids)
        model, t = self.model, ids.shape[1]
        with no_grad():
            if not self.use_cache or t > model.block_size:
                self.caches, self.length = None, 0
                return model(ids[:, -model.block_size:]).data[:, -1].astype(np.float64)
            if self.caches is None or self.length >= t:
                self.caches, self.length = [{} for _ in model.blocks], 0
            logits = model(ids[:, self.length:], self.caches).data[:, -1]
            self.length = t
        return logits.astype(np.float64)


TEXT_KINDS[GPT.kind] = GPT   # a text model too: sample and evaluate take it
