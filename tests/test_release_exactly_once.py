"""Exactly-once releases through the real pipeline: a model is released once, whatever reruns.

A small real run is killed (SIGKILL, through the named fault-injection point
in contract/faults.py) right after its release directory was renamed into
place and before ML Metadata heard of it. The rerun must find the model
already released, release nothing new, exit 0, and the lineage command must
still resolve the release. A threshold-only change re-evaluates the cached
model and must not release it again either.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

import local_runner
from contract import faults, releases
from reporting import lineage, metadata, run_summary
from tests.conftest import PROJECT_ROOT, SMALL_RUN_FLAGS

pytestmark = pytest.mark.e2e


def _runner_command(output_dir, tfds_data_dir, mnist_dir, *flags):
    return [
        sys.executable,
        str(PROJECT_ROOT / "local_runner.py"),
        f"--output-dir={output_dir}",
        f"--tfds-data-dir={tfds_data_dir}",
        f"--mnist-dir={mnist_dir}",
        *SMALL_RUN_FLAGS,
        *flags,
    ]


@pytest.fixture(scope="module")
def killed_after_rename(tmp_path_factory, tfds_data_dir, mnist_dir):
    """A run killed between the rename of its release and the ML Metadata publish."""
    output_dir = tmp_path_factory.mktemp("killed")
    env = {**os.environ, faults.FAULT_ENV: faults.RELEASE_AFTER_RENAME}
    process = subprocess.run(
        _runner_command(output_dir, tfds_data_dir, mnist_dir),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr[-3000:]
    layout = local_runner.OutputLayout(str(output_dir))
    (released,) = releases.list_releases(layout.serving_model_dir)
    return layout, released


def test_the_kill_left_a_whole_release_that_metadata_does_not_know(killed_after_rename):
    layout, released = killed_after_rename
    manifest = releases.read_manifest(released.path)
    assert manifest["version"] == released.version
    assert manifest["model_fingerprint"] == releases.model_fingerprint(released.path)
    store = metadata.connect(layout.metadata_path)
    pushed = store.get_artifacts_by_type("PushedModel")
    assert not any(a.state == a.LIVE for a in pushed), "the push was never published"


def test_rerun_after_the_kill_releases_nothing_new(killed_after_rename, run_small_pipeline, capsys):
    layout, released = killed_after_rename
    assert run_small_pipeline(layout.output_dir) == 0
    output = capsys.readouterr().out
    assert f"already released as version {released.version}" in output
    assert releases.list_releases(layout.serving_model_dir) == [released]
    assert os.listdir(layout.serving_model_dir) == [str(released.version)], "no staging debris"
    summary = run_summary.latest_run_summary(layout.metadata_path, "mnist")
    states = {c.node_id: c.state for c in summary.components}
    assert states["Trainer"] == "cached" and states["Evaluator"] == "cached"
    assert states["Pusher"] == "executed"
    assert summary.pushed and not summary.released_now


def test_lineage_resolves_the_release_made_by_the_killed_run(killed_after_rename, capsys):
    layout, released = killed_after_rename
    argv = [f"--output-dir={layout.output_dir}", f"--model={released.path}", "--json"]
    assert lineage.main(argv) == 0
    chain = json.loads(capsys.readouterr().out)
    assert [step["stage"] for step in chain][:3] == ["release", "blessing", "model"]
    manifest = releases.read_manifest(released.path)
    assert chain[2]["artifact_id"] == manifest["lineage"]["model"]["id"]
    assert chain[0]["details"]["pushed_version"] == str(released.version)


def test_threshold_only_change_does_not_release_the_model_again(
    killed_after_rename, run_small_pipeline, capsys
):
    layout, released = killed_after_rename
    assert run_small_pipeline(layout.output_dir, "--accuracy-threshold=0.55") == 0
    output = capsys.readouterr().out
    summary = run_summary.latest_run_summary(layout.metadata_path, "mnist")
    assert summary.component("Evaluator").state == "executed", "new threshold, new evaluation"
    assert summary.blessed and not summary.released_now
    assert f"already released as version {released.version}" in output
    assert releases.list_releases(layout.serving_model_dir) == [released]
