"""The terminal of `python local_runner.py`, run as a user would: a subprocess, no terminal.

Checks what issue 10 promised: a short progress transcript (header, a line
per component start and end with its state, a few epoch lines, the summary),
nothing from the libraries on the terminal, and the full log in
`<output-dir>/logs/<run-id>.log`.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests import expected
from tests.conftest import PROJECT_ROOT, SMALL_RUN_FLAGS

pytestmark = pytest.mark.e2e

MAX_TERMINAL_LINES = 60


def _cli(output_dir, mnist_dir, tfds_data_dir, *flags) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "local_runner.py"),
            f"--output-dir={output_dir}",
            f"--mnist-dir={mnist_dir}",
            f"--tfds-data-dir={tfds_data_dir}",
            *SMALL_RUN_FLAGS,
            *flags,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


def _states(stdout: str) -> dict[str, list[str]]:
    """{component: [states in order]} from the progress lines."""
    found: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        match = re.fullmatch(r"  (\w+)\s+(running|executed|cached|failed)(\s+[\d.]+ s)?", line)
        if match:
            found.setdefault(match.group(1), []).append(match.group(2))
    return found


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, mnist_dir, tfds_data_dir):
    """A first run and an unchanged rerun on one output dir, both through the CLI."""
    output_dir = tmp_path_factory.mktemp("console_out")
    first = _cli(output_dir, mnist_dir, tfds_data_dir, "--epochs=12")
    second = _cli(output_dir, mnist_dir, tfds_data_dir, "--epochs=12")
    return output_dir, first, second


def test_a_run_prints_a_short_transcript_and_nothing_from_the_libraries(two_runs):
    _, first, _ = two_runs
    assert first.returncode == 0, first.stderr[-3000:]
    lines = first.stdout.splitlines()
    assert len(lines) <= MAX_TERMINAL_LINES, first.stdout
    assert lines[0].startswith("MNIST pipeline run ")
    assert first.stderr == ""
    assert "\x1b[" not in first.stdout, "no terminal control codes in a pipe"
    for noise in ("absl", "tensorflow/core", "FutureWarning", "crcmod", "WARNING"):
        assert noise not in first.stdout


def test_each_component_starts_and_ends_with_its_state(two_runs):
    _, first, second = two_runs
    assert _states(first.stdout) == {node: ["running", "executed"] for node in expected.COMPONENTS}
    assert _states(second.stdout) == {node: ["running", "cached"] for node in expected.COMPONENTS}
    assert "Pushed: nothing new (already released as version" in second.stdout


def test_the_trainer_shows_epochs_up_to_the_last_one_run(two_runs):
    _, first, _ = two_runs
    epochs = re.findall(r"^    epoch\s+(\d+)/12  loss ", first.stdout, flags=re.M)
    assert epochs[0] == "1" and len(epochs) <= 12
    assert int(epochs[-1]) >= 2
    assert epochs == sorted(epochs, key=int)


def test_the_log_file_holds_the_full_log_and_the_summary_names_it(two_runs):
    output_dir, first, _ = two_runs
    logs = sorted((output_dir / "logs").iterdir())
    assert len(logs) == 2
    run_id = first.stdout.splitlines()[0].removeprefix("MNIST pipeline run ")
    log = output_dir / "logs" / f"{run_id}.log"
    assert log in logs
    assert f"Log: {os.path.relpath(log)}" in first.stdout or f"Log: {log}" in first.stdout
    text = log.read_text()
    # TFX's INFO records from the first component to the last (absl's level
    # survives TensorFlow's SavedModel export), the Trainer's epochs, Beam.
    for node in expected.COMPONENTS:
        assert f"INFO absl: Component {node} is finished." in text
    assert "INFO mnist.training: epoch 1/12" in text
    assert "apache_beam" in text
    assert "Report: " in first.stdout


def test_a_failed_run_says_why_and_where_the_log_is(tmp_path, mnist_dir, tfds_data_dir):
    archives = tmp_path / "archives"
    shutil.copytree(mnist_dir, archives)
    corrupt = archives / "train-labels-idx1-ubyte.gz"
    corrupt.write_bytes(corrupt.read_bytes()[:100])
    output_dir = tmp_path / "out"
    result = _cli(output_dir, archives, tmp_path / "fresh_tfds")
    assert result.returncode == 1
    assert _states(result.stdout)["MnistExampleGen"] == ["running", "failed"]
    assert f"Pipeline stopped: MNIST archive {corrupt}" in result.stderr
    (log,) = (output_dir / "logs").iterdir()
    assert "Log: " in result.stderr and log.name in result.stderr
    assert "Last log lines:" in result.stderr
    assert "MnistArchiveError" in log.read_text()
