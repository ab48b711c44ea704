"""Draws every picture in docs/images (but the lab's screenshots) from one recorded run.

    python scripts/make_doc_images.py           # the run, its pictures and run.json, into docs/images

The run is the README's picture run, `train --init he --batch-size 64 --epochs 3 --lr 0.1` (seed 0) on the MNIST
bundled with the package. From it: curves.png, weights.png, misclassified.png and confusion.png (`plot`). Beside
them: graph.png (`explain --dot`: the tutorial's graph on 4 images, in its names) and network.png (the 784-10-10
network with the shape on each arrow, viz.network_dot). The run's numbers go into run.json beside the pictures,
and tests/test_docs.py checks that the numbers the docs quote next to the pictures are those.

The examples' pictures (docs/images/examples) are each drawn by its example script from its own run, whose printed
figures docs/ops.md shows beside it (`python examples/mnist_batchnorm.py --plot docs/images/examples/batchnorm.png`,
`python examples/mnist_autoencoder.py --plot docs/images/examples/autoencoder.png`).
The lab's screenshots (docs/images/lab) need a browser: tests/test_lab_browser.py takes them, with
TINYGRAD_EDU_SCREENSHOTS=docs/images/lab.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tinygrad_edu.files import write_atomic  # noqa: E402

TRAIN = ["train", "--init", "he", "--batch-size", "64", "--epochs", "3", "--lr", "0.1", "--seed", "0"]
EXPLAIN = ["explain", "--batch-size", "4", "--seed", "0"]
PICTURES = {
    "curves.png": "plot, from the run's metrics.json",
    "weights.png": "plot, from the run's weights",
    "misclassified.png": "plot, the run's weights on the test set",
    "confusion.png": "plot, the run's weights on the test set",
    "graph.png": "explain --batch-size 4 --seed 0 --dot graph.png",
    "network.png": "viz.render(viz.network_dot(), 'network.png')",
}


def tinygrad_edu(*args: str, cwd: Path) -> str:
    """Runs `python -m tinygrad_edu ARGS` on this checkout and the bundled MNIST; its stderr goes on to ours."""
    env = {k: v for k, v in os.environ.items() if k not in ("TINYGRAD_EDU_DATA", "TINYGRAD_EDU_NO_BUNDLED")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "tinygrad_edu", *args], cwd=cwd, env=env, check=True, text=True,
                          stdout=subprocess.PIPE).stdout


def make(out: Path, train_args: list[str] = TRAIN) -> dict:
    """Makes the run and its pictures in a temporary folder, then moves each into out (atomically); run.json."""
    from tinygrad_edu import viz

    with tempfile.TemporaryDirectory(prefix="doc-images-") as tmp:
        tmp = Path(tmp)
        print("$ python -m tinygrad_edu " + " ".join(train_args), file=sys.stderr)
        tinygrad_edu(*train_args, "--save", "weights.npz", "--metrics-out", "metrics.json", cwd=tmp)
        tinygrad_edu("plot", "metrics.json", "--weights", "weights.npz", "--out", "pictures", cwd=tmp)
        tinygrad_edu(*EXPLAIN, "--dot", "pictures/graph.png", cwd=tmp)
        viz.render(viz.network_dot(), tmp / "pictures" / "network.png")
        metrics = json.loads((tmp / "metrics.json").read_text())
        history = metrics["history"]
        run = {
            "command": "python -m tinygrad_edu " + " ".join(train_args),
            "test_accuracy": round(metrics["test_accuracy"], 4),
            "train_accuracy": round(metrics["train_accuracy"], 4),
            "final_loss": round(history[-1]["loss"], 4) if history and "loss" in history[-1] else None,
            "pictures": PICTURES,
        }
        out.mkdir(parents=True, exist_ok=True)
        for name in PICTURES:
            write_atomic(out / name, (tmp / "pictures" / name).read_bytes())
        write_atomic(out / "run.json", (json.dumps(run, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="default: docs/images")
    parser.add_argument("--quick", action="store_true", help="a 20-step run instead (to try the script)")
    args = parser.parse_args(argv)
    if shutil.which("dot") is None:
        parser.error("graph.png and network.png need Graphviz's `dot` (apt-get install graphviz)")
    train_args = TRAIN[:5] + ["--iterations", "20"] + TRAIN[7:] if args.quick else TRAIN
    run = make(args.out, train_args)
    print(json.dumps({k: v for k, v in run.items() if k != "pictures"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
