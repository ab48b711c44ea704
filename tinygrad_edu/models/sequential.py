"""nn.Sequential of built-in layers as the model kind "sequential" (what nn.save writes for one)."""
from __future__ import annotations

from tinygrad_edu import nn
from tinygrad_edu.models.registry import register

register("sequential")(nn.Sequential)
