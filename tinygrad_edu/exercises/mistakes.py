"""The gradient doctor's one table: each known mistake as a transform of the correct gradient.

A transform maps the correct gradient (and the exercise's ingredients: m, the unmasked product, the array a
bias sums, ...) to the gradient that mistake would produce, or to None where the mistake cannot happen. The
checker recognises a mistake when the learner's answer equals its transform on every example that failed.
What the learner reads is the catalogue's message `exercises.mistake.<key>` (tinygrad_edu/messages/
exercises.json), its {fields} filled from the ingredients. Past the table, `constant_factor` names any other
exact constant ratio (×2, ×0.5, ...).

Part two's mistakes (BatchNorm's batch statistics held constant, attention's mask left out of the backward, ...)
are whole wrong derivations, not a transform of the right answer: the exercise computes each one's gradient from
its inputs (tinygrad_edu/exercises/part2.py) and hands it over as the ingredient named by the key, one array or a
list of variants (the same mistake written two ways); the table reads it from there. They come first, so that
an exercise's own mistake is named before a generic one (a factor, a transpose) that fits the same numbers.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from tinygrad_edu import messages


@dataclass(frozen=True)
class Mistake:
    key: str                                              # the diagnosis, as --json reports it
    wrong: Callable[[np.ndarray, dict], np.ndarray | list | None]   # one array, or a list of variants


def variants(mistake: Mistake, correct, ing: dict) -> list:
    """The gradients the mistake gives on this example: none, one, or each way of writing it."""
    wrong = mistake.wrong(correct, ing)
    return [] if wrong is None else list(wrong) if isinstance(wrong, (list, tuple)) else [wrong]


def _other_axis(ing: dict):
    """The sum a bias gradient gets when summed over the wrong axis (2-D, one axis summed), else None."""
    s, axes = ing.get("summand"), ing.get("sum_axes")
    if s is None or s.ndim != 2 or len(axes) != 1:
        return None
    return s.sum(axis=1 - axes[0], keepdims=True) * ing["scale"]


def _needs(key: str, transform):
    return lambda g, ing: None if ing.get(key) is None else transform(g, ing)


def _factor(f):
    """A mistake that multiplies the gradient by f(m)."""
    return _needs("m", lambda g, ing: g * f(ing["m"]) if f(ing["m"]) is not None else None)


def _computed(key: str):
    """A mistake of part two: its gradient (or variants) computed by the exercise, as ingredient `key`."""
    return lambda g, ing: ing.get(key)


PART_TWO = (
    "batchnorm-stats-constant", "batchnorm-mean-term-missing", "batchnorm-var-term-missing",
    "batchnorm-unbiased-variance", "gamma-beta-wrong-axis", "layernorm-stats-constant", "layernorm-batch-axis",
    "softmax-row-term-missing", "softmax-diagonal-only", "attention-scale-missing", "attention-mask-not-applied",
    "attention-qk-swapped", "embedding-repeats-lost", "conv-kernel-not-flipped", "conv-stride-forgotten",
    "conv-padding-not-cropped", "maxpool-gradient-everywhere", "rnn-hidden-gradient-not-carried",
    "rnn-tanh-derivative-wrong-tensor", "dropout-not-rescaled",
)

MISTAKES = tuple(Mistake(key, _computed(key)) for key in PART_TWO) + (
    Mistake("sum-as-mean", _needs("sum_n", lambda g, ing: g / ing["sum_n"])),
    Mistake("factor-m", _factor(lambda m: m)),
    Mistake("factor-1/m", _factor(lambda m: 1 / m)),
    Mistake("factor-m^2", _factor(lambda m: m * m)),
    Mistake("factor-1/m^2", _factor(lambda m: 1 / (m * m))),
    Mistake("factor-m/(m-1)", _factor(lambda m: m / (m - 1))),
    Mistake("transposed", lambda g, ing: g.T if g.ndim == 2 else None),
    Mistake("sign-flipped", lambda g, ing: -g),
    Mistake("upstream-missing", _needs("g", lambda g, ing: g / ing["g"])),
    Mistake("factors-swapped", _needs("swapped", lambda g, ing: ing["swapped"])),
    Mistake("relu-mask-missing", _needs("unmasked", lambda g, ing: ing["unmasked"])),
    Mistake("relu-mask-wrong-tensor", _needs("unmasked", lambda g, ing: ing["unmasked"] * (ing["unmasked"] > 0))),
    Mistake("relu-activation-not-mask",
            _needs("mask_values", lambda g, ing: ing["unmasked"] * np.maximum(ing["mask_values"], 0))),
    Mistake("summed-wrong-axis", _needs("summand", lambda g, ing: _other_axis(ing))),
    Mistake("summed-all-axes", _needs("summand", lambda g, ing: np.sum(ing["summand"]) * ing["scale"])),
    Mistake("not-summed-back", _needs("summand", lambda g, ing: ing["summand"] * ing["scale"]
                                      if ing["sum_axes"] else None)),
    Mistake("one-hot-not-subtracted", _needs("one_hot_term", lambda g, ing: g + ing["one_hot_term"])),
    Mistake("log-times-a", _needs("log_times_a", lambda g, ing: ing["log_times_a"])),
    Mistake("log-over-a-squared", _needs("log_over_a_squared", lambda g, ing: ing["log_over_a_squared"])),
    Mistake("exp-of-out", _needs("exp_of_out", lambda g, ing: ing["exp_of_out"])),
)
KEYS = tuple(m.key for m in MISTAKES) + ("factor-constant",)


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
        for wrong in variants(mistake, correct, ing):
            if np.size(wrong) == 0 or same_values(wrong, correct):
                continue
            if same_values(actual, wrong) and mistake.key not in keys:
                keys.append(mistake.key)
    return keys


def constant_factor(pairs) -> str | None:
    """'2', '1/2', '−3/2': the one exact constant c with actual = c·correct on every (actual, correct) pair
    (size-1 axes aside), written as a fraction; None if there is none, or if c is 1."""
    ratio = None
    for actual, correct in pairs:
        a, e = np.squeeze(np.asarray(actual, dtype=np.float64)), np.squeeze(correct)
        if a.shape != e.shape or not np.any(e):
            return None
        r = float(np.sum(a * e) / np.sum(e * e))
        if not close(a, r * e) or (ratio is not None and not np.isclose(r, ratio, rtol=1e-6)):
            return None
        ratio = r
    if ratio is None or np.isclose(ratio, 1.0, rtol=1e-6):
        return None
    frac = Fraction(ratio).limit_denominator(100)
    text = str(abs(frac)) if np.isclose(float(frac), ratio, rtol=1e-6) else f"{abs(ratio):.6g}"
    return ("−" if ratio < 0 else "") + text


def describe(key: str, ing: dict, lang: str = messages.DEFAULT_LANGUAGE) -> str:
    """A mistake's text in lang, with this exercise's names filled in (a name it does not define reads as itself)."""
    template = messages.catalogue("exercises")[f"mistake.{key}"]["en"]
    wanted = set(messages.FIELD.findall(template))
    return messages.text(f"exercises.mistake.{key}", lang, **{k: ing.get(k, k) for k in wanted})
