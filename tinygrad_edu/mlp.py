"""The multilayer perceptron beyond the tutorial: nn.Linear layers with an activation (and dropout) between them.

`train --model mlp` trains it (training.MLPNet: its optimizer and schedule, in the same loop as the tutorial's
network); examples/mnist_mlp.py is that run written out for reading.
"""
from __future__ import annotations

import numpy as np

from tinygrad_edu import nn
from tinygrad_edu.tensor import as_generator

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


class MLP(nn.Module):
    """Linear layers of the given sizes with an activation (and optional dropout) between them.

    MLP((784, 256, 10)) is Linear(784, 256) → ReLU → Linear(256, 10): its parameters are layers.0.weight
    (256×784), layers.0.bias, layers.2.weight (10×256), layers.2.bias, as the same model in PyTorch.
    """

    def __init__(self, sizes=(784, 256, 10), *, activation: str = "relu", dropout: float = 0.0,
                 init: str = "torch", dtype=None, seed=None):
        if len(sizes) < 2 or any(int(n) != n or n < 1 for n in sizes):
            raise ValueError(f"MLP: sizes must be two or more positive integers (inputs, hidden..., outputs), "
                             f"got {sizes}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"MLP: unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        self.sizes, self.activation, self.dropout, self.init = [int(n) for n in sizes], activation, dropout, init
        self.layers = nn.Sequential.from_architecture(
            self._layers(self.sizes, activation, dropout, init, str(np.dtype(dtype or np.float32))),
            seed=as_generator(seed))

    @staticmethod
    def _layers(sizes, activation, dropout, init, dtype) -> dict:
        """The Sequential architecture of these layers: Linear, then activation (and Dropout) between Linears."""
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append({"type": "Linear", "in_features": n_in, "out_features": n_out, "dtype": dtype, "init": init})
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

    @classmethod
    def parameter_shapes(cls, arch: dict) -> dict[str, tuple[tuple[int, ...], str]]:
        """name -> (shape, dtype) of the parameters from_architecture(arch) would make, computed without
        allocating them (nn.Sequential.parameter_shapes); ValueError for sizes or a dtype that are not valid."""
        sizes = arch["sizes"]
        if not (isinstance(sizes, list) and len(sizes) >= 2 and all(type(n) is int and n >= 1 for n in sizes)):
            raise ValueError(f"sizes must be two or more integers ≥ 1, got {sizes!r}")
        layers = cls._layers(sizes, "relu", arch.get("dropout", 0.0), None, arch["dtype"])
        return {f"layers.{name}": v for name, v in nn.Sequential.parameter_shapes(layers).items()}

    @classmethod
    def from_architecture(cls, arch: dict) -> MLP:
        return cls(arch["sizes"], activation=arch.get("activation", "relu"), dropout=arch.get("dropout", 0.0),
                   init=arch.get("init", "torch"), dtype=arch["dtype"])
