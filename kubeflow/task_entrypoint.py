"""The pipeline image's task command: TFX's Kubeflow v2 executor, fed what KFP sends.

    python /pipeline/kubeflow/task_entrypoint.py --executor_class_path MODULE.CLASS \\
        --json_serialized_invocation_args '{{$}}' \\
        [--json_serialized_inputs_spec_args JSON] [BEAM ARGS]

`kubeflow_v2_runner.py` writes this command in place of TFX's
`python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`,
with the same arguments. It changes the ExecutorInput the backend sent so that
TFX 1.16's executor can read it, hands over to TFX's own `kubeflow_v2_run_executor`
(TFX is not forked or patched), then finishes what the backend needs. Each
rule answers a piece of the open-source backend (kubeflow/pipelines,
`backend/src/v2`, 2.x):

1. Outputs that are not TFX's are left to the launcher: `executor-logs`
   (type `system.Artifact`) is added to every task by `driver/driver.go`
   `provisionOutputs` when `publish_logs` is "true", the default since KFP 2.5;
   the launcher writes the task's log there itself (`component/launcher_v2.go`
   `getLogWriter`). TFX would fail on it: "Could not import system.Artifact".
2. Input types are recovered from `--json_serialized_inputs_spec_args` (the
   component's declared inputs) when the artifact carries none: the driver reads
   inputs back from ML Metadata with `Schema: ""` (`metadata/client.go`
   `GetOutputArtifactsByExecutionId`), which `ToRuntimeArtifact` turns into
   `type: {instanceSchema: ""}`, and TFX's `yaml.safe_load("")` gives None.
3. Metadata that went through ML Metadata is unwrapped: `metadata/converter.go`
   `StructValueToMLMDValue` stores a list as `{"list": [...]}` and a dict as
   `{"struct": {...}}` (and a bool as 0/1, a number always as a double), and
   `toRuntimeArtifact` hands them back so. Lists and dicts are restored; the keys
   the launcher adds (`display_name`, `store_session_info`: `metadata/client.go`
   `RecordArtifact`) are dropped. Numbers stay doubles: TFX's own executor output
   writes ints as doubles too (`_get_json_value_mapping`) and converts them back
   for INT properties (`span`, `version`); custom properties are read with TFX's
   typed getters. Only artifacts carrying `store_session_info` (every artifact
   the launcher records, none that Vertex sends) are touched.
4. `minio://` URIs, which no TensorFlow or Beam filesystem reads, are replaced by
   the launcher's local copy (`component/launcher_v2.go` `LocalPathForURI`:
   `/minio/<bucket>/<key>`; inputs are downloaded there before the command by
   `downloadArtifacts`, outputs uploaded from there after it by
   `uploadOutputArtifacts`), and mapped back in the ExecutorOutput, whose URIs the
   launcher records (`mergeRuntimeArtifacts`). `gs://` and `s3://` URIs are left
   as they are: TFX reads and writes them through `tf.io.gfile` and Beam's
   FileSystems (`s3://` through tensorflow-io, imported here when the task names
   an `s3://` path: TF 2.16 has no S3 filesystem of its own).
5. Zero-byte directory markers (objects named `.../`, which TF's GCS filesystem
   writes) are deleted under every output URI once the executor is done: the
   launcher's download (`objectstore/object_store.go` `DownloadBlob`) turns such
   a marker into a file and then cannot create the directory of the same name
   (kubeflow/pipelines#13476).
6. Once the ExecutorOutput is written the process ends with `os._exit`: TFX
   1.15-1.17 tasks can abort at interpreter exit with "pure virtual method called"
   (seen here with tensorflow-io's S3 filesystem; sky-uk/kfp-operator PR #1286).

Where Vertex AI sends typed inputs without ML Metadata keys and no log
artifact, rules 1-3 find nothing to change; Vertex roots are `gs://` (rule 4
does not apply). `KFP_EMULATOR_MOUNT_ROOT` relocates rule 4's `/minio/` mount;
only kubeflow/local_launcher.py sets it, since it cannot write to `/`.
"""

import json
import os
import sys
import traceback
from typing import Any

from contract import tfx_internals

LOGS_OUTPUT_KEY = "executor-logs"
LAUNCHER_METADATA_KEYS = ("display_name", "store_session_info")
ROUND_TRIP_MARKER = "store_session_info"
LOCAL_ONLY_SCHEMES = {"minio://": "/minio/"}
MOUNT_ROOT_ENV = "KFP_EMULATOR_MOUNT_ROOT"
_INVOCATION_FLAG = "--json_serialized_invocation_args"
_INPUTS_SPEC_FLAG = "--json_serialized_inputs_spec_args"


class EntrypointError(RuntimeError):
    """The ExecutorInput cannot be made into what TFX expects; the message says why."""


def _title(artifact_type: dict[str, Any] | None) -> str:
    """The type's title ('' if none): schemaTitle, or instanceSchema's `title:`."""
    import yaml

    if not artifact_type:
        return ""
    if artifact_type.get("schemaTitle"):
        return artifact_type["schemaTitle"]
    schema = yaml.safe_load(artifact_type.get("instanceSchema") or "") or {}
    return schema.get("title", "") if isinstance(schema, dict) else ""


def is_launcher_output(key: str, artifact_type: dict[str, Any] | None) -> bool:
    """Rule 1: an output the KFP launcher manages (`executor-logs`, `system.*` types)."""
    return key == LOGS_OUTPUT_KEY or _title(artifact_type).startswith("system.")


def _unwrap(value: Any) -> Any:
    """Rule 3: `{"list": [...]}` -> [...] and `{"struct": {...}}` -> {...}."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        if key == "list" and isinstance(inner, list):
            return inner
        if key == "struct" and isinstance(inner, dict):
            return inner
    return value


def restore_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Rule 3: the metadata TFX wrote, from what ML Metadata hands back."""
    if ROUND_TRIP_MARKER not in metadata:
        return dict(metadata)
    return {
        key: _unwrap(value) for key, value in metadata.items() if key not in LAUNCHER_METADATA_KEYS
    }


def local_path(uri: str, mount_root: str = "/") -> str | None:
    """Rule 4: the launcher's local copy of a URI no filesystem here reads, else None."""
    for scheme, mount in LOCAL_ONLY_SCHEMES.items():
        if uri.startswith(scheme):
            return os.path.join(mount_root, mount.strip("/"), uri[len(scheme) :])
    return None


def adapt_executor_input(
    executor_input: dict[str, Any],
    inputs_spec: dict[str, Any] | None,
    mount_root: str = "/",
) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """Rules 1-4 on an ExecutorInput (JSON form).

    Returns:
      (the ExecutorInput TFX gets, {local path: original URI} for rule 4,
      the output keys left to the launcher).
    """
    adapted = json.loads(json.dumps(executor_input))
    declared = (inputs_spec or {}).get("artifacts", {})
    remote_of: dict[str, str] = {}

    def relocate(artifact: dict[str, Any]) -> None:
        local = local_path(artifact.get("uri", ""), mount_root)
        if local is not None:
            remote_of[local] = artifact["uri"]
            artifact["uri"] = local

    for key, group in adapted.get("inputs", {}).get("artifacts", {}).items():
        for artifact in group.get("artifacts", []):
            title = _title(artifact.get("type"))
            if not title or title.startswith("system."):
                if key not in declared:
                    raise EntrypointError(
                        f"input artifact {key!r} arrived without a type and "
                        f"{_INPUTS_SPEC_FLAG} declares none for it; recompile the pipeline "
                        "with kubeflow/kubeflow_v2_runner.py (TFX writes the inputs spec "
                        "with use_pipeline_spec_2_1=True)"
                    )
                artifact["type"] = declared[key]["artifactType"]
            artifact["metadata"] = restore_metadata(artifact.get("metadata", {}))
            relocate(artifact)
    outputs = adapted.get("outputs", {}).get("artifacts", {})
    left_to_launcher = sorted(
        key
        for key, group in outputs.items()
        if any(is_launcher_output(key, a.get("type")) for a in group.get("artifacts", []))
    )
    for key in left_to_launcher:
        del outputs[key]
    for group in outputs.values():
        for artifact in group.get("artifacts", []):
            relocate(artifact)
    return adapted, remote_of, left_to_launcher


def restore_remote_uris(
    executor_output: dict[str, Any], remote_of: dict[str, str]
) -> dict[str, Any]:
    """Rule 4, on the way back: the ExecutorOutput names the backend's URIs."""

    def remote(text: str) -> str:
        for local, uri in remote_of.items():
            if text == local or text.startswith(local.rstrip("/") + "/"):
                return uri + text[len(local) :]
        return text

    restored = json.loads(json.dumps(executor_output))
    for group in restored.get("artifacts", {}).values():
        for artifact in group.get("artifacts", []):
            artifact["uri"] = remote(artifact.get("uri", ""))
            metadata = artifact.get("metadata", {})
            for key, value in metadata.items():  # e.g. the Evaluator's `current_model`
                if isinstance(value, str):
                    metadata[key] = remote(value)
    return restored


def directory_markers(objects: list[tuple[str, int]], prefix: str) -> list[str]:
    """Rule 5: keys of zero-byte `.../` objects at or under `prefix` (a key, no scheme)."""
    prefix = prefix.strip("/")
    return sorted(
        key
        for key, size in objects
        if key.endswith("/") and size == 0 and (key.rstrip("/") + "/").startswith(prefix + "/")
    )


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key.strip("/")


def remove_directory_markers(uri: str) -> list[str]:
    """Rule 5 on a `gs://` or `s3://` output; returns the keys deleted."""
    if not uri.startswith(("gs://", "s3://")):
        return []
    bucket_name, prefix = _split(uri)
    if uri.startswith("gs://"):
        from google.cloud import storage

        bucket = storage.Client().bucket(bucket_name)
        blobs = {blob.name: blob for blob in bucket.list_blobs(prefix=prefix)}
        doomed = directory_markers([(name, blob.size or 0) for name, blob in blobs.items()], prefix)
        for name in doomed:
            blobs[name].delete()
        return doomed
    if uri.startswith("s3://"):
        import boto3

        client = boto3.client("s3")
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket_name, Prefix=prefix)
        listing = [
            (item["Key"], item["Size"]) for page in pages for item in page.get("Contents", [])
        ]
        doomed = directory_markers(listing, prefix)
        for key in doomed:
            client.delete_object(Bucket=bucket_name, Key=key)
        return doomed
    return []


def _flag_value(argv: list[str], flag: str) -> tuple[int, str] | None:
    for index, arg in enumerate(argv):
        if arg == flag and index + 1 < len(argv):
            return index + 1, argv[index + 1]
        if arg.startswith(flag + "="):
            return index, arg.split("=", 1)[1]
    return None


def run(argv: list[str]) -> None:
    """Adapts the ExecutorInput, runs TFX's executor, finishes the outputs (rules 1-5)."""
    invocation = _flag_value(argv, _INVOCATION_FLAG)
    if invocation is None:
        raise EntrypointError(
            f"{_INVOCATION_FLAG} is missing (the compiled command passes {{{{$}}}})"
        )
    spec_flag = _flag_value(argv, _INPUTS_SPEC_FLAG)
    inputs_spec = json.loads(spec_flag[1]) if spec_flag else None
    mount_root = os.environ.get(MOUNT_ROOT_ENV, "/")
    adapted, remote_of, left = adapt_executor_input(
        json.loads(invocation[1]), inputs_spec, mount_root
    )
    position, _ = invocation
    argv = list(argv)
    if argv[position].startswith(_INVOCATION_FLAG + "="):
        argv[position] = f"{_INVOCATION_FLAG}={json.dumps(adapted)}"
    else:
        argv[position] = json.dumps(adapted)
    if left:
        print(f"task_entrypoint: outputs left to the KFP launcher: {', '.join(left)}", flush=True)
    if "s3://" in " ".join(argv):
        import tensorflow_io  # noqa: F401  (registers s3:// with tf.io.gfile)

    # TFX's own flag parser and main, as `python -m ...kubeflow_v2_run_executor` runs them.
    tfx_internals.run_kubeflow_v2_executor(argv, then=lambda: finish_outputs(adapted, remote_of))


def finish_outputs(adapted: dict[str, Any], remote_of: dict[str, str]) -> None:
    """Rules 4 and 5 once TFX has written the ExecutorOutput."""
    import tensorflow as tf

    output_file = adapted["outputs"]["outputFile"]
    if remote_of and tf.io.gfile.exists(output_file):
        with tf.io.gfile.GFile(output_file) as source:
            restored = restore_remote_uris(json.load(source), remote_of)
        with tf.io.gfile.GFile(output_file, "w") as out:
            json.dump(restored, out)
    for group in adapted["outputs"].get("artifacts", {}).values():
        for artifact in group.get("artifacts", []):
            removed = remove_directory_markers(artifact["uri"])
            if removed:
                print(f"task_entrypoint: removed directory markers {removed}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Runs the task and ends the process (rule 6): exit 0 once the outputs are written."""
    code = 0
    try:
        run(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as done:  # absl's app.run ends with sys.exit(main's result)
        code = 0 if done.code in (None, 0) else 1
    except BaseException:  # noqa: BLE001 (any failure: its traceback, then exit 1)
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
