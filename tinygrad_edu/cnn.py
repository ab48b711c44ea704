"""Old import path of tinygrad_edu.models.cnn (CNN)."""
from tinygrad_edu.models.cnn import CNN  # noqa: F401
