"""The gradient doctor's one table: each known mistake as a transform of the correct gradient.

A transform maps the correct gradient (and the exercise's ingredients: m, the unmasked product, the array a
bias sums, ...) to the gradient that mistake would produce, or to None where the mistake cannot happen. The
checker recognises a mistake when the learner's answer equals its transform on every example that failed.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Mistake:
    key: str                                              # the diagnosis, as --json reports it
    says: str                                             # what the learner reads; {names} from the ingredients
    wrong: Callable[[np.ndarray, dict], np.ndarray | None]


def _other_axis(ing: dict):
    """The sum a bias gradient gets when summed over the wrong axis (2-D, one axis summed), else None."""
    s, axes = ing.get("summand"), ing.get("sum_axes")
    if s is None or s.ndim != 2 or len(axes) != 1:
        return None
    return s.sum(axis=1 - axes[0], keepdims=True) * ing["scale"]


def _needs(key: str, transform):
    return lambda g, ing: None if ing.get(key) is None else transform(g, ing)


MISTAKES = (
    Mistake("factor-m", "off by a factor {m_name}: {m_name} times too big (a /{m_name} is missing)",
            _needs("m", lambda g, ing: g * ing["m"])),
    Mistake("factor-1/m", "off by a factor 1/{m_name}: divided by {m_name} once more than it should be",
            _needs("m", lambda g, ing: g / ing["m"])),
    Mistake("transposed", "transposed: the right numbers with rows and columns swapped (which factor gets the ᵀ, "
                          "and in which order?)",
            lambda g, ing: g.T if g.ndim == 2 else None),
    Mistake("sign-flipped", "sign flipped: exactly −1 times the right gradient",
            lambda g, ing: -g),
    Mistake("relu-mask-missing", "the ReLU mask is missing: multiply {unmasked_name} by ReLU′({mask_of}) = "
                                 "[{mask_of} > 0]",
            _needs("unmasked", lambda g, ing: ing["unmasked"])),
    Mistake("relu-mask-wrong-tensor", "the ReLU mask is taken from the wrong tensor: [{unmasked_name} > 0] "
                                      "instead of [{mask_of} > 0]",
            _needs("unmasked", lambda g, ing: ing["unmasked"] * (ing["unmasked"] > 0))),
    Mistake("summed-wrong-axis", "summed over the wrong axis: sum {summand_name} over axis {sum_axes_text}, "
                                 "keepdims=True",
            _needs("summand", lambda g, ing: _other_axis(ing))),
    Mistake("summed-all-axes", "summed over all axes into one number: sum {summand_name} over axis "
                               "{sum_axes_text} only, keepdims=True",
            _needs("summand", lambda g, ing: np.sum(ing["summand"]) * ing["scale"])),
    Mistake("not-summed-back", "not summed back to the shape of {target} {target_shape}: {target} was broadcast, "
                               "so its gradient sums {summand_name} over axis {sum_axes_text}",
            _needs("summand", lambda g, ing: ing["summand"] * ing["scale"] if ing["sum_axes"] else None)),
    Mistake("one-hot-not-subtracted", "the one-hot Y is not subtracted: that is softmax alone; the gradient is "
                                      "softmax(Z) − Y",
            _needs("one_hot_term", lambda g, ing: g + ing["one_hot_term"])),
)


def close(actual, expected) -> bool:
    """Equal shapes and equal values to float64 round-off (relative to the larger array's scale)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        return False
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    return bool(np.allclose(actual, expected, rtol=1e-6, atol=1e-9 * scale))


def same_values(actual, expected) -> bool:
    """Equal values once size-1 axes are dropped: (k,) against (k, 1) compares the numbers, not the shape."""
    return close(np.squeeze(actual), np.squeeze(expected))


def matching(actual, correct, ing: dict) -> list[str]:
    """The keys of the mistakes whose transform of `correct` gives `actual` (size-1 axes aside), in table order.

    A transform that leaves the gradient unchanged on this example (a symmetric matrix transposed, a mask
    of all ones) tells nothing and is skipped.
    """
    keys = []
    for mistake in MISTAKES:
        wrong = mistake.wrong(correct, ing)
        if wrong is None or same_values(wrong, correct):
            continue
        if same_values(actual, wrong):
            keys.append(mistake.key)
    return keys


def describe(key: str, ing: dict) -> str:
    """A mistake's text, with this exercise's names filled in."""
    says = next(m.says for m in MISTAKES if m.key == key)
    return says.format_map(_Names(ing))


class _Names(dict):
    """The ingredients' names for str.format_map; a name the exercise does not define reads as itself."""

    def __missing__(self, key):
        return key
