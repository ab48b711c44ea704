"""nn.RNN: PyTorch's Elman network, h_t = tanh(x_t·W_ihᵀ + b_ih + h_{t−1}·W_hhᵀ + b_hh), layer upon layer.

Backprop through time is the walk's ordinary job: the loop below records one matmul, add and tanh per step, and
backward goes back through them like any other graph. Nothing here knows about gradients.
"""
from __future__ import annotations

import math

import numpy as np

from tinygrad_edu.autograd import ShapeError
from tinygrad_edu.nn import specs
from tinygrad_edu.nn.layers import Layer
from tinygrad_edu.nn.module import Parameter
from tinygrad_edu.tensor import Tensor, as_generator, stack


@specs.layer
class RNN(Layer):
    """torch.nn.RNN's interface and maths: input (L, N, H_in), or (N, L, H_in) with batch_first, or unbatched
    (L, H_in); forward(input, h0=None) -> (output, h_n), output the last layer's h_t at every step (L, N, H),
    h_n each layer's last h_t (num_layers, N, H). Parameters named and shaped as torch's (weight_ih_l0: H×H_in,
    weight_hh_l0: H×H, bias_ih_l0, bias_hh_l0: H; layer k > 0 reads layer k − 1's h), so a torch state_dict loads,
    each drawn from U(−1/√H, 1/√H) as torch does. nonlinearity "tanh" (default) or "relu".
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, *, dtype=None, seed=None):
        a = self.arguments(input_size, hidden_size, num_layers, nonlinearity, bias, batch_first, dtype=dtype)
        for name, value in a.items():
            if name != "dtype":
                setattr(self, name, value)
        rng, bound = as_generator(seed), 1 / math.sqrt(a["hidden_size"])
        for name, (shape, dtype) in self.state_shapes(**a).items():
            setattr(self, name, Parameter(rng.uniform(-bound, bound, shape).astype(dtype)))

    @classmethod
    def arguments(cls, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False, *,
                  dtype=None) -> dict:
        return {"input_size": specs.positive_int("RNN", "input_size", input_size),
                "hidden_size": specs.positive_int("RNN", "hidden_size", hidden_size),
                "num_layers": specs.positive_int("RNN", "num_layers", num_layers),
                "nonlinearity": specs.choice("RNN", "nonlinearity", nonlinearity, ("tanh", "relu")),
                "bias": specs.flag("RNN", "bias", bias),
                "batch_first": specs.flag("RNN", "batch_first", batch_first),
                "dtype": specs.model_dtype("RNN", dtype)}

    @classmethod
    def state_shapes(cls, input_size, hidden_size, num_layers, nonlinearity, bias, batch_first, dtype) -> dict:
        shapes = {}
        for k in range(num_layers):
            shapes[f"weight_ih_l{k}"] = ((hidden_size, input_size if k == 0 else hidden_size), str(dtype))
            shapes[f"weight_hh_l{k}"] = ((hidden_size, hidden_size), str(dtype))
            if bias:
                shapes[f"bias_ih_l{k}"] = ((hidden_size,), str(dtype))
                shapes[f"bias_hh_l{k}"] = ((hidden_size,), str(dtype))
        return shapes

    def forward(self, input, h0=None):
        x = input if isinstance(input, Tensor) else Tensor(np.asarray(input, dtype=self.weight_ih_l0.dtype))
        batched = x.ndim == 3
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise ShapeError(f"RNN: input must be (L, N, {self.input_size}), (N, L, {self.input_size}) with "
                             f"batch_first, or unbatched (L, {self.input_size}); got {tuple(x.shape)}")
        if not batched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        L, N = x.shape[0], x.shape[1]
        h = self._initial(h0, N, batched, x.dtype)
        step = Tensor.tanh if self.nonlinearity == "tanh" else Tensor.relu
        last = []
        for k in range(self.num_layers):
            W_ih, W_hh = getattr(self, f"weight_ih_l{k}"), getattr(self, f"weight_hh_l{k}")
            # NOTE: x_t·W_ihᵀ for every t at once, one product; only h_{t−1}·W_hhᵀ must wait for the step before
            xw = x @ W_ih.T
            if self.bias:
                xw = xw + (getattr(self, f"bias_ih_l{k}") + getattr(self, f"bias_hh_l{k}"))
            h_t, outputs = h[k], []
            for t in range(L):
                h_t = step(xw[t] + h_t @ W_hh.T)
                outputs.append(h_t)
            last.append(h_t)
            x = stack(outputs)
        output, h_n = x, stack(last)
        if not batched:
            return output.squeeze(1), h_n.squeeze(1)
        return (output.transpose(0, 1) if self.batch_first else output), h_n

    def _initial(self, h0, N: int, batched: bool, dtype):
        shape = (self.num_layers, N, self.hidden_size) if batched else (self.num_layers, self.hidden_size)
        if h0 is None:
            return Tensor(np.zeros((self.num_layers, N, self.hidden_size), dtype))
        h0 = h0 if isinstance(h0, Tensor) else Tensor(np.asarray(h0, dtype=dtype))
        if tuple(h0.shape) != shape:
            raise ShapeError(f"RNN: h0 must be {shape} (num_layers, {'N, ' if batched else ''}hidden_size), "
                             f"got {tuple(h0.shape)}")
        return h0 if batched else h0.unsqueeze(1)

    def extra_repr(self) -> str:
        extra = "".join(f", {k}={getattr(self, k)!r}" for k, default in
                        (("num_layers", 1), ("nonlinearity", "tanh"), ("bias", True), ("batch_first", False))
                        if getattr(self, k) != default)
        return f"{self.input_size}, {self.hidden_size}{extra}"

    def _config(self) -> dict:
        return {"input_size": self.input_size, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "nonlinearity": self.nonlinearity, "bias": self.bias, "batch_first": self.batch_first,
                "dtype": str(self.weight_ih_l0.dtype)}
