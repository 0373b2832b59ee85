"""Loads the kubeflow/ scripts as modules (kubeflow/ is not a package on purpose:
a top-level `kubeflow` package could shadow the real one)."""

import importlib.util
import pathlib

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
