"""The local KFP launcher on small hand-written specs: its pure functions, then real runs."""

import copy
import json
import os
import textwrap

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from tests.kubeflow.conftest import _load

ARTIFACT_TYPE = {"schemaTitle": "system.Artifact", "schemaVersion": "0.0.1"}


@pytest.fixture(scope="module")
def launcher():
    return _load("local_launcher")


def container(*command: str) -> dict:
    return {"container": {"image": "python:3.11", "command": list(command)}}


def pipeline_spec(tasks: dict, components: dict, executors: dict, **root) -> dict:
    """A PipelineSpec (schema 2.1.0) in JSON form."""
    return {
        "pipelineInfo": {"name": "tiny"},
        "schemaVersion": "2.1.0",
        "sdkVersion": "tfx-1.16.0",
        "root": {"dag": {"tasks": tasks}, **root},
        "components": components,
        "deploymentSpec": {"executors": executors},
    }


def task(component: str, **fields) -> dict:
    return {"taskInfo": {"name": component}, "componentRef": {"name": component}, **fields}


def artifact_from(producer: str, key: str) -> dict:
    return {"taskOutputArtifact": {"producerTask": producer, "outputArtifactKey": key}}


def chain_spec(**b_fields) -> dict:
    """Three tasks: a -> b (dependentTasks) -> c (consumes b's artifact), d alone."""
    names = ("a", "b", "c", "d")
    return pipeline_spec(
        tasks={
            "c": task("c", inputs={"artifacts": {"data": artifact_from("b", "data")}}),
            "d": task("d"),
            "b": task("b", dependentTasks=["a"], **b_fields),
            "a": task("a"),
        },
        components={name: {"executorLabel": f"exec-{name}"} for name in names},
        executors={f"exec-{name}": container("true") for name in names},
    )


def test_task_order_puts_producers_first_and_is_stable(launcher):
    assert launcher.task_order(chain_spec()) == ["a", "d", "b", "c"]


def test_task_order_follows_task_output_parameters(launcher):
    spec = chain_spec()
    parameter = {"taskOutputParameter": {"producerTask": "c", "outputParameterKey": "n"}}
    spec["root"]["dag"]["tasks"]["d"]["inputs"] = {"parameters": {"n": parameter}}
    assert launcher.task_order(spec) == ["a", "b", "c", "d"]


def test_task_order_detects_a_cycle(launcher):
    spec = chain_spec()
    spec["root"]["dag"]["tasks"]["a"]["dependentTasks"] = ["c"]
    with pytest.raises(launcher.LaunchError, match="cycle") as error:
        launcher.task_order(spec)
    assert all(name in str(error.value) for name in ("'a'", "'b'", "'c'"))
    assert "'d'" not in str(error.value)


def test_task_order_names_a_producer_missing_from_the_dag(launcher):
    spec = chain_spec()
    spec["root"]["dag"]["tasks"]["a"]["dependentTasks"] = ["ghost"]
    with pytest.raises(launcher.LaunchError, match=r"task a depends on .*\['ghost'\]"):
        launcher.task_order(spec)


def test_check_supported_accepts_container_tasks(launcher):
    launcher.check_supported(chain_spec())


@pytest.mark.parametrize("kind", ["resolver", "importer"])
def test_check_supported_rejects_non_container_executors_naming_the_task(launcher, kind):
    spec = chain_spec()
    spec["deploymentSpec"]["executors"]["exec-b"] = {kind: {}}
    with pytest.raises(launcher.LaunchError, match=f"task b: executor kind '{kind}'"):
        launcher.check_supported(spec)


def test_check_supported_rejects_a_trigger_policy_naming_the_task(launcher):
    spec = chain_spec(triggerPolicy={"condition": "inputs.parameter_values['x'] == 'y'"})
    with pytest.raises(launcher.LaunchError, match="task b: triggerPolicy"):
        launcher.check_supported(spec)


def test_check_supported_rejects_a_sub_dag_naming_the_task(launcher):
    spec = chain_spec()
    spec["components"]["c"] = {"dag": {"tasks": {}}}
    with pytest.raises(launcher.LaunchError, match="task c: sub-DAGs"):
        launcher.check_supported(spec)


def consumer_spec() -> dict:
    """`make` outputs an artifact and a parameter; `use` takes both plus three parameters."""
    return pipeline_spec(
        tasks={
            "make": task("make"),
            "use": task(
                "use",
                inputs={
                    "artifacts": {"examples": artifact_from("make", "out")},
                    "parameters": {
                        "threshold": {"runtimeValue": {"constant": 0.5}},
                        "serving_dir": {"componentInputParameter": "serving_dir"},
                        "epochs": {"componentInputParameter": "epochs"},
                        "count": {
                            "taskOutputParameter": {
                                "producerTask": "make",
                                "outputParameterKey": "count",
                            }
                        },
                    },
                },
            ),
        },
        components={
            "make": {
                "executorLabel": "exec-make",
                "outputDefinitions": {
                    "artifacts": {"out": {"artifactType": ARTIFACT_TYPE}},
                    "parameters": {"count": {"parameterType": "STRING"}},
                },
            },
            "use": {
                "executorLabel": "exec-use",
                "inputDefinitions": {
                    "artifacts": {
                        "examples": {
                            "artifactType": {
                                "schemaTitle": "tfx.Examples",
                                "schemaVersion": "0.0.1",
                            }
                        }
                    },
                    "parameters": {
                        name: {"parameterType": "STRING"}
                        for name in ("threshold", "serving_dir", "epochs", "count")
                    },
                },
                "outputDefinitions": {
                    "artifacts": {"model": {"artifactType": ARTIFACT_TYPE}},
                    "parameters": {"accuracy": {"parameterType": "STRING"}},
                },
            },
        },
        executors={"exec-make": container("true"), "exec-use": container("true")},
        inputDefinitions={
            "parameters": {
                "serving_dir": {"parameterType": "STRING"},
                "epochs": {"parameterType": "NUMBER_INTEGER", "defaultValue": 3},
            }
        },
    )


def make_result(launcher, uri="/root/tiny/run-0/make/1234/out", name="tiny/run-0/make/out"):
    artifact = {"name": name, "type": ARTIFACT_TYPE, "uri": uri, "metadata": {"rows": 12}}
    return launcher.TaskResult({"out": artifact}, {"count": "12"}, "executed", 0.0)


def use_input(launcher, task_root="/root/tiny/run-1/use/abcd", runtime=None, result=None):
    runtime = {"parameterValues": {"serving_dir": "/srv"}} if runtime is None else runtime
    results = {"make": result or make_result(launcher)}
    return launcher.build_executor_input(
        consumer_spec(), runtime, "use", task_root, "tiny/run-1", results
    )


def test_build_executor_input_follows_the_kfp_contract(launcher):
    executor_input = use_input(launcher)

    parsed = json_format.ParseDict(executor_input, pipeline_spec_pb2.ExecutorInput())
    values = parsed.inputs.parameter_values
    assert values["threshold"].number_value == 0.5
    assert values["serving_dir"].string_value == "/srv"
    assert values["epochs"].number_value == 3  # the pipeline parameter's default
    assert values["count"].string_value == "12"
    (examples,) = parsed.inputs.artifacts["examples"].artifacts
    assert examples.uri == "/root/tiny/run-0/make/1234/out"
    assert examples.name == "tiny/run-0/make/out"
    assert examples.type.schema_title == "tfx.Examples"  # the consumer's declared type
    assert examples.metadata["rows"] == 12
    (model,) = parsed.outputs.artifacts["model"].artifacts
    assert model.uri == "/root/tiny/run-1/use/abcd/model"
    assert model.name == "tiny/run-1/use/model"
    assert parsed.outputs.parameters["accuracy"].output_file == (
        "/root/tiny/run-1/use/abcd/parameters/accuracy"
    )
    assert parsed.outputs.output_file == "/root/tiny/run-1/use/abcd/executor_output.json"


def test_build_executor_input_prefers_runtime_config_values_and_fresh_output_uris(launcher):
    first = use_input(launcher, runtime={"parameterValues": {"serving_dir": "/s", "epochs": 9}})
    second = use_input(launcher, task_root="/root/tiny/run-2/use/ef01")
    assert first["inputs"]["parameterValues"]["epochs"] == 9
    first_uri = first["outputs"]["artifacts"]["model"]["artifacts"][0]["uri"]
    second_uri = second["outputs"]["artifacts"]["model"]["artifacts"][0]["uri"]
    assert first_uri != second_uri
    assert second_uri.startswith("/root/tiny/run-2/use/ef01/")


def test_build_executor_input_does_not_change_the_upstream_result(launcher):
    upstream = make_result(launcher)
    before = copy.deepcopy(upstream.artifacts)
    use_input(launcher, result=upstream)
    assert upstream.artifacts == before


def test_build_executor_input_fails_on_a_pipeline_parameter_without_value(launcher):
    with pytest.raises(launcher.LaunchError, match="task use: pipeline parameter 'serving_dir'"):
        use_input(launcher, runtime={})


def test_substitute_fills_every_supported_placeholder(launcher):
    executor_input = use_input(launcher)
    executor_input["inputs"]["parameterValues"]["flag"] = True

    def sub(template):
        return launcher.substitute(template, executor_input)

    assert json.loads(sub("{{$}}")) == executor_input
    assert sub("--in={{$.inputs.artifacts['examples'].uri}}") == (
        "--in=/root/tiny/run-0/make/1234/out"
    )
    assert sub("{{$.inputs.artifacts['examples'].path}}") == "/root/tiny/run-0/make/1234/out"
    assert sub("{{$.outputs.artifacts['model'].uri}}") == "/root/tiny/run-1/use/abcd/model"
    assert sub("{{$.inputs.parameters['serving_dir']}}") == "/srv"
    assert sub("t={{$.inputs.parameters['threshold']}}") == "t=0.5"
    assert sub("{{$.inputs.parameters['flag']}}") == "true"
    assert sub("{{$.outputs.parameters['accuracy'].output_file}}") == (
        "/root/tiny/run-1/use/abcd/parameters/accuracy"
    )
    assert sub("plain --arg") == "plain --arg"


@pytest.mark.parametrize(
    "template",
    [
        "{{$.pipeline_job_name}}",
        "{{$.inputs.parameters['missing']}}",
        "x={{$.outputs.artifacts['model'].metadata}}",
    ],
)
def test_substitute_rejects_an_unknown_placeholder(launcher, template):
    with pytest.raises(launcher.LaunchError, match="placeholder .* is not implemented"):
        launcher.substitute(template, use_input(launcher))


def test_cache_key_depends_on_inputs_not_on_fresh_output_uris(launcher):
    executor = container("python", "-c", "pass")["container"]
    base = use_input(launcher)
    key = launcher.cache_key(executor, base)

    assert launcher.cache_key(copy.deepcopy(executor), copy.deepcopy(base)) == key
    other_run = use_input(launcher, task_root="/root/tiny/run-9/use/9999")
    assert launcher.cache_key(executor, other_run) == key

    changed_value = copy.deepcopy(base)
    changed_value["inputs"]["parameterValues"]["threshold"] = 0.6
    assert launcher.cache_key(executor, changed_value) != key

    changed_name = copy.deepcopy(base)
    changed_name["inputs"]["artifacts"]["examples"]["artifacts"][0]["name"] = "tiny/run-5/make/out"
    assert launcher.cache_key(executor, changed_name) != key

    changed_command = container("python", "-c", "print(1)")["container"]
    assert launcher.cache_key(changed_command, base) != key


def write_job(path, spec, pipeline_root) -> str:
    job = {"pipelineSpec": spec, "runtimeConfig": {"gcsOutputDirectory": str(pipeline_root)}}
    path.write_text(json.dumps(job))
    return str(path)


def test_load_pipeline_job_returns_spec_and_runtime_config(launcher, tmp_path):
    spec = chain_spec()
    path = write_job(tmp_path / "job.json", spec, tmp_path / "root")
    assert launcher.load_pipeline_job(path) == (
        spec,
        {"gcsOutputDirectory": str(tmp_path / "root")},
    )


def test_load_pipeline_job_takes_the_root_of_a_bare_spec(launcher, tmp_path):
    spec = chain_spec()
    spec["defaultPipelineRoot"] = str(tmp_path / "root")
    (tmp_path / "spec.yaml").write_text(json.dumps(spec))
    loaded, runtime_config = launcher.load_pipeline_job(str(tmp_path / "spec.yaml"))
    assert loaded == spec
    assert runtime_config == {"gcsOutputDirectory": str(tmp_path / "root")}


def test_load_pipeline_job_rejects_schema_2_0_naming_2_1(launcher, tmp_path):
    spec = chain_spec()
    spec["schemaVersion"] = "2.0.0"
    path = write_job(tmp_path / "job.json", spec, tmp_path / "root")
    with pytest.raises(launcher.LaunchError, match="2.1.0") as error:
        launcher.load_pipeline_job(path)
    assert "'2.0.0'" in str(error.value)


def test_load_pipeline_job_rejects_a_file_that_is_not_a_spec(launcher, tmp_path):
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(launcher.LaunchError, match="not a pipeline file"):
        launcher.load_pipeline_job(str(tmp_path / "list.yaml"))


def test_launch_needs_a_local_pipeline_root(launcher, tmp_path):
    path = write_job(tmp_path / "job.json", chain_spec(), "gs://bucket/root")
    with pytest.raises(launcher.LaunchError, match="local pipeline root"):
        launcher.launch(path, "run-1")


# Real subprocess runs: each task is `python -c SCRIPT {{$}}`.
PRODUCE = textwrap.dedent(
    """
    import json, os, sys
    executor_input = json.loads(sys.argv[1])
    out = executor_input["outputs"]["artifacts"]["digits"]["artifacts"][0]
    os.makedirs(out["uri"])
    with open(os.path.join(out["uri"], "data.txt"), "w") as f:
        f.write(executor_input["inputs"]["parameterValues"]["word"])
    output = {"artifacts": {"digits": {"artifacts": [{"metadata": {"count": 7}}]}}}
    with open(executor_input["outputs"]["outputFile"], "w") as f:
        json.dump(output, f)
    """
)
CONSUME = textwrap.dedent(
    """
    import json, os, sys
    executor_input = json.loads(sys.argv[1])
    digits = executor_input["inputs"]["artifacts"]["digits"]["artifacts"][0]
    with open(os.path.join(digits["uri"], "data.txt")) as f:
        word = f.read()
    out = executor_input["outputs"]["artifacts"]["report"]["artifacts"][0]
    os.makedirs(out["uri"])
    seen = {"uri": digits["uri"], "metadata": digits["metadata"], "word": word}
    with open(os.path.join(out["uri"], "seen.json"), "w") as f:
        json.dump(seen, f)
    output = {"artifacts": {"report": {"artifacts": [{"metadata": {"ok": 1}}]}}}
    with open(executor_input["outputs"]["outputFile"], "w") as f:
        json.dump(output, f)
    """
)
STAMP = textwrap.dedent(
    """
    import json, os, sys
    out = json.loads(sys.argv[1])["outputs"]["artifacts"]["stamp"]["artifacts"][0]
    os.makedirs(out["uri"])
    open(os.path.join(out["uri"], "stamp"), "w").close()
    """
)
FAIL = "import sys; print('something broke', file=sys.stderr); sys.exit(3)"


def runnable_spec(consume_script=CONSUME) -> dict:
    """produce -> consume (both cached) and stamp (never cached)."""

    def outputs(key):
        return {"outputDefinitions": {"artifacts": {key: {"artifactType": ARTIFACT_TYPE}}}}

    return pipeline_spec(
        tasks={
            "produce": task(
                "produce",
                inputs={"parameters": {"word": {"componentInputParameter": "word"}}},
                cachingOptions={"enableCache": True},
            ),
            "consume": task(
                "consume",
                inputs={"artifacts": {"digits": artifact_from("produce", "digits")}},
                cachingOptions={"enableCache": True},
            ),
            "stamp": task("stamp", cachingOptions={"enableCache": False}),
        },
        components={
            "produce": {
                "executorLabel": "exec-produce",
                "inputDefinitions": {"parameters": {"word": {"parameterType": "STRING"}}},
                **outputs("digits"),
            },
            "consume": {
                "executorLabel": "exec-consume",
                "inputDefinitions": {"artifacts": {"digits": {"artifactType": ARTIFACT_TYPE}}},
                **outputs("report"),
            },
            "stamp": {"executorLabel": "exec-stamp", **outputs("stamp")},
        },
        executors={
            "exec-produce": container("python", "-c", PRODUCE, "{{$}}"),
            "exec-consume": container("python", "-c", consume_script, "{{$}}"),
            "exec-stamp": container("python", "-c", STAMP, "{{$}}"),
        },
        inputDefinitions={"parameters": {"word": {"parameterType": "STRING"}}},
    )


def write_runnable_job(tmp_path, spec) -> str:
    root = tmp_path / "pipeline_root"
    job = {
        "pipelineSpec": spec,
        "runtimeConfig": {"gcsOutputDirectory": str(root), "parameterValues": {"word": "seven"}},
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    return str(tmp_path / "job.json")


def test_launch_runs_tasks_in_order_and_passes_artifacts_then_caches(launcher, tmp_path, capsys):
    path = write_runnable_job(tmp_path, runnable_spec())

    first = launcher.launch(path, "run-1")

    assert {name: result.state for name, result in first.items()} == {
        "produce": "executed",
        "consume": "executed",
        "stamp": "executed",
    }
    digits = first["produce"].artifacts["digits"]
    assert digits["uri"].startswith(str(tmp_path / "pipeline_root" / "tiny" / "run-1" / "produce"))
    assert digits["metadata"] == {"count": 7}
    report = first["consume"].artifacts["report"]
    with open(os.path.join(report["uri"], "seen.json")) as source:
        seen = json.load(source)
    assert seen == {"uri": digits["uri"], "metadata": {"count": 7}, "word": "seven"}
    assert report["metadata"] == {"ok": 1}
    printed = capsys.readouterr().out
    assert "Run run-1 of pipeline tiny: 3 tasks" in printed
    assert f"digits: {digits['uri']}  [count=7]" in printed

    second = launcher.launch(path, "run-2")

    assert {name: result.state for name, result in second.items()} == {
        "produce": "cached",
        "consume": "cached",
        "stamp": "executed",
    }
    assert second["consume"].artifacts["report"]["uri"] == report["uri"]
    assert second["stamp"].artifacts["stamp"]["uri"] != first["stamp"].artifacts["stamp"]["uri"]
    assert "run-2" in second["stamp"].artifacts["stamp"]["uri"]

    third = launcher.launch(path, "run-3", use_cache=False)
    assert {result.state for result in third.values()} == {"executed"}


def test_launch_reruns_a_cached_task_whose_outputs_are_gone(launcher, tmp_path, capsys):
    path = write_runnable_job(tmp_path, runnable_spec())
    first = launcher.launch(path, "run-1")
    os.rename(
        first["consume"].artifacts["report"]["uri"], str(tmp_path / "moved")
    )  # a cleaned-up pipeline root
    second = launcher.launch(path, "run-2")
    assert second["produce"].state == "cached"
    assert second["consume"].state == "executed"


def test_launch_names_the_failed_task_and_its_log(launcher, tmp_path, capsys):
    path = write_runnable_job(tmp_path, runnable_spec(consume_script=FAIL))
    with pytest.raises(launcher.LaunchError, match="task consume failed") as error:
        launcher.launch(path, "run-1")
    message = str(error.value)
    assert "exit code 3" in message
    assert "something broke" in message  # the end of the log
    log_path = message.split("log: ")[1].split("\n")[0]
    assert os.path.isfile(log_path)
    assert log_path.startswith(str(tmp_path / "pipeline_root" / "tiny" / "run-1" / "consume"))
    with open(log_path) as log:
        assert "something broke" in log.read()
