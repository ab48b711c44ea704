"""The multilayer perceptron beyond the tutorial: nn.Linear layers with an activation (and dropout) between them.

`train --model mlp` trains it (training.MLPNet: its optimizer and schedule, in the same loop as the tutorial's
network); examples/mnist_mlp.py is that run written out for reading.
"""
from __future__ import annotations

from tinygrad_edu import nn
from tinygrad_edu.tensor import _rng

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
        rng = _rng(seed)
        self.sizes, self.activation, self.dropout, self.init = [int(n) for n in sizes], activation, dropout, init
        layers = []
        for i, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            layers.append(nn.Linear(n_in, n_out, dtype=dtype, init=init, seed=rng))
            if i < len(self.sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
                if dropout:
                    layers.append(nn.Dropout(dropout, seed=rng))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)

    def architecture(self) -> dict:
        return {"model": "mlp", "sizes": self.sizes, "activation": self.activation, "dropout": self.dropout,
                "init": self.init, "dtype": str(self.layers[0].weight.dtype)}

    @classmethod
    def from_architecture(cls, arch: dict) -> MLP:
        return cls(arch["sizes"], activation=arch.get("activation", "relu"), dropout=arch.get("dropout", 0.0),
                   init=arch.get("init", "torch"), dtype=arch["dtype"])
