"""The one registry of model kinds: the name a weights file's architecture stores ("model") -> the Module class."""
from __future__ import annotations

KINDS: dict[str, type] = {}


def register(kind: str):
    """Class decorator: cls is the model kind `kind`, which nn.load and every command can rebuild from a file.

    cls needs parameter_shapes(architecture) (classmethod: name -> (shape, dtype) of its state, computed without
    allocating; ValueError for an architecture that is not one) and from_architecture(architecture, *, seed=None)
    (classmethod: the model, its weights drawn from seed, before a file's weights are loaded); its instances'
    architecture() names the kind. A kind the MNIST commands take also has in_out(architecture) (its (inputs,
    outputs) per example, for a checked architecture)."""
    def add(cls: type) -> type:
        if KINDS.get(kind, cls) is not cls:
            raise ValueError(f"model kind {kind!r} is registered already, by {KINDS[kind].__name__}")
        KINDS[kind] = cls
        return cls
    return add
