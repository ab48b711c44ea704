"""docs/attention.md's picture: one head of the committed Truyện Kiều GPT, its attention weights over the first couplet.

    python scripts/attention_picture.py       # writes docs/images/attention/kieu-head.png (needs matplotlib)

The model is notebooks/weights/kieu-gpt.npz (made by the command docs/attention.md gives). The head is chosen by a
rule, not by eye: of every layer's heads, the one that looks furthest back on average over the couplet
(viz.mean_distance). The page's run block computes the same weights and prints the same choice.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tinygrad_edu import nn, viz  # noqa: E402

WEIGHTS = ROOT / "notebooks" / "weights" / "kieu-gpt.npz"
OUT = ROOT / "docs" / "images" / "attention" / "kieu-head.png"
VERSE = "Trăm năm trong cõi người ta,\nChữ tài chữ mệnh khéo là ghét nhau."


def weights(model) -> np.ndarray:
    """(n_layer, n_head, T, T): every block's attention weights over VERSE."""
    ids = model.tokenizer.encode(VERSE)
    return np.stack([viz.attention_weights(model, ids, layer) for layer in range(len(model.blocks))])


def furthest_back(all_weights: np.ndarray) -> tuple[int, int]:
    """(layer, head) of the head whose weight lies furthest back on average."""
    dist = viz.mean_distance(all_weights)
    layer, head = np.unravel_index(np.argmax(dist), dist.shape)
    return int(layer), int(head)


def main() -> None:
    model = nn.load(WEIGHTS)
    A = weights(model)
    layer, head = furthest_back(A)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    viz.plot_attention(A[layer, head], VERSE, OUT, title=f"layer {layer}, head {head} of {WEIGHTS.name}")
    print(f"layer {layer}, head {head}: {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
