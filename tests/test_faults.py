"""kill -9 anywhere, then rerun; Ctrl-C: a real small run in a subprocess, really killed.

One output directory lives through three runs: the first is SIGKILLed while
the Trainer trains (after its first epoch's log line), the second while the
Pusher copies the release (a named fault point pauses the copy:
contract/faults.py), the third runs to the end. It must take what
finished from the cache, release exactly one model, leave no staging
debris, resolve in the lineage command, and not be confused by the killed
runs' executions in ML Metadata.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

import local_runner
from contract import faults, releases
from reporting import lineage, metadata, run_summary
from tests.conftest import PROJECT_ROOT, SMALL_RUN_FLAGS

pytestmark = pytest.mark.e2e

_WAIT_SECONDS = 600


def _start(output_dir, tfds_data_dir, mnist_dir, log_path, fault: str | None = None):
    env = dict(os.environ)
    env.pop(faults.FAULT_ENV, None)
    if fault:
        env[faults.FAULT_ENV] = fault
    command = [
        sys.executable,
        str(PROJECT_ROOT / "local_runner.py"),
        f"--output-dir={output_dir}",
        f"--tfds-data-dir={tfds_data_dir}",
        f"--mnist-dir={mnist_dir}",
        *SMALL_RUN_FLAGS,
        # The full log on the output stream, so the test can wait for a record.
        "--verbose",
    ]
    log = open(log_path, "w")  # noqa: SIM115 - the child writes it; closed by the caller
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env), log


def _wait_for(process, log_path, text: str) -> None:
    """Waits until the run's log holds `text` (bounded; fails if the run ends first)."""
    deadline = time.monotonic() + _WAIT_SECONDS
    while time.monotonic() < deadline:
        with open(log_path, errors="replace") as source:
            if text in source.read():
                return
        if process.poll() is not None:
            pytest.fail(f"run ended (exit {process.returncode}) before {text!r}; see {log_path}")
        time.sleep(0.5)
    process.kill()
    pytest.fail(f"no {text!r} in {log_path} after {_WAIT_SECONDS} s")


def _kill_when(output_dir, tfds_data_dir, mnist_dir, log_path, text, fault=None) -> int:
    process, log = _start(output_dir, tfds_data_dir, mnist_dir, log_path, fault)
    try:
        _wait_for(process, log_path, text)
        process.send_signal(signal.SIGKILL)
        return process.wait(timeout=60)
    finally:
        log.close()


def _run_contexts(layout):
    store = metadata.connect(layout.metadata_path)
    return store, sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.id)


@pytest.fixture(scope="module")
def killed_twice_then_rerun(tmp_path_factory, tfds_data_dir, mnist_dir, run_small_pipeline):
    output_dir = tmp_path_factory.mktemp("faults")
    logs = tmp_path_factory.mktemp("fault_logs")
    layout = local_runner.OutputLayout(str(output_dir))
    in_trainer = _kill_when(
        output_dir, tfds_data_dir, mnist_dir, logs / "1.log", "epoch 1/3: loss="
    )
    in_push = _kill_when(
        output_dir,
        tfds_data_dir,
        mnist_dir,
        logs / "2.log",
        f"{faults.PAUSED_MESSAGE} {faults.RELEASE_MID_COPY}",
        fault=faults.RELEASE_MID_COPY,
    )
    staged_after_kill = os.listdir(os.path.join(layout.serving_model_dir, releases.STAGING_DIR))
    exit_code = run_small_pipeline(output_dir)
    return layout, (in_trainer, in_push), staged_after_kill, exit_code


def test_both_runs_were_really_killed(killed_twice_then_rerun):
    _, exit_codes, staged_after_kill, _ = killed_twice_then_rerun
    assert exit_codes == (-signal.SIGKILL, -signal.SIGKILL)
    assert len(staged_after_kill) == 1, "the push was killed with a half-copied staging dir"


def test_the_run_after_a_kill_in_the_trainer_resumes_from_the_cache(killed_twice_then_rerun):
    layout, _, _, _ = killed_twice_then_rerun
    store, runs = _run_contexts(layout)
    assert len(runs) == 3
    second = {c.node_id: c.state for c in metadata.component_runs(store, runs[1].id, "mnist")}
    for upstream in ("MnistExampleGen", "StatisticsGen", "Transform"):
        assert second[upstream] == "cached", second
    assert second["Trainer"] == "executed", "the killed training starts over"


def test_rerun_completes_with_exactly_one_release_and_no_debris(killed_twice_then_rerun):
    layout, _, _, exit_code = killed_twice_then_rerun
    assert exit_code == 0
    (released,) = releases.list_releases(layout.serving_model_dir)
    assert os.listdir(layout.serving_model_dir) == [str(released.version)]
    summary = run_summary.latest_run_summary(layout.metadata_path, "mnist")
    states = {c.node_id: c.state for c in summary.components}
    assert states["Trainer"] == "cached" and states["Evaluator"] == "cached"
    assert states["Pusher"] == "executed"
    assert summary.released_now and summary.pushed_destination == released.path
    assert all(state in ("cached", "executed") for state in states.values()), states


def test_lineage_resolves_the_release(killed_twice_then_rerun, capsys):
    layout, _, _, _ = killed_twice_then_rerun
    (released,) = releases.list_releases(layout.serving_model_dir)
    assert lineage.main([f"--output-dir={layout.output_dir}"]) == 0
    chain = capsys.readouterr().out
    assert f"pushed_version: {released.version}" in chain
    assert "<- tfds_dataset:" in chain


def test_ctrl_c_says_a_rerun_resumes_and_exits_130(tmp_path, tfds_data_dir, mnist_dir):
    log_path = tmp_path / "run.log"
    process, log = _start(tmp_path / "out", tfds_data_dir, mnist_dir, log_path)
    try:
        _wait_for(process, log_path, "Component MnistExampleGen is running")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 130
    finally:
        log.close()
    assert "interrupted; a rerun resumes from the cache" in log_path.read_text()
