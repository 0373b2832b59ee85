"""The strict launcher's other backend and its refusals, on a small real slice.

- The compiled spec runs to one release under `--backend vertex` with an
  `s3://` pipeline root (moto's S3 server), without the log artifact.
- TFX's own task command fails on the first task (what today's open-source
  clusters see), with the log artifact (KFP >= 2.5) and without it (the
  `minio://` root).
- A spec with a resolver task fails naming it, before any task runs.
"""

import json

import pytest

from tests import expected
from tests.kubeflow.conftest import new_bucket
from tests.kubeflow.strict_launch import TFX_COMMAND, compile_spec, launch, releases, task_states

pytestmark = pytest.mark.kfp


@pytest.fixture(scope="module")
def oss_spec(tmp_path_factory, v2_runner, tfds_data_dir, s3_endpoint):
    """The spans spec of test_local_launcher.py's chain (compiled only, never launched whole)."""
    work = tmp_path_factory.mktemp("kfp_oss_spec")
    return compile_spec(
        v2_runner,
        work / "mnist.json",
        f"minio://{new_bucket(s3_endpoint)}/v2/artifacts",
        f"s3://{new_bucket(s3_endpoint)}/mnist/serving",
        tfds_data_dir,
        f"--spans-dir=s3://{new_bucket(s3_endpoint)}/spans",
        "--span-accuracy-threshold=0.5",
    )


def test_the_compiled_spec_runs_to_one_release_on_vertex(
    tmp_path, v2_runner, tfds_data_dir, s3_endpoint
):
    root = f"s3://{new_bucket(s3_endpoint)}/vertex/root"
    serving = f"s3://{new_bucket(s3_endpoint)}/mnist/serving"
    spec = compile_spec(v2_runner, tmp_path / "mnist.json", root, serving, tfds_data_dir)

    result = launch(spec, "run-v", s3_endpoint, tmp_path / "state", "--backend=vertex")

    assert result.returncode == 0, result.stderr[-3000:]
    assert task_states(result.stdout) == {name: "executed" for name in expected.COMPONENTS}
    assert "executor-logs" not in result.stdout
    ((_, manifest),) = releases(s3_endpoint, serving).items()
    assert 0.5 <= manifest["test_accuracy"] <= 1.0


def test_tfx_own_task_command_fails_on_the_first_task(tmp_path, oss_spec, s3_endpoint):
    spec = oss_spec
    job = json.loads(spec.read_text())
    for executor in job["pipelineSpec"]["deploymentSpec"]["executors"].values():
        executor["container"]["command"] = TFX_COMMAND
    plain = tmp_path / "plain_tfx.json"
    plain.write_text(json.dumps(job))

    result = launch(plain, "run-plain", s3_endpoint, tmp_path / "state")

    assert result.returncode == 1
    first_task = (
        "ImportSchemaGen" if "task ImportSchemaGen failed" in result.stderr else "SpanListing"
    )
    assert f"task {first_task} failed" in result.stderr
    assert "Could not import system.Artifact" in result.stderr  # the executor-logs output

    before_2_5 = launch(
        plain, "run-no-logs", s3_endpoint, tmp_path / "state", "--publish-logs=false"
    )

    # Without the log artifact (KFP before 2.5), task 1 still fails on the
    # default minio:// root, which no TensorFlow filesystem reads. (The next
    # failure, an input's empty instanceSchema, is in test_task_entrypoint.py.)
    assert before_2_5.returncode == 1
    assert f"task {first_task} failed" in before_2_5.stderr
    assert "File system scheme 'minio' not implemented" in before_2_5.stderr


def test_a_resolver_task_is_a_clear_error_naming_it(oss_spec, tmp_path, s3_endpoint):
    spec = oss_spec
    job = json.loads(spec.read_text())
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    executors["LatestRelease_executor"] = {"resolver": {"outputArtifactQueries": {}}}
    broken = tmp_path / "with_resolver.json"
    broken.write_text(json.dumps(job))
    result = launch(broken, "run-resolver", s3_endpoint, tmp_path / "state")
    assert result.returncode == 1
    assert "task LatestRelease: executor kind 'resolver' is not implemented" in result.stderr
    assert "Run " not in result.stdout, "nothing may run before the check"
