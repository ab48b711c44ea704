"""Modules and layers with PyTorch's layouts, defaults and names (Module, Linear, Sequential, ...), and saving them.

A model is a Module whose attributes hold its parameters and its sub-modules, directly or inside lists, tuples
and dicts; `parameters()` finds them by walking those attributes, so nothing needs registering:

    class MLP(nn.Module):
        def __init__(self):
            self.layers = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
        def forward(self, x):
            return self.layers(x)

    [name for name, p in MLP().named_parameters()]  ->  ['layers.0.weight', 'layers.0.bias', 'layers.2.weight', ...]

A parameter is a `Parameter`, or any other leaf Tensor that requires grad. Each parameter is listed once, under
the first name the walk reaches it by, even when several modules share it (tied weights). A `Buffer` is state
that is not trained (BatchNorm's running statistics): `named_buffers()` finds it by the same walk, and
`state_dict()` holds both, each module's parameters then its buffers, in PyTorch's order and names.

Here: module.py (Module, Parameter, Buffer), layers.py (the layers and Sequential), specs.py (the one table of
layers and their argument checks), functional.py (the functions), utils.py (clip_grad_norm_); below, saving and
loading.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tinygrad_edu import checkpoint
from tinygrad_edu.nn import functional, specs, utils
from tinygrad_edu.nn.attention import CausalSelfAttention
from tinygrad_edu.nn.layers import (
    ELU,
    GELU,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Embedding,
    Flatten,
    Layer,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSigmoid,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    SiLU,
    Softplus,
    Tanh,
)
from tinygrad_edu.nn.module import Buffer, IncompatibleKeys, Module, Parameter
from tinygrad_edu.nn.recurrent import RNN

__all__ = ["AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Buffer", "CausalSelfAttention", "Conv2d", "Dropout", "ELU",
           "Embedding", "Flatten", "GELU", "IncompatibleKeys", "Layer", "LayerNorm", "LeakyReLU", "Linear",
           "LogSigmoid", "MaxPool2d", "Module", "Parameter", "ReLU", "RNN", "Sequential", "SiLU", "Sigmoid",
           "Softplus", "Tanh", "checkpoint_arrays", "from_checkpoint", "functional", "load", "load_optimizer_state",
           "save", "specs", "utils"]


# --- saving and loading ---------------------------------------------------------------------------------------
#
# One .npz (tinygrad_edu.checkpoint's format): the model's arrays by parameter name, its architecture() as JSON,
# and optionally optimizer state under optim/: `optim/state.<i>.<key>` arrays (i = the parameter's position in
# the optimizer's groups) and `optim/meta`, a JSON string with the optimizer's class, param_groups and the
# scheduler's state.

_META = checkpoint.OPTIM_PREFIX + "meta"


def save(model: Module, path, optimizer=None, scheduler=None) -> Path:
    """Writes model (architecture and weights) and, if given, the optimizer's and scheduler's state to path."""
    return checkpoint.save(path, checkpoint_arrays(model, optimizer, scheduler), model.architecture())


def checkpoint_arrays(model: Module, optimizer=None, scheduler=None) -> dict[str, np.ndarray]:
    """The arrays `save` writes: the model's state_dict and, given an optimizer, its state (and the scheduler's)
    under optim/ keys. For callers that add their own entries to the architecture (the `train` command)."""
    arrays = model.state_dict()
    if optimizer is not None:
        sd = optimizer.state_dict()
        for i, entries in sd["state"].items():
            for key, value in entries.items():
                arrays[f"{checkpoint.OPTIM_PREFIX}state.{i}.{key}"] = np.asarray(value)
        meta = {"optimizer": type(optimizer).__name__, "param_groups": sd["param_groups"],
                "scheduler": None if scheduler is None else
                {"type": type(scheduler).__name__, **scheduler.state_dict()}}
        arrays[_META] = np.array(json.dumps(meta))
    return arrays


def _models():
    """tinygrad_edu.models: the kinds of model and their one loader."""
    # NOTE: the kinds of model live above nn (they are built of nn's layers), so load, from_checkpoint and
    # expected_parameters hand over to them through this, the one import of nn upwards, made when called
    from tinygrad_edu import models
    return models


def load(path) -> Module:
    """The model saved at path, of any kind nn.save or a command writes (sequential, mlp, cnn, tutorial), rebuilt
    from its architecture with its weights (names, shapes, dtypes checked, from the arrays' headers, before
    anything is built or read): tinygrad_edu.models.load."""
    return _models().load(path)


def from_checkpoint(path, arrays: dict[str, np.ndarray], architecture: dict) -> Module:
    """The model rebuilt from what checkpoint.load(path) returned; path is only for the error messages
    (tinygrad_edu.models.from_checkpoint)."""
    return _models().from_checkpoint(path, arrays, architecture)


def expected_parameters(path, architecture: dict) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (shape, dtype) of the model a file's architecture describes, computed without building it
    (tinygrad_edu.models.expected_arrays)."""
    return _models().expected_arrays(path, architecture)


def load_optimizer_state(path, optimizer, scheduler=None) -> None:
    """Restores the optimizer (and scheduler) state saved at path into ones built like the saved ones, over the
    loaded model's parameters: `model = nn.load(p); opt = optim.Adam(model.parameters()); load_optimizer_state(p, opt)`.

    Everything is checked before anything is changed: the meta entry's form, each hyperparameter against the
    type of the optimizer's own, each state array's name, parameter and dtype. Any defect is a CheckpointError.
    """
    arrays, _ = checkpoint.load(path)
    if _META not in arrays:
        raise checkpoint.CheckpointError(f"{path}: holds no optimizer state (it was saved without an optimizer)")
    meta = checkpoint.read_json(path, _META, arrays[_META])

    def bad(what):
        return checkpoint.CheckpointError(f"{path}: corrupt optimizer state: {what}")

    if not isinstance(meta, dict) or not {"optimizer", "param_groups", "scheduler"} <= set(meta):
        raise bad("the meta entry must be an object with optimizer, param_groups and scheduler")
    if meta["optimizer"] != type(optimizer).__name__:
        raise checkpoint.CheckpointError(f"{path}: holds {meta['optimizer']} state, not {type(optimizer).__name__}")
    groups, ours = meta["param_groups"], optimizer.state_dict()["param_groups"]
    if not isinstance(groups, list) or len(groups) != len(ours):
        raise bad(f"param_groups must be a list of {len(ours)} groups")
    for k, (group, own) in enumerate(zip(groups, ours)):
        if not isinstance(group, dict) or not set(own) <= set(group):
            raise bad(f"param group {k} must have the keys {sorted(own)}")
        if not (isinstance(group["params"], list) and all(type(i) is int for i in group["params"])):
            raise bad(f"param group {k}: params must be a list of parameter numbers")
        for key, value in group.items():
            like = own.get(key, 0.0)   # a key this optimizer lacks (a schedule's initial_lr) holds a number
            if key != "params" and not _same_kind(value, like):
                raise bad(f"param group {k}: {key} is {value!r}, not like this optimizer's {like!r}")
    n = sum(len(g["params"]) for g in ours)
    state: dict[int, dict] = {}
    prefix = checkpoint.OPTIM_PREFIX + "state."
    for key, value in arrays.items():
        if not key.startswith(checkpoint.OPTIM_PREFIX) or key == _META:
            continue
        i, _, name = key[len(prefix):].partition(".")
        if not key.startswith(prefix) or not i.isdigit() or int(i) >= n or not name:
            raise bad(f"{key!r} is not optim/state.<i>.<name> with i < {n}")
        if value.dtype.kind not in "biuf":
            raise bad(f"{key!r} is {value.dtype}, not numbers")
        state.setdefault(int(i), {})[name] = value
    if scheduler is not None:
        saved, own = meta["scheduler"], scheduler.state_dict()
        if not isinstance(saved, dict) or saved.get("type") != type(scheduler).__name__:
            raise checkpoint.CheckpointError(f"{path}: holds no {type(scheduler).__name__} state")
        saved = {k: v for k, v in saved.items() if k != "type"}
        if set(saved) != set(own) or not all(_same_kind(saved[k], own[k]) for k in own):
            raise bad(f"the {type(scheduler).__name__} state must have {sorted(own)}, like this scheduler's "
                      f"{own!r}; the file says {saved!r}")
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, TypeError, KeyError, IndexError) as e:
        raise checkpoint.CheckpointError(f"{path}: {e}") from None
    if scheduler is not None:
        scheduler.load_state_dict(saved)


def _same_kind(value, own) -> bool:
    """Whether a value read from JSON can stand for `own`: a number for a number, a bool for a bool, a list of
    the same length for a tuple or list (item by item), None for None, a string for a string."""
    if isinstance(own, bool) or own is None or isinstance(own, str):
        return type(value) is type(own)
    if isinstance(own, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(own, (list, tuple)):
        return isinstance(value, list) and len(value) == len(own) and all(map(_same_kind, value, own))
    return False
