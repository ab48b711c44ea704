"""Module, Parameter and Buffer: how a model finds its parameters, buffers and sub-modules, and its state_dict.

A model is a Module whose attributes hold its parameters and its sub-modules, directly or inside lists, tuples
and dicts; `parameters()` finds them by walking those attributes, so nothing needs registering. A parameter is a
`Parameter`, or any other leaf Tensor that requires grad; a `Buffer` is state that is not trained. (The package
docstring of tinygrad_edu.nn says more.)
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from tinygrad_edu.autograd import ShapeError
from tinygrad_edu.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that is a model's parameter: requires grad by default, and is found by `Module.parameters()`
    even when frozen (requires_grad=False)."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True, dtype=None, name: str | None = None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, name=name)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Buffer(Tensor):
    """A Tensor that is part of a module's state but not trained (running statistics, counters), as
    torch.nn.Buffer: never requires grad, is not in `parameters()`, is in `state_dict()` and `named_buffers()`."""

    __slots__ = ()

    def __init__(self, data, dtype=None, name: str | None = None):
        super().__init__(data, requires_grad=False, dtype=dtype, name=name)


def _is_parameter(t: Tensor) -> bool:
    return isinstance(t, Parameter) or (t.requires_grad and t.is_leaf)


def _is_buffer(t: Tensor) -> bool:
    return isinstance(t, Buffer)


def _reachable(value, name: str, inside: tuple = ()) -> Iterator[tuple[str, object]]:
    """(name, x) for each Module or Tensor x in value, looking inside lists, tuples and dicts (`inside`: the
    containers on the way here, so a list that contains itself is not entered again)."""
    if isinstance(value, (Module, Tensor)):
        yield name, value
    elif isinstance(value, (list, tuple, dict)) and not any(value is c for c in inside):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for k, v in items:
            yield from _reachable(v, f"{name}.{k}", (*inside, value))


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of models and layers: subclasses set attributes in __init__ and define forward(...).

    Calling the module calls forward. `training` is True until eval() (it switches off Dropout).
    Unlike PyTorch, calling super().__init__() is optional.
    """

    training = True

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward(...)")

    # --- the walk ---

    def _children(self, prefix: str) -> Iterator[tuple[str, object]]:
        for attr, value in vars(self).items():
            yield from _reachable(value, f"{prefix}.{attr}" if prefix else attr)

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(name, module) for this module ("") and every sub-module, depth first, each module once."""
        seen: set[int] = set()

        def visit(module: Module, name: str):
            seen.add(id(module))
            yield name, module
            for sub, x in module._children(name):
                if isinstance(x, Module) and id(x) not in seen:
                    yield from visit(x, sub)

        return visit(self, prefix)

    def modules(self) -> Iterator[Module]:
        return (m for _, m in self.named_modules())

    def _named_tensors(self, prefix: str, *kinds) -> Iterator[tuple[str, Tensor]]:
        """(name, tensor) for each tensor one of `kinds` (predicates) accepts, module by module, and within a
        module the first kind's tensors first (PyTorch's order: a module's parameters, then its buffers)."""
        seen: set[int] = set()
        for name, module in self.named_modules(prefix):
            tensors = [(sub, x) for sub, x in module._children(name) if isinstance(x, Tensor)]
            for kind in kinds:
                for sub, x in tensors:
                    if kind(x) and id(x) not in seen:
                        seen.add(id(x))
                        yield sub, x

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """(name, parameter) in PyTorch's order and names (`layers.0.weight`), each parameter once."""
        return self._named_tensors(prefix, _is_parameter)

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """(name, buffer) for each Buffer (`0.running_mean`), each once, in PyTorch's order and names."""
        return self._named_tensors(prefix, _is_buffer)

    def buffers(self) -> Iterator[Tensor]:
        return (b for _, b in self.named_buffers())

    def _named_state(self) -> Iterator[tuple[str, Tensor]]:
        """What state_dict holds: each module's parameters, then its buffers."""
        return self._named_tensors("", _is_parameter, _is_buffer)

    def parameters(self) -> Iterator[Tensor]:
        return (p for _, p in self.named_parameters())

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clears every parameter's .grad (to None, or to zeros with set_to_none=False), as PyTorch does."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad[...] = 0

    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    # --- state ---

    def state_dict(self) -> dict[str, np.ndarray]:
        """{name: a copy of the array} of every parameter and buffer (each module's parameters, then its buffers).
        (PyTorch shares storage; a copy is a safe snapshot.)"""
        return {name: p.data.copy() for name, p in self._named_state()}

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copies arrays into the parameters and buffers in place (so optimizers holding them stay valid, and each
        one's version goes up), cast to each one's dtype. Shapes must match; with strict, the names too."""
        params = dict(self._named_state())
        missing = [k for k in params if k not in state_dict]
        unexpected = [k for k in state_dict if k not in params]
        if strict and (missing or unexpected):
            raise RuntimeError(f"load_state_dict: the names do not match the model's: missing {missing}, "
                               f"unexpected {unexpected}")
        for name, p in params.items():
            if name in state_dict:
                value = np.asarray(getattr(state_dict[name], "data", state_dict[name]))
                if value.shape != p.shape:
                    raise ShapeError(f"load_state_dict: {name} has shape {p.shape} in the model but {value.shape} "
                                     "in the state dict")
                p.data[...] = value
                p._bump_version()
        return IncompatibleKeys(missing, unexpected)

    # --- architecture (for save/load) ---

    def architecture(self) -> dict:
        """A JSON-able description from which `from_architecture` rebuilds this model (before its weights)."""
        raise NotImplementedError(f"{type(self).__name__} does not describe its architecture, so it cannot be "
                                  "saved with nn.save; save its state_dict() instead, or use Sequential")

    # --- printing ---

    def extra_repr(self) -> str:
        """The settings inside the printed Layer(...): those _config records, as PyTorch prints them."""
        config = self._config() if hasattr(self, "_config") else {}
        return ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in config.items())

    def __repr__(self) -> str:
        return self._repr(())

    def _repr(self, outer: tuple) -> str:
        """The repr, with `outer` the modules it is nested in: one of them met again (a reference to a parent)
        prints as a back-reference instead of recursing forever."""
        lines = []
        for attr, value in vars(self).items():
            for name, x in _reachable(value, attr):
                if not isinstance(x, Module):
                    continue
                if x is self or any(x is m for m in outer):
                    text = f"<{type(x).__name__}, the enclosing module above>"
                elif type(x).__repr__ is Module.__repr__:
                    text = x._repr((*outer, self))
                else:
                    text = repr(x)
                lines.append(f"({name}): " + text.replace("\n", "\n  "))
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ")" if not lines else head + "\n  " + "\n  ".join(lines) + "\n)"

