"""Shared fixtures: real MNIST archives, a TFDS copy prepared once per session."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pathlib
import sys

import pytest

from components import tfds_mnist

PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent

# Pipeline code run inside pytest parses sys.argv with absl flags (where `-v`
# would mean --verbosity); pytest has read its own arguments by now.
sys.argv[1:] = []


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


SMALL_RUN_FLAGS = (
    "--train-limit=3000",
    "--eval-holdout=500",
    "--test-limit=1000",
    "--epochs=3",
    "--accuracy-threshold=0.5",
)


@pytest.fixture(scope="session")
def run_small_pipeline(tfds_data_dir, mnist_dir):
    """Runs local_runner.main on a small real slice; later flags override earlier."""
    import local_runner

    def run(output_dir, *flags: str) -> int:
        return local_runner.main(
            [
                f"--output-dir={output_dir}",
                f"--tfds-data-dir={tfds_data_dir}",
                f"--mnist-dir={mnist_dir}",
                *SMALL_RUN_FLAGS,
                *flags,
            ]
        )

    return run


@pytest.fixture(scope="session")
def released_run(tmp_path_factory, run_small_pipeline) -> str:
    """Output dir of one small run (3,000 train digits, 3 epochs) that released version 1.

    Shared by the report, model card and browser tests.
    """
    output_dir = str(tmp_path_factory.mktemp("released_run"))
    assert run_small_pipeline(output_dir) == 0
    return output_dir
