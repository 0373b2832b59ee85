"""The compiled Kubeflow spec, executed here task by task through the real TFX entrypoint.

kubeflow/local_launcher.py builds each task's ExecutorInput from the compiled
file alone and runs the task's own container command with this machine's
Python. On a small real slice of MNIST: every task runs, a blessed model is
released with its manifest; a second launch (new run id) takes the upstream
tasks from the cache and releases nothing new; a launch of a spec compiled
with an unreachable threshold releases nothing and says why; a spec with a
resolver task fails naming it.
"""

import json
import subprocess
import sys

import pytest

from components import release
from tests import expected
from tests.kubeflow.conftest import KUBEFLOW_DIR

PROJECT_ROOT = KUBEFLOW_DIR.parent
SLICE = ["--train-limit=2500", "--eval-holdout=500", "--test-limit=1000", "--epochs=3"]


def _compile(v2_runner, root, output_file, tfds_data_dir, *flags):
    argv = [
        f"--output-file={output_file}",
        f"--pipeline-root={root / 'pipeline_root'}",
        f"--serving-dir={root / 'serving'}",
        f"--image-project-dir={PROJECT_ROOT}",
        f"--tfds-data-dir={tfds_data_dir}",
        *SLICE,
        *flags,
    ]
    assert v2_runner.main(argv) == 0
    return output_file


def _launch(pipeline_file, run_id):
    command = [
        sys.executable,
        str(KUBEFLOW_DIR / "local_launcher.py"),
        f"--pipeline-file={pipeline_file}",
        f"--run-id={run_id}",
    ]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def _states(stdout: str) -> dict[str, str]:
    states = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in expected.COMPONENTS and line.startswith("  "):
            states[parts[0]] = parts[1]
    return states


@pytest.fixture(scope="module")
def launched(tmp_path_factory, v2_runner, tfds_data_dir):
    root = tmp_path_factory.mktemp("kfp_local")
    pipeline_file = _compile(
        v2_runner, root, root / "mnist.json", tfds_data_dir, "--accuracy-threshold=0.5"
    )
    first = _launch(pipeline_file, "run-1")
    return root, pipeline_file, first


def test_every_task_runs_and_a_model_is_released_with_its_manifest(launched):
    root, _, first = launched
    assert first.returncode == 0, first.stderr[-3000:]
    assert _states(first.stdout) == {name: "executed" for name in expected.COMPONENTS}
    (released,) = release.list_releases(str(root / "serving"))
    manifest = release.read_manifest(released.path)
    assert manifest["version"] == released.version
    assert manifest["model_fingerprint"] == release.model_fingerprint(released.path)
    assert 0.5 <= manifest["test_accuracy"] <= 1.0
    assert manifest["thresholds"] == ["SparseCategoricalAccuracy >= 0.5"]
    assert manifest["baseline"] is None
    assert manifest["data"]["split_counts"]["train"] == 2000
    assert "pushed=1" in first.stdout


def test_second_launch_releases_nothing_new(launched):
    root, pipeline_file, first = launched
    assert first.returncode == 0
    second = _launch(pipeline_file, "run-2")
    assert second.returncode == 0, second.stderr[-3000:]
    states = _states(second.stdout)
    assert states["Trainer"] == "cached" and states["MnistExampleGen"] == "cached"
    assert states["LatestRelease"] == "executed", "never cached: it reads the serving dir"
    assert "already_released=1" in second.stdout
    assert len(release.list_releases(str(root / "serving"))) == 1


def test_unreachable_threshold_releases_nothing_and_says_why(launched, v2_runner, tfds_data_dir):
    root, _, first = launched
    assert first.returncode == 0
    strict = _compile(
        v2_runner, root, root / "strict.json", tfds_data_dir, "--accuracy-threshold=0.999"
    )
    before = release.list_releases(str(root / "serving"))
    result = _launch(strict, "run-strict")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "blessed=0" in result.stdout
    assert "reason=not blessed: SavedModel: sparse_categorical_accuracy value" in result.stdout
    assert "violates threshold >= 0.999" in result.stdout
    assert release.list_releases(str(root / "serving")) == before


def test_a_resolver_task_is_a_clear_error_naming_it(launched, tmp_path):
    _, pipeline_file, _ = launched
    job = json.loads(pipeline_file.read_text())
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    executors["LatestRelease_executor"] = {"resolver": {"outputArtifactQueries": {}}}
    broken = tmp_path / "with_resolver.json"
    broken.write_text(json.dumps(job))
    result = _launch(broken, "run-resolver")
    assert result.returncode == 1
    assert "task LatestRelease: executor kind 'resolver' is not implemented" in result.stderr
    assert "Run " not in result.stdout, "nothing may run before the check"
