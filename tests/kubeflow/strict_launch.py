"""Compiling the spec and launching it on the strict launcher (kubeflow/local_launcher.py).

Shared by the KFP tier's modules; the backend's rules are the launcher's own.
"""

import json
import os
import subprocess
import sys

from tests import expected
from tests.kubeflow.conftest import KUBEFLOW_DIR, S3_CREDENTIALS, s3_client, task_env

PROJECT_ROOT = KUBEFLOW_DIR.parent
SLICE = ["--train-limit=2500", "--eval-holdout=500", "--test-limit=1000", "--epochs=3"]
TFX_COMMAND = ["python", "-m", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]


def compile_spec(v2_runner, output_file, root, serving, tfds_data_dir, *flags):
    """Compiles the pipeline for the small slice; returns the spec's path."""
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


def launch(pipeline_file, run_id, endpoint, state_dir, *flags):
    """Runs the launcher in a fresh shell (no TF_USE_LEGACY_KERAS); returns the process."""
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


def task_states(stdout: str) -> dict[str, str]:
    """{component: executed | cached | ...} from the launcher's summary lines."""
    states = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in expected.SPAN_COMPONENTS and line.startswith("  "):
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
