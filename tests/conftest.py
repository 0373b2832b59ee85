"""Shared fixtures: real MNIST archives, a TFDS copy prepared once per session."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.parse

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


POSTGRES_URL_ENV = "MLMD_TEST_POSTGRES_URL"
"""A PostgreSQL server the tests may use (.ci/run starts one); else they start their own."""


@dataclasses.dataclass(frozen=True)
class PostgresServer:
    """A PostgreSQL server for the shared-store tests: its URL and port, fresh databases."""

    url: str
    port: int

    def database(self, name: str) -> str:
        """The URL of database `name` on this server (created by init-store, not here)."""
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def sql(self, database: str, statement: str) -> str:
        process = subprocess.run(
            [
                str(PROJECT_ROOT / "scripts" / "postgres.sh"),
                "sql",
                str(self.port),
                database,
                statement,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return process.stdout.strip()


@pytest.fixture(scope="session")
def postgres():
    """A live PostgreSQL server: $MLMD_TEST_POSTGRES_URL's, else one started for the session.

    Skipped, saying why, only where no server can be started (no binaries and
    no way to install Debian's postgresql).
    """
    given = os.environ.get(POSTGRES_URL_ENV)
    if given:
        yield PostgresServer(given, urllib.parse.urlsplit(given).port)
        return
    # Under /tmp itself: as root the server runs as `postgres`, which cannot enter
    # pytest's own (private) temp dirs.
    root = tempfile.mkdtemp(prefix="mlmd-postgres-")
    os.chmod(root, 0o755)
    data_dir = os.path.join(root, "server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = str(PROJECT_ROOT / "scripts" / "postgres.sh")
    started = subprocess.run(
        [script, "start", str(data_dir), str(port)], capture_output=True, text=True
    )
    if started.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"no PostgreSQL server could be started here: {started.stderr.strip()[-500:]}")
    try:
        yield PostgresServer(started.stdout.strip(), port)
    finally:
        subprocess.run([script, "stop", str(data_dir)], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
