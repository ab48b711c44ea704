"""Weight initialisations, the one place for them: the `train` command's tutorial model and the nn module draw here.

Every function draws from a numpy Generator in float64 and then casts to `dtype`, so float32 weights are the
float64 ones rounded and a seed gives the same starting point in either dtype. Shapes follow PyTorch's Linear:
a weight is out_features×in_features (the tutorial's W1 is hidden×784, the same thing), so fan_in is the number
of inputs of a unit and fan_out the number of units.

    tutorial  W, b ~ U[−0.5, 0.5)                    the tutorial's `np.random.rand(...) − 0.5`
    he        W ~ N(0, 2/fan_in),  b = 0             He et al. 2015, for ReLU layers
    xavier    W ~ U(±√(6/(fan_in + fan_out))),  b = 0   Glorot & Bengio 2010
    torch     W, b ~ U(±1/√fan_in)                   PyTorch's nn.Linear default

`linear` draws one layer's weight then its bias, in that order; drawing W1, b1, W2, b2 with the "tutorial" init
from default_rng(seed) gives exactly manual.init_params(seed).
"""
from __future__ import annotations

import math

import numpy as np

INITS = ("tutorial", "he", "xavier", "torch")


def tutorial_uniform(shape, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """U[−0.5, 0.5): the tutorial's `rand − 0.5`."""
    return (rng.random(shape) - 0.5).astype(dtype)


def he_normal(shape, fan_in: int, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """N(0, 2/fan_in): keeps the variance of ReLU activations from layer to layer."""
    return (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(dtype)


def xavier_uniform(shape, fan_in: int, fan_out: int, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """U(−a, a) with a = √(6/(fan_in + fan_out)): variance 2/(fan_in + fan_out)."""
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, shape).astype(dtype)


def torch_linear_uniform(shape, fan_in: int, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """U(−a, a) with a = 1/√fan_in: PyTorch's nn.Linear default, for its weight and its bias alike."""
    a = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-a, a, shape).astype(dtype)


def linear(init: str, in_features: int, out_features: int, rng: np.random.Generator, dtype=np.float32,
           bias_shape=None) -> tuple[np.ndarray, np.ndarray]:
    """(weight out_features×in_features, bias) of one layer by the named init, weight drawn first.

    bias_shape defaults to (out_features,) as in PyTorch; the tutorial's column layout passes (out_features, 1).
    """
    bias_shape = (out_features,) if bias_shape is None else tuple(bias_shape)
    return _layer(init, (out_features, in_features), bias_shape, in_features, out_features, rng, dtype)


def conv2d(init: str, in_channels: int, out_channels: int, kernel_size: tuple[int, int], rng: np.random.Generator,
           dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """(weight out×in×kh×kw, bias (out,)) of one convolution by the named init, weight drawn first.

    As in PyTorch, fan_in = in·kh·kw (the inputs of one output pixel) and fan_out = out·kh·kw. "torch" is
    torch.nn.Conv2d's default, kaiming-uniform with a = √5: U(±gain·√(3/fan_in)) with gain = √(2/(1 + a²)) = √(1/3),
    which is U(±1/√fan_in), the same rule as nn.Linear's, for the bias too.
    """
    k = kernel_size[0] * kernel_size[1]
    return _layer(init, (out_channels, in_channels, *kernel_size), (out_channels,), in_channels * k,
                  out_channels * k, rng, dtype)


def _layer(init: str, shape, bias_shape, fan_in: int, fan_out: int, rng: np.random.Generator, dtype):
    """(weight, bias) by the named init from the layer's fans, the weight drawn first (Linear's and Conv2d's)."""
    if init == "tutorial":
        W = tutorial_uniform(shape, rng, dtype)
        return W, tutorial_uniform(bias_shape, rng, dtype)
    if init == "he":
        return he_normal(shape, fan_in, rng, dtype), np.zeros(bias_shape, dtype)
    if init == "xavier":
        return xavier_uniform(shape, fan_in, fan_out, rng, dtype), np.zeros(bias_shape, dtype)
    if init == "torch":
        W = torch_linear_uniform(shape, fan_in, rng, dtype)
        return W, torch_linear_uniform(bias_shape, fan_in, rng, dtype)
    raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
