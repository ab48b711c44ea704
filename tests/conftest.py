"""Shared test setup: hypothesis profiles (CI is derandomized, no deadline) and real MNIST, read once a session."""
import os

import pytest
from hypothesis import HealthCheck, settings

from tinygrad_edu import comparison, datasets, training

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=60, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session")
def mnist_cache(tmp_path_factory):
    """The empty $XDG_CACHE_HOME the session's MNIST was loaded with (the bundled copy must not be copied there)."""
    return tmp_path_factory.mktemp("xdg")


@pytest.fixture(scope="session")
def mnist_data(mnist_cache):
    """Real MNIST, the copy bundled with the package (whatever TINYGRAD_EDU_DATA says), loaded once a session by
    the default lookup; its arrays are read-only, as every test shares them."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(datasets.ENV_VAR, raising=False)
        mp.delenv(datasets.NO_BUNDLED_VAR, raising=False)
        mp.setenv("XDG_CACHE_HOME", str(mnist_cache))
        data = datasets.load_mnist(download=False, progress=False)
    for split in data:
        for a in split:
            a.setflags(write=False)
    return data


@pytest.fixture
def mnist(mnist_data, monkeypatch):
    """Real MNIST for a test, and for the commands it runs (train, evaluate, predict, compare, explain): load_mnist
    without root= gives the session's copy instead of reading the files again (test_datasets tests the lookup)."""
    load_files = datasets.load_mnist

    def load_mnist(root=None, download=True, progress=True, **options):
        return mnist_data if root is None and not options else load_files(root, download, progress, **options)

    monkeypatch.setattr(datasets, "load_mnist", load_mnist)
    monkeypatch.setattr(comparison, "load_mnist", load_mnist)
    monkeypatch.setitem(training.LOADERS, "mnist", load_mnist)
    return mnist_data


@pytest.fixture
def no_bundled(monkeypatch):
    """The bundled MNIST hidden (datasets.NO_BUNDLED_VAR), for tests of the not-found and download paths."""
    monkeypatch.setenv(datasets.NO_BUNDLED_VAR, "1")
