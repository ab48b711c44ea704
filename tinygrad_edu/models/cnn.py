"""The convolutional network after the MLP: LeNet-style nn.Conv2d, ReLU and nn.MaxPool2d layers, then Linear layers.

`train --model cnn` trains it (training.adapters, with the MLP's optimizers and schedules); the layers and their
backward rules are documented in docs/conv.md.
"""
from __future__ import annotations

import numpy as np

from tinygrad_edu import nn
from tinygrad_edu.models.registry import register
from tinygrad_edu.tensor import Tensor, as_generator


def _widths(value, n: int | None = None) -> bool:
    """Whether value is a list (or tuple) of integers ≥ 1, of n of them if n is given."""
    return isinstance(value, (list, tuple)) and (n is None or len(value) == n) and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in value)


@register("cnn")
class CNN(nn.Module):
    """conv k×k (c₁) → ReLU → max-pool 2 → conv k×k (c₂) → ReLU → max-pool 2 → Linear layers with ReLU → 10.

    On 1×28×28 images with k = 5 (no padding): 28 → 24 → 12 → 8 → 4, so the first Linear takes c₂·4·4 inputs.
    CNN((8, 16), (128,)) has parameters features.0.weight (8×1×5×5), features.0.bias, features.3.weight
    (16×8×5×5), features.3.bias, classifier.0.weight (128×256), ..., classifier.2.bias, as the same model in
    PyTorch. forward takes N×1×28×28 images, or N×784 rows (viewed as images).
    """

    image = (1, 28, 28)

    def __init__(self, channels=(8, 16), hidden=(128,), n_out: int = 10, *, kernel_size: int = 5,
                 init: str = "torch", dtype=None, seed=None):
        features, classifier = self.layers_architecture(channels, hidden, n_out, kernel_size, init, dtype)
        self.channels, self.hidden = [int(c) for c in channels], [int(h) for h in hidden]
        self.n_out, self.kernel_size, self.init = int(n_out), int(kernel_size), init
        rng = as_generator(seed)
        self.features = nn.Sequential.from_architecture(features, seed=rng)
        self.classifier = nn.Sequential.from_architecture(classifier, seed=rng)

    @classmethod
    def layers_architecture(cls, channels, hidden, n_out=10, kernel_size=5, init="torch",
                            dtype=None) -> tuple[dict, dict]:
        """The Sequential architectures of the two parts: conv, ReLU, pool twice; then Linear layers with ReLU
        between them. ValueError for widths that are not valid, or a kernel that leaves nothing of the image (the
        layers check the rest)."""
        if not (_widths(channels, 2) and _widths(hidden) and _widths([n_out, kernel_size])):
            raise ValueError(f"CNN: channels must be two widths ≥ 1, hidden a list of widths ≥ 1, n_out and "
                             f"kernel_size integers ≥ 1; got channels {channels!r}, hidden {hidden!r}, n_out "
                             f"{n_out!r}, kernel_size {kernel_size!r}")
        dtype, k, side = str(nn.specs.model_dtype("CNN", dtype)), int(kernel_size), cls.image[1]
        for _ in channels:
            side = (side - k + 1) // 2
        if side < 1:
            raise ValueError(f"CNN: a {k}×{k} kernel leaves nothing of a {cls.image[1]}-pixel side after two "
                             "convolutions and poolings")
        (c1, c2), features = [int(c) for c in channels], []
        for n_in, n_next in ((cls.image[0], c1), (c1, c2)):
            features += [{"type": "Conv2d", "in_channels": n_in, "out_channels": n_next, "kernel_size": [k, k],
                          "dtype": dtype, "init": init}, {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 2}]
        sizes, classifier = [c2 * side * side, *map(int, hidden), int(n_out)], []
        for n_in, n_next in zip(sizes[:-1], sizes[1:]):
            classifier += [{"type": "Linear", "in_features": n_in, "out_features": n_next, "dtype": dtype,
                            "init": init}, {"type": "ReLU"}]
        return {"model": "sequential", "layers": features}, {"model": "sequential", "layers": classifier[:-1]}

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        features = self.features(x.reshape(-1, *self.image) if x.ndim == 2 else x)
        return self.classifier(features.reshape(features.shape[0], -1))

    def architecture(self) -> dict:
        return {"model": "cnn", "channels": self.channels, "hidden": self.hidden, "n_out": self.n_out,
                "kernel_size": self.kernel_size, "init": self.init, "dtype": str(self.features[0].weight.dtype)}

    @staticmethod
    def _arguments(arch: dict) -> dict:
        """The constructor's arguments an architecture gives (the defaults for those it leaves out)."""
        return {"channels": arch["channels"], "hidden": arch["hidden"], "n_out": arch.get("n_out", 10),
                "kernel_size": arch.get("kernel_size", 5), "init": arch.get("init", "torch"), "dtype": arch["dtype"]}

    @classmethod
    def parameter_shapes(cls, arch: dict) -> dict[str, tuple[tuple[int, ...], str]]:
        """name -> (shape, dtype) of the parameters from_architecture(arch) would make, computed without
        allocating them (nn.Sequential.parameter_shapes of the two parts); ValueError for an architecture that is
        not valid."""
        parts = cls.layers_architecture(**cls._arguments(arch))
        return {f"{part}.{name}": v for part, layers in zip(("features", "classifier"), parts)
                for name, v in nn.Sequential.parameter_shapes(layers).items()}

    @classmethod
    def from_architecture(cls, arch: dict, *, seed=None) -> CNN:
        """The model of an architecture, its weights drawn from seed (an int, None or a Generator)."""
        return cls(**cls._arguments(arch), seed=seed)

    @classmethod
    def in_out(cls, arch: dict) -> tuple[int, int]:
        """(inputs, outputs) of one example (pixels of a 1×28×28 image), for a checked architecture."""
        return int(np.prod(cls.image)), arch.get("n_out", 10)
