"""docs/conv.md's worked example, drawn: a 3×3 input, a 2×2 kernel, ∂L/∂out, and the two gradients the op computes.

    python scripts/conv_example.py            # writes docs/images/conv/worked-example.png (needs matplotlib)

The numbers are computed by tinygrad_edu's conv2d and its backward, not typed in; the page's run block checks the
same example against the derivation's two formulas, and tests/test_conv.py checks that page and script agree.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tinygrad_edu import Tensor  # noqa: E402
from tinygrad_edu.nn import functional as F  # noqa: E402

OUT = ROOT / "docs" / "images" / "conv" / "worked-example.png"
X = [[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [2.0, 1.0, 1.0]]   # one image, one channel, 3×3
W = [[1.0, -1.0], [2.0, 0.0]]                             # one kernel, 2×2
G = [[1.0, 0.0], [-1.0, 2.0]]                             # ∂L/∂out: L = Σ out ⊙ G


def example() -> dict[str, np.ndarray]:
    """x, w, out = conv2d(x, w), ∂L/∂out and the op's ∂L/∂w and ∂L/∂x, each as a 2-D array."""
    x = Tensor(np.array(X)[None, None], requires_grad=True)
    w = Tensor(np.array(W)[None, None], requires_grad=True)
    out = F.conv2d(x, w)
    (out * Tensor(np.array(G)[None, None])).sum().backward()
    return {"x": x.data[0, 0], "w": w.data[0, 0], "out": out.data[0, 0], "G": np.array(G),
            "dw": w.grad[0, 0], "dx": x.grad[0, 0]}


def draw(values: dict[str, np.ndarray], path: Path = OUT) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("x (input)", "x"), ("w (kernel)", "w"), ("out = x ⋆ w", "out"), ("∂L/∂out = G", "G"),
              ("∂L/∂w = x ⋆ G\n(a correlation)", "dw"), ("∂L/∂x = pad(G) ⋆ flip(w)\n(a full convolution)", "dx")]
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 2.9))
    for ax, (title, key) in zip(axes, panels):
        a = values[key]
        scale = max(1e-12, float(np.abs(a).max()))
        ax.imshow(a, cmap="RdBu_r", vmin=-1.25 * scale, vmax=1.25 * scale)
        for (i, j), v in np.ndenumerate(a):
            ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=12,
                    color="white" if abs(v) > 0.6 * scale else "black")
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(a.shape[1]))
        ax.set_yticks(range(a.shape[0]))
        ax.tick_params(labelsize=8, length=0)
    fig.suptitle("conv2d, stride 1, no padding: L = Σ out ⊙ G (red +, blue −; numbers from tinygrad_edu)",
                 fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    draw(example())
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
