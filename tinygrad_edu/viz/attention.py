"""What a GPT's heads look at: one block's attention weights on a text, and a picture of one head's.

    A = viz.attention_weights(model, ids, layer=1)     # (n_head, T, T): row i is query i's weights over keys ≤ i
    viz.plot_attention(A[2], list(text), "head.png")   # the weights as a T×T picture, the characters on the axes

The weights are computed as the model's forward computes them, from its own layers: the embeddings, the blocks
before `layer`, that block's ln_1 and fused q, k, v projection, then softmax(q·kᵀ/√d) under the causal mask.
"""
from __future__ import annotations

import numpy as np

from tinygrad_edu.autograd import no_grad
from tinygrad_edu.viz.plots import figure, save_png

CELL = 0.16        # inches per token in the picture
MARGIN = 1.2       # inches around the grid, for the labels and the colour bar


def attention_weights(model, ids, layer: int) -> np.ndarray:
    """The attention weights of block `layer` of a GPT (models/gpt.py) on one text: (n_head, T, T) float64.

    ids: T token ids (a 1-d array or list, T ≤ block_size). Row i of head h is query i's softmax over keys
    0..i (zeros after i); each row sums to 1.
    """
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"attention_weights: ids must be one text's token ids (1-d), got shape {ids.shape}")
    if not (isinstance(layer, (int, np.integer)) and 0 <= layer < len(model.blocks)):
        raise ValueError(f"attention_weights: layer must be 0..{len(model.blocks) - 1} (the model has "
                         f"{len(model.blocks)} blocks), got {layer!r}")
    ids = model.check_ids(ids[None, :])
    T, H, training = ids.shape[1], model.n_head, model.training
    model.eval()
    try:
        with no_grad():
            x = model.wte(ids) + model.wpe(np.arange(T))
            for block in model.blocks[:layer]:
                x = block(x)
            block = model.blocks[layer]
            qkv = block.attn.qkv(block.ln_1(x)).numpy().astype(np.float64)
    finally:
        model.train(training)
    d = model.n_embd // H
    qkv = qkv.reshape(T, 3, H, d).transpose(1, 2, 0, 3)       # 3 × H × T × d: q, k, v of each head
    q, k = qkv[0], qkv[1]
    scores = np.where(np.tri(T, dtype=bool), q @ k.transpose(0, 2, 1) / np.sqrt(d), -np.inf)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def mean_distance(weights: np.ndarray) -> np.ndarray:
    """How far back each head looks, on average: Σ_j A[i, j]·(i − j), averaged over the queries i. weights is
    (..., T, T); the result drops the last two axes (one number per head)."""
    T = weights.shape[-1]
    back = np.arange(T)[:, None] - np.arange(T)[None, :]
    return (weights * back).sum(axis=-1).mean(axis=-1)


def _label(ch: str) -> str:
    return {"\n": "↵", " ": "␣"}.get(ch, ch)


def plot_attention(weights: np.ndarray, tokens, path=None, *, title: str | None = None):
    """One head's T×T weights as a picture: query i's row, key j's column, darker for more weight (on a
    square-root scale, so that small weights show); the tokens
    (T strings: characters) label both axes, a newline as ↵ and a space as ␣. Writes a PNG to path, or
    returns the Figure when path is None."""
    w = np.asarray(weights, dtype=np.float64)
    tokens = list(tokens)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] != len(tokens):
        raise ValueError(f"plot_attention: weights must be T×T for the {len(tokens)} tokens, got shape {w.shape}")
    T = len(tokens)
    side = CELL * T
    fig = figure((side + 2 * MARGIN, side + 2 * MARGIN))
    ax = fig.add_axes([MARGIN / (side + 2 * MARGIN), MARGIN / (side + 2 * MARGIN),
                       side / (side + 2 * MARGIN), side / (side + 2 * MARGIN)])
    from matplotlib.colors import PowerNorm
    # NOTE: a square-root scale: a row's weights sum to 1 over up to T keys, so most are small
    image = ax.imshow(w, cmap="Greys", norm=PowerNorm(0.5, vmin=0.0, vmax=1.0), interpolation="nearest")
    labels = [_label(t) for t in tokens]
    ax.set_xticks(range(T), labels, fontsize=7)
    ax.set_yticks(range(T), labels, fontsize=7)
    ax.tick_params(length=0)
    ax.set_xlabel("key j (the character looked at)")
    ax.set_ylabel("query i (the character looking)")
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02, label="weight A[i, j] (square-root scale)")
    return save_png(fig, path)
