"""Shared fixtures: real MNIST archives, a TFDS copy prepared once per session."""

import os

# TFX 1.16 needs tf-keras; must be set before anything imports TensorFlow.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pathlib  # noqa: E402

import pytest  # noqa: E402

from components import tfds_mnist  # noqa: E402

PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mnist_dir() -> str:
    """The vendored archives (data/mnist), the same files TFDS downloads."""
    path = PROJECT_ROOT / "data" / "mnist"
    assert tfds_mnist.has_all_archives(str(path)), f"MNIST archives missing in {path}"
    return str(path)


@pytest.fixture(scope="session")
def tfds_data_dir(tmp_path_factory: pytest.TempPathFactory, mnist_dir: str) -> str:
    """A TFDS data dir with MNIST prepared from the archives, shared by tests."""
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    tfds_mnist.prepare_mnist(mnist_dir, data_dir)
    return data_dir
