"""The kinds of model a weights file can hold, in one registry filled by the models (@register), and the one loader.

    sequential  nn.Sequential of built-in layers (models/sequential.py)
    mlp         MLP: Linear layers with an activation between them (models/mlp.py)
    cnn         CNN: LeNet-style convolutions, then Linear layers (models/cnn.py)
    tutorial    TutorialNetwork: the tutorial's 784-H-10 network, W1, b1, W2, b2 (models/tutorial.py)
    bigram, char-mlp, char-rnn   the character models of text (models/text.py), their tokenizer in the file
    gpt         GPT: a character transformer (models/gpt.py), its tokenizer in the file

`load(path)` rebuilds any of them from a file written by nn.save or `train --save`. The file is read header
first: its architecture is checked against the arrays' headers (names, shapes, dtypes) and against
checkpoint.MAX_PARAMETERS before any array's data is read or the model is built.
"""
from __future__ import annotations

import numpy as np

from tinygrad_edu import checkpoint, nn
from tinygrad_edu.models import cnn, gpt, mlp, sequential, text, tutorial  # noqa: F401  (each registers its kind)
from tinygrad_edu.models.cnn import CNN
from tinygrad_edu.models.mlp import MLP
from tinygrad_edu.models.registry import KINDS, register
from tinygrad_edu.models.tutorial import TutorialNetwork

__all__ = ["CNN", "KINDS", "MLP", "TutorialNetwork", "expected_arrays", "from_checkpoint", "kind", "load",
           "load_with_architecture", "register"]


def kind(path, architecture: dict) -> type:
    """The class of the kind a file's architecture names; CheckpointError (naming path) for another."""
    name = architecture.get("model")
    if not isinstance(name, str) or name not in KINDS:
        raise checkpoint.CheckpointError(f"{path}: unknown model {name!r} in the architecture; known: "
                                         f"{', '.join(KINDS)}")
    return KINDS[name]


def expected_arrays(path, architecture: dict) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (shape, dtype) of the state of the model a file's architecture describes, computed without building
    it, within checkpoint.MAX_PARAMETERS; CheckpointError (naming path) for an architecture that is not one."""
    cls = kind(path, architecture)
    try:
        shapes = cls.parameter_shapes(architecture)
        checkpoint.check_parameter_count(shapes, "the architecture")
    except (KeyError, TypeError, ValueError) as e:
        raise checkpoint.CheckpointError(f"{path}: cannot rebuild the model from its architecture: {e}") from None
    return shapes


def load(path) -> nn.Module:
    """The model saved at path, rebuilt from its architecture, with its weights; CheckpointError on any defect."""
    return load_with_architecture(path)[0]


def load_with_architecture(path, check=None) -> tuple[nn.Module, dict]:
    """(the model saved at path, the file's architecture). check(architecture), if given, is called once the
    architecture is known to describe a model (before any array is read): it raises CheckpointError for a model
    its caller cannot use (the MNIST commands: 784 inputs, 10 outputs)."""
    def check_headers(architecture, headers):
        expected = expected_arrays(path, architecture)
        if check is not None:
            check(architecture)
        checkpoint.check_arrays(path, headers, expected)

    arrays, architecture = checkpoint.load(path, check_headers, optimizer=False)
    return from_checkpoint(path, arrays, architecture), architecture


def from_checkpoint(path, arrays: dict[str, np.ndarray], architecture: dict) -> nn.Module:
    """The model rebuilt from what checkpoint.load(path) returned; path is only for the error messages.
    The arrays are checked against the architecture before the model is built, and against the built model's
    state after."""
    cls = kind(path, architecture)
    checkpoint.check_arrays(path, arrays, expected_arrays(path, architecture))
    try:
        model = cls.from_architecture(architecture)
    except (KeyError, TypeError, ValueError) as e:
        raise checkpoint.CheckpointError(f"{path}: cannot rebuild the model from its architecture {architecture}: "
                                         f"{e}") from None
    state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    checkpoint.check_arrays(path, arrays, {n: (p.shape, p.dtype) for n, p in state.items()})
    model.load_state_dict({k: a for k, a in arrays.items() if not k.startswith(checkpoint.OPTIM_PREFIX)})
    return model
