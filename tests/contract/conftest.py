"""Fixtures shared by the contract tests: a separate process holding a run's lock."""

import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

HOLDER = """
import sys, time
from contract import locks
with locks.hold_output_dir(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path):
    """A separate process that holds the lock of `tmp_path / "out"` until killed."""
    output_dir = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(output_dir)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "locked"
        yield process, output_dir
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
