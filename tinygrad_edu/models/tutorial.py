"""The tutorial's 784-H-10 network as an nn.Module: W1, b1, W2, b2 by the tutorial's names, one column per image.

Its parameters are named exactly as manual.py's arrays, so a weights file of the tutorial's network holds W1
(H×784), b1 (H×1), W2 (10×H) and b2 (10×1); `params` views them as tutorial.Params, for tutorial.py's
forward_prop, backward_prop and gradient_descent_step.
"""
from __future__ import annotations

import numpy as np

from tinygrad_edu import init as inits
from tinygrad_edu import manual, nn, tutorial
from tinygrad_edu.models.registry import register
from tinygrad_edu.tensor import Tensor, as_generator


@register("tutorial")
class TutorialNetwork(nn.Module):
    """Z1 = W1·X + b1, A1 = ReLU(Z1), Z2 = W2·A1 + b2 on X of 784×m columns (the tutorial's layout); forward gives Z2.

    init "tutorial" (default) draws the weights as manual.init_params (rand − 0.5, W1, b1, W2, b2 in that order);
    "he", "xavier" and "torch" as nn.Linear's (tinygrad_edu.init). seed is an int, None or a Generator; dtype
    float32 (default) or float64.
    """

    n_in, n_out = 784, 10

    def __init__(self, hidden: int = 10, *, init: str = "tutorial", dtype=None, seed=None):
        hidden, init, dtype = self.arguments(hidden, init, dtype)
        rng = as_generator(seed)
        if init == "tutorial":
            arrays = manual.init_params(rng, dtype, hidden)
        else:
            arrays = (*inits.linear(init, self.n_in, hidden, rng, dtype, (hidden, 1)),
                      *inits.linear(init, hidden, self.n_out, rng, dtype, (self.n_out, 1)))
        self.init = init
        self.set_arrays(arrays)

    @classmethod
    def arguments(cls, hidden, init="tutorial", dtype=None) -> tuple[int, str, np.dtype]:
        """(hidden, init, dtype) checked; ValueError naming what is wrong."""
        return (nn.specs.positive_int("TutorialNetwork", "hidden", hidden),
                nn.specs.choice("TutorialNetwork", "init", init, inits.INITS),
                nn.specs.model_dtype("TutorialNetwork", dtype))

    @classmethod
    def from_arrays(cls, W1, b1, W2, b2, *, init: str = "tutorial") -> TutorialNetwork:
        """The network with these weights (copied into its parameters' own arrays: W1's dtype for all four)."""
        model = cls(np.shape(W1)[0], init=init, dtype=np.asarray(W1).dtype)
        model.load_state_dict({"W1": W1, "b1": b1, "W2": W2, "b2": b2})
        return model

    def set_arrays(self, arrays) -> None:
        """Makes W1, b1, W2, b2 Parameters holding these arrays (named so, for the graph and the trace)."""
        for name, a in zip(tutorial.Params._fields, arrays):
            setattr(self, name, nn.Parameter(a, name=name))

    @property
    def params(self) -> tutorial.Params:
        """The four parameters as tutorial.Params (the same Tensors: updating one updates the model)."""
        return tutorial.Params(self.W1, self.b1, self.W2, self.b2)

    def forward(self, X):
        Z1 = self.W1 @ (X if isinstance(X, Tensor) else Tensor(X)) + self.b1
        return self.W2 @ Z1.relu() + self.b2

    def architecture(self) -> dict:
        return {"model": "tutorial", "sizes": [self.n_in, self.W1.shape[0], self.n_out], "dtype": str(self.W1.dtype),
                "init": self.init}

    @classmethod
    def _arguments(cls, arch: dict) -> dict:
        """The constructor's arguments of an architecture; ValueError unless its sizes are [784, H, 10]."""
        sizes = arch.get("sizes")
        if not (isinstance(sizes, list) and len(sizes) == 3 and all(type(s) is int and s > 0 for s in sizes)
                and sizes[0] == cls.n_in and sizes[2] == cls.n_out):
            raise ValueError(f"the tutorial model's sizes must be [784, H, 10], the file says {sizes!r}")
        return {"hidden": sizes[1], "init": arch.get("init", "tutorial"), "dtype": arch.get("dtype")}

    @classmethod
    def parameter_shapes(cls, arch: dict) -> dict[str, tuple[tuple[int, ...], str]]:
        """name -> (shape, dtype) of W1, b1, W2, b2 for an architecture, computed without allocating them."""
        hidden, _, dtype = cls.arguments(**cls._arguments(arch))
        n_in, n_out, dtype = cls.n_in, cls.n_out, str(dtype)
        return {"W1": ((hidden, n_in), dtype), "b1": ((hidden, 1), dtype),
                "W2": ((n_out, hidden), dtype), "b2": ((n_out, 1), dtype)}

    @classmethod
    def from_architecture(cls, arch: dict, *, seed=None) -> TutorialNetwork:
        """The model of an architecture, its weights drawn from seed (an int, None or a Generator)."""
        return cls(**cls._arguments(arch), seed=seed)

    @classmethod
    def in_out(cls, arch: dict) -> tuple[int, int]:
        return cls.n_in, cls.n_out
