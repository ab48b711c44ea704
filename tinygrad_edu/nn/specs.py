"""The one table of built-in layers (type name -> class), the argument checks they share, and their specs' state.

A layer's spec is what Sequential.architecture() writes for it: {"type": "Linear", "in_features": 784, ...}, its
constructor's arguments by name. Each built-in layer class registers itself with `@specs.layer`, and has

    arguments(...)        classmethod: its constructor's arguments (all but seed) checked with the functions
                          below and normalised; ValueError naming the layer and the argument otherwise. The
                          constructor calls it too, so a layer and a file's spec refuse the same values with the
                          same message.
    state_shapes(**args)  classmethod: name -> (shape, dtype) of its parameters and buffers, from arguments()'s
                          result alone (nothing is allocated).

so `state_shapes(spec)` checks a file's spec and sizes its state before any array is read or layer is built.
"""
from __future__ import annotations

import inspect

import numpy as np

from tinygrad_edu import dtypes
from tinygrad_edu.tensor import as_pair

LAYERS: dict[str, type] = {}   # layer type name -> class, filled by @layer


def layer(cls: type) -> type:
    """Class decorator: cls is a built-in layer, saved and rebuilt under its class name."""
    LAYERS[cls.__name__] = cls
    return cls


def layer_class(spec) -> type:
    """The class a spec names; ValueError for anything that is not a known layer's spec."""
    if not isinstance(spec, dict) or spec.get("type") not in LAYERS:
        raise ValueError(f"not a known layer's spec: {spec!r}; the layer types are {', '.join(LAYERS)}")
    return LAYERS[spec["type"]]


def spec_arguments(spec) -> dict:
    """The spec's arguments, checked by its class's arguments(); ValueError naming an unknown or missing key."""
    cls = layer_class(spec)
    given = {k: v for k, v in spec.items() if k != "type"}
    params = inspect.signature(cls.arguments).parameters
    if unknown := sorted(set(given) - set(params)):
        raise ValueError(f"{cls.__name__}: unknown spec keys {unknown}; its keys are {', '.join(params) or 'none'}")
    if missing := [k for k, p in params.items() if p.default is p.empty and k not in given]:
        raise ValueError(f"{cls.__name__}: the spec lacks {', '.join(missing)}")
    return cls.arguments(**given)


def state_shapes(spec) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (shape, dtype) of the state a layer built from spec would have, without building it."""
    return layer_class(spec).state_shapes(**spec_arguments(spec))


def takes_seed(cls: type) -> bool:
    """Whether the layer draws from a seed (its weights or its dropout masks)."""
    return "seed" in inspect.signature(cls).parameters


# --- the argument checks ------------------------------------------------------------------------------------


def positive_int(layer: str, name: str, value) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)) or value < 1:
        raise ValueError(f"{layer}: {name} must be an integer ≥ 1, got {value!r}")
    return int(value)


def integer(layer: str, name: str, value) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{layer}: {name} must be an integer, got {value!r}")
    return int(value)


def number(layer: str, name: str, value, positive: bool = False) -> float:
    """A real-number argument as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or (
            value != value or (positive and not value > 0)):   # NOTE: value != value is nan
        raise ValueError(f"{layer}: {name} must be a {'positive ' if positive else ''}number, got {value!r}")
    return float(value)


def probability(layer: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or \
            not 0.0 <= value <= 1.0:
        raise ValueError(f"{layer}: {name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def eps(layer: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{layer}: eps must be a number ≥ 0, got {value!r}")
    return float(value)


def flag(layer: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{layer}: {name} must be True or False, got {value!r}")
    return bool(value)


def choice(layer: str, name: str, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{layer}: unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return value


def pair(layer: str, name: str, value, least: int) -> tuple[int, int]:
    """An int or an (h, w) pair of ints ≥ least, as (h, w)."""
    return as_pair(layer, name, value, least)


def model_dtype(layer: str, dtype) -> np.dtype:
    """The dtype of a layer's weights: one of dtypes.MODEL_DTYPES (None: float32)."""
    return dtypes.model_dtype(layer, dtype)
