"""Runs a compiled KFP v2 pipeline spec on this machine, task by task, as KFP would.

    python kubeflow/local_launcher.py --pipeline-file /tmp/k/mnist.json [--run-id ID] [--no-cache]

No cluster can be had here, but the contract between KFP and a task is small
and public, and this launcher implements it from the compiled file alone (it
imports nothing of this project): for each task, in dependency order, it
does what KFP's driver and launcher do (backend/src/v2/driver and
backend/src/v2/component in kubeflow/pipelines):

1. builds the task's `ExecutorInput` (PipelineSpec schema 2.1.0): input
   parameters as `parameterValues` (constants, pipeline inputs, upstream
   outputs), input artifacts as the upstream tasks' output artifacts (name,
   type, uri, metadata), output artifacts with fresh URIs under
   `<pipeline-root>/<pipeline>/<run-id>/<task>/<salt>/`, and an `outputFile`;
2. substitutes the placeholders in the container's command and args
   (`{{$}}` is the ExecutorInput as JSON) and runs them as a subprocess, with
   this interpreter in place of the image's `python`;
3. reads the `ExecutorOutput` the task wrote and merges its artifacts'
   URIs and metadata into what downstream tasks receive;
4. caches like KFP: a task with `cachingOptions.enableCache` whose inputs
   (artifact names, parameter values), outputs spec and container are the same
   as a finished task's reuses that task's outputs (`--no-cache` turns it off).

Anything else a spec may hold (resolver or importer executors, conditions,
loops, sub-DAGs, inputs from outside the DAG) is a clear error naming the
task: the open-source KFP backend runs container tasks only. One line per
task (name, executed/cached, seconds, outputs); exit 1 names the task that
failed and shows the end of its log.
"""

import argparse
import copy
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from typing import Any

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

SCHEMA_VERSION = "2.1.0"
CACHE_DIR = ".local_launcher_cache"
_PYTHON_NAMES = ("python", "python3")
_LOG_TAIL_LINES = 20


class LaunchError(RuntimeError):
    """The spec cannot run here, or a task failed; the message names the task."""


@dataclasses.dataclass
class TaskResult:
    """What a finished task hands downstream."""

    artifacts: dict[str, dict[str, Any]]
    parameters: dict[str, Any]
    state: str
    seconds: float


def load_pipeline_job(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Reads a compiled pipeline: returns (pipelineSpec, runtimeConfig).

    Takes a pipeline job (JSON or YAML: pipelineSpec + runtimeConfig) or a
    bare PipelineSpec, whose `defaultPipelineRoot` is then the pipeline root.
    """
    with open(path) as source:
        document = yaml.safe_load(source)
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


def _executor_of(spec: dict[str, Any], task_name: str) -> dict[str, Any]:
    task = spec["root"]["dag"]["tasks"][task_name]
    component = spec["components"][task["componentRef"]["name"]]
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


def build_executor_input(
    spec: dict[str, Any],
    runtime_config: dict[str, Any],
    task_name: str,
    task_root: str,
    run_name: str,
    results: dict[str, TaskResult],
) -> dict[str, Any]:
    """The ExecutorInput of one task, as KFP's driver builds it (JSON form)."""
    task = spec["root"]["dag"]["tasks"][task_name]
    component = spec["components"][task["componentRef"]["name"]]
    inputs = task.get("inputs", {})
    input_definitions = component.get("inputDefinitions", {}).get("artifacts", {})
    artifacts = {}
    for key, binding in inputs.get("artifacts", {}).items():
        if "taskOutputArtifact" not in binding:
            raise LaunchError(f"task {task_name}: input artifact {key!r} {binding} not implemented")
        source = binding["taskOutputArtifact"]
        artifact = copy.deepcopy(
            results[source["producerTask"]].artifacts[source["outputArtifactKey"]]
        )
        artifact["type"] = input_definitions[key]["artifactType"]
        artifacts[key] = {"artifacts": [artifact]}
    parameters = {
        key: _resolve_parameter(task_name, key, binding, spec, runtime_config, results)
        for key, binding in inputs.get("parameters", {}).items()
    }
    outputs = component.get("outputDefinitions", {})
    output_artifacts = {
        key: {
            "artifacts": [
                {
                    "name": f"{run_name}/{task_name}/{key}",
                    "type": definition["artifactType"],
                    "uri": os.path.join(task_root, key),
                    "metadata": {},
                }
            ]
        }
        for key, definition in outputs.get("artifacts", {}).items()
    }
    output_parameters = {
        key: {"outputFile": os.path.join(task_root, "parameters", key)}
        for key in outputs.get("parameters", {})
    }
    executor_input = {
        "inputs": {"artifacts": artifacts, "parameterValues": parameters},
        "outputs": {
            "artifacts": output_artifacts,
            "parameters": output_parameters,
            "outputFile": os.path.join(task_root, "executor_output.json"),
        },
    }
    json_format.ParseDict(executor_input, pipeline_spec_pb2.ExecutorInput())  # the contract
    return executor_input


def _placeholder_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    return json.dumps(value)


def substitute(template: str, executor_input: dict[str, Any]) -> str:
    """Replaces KFP's placeholders in one command or argument string."""
    result = template.replace("{{$}}", json.dumps(executor_input))
    inputs, outputs = executor_input["inputs"], executor_input["outputs"]
    for key, value in inputs["parameterValues"].items():
        result = result.replace(f"{{{{$.inputs.parameters['{key}']}}}}", _placeholder_text(value))
    for prefix, group in (("inputs", inputs["artifacts"]), ("outputs", outputs["artifacts"])):
        for key, artifacts in group.items():
            uri = artifacts["artifacts"][0]["uri"]
            for suffix in ("uri", "path"):
                result = result.replace(f"{{{{$.{prefix}.artifacts['{key}'].{suffix}}}}}", uri)
    for key, parameter in outputs["parameters"].items():
        placeholder = f"{{{{$.outputs.parameters['{key}'].output_file}}}}"
        result = result.replace(placeholder, parameter["outputFile"])
    leftover = re.search(r"\{\{\$[^}]*\}\}", result)
    if leftover:
        raise LaunchError(f"placeholder {leftover.group(0)} is not implemented by this launcher")
    return result


def cache_key(container: dict[str, Any], executor_input: dict[str, Any]) -> str:
    """KFP's cache key: input artifact names, parameter values, outputs spec, container."""
    key = {
        "inputArtifactNames": {
            name: [artifact["name"] for artifact in artifacts["artifacts"]]
            for name, artifacts in executor_input["inputs"]["artifacts"].items()
        },
        "inputParameterValues": executor_input["inputs"]["parameterValues"],
        "outputArtifactsSpec": {
            name: artifacts["artifacts"][0]["type"]
            for name, artifacts in executor_input["outputs"]["artifacts"].items()
        },
        "outputParametersSpec": sorted(executor_input["outputs"]["parameters"]),
        "container": {
            "image": container.get("image"),
            "command": container.get("command", []),
            "args": container.get("args", []),
        },
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _merge_executor_output(executor_input: dict[str, Any], output_file: str) -> TaskResult:
    artifacts = {
        key: copy.deepcopy(group["artifacts"][0])
        for key, group in executor_input["outputs"]["artifacts"].items()
    }
    parameters: dict[str, Any] = {}
    if os.path.exists(output_file):
        with open(output_file) as source:
            executor_output = json.load(source)
        json_format.ParseDict(executor_output, pipeline_spec_pb2.ExecutorOutput())
        for key, group in executor_output.get("artifacts", {}).items():
            if key in artifacts and group.get("artifacts"):
                produced = group["artifacts"][0]
                artifacts[key]["uri"] = produced.get("uri") or artifacts[key]["uri"]
                artifacts[key]["metadata"].update(produced.get("metadata", {}))
        parameters.update(executor_output.get("parameterValues", {}))
    for key, parameter in executor_input["outputs"]["parameters"].items():
        if key not in parameters and os.path.exists(parameter["outputFile"]):
            with open(parameter["outputFile"]) as source:
                parameters[key] = source.read()
    return TaskResult(artifacts, parameters, "executed", 0.0)


def _command(container: dict[str, Any], executor_input: dict[str, Any]) -> list[str]:
    command = [substitute(part, executor_input) for part in container.get("command", [])]
    command += [substitute(part, executor_input) for part in container.get("args", [])]
    if command and command[0] in _PYTHON_NAMES:
        command[0] = sys.executable
    return command


def _tail(path: str) -> str:
    with open(path, errors="replace") as source:
        return "".join(source.readlines()[-_LOG_TAIL_LINES:])


def run_task(
    container: dict[str, Any], executor_input: dict[str, Any], task_name: str, task_root: str
) -> TaskResult:
    """Runs one container task as a subprocess; returns its merged outputs."""
    os.makedirs(task_root, exist_ok=True)
    log_path = os.path.join(task_root, "task.log")
    env = dict(os.environ)
    env.update({item["name"]: item.get("value", "") for item in container.get("env", [])})
    started = time.monotonic()
    with open(log_path, "w") as log:
        process = subprocess.run(
            _command(container, executor_input),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=task_root,
            check=False,
        )
    if process.returncode != 0:
        raise LaunchError(
            f"task {task_name} failed (exit code {process.returncode}); log: {log_path}\n"
            f"{_tail(log_path)}"
        )
    result = _merge_executor_output(executor_input, executor_input["outputs"]["outputFile"])
    result.seconds = time.monotonic() - started
    return result


def _load_cached(path: str) -> TaskResult | None:
    if not os.path.exists(path):
        return None
    with open(path) as source:
        entry = json.load(source)
    if not all(os.path.exists(artifact["uri"]) for artifact in entry["artifacts"].values()):
        return None
    return TaskResult(entry["artifacts"], entry["parameters"], "cached", 0.0)


def _save_cached(path: str, result: TaskResult) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(temporary, "w") as out:
        json.dump({"artifacts": result.artifacts, "parameters": result.parameters}, out)
    os.replace(temporary, path)


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


def launch(pipeline_file: str, run_id: str, use_cache: bool = True) -> dict[str, TaskResult]:
    """Runs every task of the compiled pipeline; returns each task's result."""
    spec, runtime_config = load_pipeline_job(pipeline_file)
    check_supported(spec)
    pipeline_root = runtime_config.get("gcsOutputDirectory", "")
    if not pipeline_root or "://" in pipeline_root:
        raise LaunchError(
            f"pipeline root {pipeline_root!r}: this launcher needs a local pipeline root "
            "(compile with --pipeline-root DIR)"
        )
    pipeline_name = spec["pipelineInfo"]["name"]
    run_root = os.path.join(pipeline_root, pipeline_name, run_id)
    cache_root = os.path.join(pipeline_root, CACHE_DIR, pipeline_name)
    results: dict[str, TaskResult] = {}
    print(f"Run {run_id} of pipeline {pipeline_name}: {len(spec['root']['dag']['tasks'])} tasks")
    for task_name in task_order(spec):
        task = spec["root"]["dag"]["tasks"][task_name]
        container = _executor_of(spec, task_name)
        task_root = os.path.join(run_root, task_name, uuid.uuid4().hex[:8])
        executor_input = build_executor_input(
            spec, runtime_config, task_name, task_root, f"{pipeline_name}/{run_id}", results
        )
        cacheable = use_cache and task.get("cachingOptions", {}).get("enableCache", False)
        cache_file = os.path.join(cache_root, f"{cache_key(container, executor_input)}.json")
        result = _load_cached(cache_file) if cacheable else None
        if result is None:
            result = run_task(container, executor_input, task_name, task_root)
            if cacheable:
                _save_cached(cache_file, result)
        results[task_name] = result
        print(f"  {task_name:<20} {result.state:<8} {result.seconds:6.1f} s", flush=True)
        for line in _describe(result):
            print(line, flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline-file", required=True, help="kubeflow_v2_runner.py's output")
    parser.add_argument("--run-id", default=None, help="default: a new time-stamped id")
    parser.add_argument("--no-cache", action="store_true", help="run every task (KFP cache off)")
    args = parser.parse_args(argv)
    run_id = args.run_id or time.strftime("run-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    try:
        launch(args.pipeline_file, run_id, use_cache=not args.no_cache)
    except (LaunchError, OSError, json_format.ParseError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
