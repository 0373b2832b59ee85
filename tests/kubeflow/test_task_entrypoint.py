"""kubeflow/task_entrypoint.py, one backend rule at a time, against TFX's own parser.

Each input below is what the open-source KFP backend sends (see the module's
rules): TFX 1.16's `kubeflow_v2_entrypoint_utils` fails on it as it comes, and
parses what the entrypoint makes of it into the artifacts TFX wrote.
"""

import json
import subprocess
import sys

import pytest
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as tfx_utils

from tests.kubeflow.conftest import KUBEFLOW_DIR, _load, new_bucket, s3_client

EXAMPLES_TYPE = {
    "instanceSchema": (
        "title: tfx.Examples\ntype: object\nproperties:\n  span:\n    type: integer\n"
        "  version:\n    type: integer\n  split_names:\n    type: string\n"
    )
}
MODEL_TYPE = {"instanceSchema": "title: tfx.Model\ntype: object\n"}
INPUTS_SPEC = {"artifacts": {"examples": {"artifactType": EXAMPLES_TYPE}}}


@pytest.fixture(scope="module")
def entrypoint():
    return _load("task_entrypoint")


def oss_examples(**metadata) -> dict:
    """An Examples input as the OSS driver builds it from ML Metadata."""
    return {
        "name": "42",
        "type": {"instanceSchema": ""},
        "uri": "minio://mlpipeline/v2/artifacts/mnist/run/MnistExampleGen/1/examples",
        "metadata": {
            "span": 3.0,
            "split_names": '["train", "eval"]',
            "tfx_version": "1.16.0",
            "display_name": "examples",
            "store_session_info": '{"Provider": "minio"}',
            **metadata,
        },
    }


def executor_input(inputs: dict, outputs: dict | None = None) -> dict:
    return {
        "inputs": {"artifacts": {key: {"artifacts": [a]} for key, a in inputs.items()}},
        "outputs": {
            "artifacts": {key: {"artifacts": [a]} for key, a in (outputs or {}).items()},
            "outputFile": "/minio/mlpipeline/v2/artifacts/t/output_metadata.json",
        },
    }


def parse_inputs(adapted: dict) -> dict:
    return tfx_utils.parse_raw_artifact_dict(_message(adapted).inputs.artifacts)


def parse_outputs(adapted: dict) -> dict:
    return tfx_utils.parse_raw_artifact_dict(_message(adapted).outputs.artifacts)


def _message(document: dict):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    return json_format.ParseDict(document, pipeline_spec_pb2.ExecutorInput())


def test_tfx_alone_fails_on_an_input_with_an_empty_instance_schema(entrypoint):
    raw = executor_input({"examples": oss_examples()})
    with pytest.raises(AttributeError):
        parse_inputs(raw)


def test_empty_instance_schema_gets_the_declared_type(entrypoint):
    adapted, _, _ = entrypoint.adapt_executor_input(
        executor_input({"examples": oss_examples()}), INPUTS_SPEC
    )
    (examples,) = parse_inputs(adapted)["examples"]
    assert type(examples).__name__ == "Examples"
    assert examples.span == 3 and isinstance(examples.span, int)  # a double from ML Metadata
    assert examples.split_names == '["train", "eval"]'


def test_an_input_without_type_or_declaration_is_a_clear_error(entrypoint):
    with pytest.raises(entrypoint.EntrypointError, match="'examples' arrived without a type"):
        entrypoint.adapt_executor_input(executor_input({"examples": oss_examples()}), None)


def test_tfx_alone_fails_on_the_executor_logs_output(entrypoint):
    logs = {"name": "executor-logs", "type": {"schemaTitle": "system.Artifact"}, "uri": "s3://b/l"}
    with pytest.raises(ImportError, match="system.Artifact"):
        parse_outputs(executor_input({}, {"executor-logs": logs}))


def test_executor_logs_and_system_outputs_are_left_to_the_launcher(entrypoint):
    outputs = {
        "executor-logs": {"name": "executor-logs", "type": {"schemaTitle": "system.Artifact"}},
        "metrics": {"name": "metrics", "type": {"schemaTitle": "system.Metrics"}},
        "model": {"name": "model", "type": MODEL_TYPE, "uri": "s3://b/run/model"},
    }
    adapted, _, left = entrypoint.adapt_executor_input(executor_input({}, outputs), None)
    assert left == ["executor-logs", "metrics"]
    assert list(parse_outputs(adapted)) == ["model"]


def test_round_tripped_lists_and_dicts_are_unwrapped_and_launcher_keys_dropped(entrypoint):
    examples = oss_examples(
        counts={"struct": {"train": 2000.0}}, splits={"list": ["a", "b"]}, flag=1.0
    )
    adapted, _, _ = entrypoint.adapt_executor_input(
        executor_input({"examples": examples}), INPUTS_SPEC
    )
    metadata = adapted["inputs"]["artifacts"]["examples"]["artifacts"][0]["metadata"]
    assert "display_name" not in metadata and "store_session_info" not in metadata
    assert metadata["counts"] == {"train": 2000.0}
    assert metadata["splits"] == ["a", "b"]
    (parsed,) = parse_inputs(adapted)["examples"]
    assert parsed.get_json_value_custom_property("splits") == ["a", "b"]
    assert parsed.get_int_custom_property("flag") == 1  # a bool that became 0/1, then a double


def test_vertex_inputs_are_left_as_they_are(entrypoint):
    vertex = {
        "name": "projects/p/locations/l/metadataStores/default/artifacts/7",
        "type": EXAMPLES_TYPE,
        "uri": "gs://bucket/root/examples",
        "metadata": {"span": 3.0, "counts": {"list": [1.0]}},
    }
    raw = executor_input({"examples": vertex})
    adapted, remote_of, left = entrypoint.adapt_executor_input(raw, INPUTS_SPEC)
    assert adapted == raw and remote_of == {} and left == []


def test_minio_uris_become_the_launchers_local_copy_and_back(entrypoint):
    outputs = {
        "model": {"name": "model", "type": MODEL_TYPE, "uri": "minio://mlpipeline/r/T/1/model"}
    }
    raw = executor_input({"examples": oss_examples()}, outputs)
    adapted, remote_of, _ = entrypoint.adapt_executor_input(raw, INPUTS_SPEC, "/pod")
    examples = adapted["inputs"]["artifacts"]["examples"]["artifacts"][0]
    model = adapted["outputs"]["artifacts"]["model"]["artifacts"][0]
    assert (
        examples["uri"] == "/pod/minio/mlpipeline/v2/artifacts/mnist/run/MnistExampleGen/1/examples"
    )
    assert model["uri"] == "/pod/minio/mlpipeline/r/T/1/model"
    written = {
        "artifacts": {
            "model": {
                "artifacts": [
                    {"uri": model["uri"], "metadata": {"current_model": model["uri"] + "/x"}}
                ]
            }
        }
    }
    restored = entrypoint.restore_remote_uris(written, remote_of)
    (artifact,) = restored["artifacts"]["model"]["artifacts"]
    assert artifact["uri"] == "minio://mlpipeline/r/T/1/model"
    assert artifact["metadata"]["current_model"] == "minio://mlpipeline/r/T/1/model/x"


def test_gs_and_s3_uris_are_not_relocated(entrypoint):
    assert entrypoint.local_path("gs://b/k") is None
    assert entrypoint.local_path("s3://b/k") is None
    assert entrypoint.local_path("minio://b/k", "/") == "/minio/b/k"


def test_directory_markers_are_the_zero_byte_slash_keys_under_the_prefix(entrypoint):
    listing = [
        ("root/model/", 0),
        ("root/model/saved_model.pb", 10),
        ("root/model/variables/", 0),
        ("root/model/variables/variables.index", 5),
        ("root/model/odd/", 3),  # not empty: not a marker
        ("root/modelling/", 0),  # another artifact
    ]
    assert entrypoint.directory_markers(listing, "root/model") == [
        "root/model/",
        "root/model/variables/",
    ]


def test_markers_break_the_kfp_download_and_their_removal_mends_it(
    entrypoint, s3_endpoint, tmp_path, monkeypatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)  # as in a task's pod
    launcher = _load("local_launcher")
    bucket = new_bucket(s3_endpoint)
    client = s3_client(s3_endpoint)
    for key, body in (
        ("run/Trainer/1/model/", b""),  # what TF's GCS filesystem writes for a directory
        ("run/Trainer/1/model/Format-Serving/", b""),
        ("run/Trainer/1/model/Format-Serving/saved_model.pb", b"pb"),
        ("run/Trainer/1/model/Format-Serving/variables/", b""),
        ("run/Trainer/1/model/Format-Serving/variables/variables.index", b"ix"),
    ):
        client.put_object(Bucket=bucket, Key=key, Body=body)
    store = launcher.ObjectStore(s3_endpoint)
    uri = f"s3://{bucket}/run/Trainer/1/model"
    with pytest.raises(launcher.LaunchError, match="13476"):
        store.download_blob(uri, str(tmp_path / "before"))

    removed = entrypoint.remove_directory_markers(uri)

    assert len(removed) == 3
    assert store.download_blob(uri, str(tmp_path / "after")) == 2
    saved = tmp_path / "after" / "Format-Serving"
    assert (saved / "saved_model.pb").read_bytes() == b"pb"
    assert (saved / "variables" / "variables.index").read_bytes() == b"ix"


def test_a_failing_task_exits_1_with_its_traceback():
    process = subprocess.run(
        [sys.executable, str(KUBEFLOW_DIR / "task_entrypoint.py"), "--executor_class_path", "x.Y"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert process.returncode == 1
    assert "--json_serialized_invocation_args is missing" in process.stderr


def test_an_adapted_input_round_trips_through_json(entrypoint):
    adapted, _, _ = entrypoint.adapt_executor_input(
        executor_input({"examples": oss_examples()}), INPUTS_SPEC
    )
    assert json.loads(json.dumps(adapted)) == adapted
