"""The multilayer perceptron beyond the tutorial: nn.Linear layers with an activation (and dropout) between them.

`train --model mlp` trains it (training.adapters: its optimizer and schedule, in the same loop as the tutorial's
network); examples/mnist_mlp.py is that run written out for reading.
"""
from __future__ import annotations

import numpy as np

from tinygrad_edu import nn
from tinygrad_edu.models.registry import register
from tinygrad_edu.tensor import as_generator

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


@register("mlp")
class MLP(nn.Module):
    """Linear layers of the given sizes with an activation (and optional dropout) between them.

    MLP((784, 256, 10)) is Linear(784, 256) → ReLU → Linear(256, 10): its parameters are layers.0.weight
    (256×784), layers.0.bias, layers.2.weight (10×256), layers.2.bias, as the same model in PyTorch.
    """

    def __init__(self, sizes=(784, 256, 10), *, activation: str = "relu", dropout: float = 0.0,
                 init: str = "torch", dtype=None, seed=None):
        layers = self.layers_architecture(sizes, activation, dropout, init, dtype)
        self.sizes, self.activation, self.dropout, self.init = [int(n) for n in sizes], activation, dropout, init
        self.layers = nn.Sequential.from_architecture(layers, seed=as_generator(seed))

    @staticmethod
    def layers_architecture(sizes, activation="relu", dropout=0.0, init="torch", dtype=None) -> dict:
        """The Sequential architecture of these layers: Linear, then activation (and Dropout) between Linears;
        ValueError for sizes or an activation that are not valid (the layers check the rest)."""
        if not (isinstance(sizes, (list, tuple)) and len(sizes) >= 2 and all(
                isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in sizes)):
            raise ValueError(f"MLP: sizes must be two or more positive integers (inputs, hidden..., outputs), got "
                             f"{sizes!r}")
        dtype = str(nn.specs.model_dtype("MLP", dtype))
        nn.specs.choice("MLP", "activation", activation, ACTIVATIONS)
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append({"type": "Linear", "in_features": int(n_in), "out_features": int(n_out), "dtype": dtype,
                           "init": init})
            if i < len(sizes) - 2:
                layers.append({"type": ACTIVATIONS[activation].__name__})
                if dropout:
                    layers.append({"type": "Dropout", "p": dropout})
        return {"model": "sequential", "layers": layers}

    def forward(self, x):
        return self.layers(x)

    def architecture(self) -> dict:
        return {"model": "mlp", "sizes": self.sizes, "activation": self.activation, "dropout": self.dropout,
                "init": self.init, "dtype": str(self.layers[0].weight.dtype)}

    @staticmethod
    def _arguments(arch: dict) -> dict:
        """The constructor's arguments an architecture gives (the defaults for those it leaves out)."""
        return {"sizes": arch["sizes"], "activation": arch.get("activation", "relu"),
                "dropout": arch.get("dropout", 0.0), "init": arch.get("init", "torch"), "dtype": arch["dtype"]}

    @classmethod
    def parameter_shapes(cls, arch: dict) -> dict[str, tuple[tuple[int, ...], str]]:
        """name -> (shape, dtype) of the parameters from_architecture(arch) would make, computed without
        allocating them (nn.Sequential.parameter_shapes); ValueError for an architecture that is not valid."""
        layers = cls.layers_architecture(**cls._arguments(arch))
        return {f"layers.{name}": v for name, v in nn.Sequential.parameter_shapes(layers).items()}

    @classmethod
    def from_architecture(cls, arch: dict, *, seed=None) -> MLP:
        """The model of an architecture, its weights drawn from seed (an int, None or a Generator)."""
        return cls(**cls._arguments(arch), seed=seed)

    @staticmethod
    def in_out(arch: dict) -> tuple[int, int]:
        """(inputs, outputs) of one example, for a checked architecture."""
        return arch["sizes"][0], arch["sizes"][-1]
