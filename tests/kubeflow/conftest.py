"""Loads the kubeflow/ scripts as modules (kubeflow/ is not a package on purpose:
a top-level `kubeflow` package could shadow the real one)."""

import importlib.util
import os
import pathlib
import socket
import subprocess
import sys
import time
import uuid

import pytest

KUBEFLOW_DIR = pathlib.Path(__file__).resolve().parents[2] / "kubeflow"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"kubeflow_{name}", KUBEFLOW_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def v2_runner():
    return _load("kubeflow_v2_runner")


@pytest.fixture(scope="session")
def schedule():
    return _load("schedule")


@pytest.fixture(scope="session")
def compile_args():
    return [
        "--pipeline-root=gs://bucket/mnist/pipeline_root",
        "--serving-dir=gs://bucket/mnist/serving",
        "--image=registry.example/mnist-tfx:1.2",
        "--accuracy-threshold=0.975",
        "--beam-args=--runner=DataflowRunner --project=p --region=europe-west1",
    ]


@pytest.fixture(scope="session")
def compiled_file(tmp_path_factory, v2_runner, compile_args):
    path = tmp_path_factory.mktemp("kfp") / "mnist_pipeline.json"
    assert v2_runner.main([f"--output-file={path}", *compile_args]) == 0
    return path


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """moto's S3 server on a free loopback port (stands in for MinIO, KFP's default store).

    The credentials are any: moto checks none. They are set for this process
    (the launcher's own boto3) and handed to tasks by the tests with --env.
    """
    for name, value in S3_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto's S3 server did not start (see {log.name})") from None
            time.sleep(0.2)
    yield endpoint
    server.terminate()
    server.wait(timeout=10)
    log.close()


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint)


def new_bucket(endpoint: str) -> str:
    """A fresh, empty bucket; returns its name."""
    name = f"b-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


def task_env(endpoint: str) -> dict[str, str]:
    """What a cluster would add to each pod for the S3 store (kfp-kubernetes secrets)."""
    return {
        "S3_ENDPOINT": endpoint,  # tensorflow-io's tf.io.gfile on s3://
        "S3_USE_HTTPS": "0",
        "AWS_ENDPOINT_URL": endpoint,  # boto3, and Beam's S3 filesystem through it
        **S3_CREDENTIALS,
    }


S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}
