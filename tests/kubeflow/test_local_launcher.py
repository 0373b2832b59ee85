"""The compiled spec on the strict launcher: a stock KFP backend's rules, artifacts on S3.

kubeflow/local_launcher.py runs each task's own container command as the
open-source backend (`--backend oss`) or Vertex AI (`--backend vertex`) would,
with the image's environment and the artifacts on moto's S3 server: the OSS
default pipeline root `minio://...` (the launcher copies artifacts in and
out), the serving directory on `s3://` (the components write it through
tf.io.gfile and tensorflow-io). On a small real slice of MNIST:
- TFX's own task command fails on the first task (what today's clusters see),
  with the log artifact (KFP >= 2.5) and without it (the `minio://` root);
- the compiled spec, whose command is kubeflow/task_entrypoint.py, runs to one
  release under `--backend oss`; a second launch is cached and releases
  nothing new; the release's manifest records the serving check's figures;
- the same under `--backend vertex` with an `s3://` root;
- a spec with a resolver task fails naming it.
The launcher runs in a shell without TF_USE_LEGACY_KERAS (the docs'
command in a fresh shell): the project's `contract` package sets it in each task.
"""

import json
import os
import subprocess
import sys

import pytest

from tests import expected
from tests.kubeflow.conftest import KUBEFLOW_DIR, S3_CREDENTIALS, new_bucket, s3_client, task_env

pytestmark = pytest.mark.kfp

PROJECT_ROOT = KUBEFLOW_DIR.parent
SLICE = ["--train-limit=2500", "--eval-holdout=500", "--test-limit=1000", "--epochs=3"]
TFX_COMMAND = ["python", "-m", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]


def _compile(v2_runner, output_file, root, serving, tfds_data_dir, *flags):
    argv = [
        f"--output-file={output_file}",
        f"--pipeline-root={root}",
        f"--serving-dir={serving}",
        f"--image-project-dir={PROJECT_ROOT}",
        f"--tfds-data-dir={tfds_data_dir}",
        "--accuracy-threshold=0.5",
        *SLICE,
        *flags,
    ]
    assert v2_runner.main(argv) == 0
    return output_file


def _launch(pipeline_file, run_id, endpoint, state_dir, *flags):
    command = [
        sys.executable,
        str(KUBEFLOW_DIR / "local_launcher.py"),
        f"--pipeline-file={pipeline_file}",
        f"--run-id={run_id}",
        f"--s3-endpoint={endpoint}",
        f"--state-dir={state_dir}",
        *[f"--env={name}={value}" for name, value in task_env(endpoint).items()],
        *flags,
    ]
    fresh_shell = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/"),
        **S3_CREDENTIALS,
    }
    return subprocess.run(command, capture_output=True, text=True, env=fresh_shell, check=False)


def _states(stdout: str) -> dict[str, str]:
    states = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in expected.COMPONENTS and line.startswith("  "):
            states[parts[0]] = parts[1]
    return states


def releases(endpoint: str, serving: str) -> dict[int, dict]:
    """{version: release.json} of an s3:// serving dir, read with boto3 (no TF here)."""
    bucket, _, prefix = serving[len("s3://") :].partition("/")
    client = s3_client(endpoint)
    listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", [])
    found = {}
    for item in listing:
        parts = item["Key"][len(prefix) + 1 :].split("/")
        if parts[1:] == ["assets.extra", "release.json"]:
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            found[int(parts[0])] = json.loads(body)
    return found


def _blessing_facts(stdout: str, task: str) -> dict[str, str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [task])
    blessing = next(line for line in lines[start + 1 :] if line.strip().startswith("blessing:"))
    facts = blessing.split("[", 1)[1].rstrip("]").split(", ")
    return dict(fact.split("=", 1) for fact in facts)


@pytest.fixture(scope="module")
def store(s3_endpoint):
    return {"root": f"minio://{new_bucket(s3_endpoint)}/v2/artifacts"}


@pytest.fixture(scope="module")
def oss_launch(tmp_path_factory, v2_runner, tfds_data_dir, s3_endpoint, store):
    work = tmp_path_factory.mktemp("kfp_oss")
    serving = f"s3://{new_bucket(s3_endpoint)}/mnist/serving"
    spec = _compile(v2_runner, work / "mnist.json", store["root"], serving, tfds_data_dir)
    first = _launch(spec, "run-1", s3_endpoint, work / "state")
    return work, spec, serving, first


def test_tfx_own_task_command_fails_on_the_first_task(tmp_path, oss_launch, s3_endpoint):
    _, spec, _, _ = oss_launch
    job = json.loads(spec.read_text())
    for executor in job["pipelineSpec"]["deploymentSpec"]["executors"].values():
        executor["container"]["command"] = TFX_COMMAND
    plain = tmp_path / "plain_tfx.json"
    plain.write_text(json.dumps(job))

    result = _launch(plain, "run-plain", s3_endpoint, tmp_path / "state")

    assert result.returncode == 1
    assert "task ImportSchemaGen failed" in result.stderr
    assert "Could not import system.Artifact" in result.stderr  # the executor-logs output

    before_2_5 = _launch(
        plain, "run-no-logs", s3_endpoint, tmp_path / "state", "--publish-logs=false"
    )

    # Without the log artifact (KFP before 2.5), task 1 still fails on the
    # default minio:// root, which no TensorFlow filesystem reads. (The next
    # failure, an input's empty instanceSchema, is in test_task_entrypoint.py.)
    assert before_2_5.returncode == 1
    assert "task ImportSchemaGen failed" in before_2_5.stderr
    assert "File system scheme 'minio' not implemented" in before_2_5.stderr


def test_the_compiled_spec_runs_to_one_release_on_the_oss_backend(oss_launch, s3_endpoint, store):
    _, _, serving, first = oss_launch
    assert first.returncode == 0, first.stderr[-3000:]
    assert _states(first.stdout) == {name: "executed" for name in expected.COMPONENTS}
    bucket = store["root"].split("/")[2]
    client = s3_client(s3_endpoint)
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
    trainer_log = next(key for key in keys if "/Trainer/" in key and key.endswith("executor-logs"))
    log = client.get_object(Bucket=bucket, Key=trainer_log)["Body"].read().decode()
    assert "outputs left to the KFP launcher: executor-logs" in log  # the launcher writes it
    assert "Starting executor" in log
    ((version, manifest),) = releases(s3_endpoint, serving).items()
    assert manifest["version"] == version
    assert 0.5 <= manifest["test_accuracy"] <= 1.0
    assert manifest["data"]["split_counts"]["train"] == 2000
    assert "pushed=1" in first.stdout


def test_the_release_records_the_serving_checks_figures(oss_launch, s3_endpoint):
    _, _, serving, first = oss_launch
    assert first.returncode == 0, first.stderr[-3000:]
    (manifest,) = releases(s3_endpoint, serving).values()
    check = _blessing_facts(first.stdout, "ServingCheck")
    recorded = manifest["serving_check"]
    assert recorded["canary_accuracy"] == pytest.approx(float(check["canary_accuracy"]), abs=1e-4)
    assert recorded["canary_accuracy"] > 0.3
    latencies = [value for name, value in recorded.items() if name.startswith("latency_")]
    assert len(latencies) == 4 and all(value > 0 for value in latencies)


def test_a_second_oss_launch_is_cached_and_releases_nothing_new(oss_launch, s3_endpoint):
    work, spec, serving, first = oss_launch
    assert first.returncode == 0
    second = _launch(spec, "run-2", s3_endpoint, work / "state")
    assert second.returncode == 0, second.stderr[-3000:]
    states = _states(second.stdout)
    assert states["Trainer"] == "cached" and states["MnistExampleGen"] == "cached"
    assert states["LatestRelease"] == "executed", "never cached: it reads the serving dir"
    assert "already_released=1" in second.stdout
    assert len(releases(s3_endpoint, serving)) == 1


def test_the_compiled_spec_runs_to_one_release_on_vertex(
    tmp_path, v2_runner, tfds_data_dir, s3_endpoint
):
    root = f"s3://{new_bucket(s3_endpoint)}/vertex/root"
    serving = f"s3://{new_bucket(s3_endpoint)}/mnist/serving"
    spec = _compile(v2_runner, tmp_path / "mnist.json", root, serving, tfds_data_dir)

    result = _launch(spec, "run-v", s3_endpoint, tmp_path / "state", "--backend=vertex")

    assert result.returncode == 0, result.stderr[-3000:]
    assert _states(result.stdout) == {name: "executed" for name in expected.COMPONENTS}
    assert "executor-logs" not in result.stdout
    ((_, manifest),) = releases(s3_endpoint, serving).items()
    assert 0.5 <= manifest["test_accuracy"] <= 1.0


def test_a_resolver_task_is_a_clear_error_naming_it(oss_launch, tmp_path, s3_endpoint):
    _, spec, _, _ = oss_launch
    job = json.loads(spec.read_text())
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    executors["LatestRelease_executor"] = {"resolver": {"outputArtifactQueries": {}}}
    broken = tmp_path / "with_resolver.json"
    broken.write_text(json.dumps(job))
    result = _launch(broken, "run-resolver", s3_endpoint, tmp_path / "state")
    assert result.returncode == 1
    assert "task LatestRelease: executor kind 'resolver' is not implemented" in result.stderr
    assert "Run " not in result.stdout, "nothing may run before the check"
