"""Old import path of tinygrad_edu.models.mlp (MLP, ACTIVATIONS)."""
from tinygrad_edu.models.mlp import ACTIVATIONS, MLP  # noqa: F401
