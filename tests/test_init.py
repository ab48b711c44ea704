"""tinygrad_edu.init: each initialisation's formula, its draw order, and its dtype rule."""
import math

import numpy as np
import pytest

from tinygrad_edu import init, manual


def test_tutorial_init_is_manual_init_params():
    """W1, b1, W2, b2 drawn by init.linear("tutorial") from default_rng(seed) are manual.init_params(seed)."""
    for seed, hidden in [(0, 10), (7, 32)]:
        rng = np.random.default_rng(seed)
        got = (*init.linear("tutorial", 784, hidden, rng, np.float64, (hidden, 1)),
               *init.linear("tutorial", hidden, 10, rng, np.float64, (10, 1)))
        for a, b in zip(got, manual.init_params(seed, np.float64, hidden)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", init.INITS)
def test_float32_is_float64_rounded(name):
    w64, b64 = init.linear(name, 50, 20, np.random.default_rng(3), np.float64)
    w32, b32 = init.linear(name, 50, 20, np.random.default_rng(3), np.float32)
    assert w32.dtype == b32.dtype == np.float32 and w64.shape == (20, 50) and b64.shape == (20,)
    np.testing.assert_array_equal(w32, w64.astype(np.float32))
    np.testing.assert_array_equal(b32, b64.astype(np.float32))


def test_he_normal_variance_is_2_over_fan_in():
    fan_in = 400
    W = init.he_normal((500, fan_in), fan_in, np.random.default_rng(0), np.float64)
    # the sample variance of 200000 normals is within 1% of the true one (its standard error is 0.3%)
    assert W.var() == pytest.approx(2 / fan_in, rel=0.01)
    assert abs(W.mean()) < 4 * math.sqrt(2 / fan_in / W.size)


@pytest.mark.parametrize("fan_in, fan_out", [(784, 10), (10, 10), (256, 128)])
def test_uniform_bounds(fan_in, fan_out):
    rng = np.random.default_rng(1)
    a = math.sqrt(6 / (fan_in + fan_out))
    W = init.xavier_uniform((200, 300), fan_in, fan_out, rng, np.float64)
    assert np.abs(W).max() <= a and np.abs(W).max() > 0.99 * a
    assert W.var() == pytest.approx(a * a / 3, rel=0.02)          # U(−a, a) has variance a²/3
    a = 1 / math.sqrt(fan_in)
    W = init.torch_linear_uniform((200, 300), fan_in, rng, np.float64)
    assert np.abs(W).max() <= a and np.abs(W).max() > 0.99 * a
    T = init.tutorial_uniform((200, 300), rng, np.float64)
    assert T.min() >= -0.5 and T.max() < 0.5 and T.max() > 0.49


def test_biases():
    rng = np.random.default_rng(2)
    for name in ("he", "xavier"):
        _, b = init.linear(name, 64, 8, rng, bias_shape=(8, 1))
        assert b.shape == (8, 1) and not b.any()
    _, b = init.linear("torch", 64, 1000, rng)
    assert np.abs(b).max() <= 1 / 8 and np.abs(b).max() > 0.99 / 8        # U(±1/√fan_in) like the weight


def test_weight_is_drawn_before_the_bias():
    W, b = init.linear("torch", 4, 3, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(W, init.torch_linear_uniform((3, 4), 4, rng))
    np.testing.assert_array_equal(b, init.torch_linear_uniform((3,), 4, rng))


def test_unknown_init():
    with pytest.raises(ValueError, match="unknown init 'kaiming'; choose one of tutorial, he, xavier, torch"):
        init.linear("kaiming", 3, 2, np.random.default_rng())
