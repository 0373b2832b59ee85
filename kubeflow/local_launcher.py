"""Runs a compiled KFP v2 pipeline spec on this machine, task by task, as a KFP backend would.

    python kubeflow/local_launcher.py --pipeline-file output/kfp/mnist.json \\
        --s3-endpoint http://127.0.0.1:9000 [--backend oss|vertex] [--publish-logs true|false] \\
        [--env KEY=VALUE ...] [--run-id ID] [--no-cache] [--state-dir output/kfp_launcher]

No cluster can be had here. This launcher is a stand-in that must be no kinder
than the backend it stands for, so every rule below is taken from the
open-source backend's source (kubeflow/pipelines, `backend/src/v2`, 2.x up to
2.17) or from Vertex AI's documented behaviour, and each is tested to reject
what the real one rejects. It imports nothing of this project.

`--backend oss` (the default), rule by rule:
- Pipeline root: `gs://`, `s3://` or `minio://` only (`objectstore/config.go`
  `ParseBucketPathToConfig`: "unsupported Cloud bucket"; a local path is refused).
  `minio://` and `s3://` buckets are served by the S3 endpoint `--s3-endpoint`
  (MinIO, KFP's default store, speaks S3); `gs://` cannot be served here.
- Outputs: `<root>/<task>/<uuid>/<key>` named by their key (`driver/driver.go`
  `provisionOutputs`, `metadata/client.go` `GenerateOutputURI`); the output file
  is the local `output_metadata.json` of the task root; with `--publish-logs
  true` (the default since KFP 2.5, PR #11809) an extra output `executor-logs`
  of type `system.Artifact`, which receives the task's log
  (`component/launcher_v2.go` `getLogWriter`).
- Inputs: what ML Metadata hands back (`metadata/client.go`
  `GetOutputArtifactsByExecutionId` + `ToRuntimeArtifact`): name = the ML
  Metadata id, type `{instanceSchema: ""}`, metadata after
  `converter.go` `StructValueToMLMDValue` / `toRuntimeArtifact` (numbers as
  doubles, bools as 0/1, lists as `{"list": ...}`, dicts as `{"struct": ...}`, a
  null refused when recorded) plus `display_name` and `store_session_info`
  (`RecordArtifact`).
- Files: every input is downloaded to its local path before the command
  (`launcher_v2.go` `downloadArtifacts`, `LocalPathForURI`: `/minio/...`,
  `/s3/...`, `/gcs/...`; `objectstore/object_store.go` `DownloadBlob`, so a
  zero-byte `dir/` marker becomes a file and its children then fail); parent
  folders of outputs are made (`prepareOutputFolders`); after the command each
  output's local path is uploaded if it exists (`uploadOutputArtifacts`,
  `UploadBlob`), then the ExecutorOutput's URI and metadata are merged in
  (`mergeRuntimeArtifacts`) and recorded. A failed task records nothing but its
  log.
- Placeholders: `{{$}}` (the ExecutorInput), `.uri` (remote), `.path` (local),
  parameters and output files (`launcher_v2.go` `getPlaceholders`).
- Cache: key = input artifact names (ids), parameter values, output specs,
  command + args and image (`cacheutils/cache.go` `GenerateCacheKey`,
  `driver/cache.go` `getFingerPrint`); a hit reuses the earlier execution's
  output artifacts as they are, present or not (`reuseCachedOutputs`).
- Environment: the image's, as kubeflow/Dockerfile declares it (its `ENV`
  lines, the base image's `PATH` and `LANG`), the container's `env` from the
  spec and `--env KEY=VALUE` (what the cluster adds to the pod, e.g. object-store
  credentials from a secret); never the caller's.

`--backend vertex`: typed inputs (the producer's declared type, Vertex's
`projects/.../artifacts/ID` names, metadata as written), no log artifact, no
downloads: tasks read and write the root's URIs themselves. Vertex takes
`gs://` roots only; since no GCS server works with TensorFlow here (see the
README), an `s3://` root on the loopback endpoint stands in for it.

Anything else a spec may hold (resolver or importer executors, conditions,
loops, sub-DAGs) is a clear error naming the task: the open-source backend runs
no resolvers. One line per task (name, executed/cached, seconds, outputs);
exit 1 names the task that failed and shows the end of its log.
"""

import argparse
import copy
import dataclasses
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from typing import Any

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

SCHEMA_VERSION = "2.1.0"
BACKENDS = ("oss", "vertex")
OSS_ROOT_SCHEMES = ("gs://", "s3://", "minio://")
LOCAL_MOUNTS = {"gs://": "gcs", "minio://": "minio", "s3://": "s3"}
LOGS_KEY = "executor-logs"
LOGS_TYPE = {"schemaTitle": "system.Artifact"}
VERTEX_NAME = "projects/local/locations/local/metadataStores/default/artifacts/{id}"
MOUNT_ROOT_ENV = "KFP_EMULATOR_MOUNT_ROOT"
DEFAULT_DOCKERFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Dockerfile")
BASE_IMAGE_ENV = {"LANG": "C.UTF-8"}
"""What python:3.11-slim-bookworm sets besides PATH (which points at this interpreter here)."""
_PYTHON_NAMES = ("python", "python3")
_LOG_TAIL_LINES = 20


class LaunchError(RuntimeError):
    """The spec cannot run on the backend, or a task failed; the message names the task."""


@dataclasses.dataclass
class TaskResult:
    """What a finished task hands downstream: its output artifacts (with ids) and parameters."""

    artifacts: dict[str, dict[str, Any]]
    parameters: dict[str, Any]
    state: str
    seconds: float


# ----------------------------------------------------------------------------
# The compiled file


def load_pipeline_job(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Reads a compiled pipeline: returns (pipelineSpec, runtimeConfig).

    Takes a pipeline job (JSON or YAML: pipelineSpec + runtimeConfig) or a
    bare PipelineSpec, whose `defaultPipelineRoot` is then the pipeline root.
    """
    with open(path) as source:
        # JSON as JSON, as the backend reads it: YAML 1.1 reads `1e-06` (no dot) as a string.
        document = json.load(source) if path.endswith(".json") else yaml.safe_load(source)
    if not isinstance(document, dict):
        raise LaunchError(f"{path} is not a pipeline file")
    spec = document.get("pipelineSpec", document)
    runtime_config = document.get("runtimeConfig", {})
    if "pipelineSpec" not in document and spec.get("defaultPipelineRoot"):
        runtime_config = {"gcsOutputDirectory": spec["defaultPipelineRoot"]}
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())  # rejects a malformed spec
    if spec.get("schemaVersion") != SCHEMA_VERSION:
        raise LaunchError(
            f"{path} has PipelineSpec schema {spec.get('schemaVersion')!r}; this launcher "
            f"implements {SCHEMA_VERSION} (compile with KubeflowV2DagRunnerConfig("
            "use_pipeline_spec_2_1=True))"
        )
    return spec, runtime_config


def _component_of(spec: dict[str, Any], task_name: str) -> dict[str, Any]:
    return spec["components"][spec["root"]["dag"]["tasks"][task_name]["componentRef"]["name"]]


def _executor_of(spec: dict[str, Any], task_name: str) -> dict[str, Any]:
    component = _component_of(spec, task_name)
    if "dag" in component:
        raise LaunchError(f"task {task_name}: sub-DAGs are not implemented by this launcher")
    executor = spec["deploymentSpec"]["executors"][component["executorLabel"]]
    kind = next(iter(executor))
    if kind != "container":
        raise LaunchError(
            f"task {task_name}: executor kind {kind!r} is not implemented by this launcher "
            "(the open-source KFP backend runs container tasks only)"
        )
    return executor["container"]


def check_supported(spec: dict[str, Any]) -> None:
    """Fails on the first task this launcher (and open-source KFP) cannot run."""
    for name, task in spec["root"]["dag"]["tasks"].items():
        for unsupported in ("triggerPolicy", "iteratorPolicy", "parameterIterator"):
            if unsupported in task:
                raise LaunchError(f"task {name}: {unsupported} is not implemented")
        _executor_of(spec, name)


def _upstream(task: dict[str, Any]) -> set[str]:
    producers = set(task.get("dependentTasks", []))
    inputs = task.get("inputs", {})
    for kind, key in (("artifacts", "taskOutputArtifact"), ("parameters", "taskOutputParameter")):
        for value in inputs.get(kind, {}).values():
            if key in value:
                producers.add(value[key]["producerTask"])
    return producers


def task_order(spec: dict[str, Any]) -> list[str]:
    """Task names so that each comes after every task it depends on (stable)."""
    tasks = spec["root"]["dag"]["tasks"]
    waiting = {name: _upstream(task) for name, task in tasks.items()}
    for name, needs in waiting.items():
        missing = sorted(needs - set(tasks))
        if missing:
            raise LaunchError(f"task {name} depends on tasks that are not in the DAG: {missing}")
    order: list[str] = []
    while waiting:
        ready = sorted(name for name, needs in waiting.items() if needs <= set(order))
        if not ready:
            raise LaunchError(f"tasks depend on each other in a cycle: {sorted(waiting)}")
        order.extend(ready)
        for name in ready:
            del waiting[name]
    return order


# ----------------------------------------------------------------------------
# Storage rules


def check_pipeline_root(pipeline_root: str, backend: str) -> None:
    """The backend's pipeline-root rule (see the module docstring)."""
    if backend == "oss":
        if not pipeline_root.startswith(OSS_ROOT_SCHEMES):
            raise LaunchError(
                f"pipeline root {pipeline_root!r}: parse bucket config failed: unsupported "
                "Cloud bucket (the open-source KFP backend takes gs://, s3:// or minio:// "
                "roots: objectstore/config.go ParseBucketPathToConfig); compile with "
                "--pipeline-root minio://BUCKET/PATH or s3://BUCKET/PATH"
            )
    elif not pipeline_root.startswith(("gs://", "s3://")):
        raise LaunchError(
            f"pipeline root {pipeline_root!r}: Vertex AI Pipelines takes gs:// roots only "
            "(here an s3:// root on the loopback endpoint stands in for gs://)"
        )
    if pipeline_root.startswith("gs://"):
        raise LaunchError(
            f"pipeline root {pipeline_root!r}: no GCS server can be run for TensorFlow on this "
            "machine (see the README); use minio:// or s3:// with --s3-endpoint"
        )


def local_path_for_uri(uri: str, mount_root: str) -> str:
    """`launcher_v2.go` `LocalPathForURI`, under `mount_root` instead of `/`."""
    for scheme, mount in LOCAL_MOUNTS.items():
        if uri.startswith(scheme):
            return os.path.join(mount_root, mount, uri[len(scheme) :])
    raise LaunchError(f"failed to generate local path for URI {uri}: unsupported storage scheme")


def _bucket_and_key(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key


class ObjectStore:
    """The bucket side of `minio://` and `s3://` URIs, through the S3 API (boto3)."""

    def __init__(self, endpoint: str | None):
        import boto3

        self._client = boto3.client("s3", endpoint_url=endpoint or None)

    def list(self, uri: str) -> list[tuple[str, int]]:
        """(key, size) of every object whose key starts with the URI's key."""
        bucket, prefix = _bucket_and_key(uri)
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [(item["Key"], item["Size"]) for page in pages for item in page.get("Contents", [])]

    def download_blob(self, uri: str, local_dir: str) -> int:
        """`object_store.go` `DownloadBlob`: each key under the URI to a file; returns the count."""
        bucket, blob_dir = _bucket_and_key(uri)
        count = 0
        for key, _ in self.list(uri):
            if not (key == blob_dir.rstrip("/") or key.startswith(blob_dir.rstrip("/") + "/")):
                continue  # isBlobKeyUnderPrefix
            if ".." in key.split("/"):
                raise LaunchError(f"path traversal detected: blob key {key!r} contains '..'")
            relative = os.path.relpath(key, blob_dir) if key != blob_dir else "."
            local = os.path.normpath(os.path.join(local_dir, relative))
            try:
                os.makedirs(os.path.dirname(local), exist_ok=True)
                self._client.download_file(bucket, key, local)
            except (FileExistsError, NotADirectoryError, IsADirectoryError) as error:
                raise LaunchError(
                    f"downloadFile(): unable to complete copying {key!r} to local storage "
                    f"{local!r}: {error} (a zero-byte directory marker downloaded as a file: "
                    "kubeflow/pipelines#13476)"
                ) from error
            count += 1
        return count

    def upload_blob(self, local_path: str, uri: str) -> int:
        """`object_store.go` `UploadBlob`: a file or a folder's files; returns the count."""
        bucket, key = _bucket_and_key(uri)
        if os.path.isfile(local_path):
            self._client.upload_file(local_path, bucket, key)
            return 1
        count = 0
        for folder, _, names in os.walk(local_path):
            for name in names:
                path = os.path.join(folder, name)
                relative = os.path.relpath(path, local_path).replace(os.sep, "/")
                self._client.upload_file(path, bucket, f"{key.rstrip('/')}/{relative}")
                count += 1
        return count

    def read(self, uri: str) -> bytes | None:
        bucket, key = _bucket_and_key(uri)
        try:
            return self._client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self._client.exceptions.NoSuchKey:
            return None


# ----------------------------------------------------------------------------
# ML Metadata as the backend uses it


def to_mlmd_value(value: Any) -> dict[str, Any]:
    """`converter.go` `StructValueToMLMDValue` (a JSON value -> an ML Metadata value)."""
    if isinstance(value, bool):
        return {"int_value": int(value)}
    if isinstance(value, str):
        return {"string_value": value}
    if isinstance(value, int | float):
        return {"double_value": float(value)}
    if isinstance(value, list):
        return {"struct_value": {"list": value}}
    if isinstance(value, dict):
        return {"struct_value": {"struct": value}}
    raise LaunchError(f"unknown/unsupported value type {type(value).__name__} ({value!r})")


def from_mlmd_value(value: dict[str, Any]) -> Any:
    """`converter.go` `toRuntimeArtifact`, one property (ML Metadata -> JSON value)."""
    ((kind, inner),) = value.items()
    return float(inner) if kind in ("int_value", "double_value") else inner


class MetadataStore:
    """Artifacts, executions and the cache key index, in one JSON file of `state_dir`."""

    def __init__(self, state_dir: str):
        self._path = os.path.join(state_dir, "metadata.json")
        self._data = {"artifacts": {}, "cache": {}, "next_id": 1}
        if os.path.exists(self._path):
            with open(self._path) as source:
                self._data = json.load(source)

    def save(self) -> None:
        os.makedirs(os.path.dirname(self._path), exist_ok=True)
        temporary = f"{self._path}.{uuid.uuid4().hex}.tmp"
        with open(temporary, "w") as out:
            json.dump(self._data, out, indent=1, sort_keys=True)
        os.replace(temporary, self._path)

    def record(self, name: str, artifact: dict[str, Any], store_session_info: str) -> int:
        """`client.go` `RecordArtifact`: metadata to custom properties, plus KFP's two keys."""
        properties = {
            key: to_mlmd_value(value) for key, value in artifact.get("metadata", {}).items()
        }
        properties.setdefault("display_name", {"string_value": name})
        properties.setdefault("store_session_info", {"string_value": store_session_info})
        artifact_id = self._data["next_id"]
        self._data["next_id"] += 1
        self._data["artifacts"][str(artifact_id)] = {
            "uri": artifact["uri"],
            "type": artifact["type"],
            "metadata": artifact.get("metadata", {}),
            "custom_properties": properties,
        }
        return artifact_id

    def written(self, artifact_id: int) -> dict[str, Any]:
        """An artifact as its task wrote it (URI, type, metadata), with its id."""
        stored = self._data["artifacts"][str(artifact_id)]
        return {
            "id": artifact_id,
            "uri": stored["uri"],
            "type": stored["type"],
            "metadata": copy.deepcopy(stored["metadata"]),
        }

    def runtime_artifact(self, artifact_id: int, backend: str) -> dict[str, Any]:
        """An input artifact as the backend's driver hands it to the task."""
        stored = self._data["artifacts"][str(artifact_id)]
        if backend == "vertex":
            return {
                "name": VERTEX_NAME.format(id=artifact_id),
                "type": stored["type"],
                "uri": stored["uri"],
                "metadata": copy.deepcopy(stored["metadata"]),
            }
        return {  # GetOutputArtifactsByExecutionId: Schema "" -> ToRuntimeArtifact
            "name": str(artifact_id),
            "type": {"instanceSchema": ""},
            "uri": stored["uri"],
            "metadata": {
                key: from_mlmd_value(value) for key, value in stored["custom_properties"].items()
            },
        }

    def cached(self, key: str) -> dict[str, Any] | None:
        return self._data["cache"].get(key)

    def remember(self, key: str, outputs: dict[str, int], parameters: dict[str, Any]) -> None:
        self._data["cache"][key] = {"outputs": outputs, "parameters": parameters}


# ----------------------------------------------------------------------------
# One task


def _resolve_parameter(
    task_name: str,
    key: str,
    binding: dict[str, Any],
    spec: dict[str, Any],
    runtime_config: dict[str, Any],
    results: dict[str, TaskResult],
) -> Any:
    if "runtimeValue" in binding:
        return binding["runtimeValue"]["constant"]
    if "componentInputParameter" in binding:
        name = binding["componentInputParameter"]
        values = runtime_config.get("parameterValues", {})
        if name in values:
            return values[name]
        definition = spec["root"].get("inputDefinitions", {}).get("parameters", {}).get(name, {})
        if "defaultValue" in definition:
            return definition["defaultValue"]
        raise LaunchError(f"task {task_name}: pipeline parameter {name!r} has no value")
    if "taskOutputParameter" in binding:
        source = binding["taskOutputParameter"]
        return results[source["producerTask"]].parameters[source["outputParameterKey"]]
    raise LaunchError(f"task {task_name}: parameter {key!r} binding {binding} is not implemented")


@dataclasses.dataclass
class Backend:
    """Which backend is emulated, and where this task's pod keeps its local files."""

    name: str = "oss"
    publish_logs: bool = True
    mount_root: str = "/"


def build_executor_input(
    spec: dict[str, Any],
    runtime_config: dict[str, Any],
    task_name: str,
    task_root: str,
    store: MetadataStore,
    results: dict[str, TaskResult],
    backend: Backend,
) -> dict[str, Any]:
    """The ExecutorInput of one task, as the backend's driver builds it (JSON form)."""
    task = spec["root"]["dag"]["tasks"][task_name]
    component = _component_of(spec, task_name)
    inputs = task.get("inputs", {})
    artifacts = {}
    for key, binding in inputs.get("artifacts", {}).items():
        if "taskOutputArtifact" not in binding:
            raise LaunchError(f"task {task_name}: input artifact {key!r} {binding} not implemented")
        source = binding["taskOutputArtifact"]
        produced = results[source["producerTask"]].artifacts[source["outputArtifactKey"]]
        artifacts[key] = {"artifacts": [store.runtime_artifact(produced["id"], backend.name)]}
    parameters = {
        key: _resolve_parameter(task_name, key, binding, spec, runtime_config, results)
        for key, binding in inputs.get("parameters", {}).items()
    }
    definitions = dict(component.get("outputDefinitions", {}).get("artifacts", {}))
    if backend.name == "oss" and backend.publish_logs:
        definitions[LOGS_KEY] = {"artifactType": LOGS_TYPE}
    output_artifacts = {
        key: {
            "artifacts": [
                {
                    "name": key,
                    "type": definition["artifactType"],
                    "uri": f"{task_root}/{key}",
                    "metadata": definition.get("metadata", {}),
                }
            ]
        }
        for key, definition in definitions.items()
    }
    if backend.name == "oss":
        local_root = local_path_for_uri(task_root, backend.mount_root)
        output_file = os.path.join(local_root, "output_metadata.json")
        parameter_dir = os.path.join(backend.mount_root, "tmp", "kfp", "outputs")
    else:
        output_file = f"{task_root}/executor_output.json"
        parameter_dir = f"{task_root}/parameters"
    output_parameters = {
        key: {"outputFile": f"{parameter_dir}/{key}"}
        for key in component.get("outputDefinitions", {}).get("parameters", {})
    }
    executor_input = {
        "inputs": {"artifacts": artifacts, "parameterValues": parameters},
        "outputs": {
            "artifacts": output_artifacts,
            "parameters": output_parameters,
            "outputFile": output_file,
        },
    }
    json_format.ParseDict(executor_input, pipeline_spec_pb2.ExecutorInput())  # the contract
    return executor_input


def _placeholder_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # strconv.FormatFloat(v, 'f', -1, 64)
    return json.dumps(value)


def substitute(template: str, executor_input: dict[str, Any], backend: Backend) -> str:
    """Replaces the placeholders in one command or argument (`getPlaceholders`)."""
    result = template.replace("{{$}}", json.dumps(executor_input))
    inputs, outputs = executor_input["inputs"], executor_input["outputs"]
    for key, value in inputs["parameterValues"].items():
        result = result.replace(f"{{{{$.inputs.parameters['{key}']}}}}", _placeholder_text(value))
    for prefix, group in (("inputs", inputs["artifacts"]), ("outputs", outputs["artifacts"])):
        for key, artifacts in group.items():
            uri = artifacts["artifacts"][0]["uri"]
            result = result.replace(f"{{{{$.{prefix}.artifacts['{key}'].uri}}}}", uri)
            path_placeholder = f"{{{{$.{prefix}.artifacts['{key}'].path}}}}"
            if path_placeholder in result:
                if backend.name != "oss":
                    raise LaunchError(
                        f"{path_placeholder}: Vertex's /gcs/ mount is not emulated here"
                    )
                result = result.replace(
                    path_placeholder, local_path_for_uri(uri, backend.mount_root)
                )
    for key, parameter in outputs["parameters"].items():
        placeholder = f"{{{{$.outputs.parameters['{key}'].output_file}}}}"
        result = result.replace(placeholder, parameter["outputFile"])
    leftover = re.search(r"\{\{\$[^}]*\}\}", result)
    if leftover:
        raise LaunchError(f"placeholder {leftover.group(0)} is not implemented by this launcher")
    return result


def cache_key(container: dict[str, Any], executor_input: dict[str, Any]) -> str:
    """`cacheutils/cache.go` `GenerateCacheKey`, hashed (`GenerateFingerPrint`)."""
    key = {
        "inputArtifactNames": {
            name: [artifact["name"] for artifact in artifacts["artifacts"]]
            for name, artifacts in executor_input["inputs"]["artifacts"].items()
        },
        "inputParameterValues": executor_input["inputs"]["parameterValues"],
        "outputArtifactsSpec": {
            name: {key: artifacts["artifacts"][0].get(key) for key in ("name", "type", "metadata")}
            for name, artifacts in executor_input["outputs"]["artifacts"].items()
        },
        "outputParametersSpec": sorted(executor_input["outputs"]["parameters"]),
        "containerSpec": {
            "image": container.get("image"),
            "cmdArgs": container.get("command", []) + container.get("args", []),
        },
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def image_environment(dockerfile: str) -> dict[str, str]:
    """The `ENV` lines of a Dockerfile (`ENV K=V [K=V ...]`, continued lines joined)."""
    with open(dockerfile) as source:
        text = re.sub(r"\\\n", " ", source.read())
    environment: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip().upper().startswith("ENV "):
            for pair in shlex.split(line.strip()[4:]):
                name, _, value = pair.partition("=")
                environment[name] = value
    return environment


def task_environment(
    container: dict[str, Any], image_env: dict[str, str], pod_env: dict[str, str], home: str
) -> dict[str, str]:
    """The environment a task's container starts with; nothing from the caller's."""
    environment = {
        "PATH": os.pathsep.join(
            [os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]
        ),
        "HOME": home,
        **BASE_IMAGE_ENV,
        **image_env,
    }
    environment.update({item["name"]: item.get("value", "") for item in container.get("env", [])})
    environment.update(pod_env)
    return environment


def _command(
    container: dict[str, Any], executor_input: dict[str, Any], backend: Backend
) -> list[str]:
    parts = container.get("command", []) + container.get("args", [])
    command = [substitute(part, executor_input, backend) for part in parts]
    if command and command[0] in _PYTHON_NAMES:
        command[0] = sys.executable  # the image's interpreter: this one, with the lock installed
    return command


def _tail(path: str) -> str:
    with open(path, errors="replace") as source:
        return "".join(source.readlines()[-_LOG_TAIL_LINES:])


def _merge(artifact: dict[str, Any], produced: dict[str, Any]) -> None:
    """`launcher_v2.go` `mergeRuntimeArtifacts`."""
    if produced.get("uri"):
        artifact["uri"] = produced["uri"]
    artifact["metadata"] = {**artifact.get("metadata", {}), **produced.get("metadata", {})}


@dataclasses.dataclass
class Launch:
    """What every task of one launch shares."""

    spec: dict[str, Any]
    objects: ObjectStore
    store: MetadataStore
    image_env: dict[str, str]
    pod_env: dict[str, str]
    pods_dir: str
    session_info: str


def run_task(
    launch: Launch, task_name: str, executor_input: dict[str, Any], backend: Backend
) -> TaskResult:
    """Runs one container task as the backend's launcher does; returns its recorded outputs."""
    container = _executor_of(launch.spec, task_name)
    pod_root = backend.mount_root
    os.makedirs(pod_root, exist_ok=True)
    log_path = os.path.join(pod_root, "task.log")
    outputs = executor_input["outputs"]["artifacts"]
    if backend.name == "oss":
        for key, group in executor_input["inputs"]["artifacts"].items():
            for artifact in group["artifacts"]:
                local = local_path_for_uri(artifact["uri"], pod_root)
                try:
                    launch.objects.download_blob(artifact["uri"], local)
                except LaunchError as error:
                    raise LaunchError(
                        f"task {task_name}: failed to download input artifact {key!r} from "
                        f"remote storage URI {artifact['uri']!r}: {error}"
                    ) from error
        for group in outputs.values():  # prepareOutputFolders
            local = local_path_for_uri(group["artifacts"][0]["uri"], pod_root)
            os.makedirs(os.path.dirname(local), exist_ok=True)
        for parameter in executor_input["outputs"]["parameters"].values():
            os.makedirs(os.path.dirname(parameter["outputFile"]), exist_ok=True)
    environment = task_environment(
        container, launch.image_env, launch.pod_env, os.path.join(pod_root, "root")
    )
    os.makedirs(environment["HOME"], exist_ok=True)
    if backend.name == "oss":
        environment[MOUNT_ROOT_ENV] = pod_root
    started = time.monotonic()
    with open(log_path, "w") as log:
        process = subprocess.run(
            _command(container, executor_input, backend),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=pod_root,
            check=False,
        )
    logs_local = None
    if LOGS_KEY in outputs:  # getLogWriter: the log goes to the log artifact's local file
        logs_local = local_path_for_uri(outputs[LOGS_KEY]["artifacts"][0]["uri"], pod_root)
        with open(log_path, "rb") as source, open(logs_local, "wb") as out:
            out.write(source.read())
    if process.returncode != 0:
        if logs_local:  # uploadOutputArtifacts(componentSucceeded=false): the log only
            launch.objects.upload_blob(logs_local, outputs[LOGS_KEY]["artifacts"][0]["uri"])
        raise LaunchError(
            f"task {task_name} failed (exit code {process.returncode}); log: {log_path}\n"
            f"{_tail(log_path)}"
        )
    executor_output = _read_executor_output(launch, executor_input, task_name)
    recorded: dict[str, dict[str, Any]] = {}
    for key, group in outputs.items():
        artifact = copy.deepcopy(group["artifacts"][0])
        produced = executor_output.get("artifacts", {}).get(key, {}).get("artifacts", [])
        if produced and key != LOGS_KEY:
            _merge(artifact, produced[0])
        if backend.name == "oss" and artifact["uri"].startswith(tuple(LOCAL_MOUNTS)):
            local = local_path_for_uri(artifact["uri"], pod_root)
            if os.path.exists(local):  # UploadBlob; a missing local path is skipped
                launch.objects.upload_blob(local, artifact["uri"])
        try:
            artifact["id"] = launch.store.record(key, artifact, launch.session_info)
        except LaunchError as error:
            raise LaunchError(
                f"task {task_name}: unable to produce MLMD artifact for output {key!r}: {error}"
            ) from error
        recorded[key] = artifact
    parameters = dict(executor_output.get("parameterValues", {}))
    for key, parameter in executor_input["outputs"]["parameters"].items():
        if key not in parameters and os.path.exists(parameter["outputFile"]):
            with open(parameter["outputFile"]) as source:
                parameters[key] = source.read()
    return TaskResult(recorded, parameters, "executed", time.monotonic() - started)


def _read_executor_output(
    launch: Launch, executor_input: dict[str, Any], task_name: str
) -> dict[str, Any]:
    """`getExecutorOutputFile`: the task's ExecutorOutput, empty if it wrote none."""
    output_file = executor_input["outputs"]["outputFile"]
    if "://" in output_file:
        raw = launch.objects.read(output_file)
    elif os.path.exists(output_file):
        with open(output_file, "rb") as source:
            raw = source.read()
    else:
        raw = None
    if raw is None:
        return {}
    executor_output = json.loads(raw)
    try:
        json_format.ParseDict(executor_output, pipeline_spec_pb2.ExecutorOutput())
    except json_format.ParseError as error:
        raise LaunchError(f"task {task_name}: malformed ExecutorOutput: {error}") from error
    return executor_output


def _describe(result: TaskResult) -> list[str]:
    lines = []
    for key, artifact in sorted(result.artifacts.items()):
        facts = [
            f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
            for name, value in sorted(artifact.get("metadata", {}).items())
            if isinstance(value, float | int | str) and len(str(value)) <= 400 and value != ""
        ]
        lines.append(f"    {key}: {artifact['uri']}" + (f"  [{', '.join(facts)}]" if facts else ""))
    return lines


def launch(
    pipeline_file: str,
    run_id: str,
    *,
    state_dir: str,
    s3_endpoint: str | None = None,
    backend: str = "oss",
    publish_logs: bool = True,
    pod_env: dict[str, str] | None = None,
    dockerfile: str = DEFAULT_DOCKERFILE,
    use_cache: bool = True,
) -> dict[str, TaskResult]:
    """Runs every task of the compiled pipeline; returns each task's result."""
    if backend not in BACKENDS:
        raise LaunchError(f"backend {backend!r}: choose one of {BACKENDS}")
    spec, runtime_config = load_pipeline_job(pipeline_file)
    check_supported(spec)
    pipeline_root = runtime_config.get("gcsOutputDirectory", "")
    check_pipeline_root(pipeline_root, backend)
    run = Launch(
        spec=spec,
        objects=ObjectStore(s3_endpoint),
        store=MetadataStore(state_dir),
        image_env=image_environment(dockerfile),
        pod_env=dict(pod_env or {}),
        pods_dir=os.path.join(os.path.abspath(state_dir), "pods", run_id),
        session_info=json.dumps(
            {"Provider": "minio" if pipeline_root.startswith("minio") else "s3"}
        ),
    )
    pipeline_name = spec["pipelineInfo"]["name"]
    results: dict[str, TaskResult] = {}
    print(f"Run {run_id} of pipeline {pipeline_name}: {len(spec['root']['dag']['tasks'])} tasks")
    for task_name in task_order(spec):
        task = spec["root"]["dag"]["tasks"][task_name]
        container = _executor_of(spec, task_name)
        task_backend = Backend(backend, publish_logs, os.path.join(run.pods_dir, task_name))
        task_root = (
            f"{pipeline_root.rstrip('/')}/{pipeline_name}/{run_id}/{task_name}/{uuid.uuid4()}"
        )
        executor_input = build_executor_input(
            spec, runtime_config, task_name, task_root, run.store, results, task_backend
        )
        cacheable = use_cache and task.get("cachingOptions", {}).get("enableCache", False)
        key = cache_key(container, executor_input)
        hit = run.store.cached(key) if cacheable else None
        if hit is not None:  # reuseCachedOutputs
            artifacts = {name: run.store.written(i) for name, i in hit["outputs"].items()}
            result = TaskResult(artifacts, hit["parameters"], "cached", 0.0)
        else:
            result = run_task(run, task_name, executor_input, task_backend)
            if cacheable:
                outputs = {name: artifact["id"] for name, artifact in result.artifacts.items()}
                run.store.remember(key, outputs, result.parameters)
            run.store.save()
        results[task_name] = result
        print(f"  {task_name:<20} {result.state:<8} {result.seconds:6.1f} s", flush=True)
        for line in _describe(result):
            print(line, flush=True)
    run.store.save()
    return results


def _pair(text: str) -> tuple[str, str]:
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline-file", required=True, help="kubeflow_v2_runner.py's output")
    parser.add_argument("--backend", choices=BACKENDS, default="oss")
    parser.add_argument(
        "--publish-logs",
        choices=("true", "false"),
        default="true",
        help="the KFP driver's publish_logs (default true since KFP 2.5; false = before 2.5)",
    )
    parser.add_argument(
        "--s3-endpoint",
        default=os.environ.get("AWS_ENDPOINT_URL"),
        help="the S3 server behind minio:// and s3:// (default: $AWS_ENDPOINT_URL)",
    )
    parser.add_argument(
        "--env",
        type=_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="added to every task's environment, as the cluster adds to a pod (repeatable)",
    )
    parser.add_argument("--dockerfile", default=DEFAULT_DOCKERFILE, help="the image's ENV lines")
    parser.add_argument("--state-dir", default=os.path.join("output", "kfp_launcher"))
    parser.add_argument("--run-id", default=None, help="default: a new time-stamped id")
    parser.add_argument("--no-cache", action="store_true", help="run every task (KFP cache off)")
    args = parser.parse_args(argv)
    run_id = args.run_id or time.strftime("run-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    try:
        launch(
            args.pipeline_file,
            run_id,
            state_dir=args.state_dir,
            s3_endpoint=args.s3_endpoint,
            backend=args.backend,
            publish_logs=args.publish_logs == "true",
            pod_env=dict(args.env),
            dockerfile=args.dockerfile,
            use_cache=not args.no_cache,
        )
    except (LaunchError, OSError, json_format.ParseError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
