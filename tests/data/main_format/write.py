"""Wrote these weights files and expected.npz with main at dcf3ce5, before nn, models and training were split up:
`PYTHONPATH=<a git archive of dcf3ce5> python tests/data/main_format/write.py`."""
from pathlib import Path

import numpy as np

from tinygrad_edu import checkpoint, nn, training

out = Path(__file__).parent
rng = np.random.default_rng(0)
images = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
expected = {"images": images}
seq = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, seed=1), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Flatten(), nn.Linear(2 * 14 * 14, 4, dtype=np.float64, seed=2),
                    nn.LayerNorm(4, dtype=np.float64), nn.LeakyReLU(0.1),
                    nn.Linear(4, 3, bias=False, dtype=np.float64, seed=3))
nn.save(seq, out / "sequential.npz")
x = images[:, None].astype(np.float32) / 255
seq.eval()
expected["sequential"] = seq(x).data
for kind, extra in (("tutorial", {"hidden": (2,)}), ("mlp", {"hidden": (3,), "init": "torch", "normalize": "standard"}),
                    ("cnn", {"hidden": (2,), "channels": (1, 1), "init": "torch"})):
    config = training.TrainConfig(model=kind, **extra)
    model = training.MODELS[kind].create(config, np.random.default_rng(0), 1,
                                         (0.13, 0.31) if config.normalize == "standard" else training.PIXELS)
    architecture = {**model.architecture(), "dataset": "mnist", "config": {**config.as_dict(), "data": None}}
    checkpoint.save(out / f"{kind}.npz", model.state_dict(), architecture)
    expected[kind] = model.probabilities(training.as_input(images, model))
np.savez(out / "expected.npz", **expected)
