"""The marker for tests that need the real MNIST files (found through TINYGRAD_EDU_DATA); they skip without it."""
import pytest

from tinygrad_edu.datasets import DatasetNotFoundError, load_mnist


def have_mnist() -> bool:
    try:
        load_mnist(download=False, progress=False)
        return True
    except DatasetNotFoundError:
        return False


needs_mnist = pytest.mark.skipif(not have_mnist(), reason="real MNIST not found (set TINYGRAD_EDU_DATA)")
