"""The vectorised erf (ops.erf, behind Tensor.erf and the exact gelu) against math.erf, the C library's.

Relative error ≤ 1e-15 wherever the result is a normal float (the whole range: a dense grid and hypothesis's
floats, tiny and huge ones included); where the result is subnormal, a relative error measures nothing (the
spacing there is 5e-324 absolute), so there both are held to one unit of it, and to the correctly rounded value.
"""
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu import Tensor, ops

TINY = np.finfo(np.float64).tiny   # the least normal float64, 2.2e-308
TWO_OVER_SQRT_PI = Fraction("1.12837916709551257389615890312154517168810125865799771368817144")


def math_erf(xs) -> np.ndarray:
    return np.array([math.erf(float(x)) for x in np.ravel(xs)]).reshape(np.shape(xs))


def assert_close_to_math_erf(xs: np.ndarray) -> None:
    ours, theirs = ops.erf(xs), math_erf(xs)
    assert ours.dtype == np.float64 and ours.shape == xs.shape
    nan = np.isnan(theirs)
    assert np.array_equal(np.isnan(ours), nan)
    normal = ~nan & (np.abs(theirs) >= TINY)
    rel = np.abs(ours[normal] - theirs[normal]) / np.abs(theirs[normal])
    assert rel.size == 0 or rel.max() <= 1e-15, f"relative error {rel.max():.2e} at x = {xs[normal][rel.argmax()]!r}"
    sub = ~nan & ~normal
    assert np.all(np.abs(ours[sub] - theirs[sub]) <= 5e-324)
    assert np.array_equal(np.signbit(ours[~nan]), np.signbit(theirs[~nan]))   # erf(−0.0) = −0.0


def test_erf_is_within_1e_15_of_math_erf_on_a_dense_grid():
    xs = np.concatenate([np.linspace(-7, 7, 700_001), np.geomspace(TINY, 7, 50_000), -np.geomspace(1e-20, 7, 5000)])
    assert_close_to_math_erf(xs)


def test_erf_at_the_piece_boundaries_and_the_special_values():
    edges = [0.0, 1.0, 6.0, 4.5]
    xs = np.array([np.nextafter(e, d) for e in edges for d in (-np.inf, np.inf)] + edges
                  + [-0.0, np.inf, -np.inf, np.nan, 1e-300, -1e-300, 1e300, -np.finfo(np.float64).max, 5e-324])
    assert_close_to_math_erf(xs)
    assert ops.erf(np.array([np.inf, -np.inf, 7.0, -30.0])).tolist() == [1.0, -1.0, 1.0, -1.0]


def test_erf_of_subnormals_is_within_one_unit_of_the_correctly_rounded_value():
    """erf(x) = 2x/√π·(1 − x²/3 + ...) and x² is nothing here: the correctly rounded result is that of 2x/√π,
    which Fraction computes exactly (its float() rounds correctly)."""
    xs = np.concatenate([np.geomspace(5e-324, TINY, 3000), -np.geomspace(5e-324, TINY, 300)])
    exact = np.array([float(Fraction(float(x)) * TWO_OVER_SQRT_PI) for x in xs])
    assert np.all(np.abs(ops.erf(xs) - exact) <= 5e-324)
    assert_close_to_math_erf(xs)


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True), min_size=1, max_size=50))
def test_erf_matches_math_erf_on_any_float64(values):
    assert_close_to_math_erf(np.array(values, dtype=np.float64))


@given(st.lists(st.floats(min_value=-8, max_value=8, width=32, allow_subnormal=True), min_size=1, max_size=50))
def test_erf_of_float32_is_math_erf_rounded_to_float32_within_one_ulp(values):
    xs = np.array(values, dtype=np.float32)
    ours = ops.erf(xs)
    assert ours.dtype == np.float32
    theirs = math_erf(xs).astype(np.float32)
    assert np.all(np.abs(ours.astype(np.float64) - theirs) <= np.spacing(np.abs(theirs)))


def test_erf_of_float32_is_exactly_math_erf_rounded_almost_everywhere():
    """The float32 pieces are within 2e-10 relative before the rounding (a float32 ulp is 6e-8): only a value
    that close to a rounding midpoint can round the other way."""
    xs = np.linspace(-6, 6, 200_001).astype(np.float32)
    same = ops.erf(xs) == math_erf(xs).astype(np.float32)
    assert same.mean() > 0.999


@pytest.mark.parametrize("shape", [(), (1,), (3, 4), (2, 0, 3)])
def test_erf_keeps_the_shape_and_tensor_erf_uses_it(shape):
    xs = np.random.default_rng(0).standard_normal(shape)
    assert ops.erf(xs).shape == shape
    np.testing.assert_array_equal(Tensor(xs).erf().data, ops.erf(xs))
    assert Tensor(np.arange(3)).erf().dtype == np.float32   # integers: float32, as every float-only op
