"""The local KFP launcher on small hand-written specs: its pure functions, then real runs."""

import copy
import json
import textwrap

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from tests.kubeflow.conftest import _load, new_bucket, s3_client

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
                    "artifacts": {"out": {"artifactType": EXAMPLES_TYPE}},
                    "parameters": {"count": {"parameterType": "STRING"}},
                },
            },
            "use": {
                "executorLabel": "exec-use",
                "inputDefinitions": {
                    "artifacts": {"examples": {"artifactType": EXAMPLES_TYPE}},
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


EXAMPLES_TYPE = {"instanceSchema": "title: tfx.Examples\ntype: object\n"}
ROOT = "minio://mlpipeline/v2/artifacts"
MADE = {
    "uri": f"{ROOT}/tiny/run-0/make/1234/out",
    "type": EXAMPLES_TYPE,
    "metadata": {"rows": 12, "ok": True, "splits": ["a", "b"], "sizes": {"a": 1}},
}


def made(launcher, tmp_path):
    """A store holding `make`'s output, recorded as the launcher records it."""
    store = launcher.MetadataStore(str(tmp_path / "state"))
    artifact = copy.deepcopy(MADE)
    artifact["id"] = store.record("out", artifact, '{"Provider": "minio"}')
    return store, launcher.TaskResult({"out": artifact}, {"count": "12"}, "executed", 0.0)


def use_input(launcher, tmp_path, backend="oss", task_root=f"{ROOT}/tiny/run-1/use/abcd", **kw):
    runtime = kw.get("runtime", {"parameterValues": {"serving_dir": "/srv"}})
    store, result = made(launcher, tmp_path)
    mode = launcher.Backend(backend, kw.get("publish_logs", True), "/pod")
    return launcher.build_executor_input(
        consumer_spec(), runtime, "use", task_root, store, {"make": result}, mode
    )


def test_oss_inputs_come_back_from_ml_metadata_untyped_with_converted_metadata(launcher, tmp_path):
    executor_input = use_input(launcher, tmp_path)

    parsed = json_format.ParseDict(executor_input, pipeline_spec_pb2.ExecutorInput())
    (examples,) = parsed.inputs.artifacts["examples"].artifacts
    assert examples.name == "1"  # the ML Metadata id
    assert examples.type.instance_schema == ""  # GetOutputArtifactsByExecutionId: Schema ""
    assert examples.uri == MADE["uri"]
    metadata = executor_input["inputs"]["artifacts"]["examples"]["artifacts"][0]["metadata"]
    assert metadata == {
        "rows": 12.0,
        "ok": 1.0,  # a bool is stored as int 1, handed back as a number
        "splits": {"list": ["a", "b"]},
        "sizes": {"struct": {"a": 1}},
        "display_name": "out",
        "store_session_info": '{"Provider": "minio"}',
    }


def test_oss_outputs_follow_provision_outputs_with_the_log_artifact(launcher, tmp_path):
    executor_input = use_input(launcher, tmp_path)
    outputs = executor_input["outputs"]
    (model,) = outputs["artifacts"]["model"]["artifacts"]
    assert model["name"] == "model"
    assert model["uri"] == f"{ROOT}/tiny/run-1/use/abcd/model"
    (logs,) = outputs["artifacts"]["executor-logs"]["artifacts"]
    assert logs["type"] == {"schemaTitle": "system.Artifact"}
    assert logs["uri"] == f"{ROOT}/tiny/run-1/use/abcd/executor-logs"
    assert outputs["outputFile"] == (
        "/pod/minio/mlpipeline/v2/artifacts/tiny/run-1/use/abcd/output_metadata.json"
    )
    assert outputs["parameters"]["accuracy"]["outputFile"] == "/pod/tmp/kfp/outputs/accuracy"


def test_oss_before_2_5_has_no_log_artifact(launcher, tmp_path):
    executor_input = use_input(launcher, tmp_path, publish_logs=False)
    assert list(executor_input["outputs"]["artifacts"]) == ["model"]


def test_vertex_inputs_are_typed_and_keep_their_metadata(launcher, tmp_path):
    executor_input = use_input(launcher, tmp_path, backend="vertex", task_root="s3://b/r/use/1")
    (examples,) = executor_input["inputs"]["artifacts"]["examples"]["artifacts"]
    assert examples["type"] == EXAMPLES_TYPE
    assert examples["name"].endswith("/artifacts/1")
    assert examples["metadata"] == MADE["metadata"]
    assert list(executor_input["outputs"]["artifacts"]) == ["model"]
    assert executor_input["outputs"]["outputFile"] == "s3://b/r/use/1/executor_output.json"


def test_parameters_take_constants_runtime_values_defaults_and_upstream_outputs(launcher, tmp_path):
    values = use_input(launcher, tmp_path)["inputs"]["parameterValues"]
    assert values == {"threshold": 0.5, "serving_dir": "/srv", "epochs": 3, "count": "12"}
    runtime = {"parameterValues": {"serving_dir": "/s", "epochs": 9}}
    assert (
        use_input(launcher, tmp_path, runtime=runtime)["inputs"]["parameterValues"]["epochs"] == 9
    )
    with pytest.raises(launcher.LaunchError, match="task use: pipeline parameter 'serving_dir'"):
        use_input(launcher, tmp_path, runtime={})


def test_a_null_metadata_value_cannot_be_recorded(launcher, tmp_path):
    store = launcher.MetadataStore(str(tmp_path))
    with pytest.raises(launcher.LaunchError, match="unsupported value type"):
        store.record("out", {"uri": "s3://b/k", "type": {}, "metadata": {"x": None}}, "{}")


@pytest.mark.parametrize(
    ("root", "backend", "reason"),
    [
        ("/tmp/root", "oss", "unsupported Cloud bucket"),
        ("file:///tmp/root", "oss", "unsupported Cloud bucket"),
        ("mem://bucket/root", "oss", "unsupported Cloud bucket"),
        ("gs://bucket/root", "oss", "no GCS server"),
        ("minio://bucket/root", "vertex", "gs:// roots only"),
        ("/tmp/root", "vertex", "gs:// roots only"),
    ],
)
def test_pipeline_roots_the_backend_refuses(launcher, root, backend, reason):
    with pytest.raises(launcher.LaunchError, match=reason):
        launcher.check_pipeline_root(root, backend)


def test_pipeline_roots_the_backend_takes(launcher):
    launcher.check_pipeline_root("minio://mlpipeline/v2/artifacts", "oss")
    launcher.check_pipeline_root("s3://bucket/root", "oss")
    launcher.check_pipeline_root("s3://bucket/root", "vertex")


def test_substitute_fills_every_supported_placeholder(launcher, tmp_path):
    executor_input = use_input(launcher, tmp_path)
    executor_input["inputs"]["parameterValues"]["flag"] = True
    mode = launcher.Backend("oss", True, "/pod")

    def sub(template):
        return launcher.substitute(template, executor_input, mode)

    assert json.loads(sub("{{$}}")) == executor_input
    assert sub("--in={{$.inputs.artifacts['examples'].uri}}") == f"--in={MADE['uri']}"
    assert sub("{{$.inputs.artifacts['examples'].path}}") == (
        "/pod/minio/mlpipeline/v2/artifacts/tiny/run-0/make/1234/out"
    )
    assert sub("{{$.outputs.artifacts['model'].uri}}") == f"{ROOT}/tiny/run-1/use/abcd/model"
    assert sub("{{$.inputs.parameters['serving_dir']}}") == "/srv"
    assert sub("t={{$.inputs.parameters['threshold']}}") == "t=0.5"
    assert sub("e={{$.inputs.parameters['epochs']}}") == "e=3"
    assert sub("{{$.inputs.parameters['flag']}}") == "true"
    assert sub("{{$.outputs.parameters['accuracy'].output_file}}") == (
        "/pod/tmp/kfp/outputs/accuracy"
    )


@pytest.mark.parametrize(
    "template",
    [
        "{{$.pipeline_job_name}}",
        "{{$.inputs.parameters['missing']}}",
        "x={{$.outputs.artifacts['model'].metadata}}",
    ],
)
def test_substitute_rejects_an_unknown_placeholder(launcher, tmp_path, template):
    with pytest.raises(launcher.LaunchError, match="placeholder .* is not implemented"):
        launcher.substitute(template, use_input(launcher, tmp_path), launcher.Backend())


def test_cache_key_depends_on_inputs_not_on_fresh_output_uris(launcher, tmp_path):
    executor = container("python", "-c", "pass")["container"]
    base = use_input(launcher, tmp_path)
    key = launcher.cache_key(executor, base)

    assert launcher.cache_key(copy.deepcopy(executor), copy.deepcopy(base)) == key
    other_run = use_input(launcher, tmp_path, task_root=f"{ROOT}/tiny/run-9/use/9999")
    assert launcher.cache_key(executor, other_run) == key

    changed_value = copy.deepcopy(base)
    changed_value["inputs"]["parameterValues"]["threshold"] = 0.6
    assert launcher.cache_key(executor, changed_value) != key

    changed_name = copy.deepcopy(base)
    changed_name["inputs"]["artifacts"]["examples"]["artifacts"][0]["name"] = "2"
    assert launcher.cache_key(executor, changed_name) != key

    changed_command = container("python", "-c", "print(1)")["container"]
    assert launcher.cache_key(changed_command, base) != key


def test_tasks_get_the_images_environment_not_the_callers(launcher, monkeypatch):
    monkeypatch.setenv("CALLER_ONLY", "1")
    monkeypatch.delenv("PIP_NO_CACHE_DIR", raising=False)
    image_env = launcher.image_environment(launcher.DEFAULT_DOCKERFILE)
    assert image_env["PIP_NO_CACHE_DIR"] == "1"  # kubeflow/Dockerfile's ENV
    assert image_env["PYTHONUNBUFFERED"] == "1"
    spec_env = {"env": [{"name": "FROM_SPEC", "value": "2"}]}
    environment = launcher.task_environment(spec_env, image_env, {"POD": "3"}, "/pod/root")
    assert "CALLER_ONLY" not in environment
    assert environment["PIP_NO_CACHE_DIR"] == "1"
    assert (environment["FROM_SPEC"], environment["POD"], environment["HOME"]) == (
        "2",
        "3",
        "/pod/root",
    )


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


def test_a_json_job_keeps_exponent_floats_numbers(launcher, tmp_path):
    # YAML 1.1 (PyYAML) reads `1e-06` as a string; the backend reads the JSON as JSON.
    job = {
        "pipelineSpec": chain_spec(),
        "runtimeConfig": {"gcsOutputDirectory": "s3://b/r", "parameterValues": {"p": 1e-06}},
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    _, runtime_config = launcher.load_pipeline_job(str(tmp_path / "job.json"))
    assert runtime_config["parameterValues"]["p"] == 1e-06


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


# Real subprocess runs against the S3 server: each task is `python -c SCRIPT {{$}} PATHS`.
PRODUCE = textwrap.dedent(
    """
    import json, os, sys
    executor_input = json.loads(sys.argv[1])
    out_path = sys.argv[2]
    os.makedirs(out_path)
    with open(os.path.join(out_path, "data.txt"), "w") as f:
        f.write(executor_input["inputs"]["parameterValues"]["word"])
    output = {"artifacts": {"digits": {"artifacts": [{"metadata": {"count": 7}}]}}}
    with open(executor_input["outputs"]["outputFile"], "w") as f:
        json.dump(output, f)
    print("produced")
    """
)
CONSUME = textwrap.dedent(
    """
    import json, os, sys
    executor_input = json.loads(sys.argv[1])
    in_path, out_path = sys.argv[2], sys.argv[3]
    digits = executor_input["inputs"]["artifacts"]["digits"]["artifacts"][0]
    with open(os.path.join(in_path, "data.txt")) as f:
        word = f.read()
    os.makedirs(out_path)
    seen = {"name": digits["name"], "metadata": digits["metadata"], "word": word,
            "caller_env": os.environ.get("CALLER_ONLY")}
    with open(os.path.join(out_path, "seen.json"), "w") as f:
        json.dump(seen, f)
    """
)
STAMP = "print('stamped')"
FAIL = "import sys; print('something broke', file=sys.stderr); sys.exit(3)"


def runnable_spec(consume_script=CONSUME) -> dict:
    """produce -> consume (both cached) and stamp (never cached)."""

    def outputs(key):
        return {"outputDefinitions": {"artifacts": {key: {"artifactType": ARTIFACT_TYPE}}}}

    digits_out = "{{$.outputs.artifacts['digits'].path}}"
    digits_in = "{{$.inputs.artifacts['digits'].path}}"
    report_out = "{{$.outputs.artifacts['report'].path}}"
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
            "exec-produce": container("python", "-c", PRODUCE, "{{$}}", digits_out),
            "exec-consume": container(
                "python", "-c", consume_script, "{{$}}", digits_in, report_out
            ),
            "exec-stamp": container("python", "-c", STAMP),
        },
        inputDefinitions={"parameters": {"word": {"parameterType": "STRING"}}},
    )


def write_runnable_job(tmp_path, spec, root) -> str:
    job = {
        "pipelineSpec": spec,
        "runtimeConfig": {"gcsOutputDirectory": root, "parameterValues": {"word": "seven"}},
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    return str(tmp_path / "job.json")


@pytest.fixture
def minio_root(s3_endpoint):
    return f"minio://{new_bucket(s3_endpoint)}/v2/artifacts"


def test_launch_moves_artifacts_through_the_store_then_caches(
    launcher, tmp_path, s3_endpoint, minio_root, capsys, monkeypatch
):
    monkeypatch.setenv("CALLER_ONLY", "leaks")
    path = write_runnable_job(tmp_path, runnable_spec(), minio_root)
    state = str(tmp_path / "state")

    first = launcher.launch(path, "run-1", state_dir=state, s3_endpoint=s3_endpoint)

    assert {name: result.state for name, result in first.items()} == {
        "produce": "executed",
        "consume": "executed",
        "stamp": "executed",
    }
    digits = first["produce"].artifacts["digits"]
    assert digits["uri"].startswith(f"{minio_root}/tiny/run-1/produce/")
    assert digits["metadata"] == {"count": 7}
    bucket = minio_root.split("/")[2]
    client = s3_client(s3_endpoint)
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(key.endswith("/digits/data.txt") for key in keys)  # uploaded after the task
    report_key = next(key for key in keys if key.endswith("/report/seen.json"))
    seen = json.loads(client.get_object(Bucket=bucket, Key=report_key)["Body"].read())
    assert seen == {
        "name": str(digits["id"]),
        "metadata": {
            "count": 7.0,
            "display_name": "digits",
            "store_session_info": '{"Provider": "minio"}',
        },
        "word": "seven",  # downloaded before the command
        "caller_env": None,
    }
    logs_key = next(key for key in keys if "/produce/" in key and key.endswith("executor-logs"))
    assert b"produced" in client.get_object(Bucket=bucket, Key=logs_key)["Body"].read()
    assert "Run run-1 of pipeline tiny: 3 tasks" in capsys.readouterr().out

    second = launcher.launch(path, "run-2", state_dir=state, s3_endpoint=s3_endpoint)

    assert {name: result.state for name, result in second.items()} == {
        "produce": "cached",
        "consume": "cached",
        "stamp": "executed",
    }
    assert (
        second["consume"].artifacts["report"]["uri"] == first["consume"].artifacts["report"]["uri"]
    )
    assert "run-2" in second["stamp"].artifacts["stamp"]["uri"]

    third = launcher.launch(
        path, "run-3", state_dir=state, s3_endpoint=s3_endpoint, use_cache=False
    )
    assert {result.state for result in third.values()} == {"executed"}


def test_launch_refuses_a_local_pipeline_root_before_running_anything(launcher, tmp_path, capsys):
    path = write_runnable_job(tmp_path, runnable_spec(), str(tmp_path / "root"))
    with pytest.raises(launcher.LaunchError, match="unsupported Cloud bucket"):
        launcher.launch(path, "run-1", state_dir=str(tmp_path / "state"))
    assert "Run " not in capsys.readouterr().out


def test_launch_names_the_failed_task_and_its_log(launcher, tmp_path, s3_endpoint, minio_root):
    path = write_runnable_job(tmp_path, runnable_spec(consume_script=FAIL), minio_root)
    with pytest.raises(launcher.LaunchError, match="task consume failed") as error:
        launcher.launch(path, "run-1", state_dir=str(tmp_path / "state"), s3_endpoint=s3_endpoint)
    message = str(error.value)
    assert "exit code 3" in message
    assert "something broke" in message  # the end of the log
    log_path = message.split("log: ")[1].split("\n")[0]
    with open(log_path) as log:
        assert "something broke" in log.read()
