"""The compiled KFP v2 pipeline, checked with KFP's own protos. No cluster needed."""

import json
import pathlib

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

import local_runner
from pipeline import config as pipeline_config
from pipeline.pipeline import create_pipeline
from tests import expected

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _spec(path) -> pipeline_spec_pb2.PipelineSpec:
    job = json.loads(pathlib.Path(path).read_text())
    return json_format.ParseDict(
        job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=True
    )


def _local_edges(tmp_path) -> set[tuple[str, str]]:
    layout = local_runner.OutputLayout(str(tmp_path))
    pipeline = create_pipeline(
        pipeline_root=layout.pipeline_root,
        serving_model_dir=layout.serving_model_dir,
        mnist_dir=pipeline_config.DEFAULT_MNIST_DIR,
        tfds_data_dir=layout.tfds_data_dir,
        schema_file=pipeline_config.SCHEMA_FILE,
        user_code=pipeline_config.UserCode.module_files(),
        config=pipeline_config.PipelineConfig(),
    )
    return {
        (upstream.id, component.id)
        for component in pipeline.components
        for upstream in component.upstream_nodes
    }


def test_every_component_is_a_container_task_and_nothing_else(compiled_file):
    spec = _spec(compiled_file)
    assert set(spec.root.dag.tasks) == expected.COMPONENTS
    executors = spec.deployment_spec.fields["executors"].struct_value.fields
    kinds = {label: set(executor.struct_value.fields) for label, executor in executors.items()}
    assert all(kind == {"container"} for kind in kinds.values()), kinds
    assert "resolver" not in compiled_file.read_text()


def test_spec_is_schema_2_1(compiled_file):
    spec = _spec(compiled_file)
    assert spec.schema_version == "2.1.0"
    trainer = spec.components["Trainer"].input_definitions.parameters["custom_config"]
    assert trainer.parameter_type == pipeline_spec_pb2.ParameterType.STRING


def test_only_latest_release_is_never_cached(compiled_file):
    tasks = _spec(compiled_file).root.dag.tasks
    uncached = {name for name, task in tasks.items() if not task.caching_options.enable_cache}
    assert uncached == {"LatestRelease"}


def test_dag_edges_match_the_local_pipeline(compiled_file, tmp_path):
    spec = _spec(compiled_file)
    compiled = {
        (upstream, name)
        for name, task in spec.root.dag.tasks.items()
        for upstream in task.dependent_tasks
    }
    assert compiled == _local_edges(tmp_path)


def test_image_project_dir_and_slice_flags_reach_the_spec(tmp_path, v2_runner, compile_args):
    path = tmp_path / "slice.json"
    flags = ["--image-project-dir=/srv/project", "--train-limit=2500", "--eval-holdout=500"]
    flags.append("--epochs=3")
    assert v2_runner.main([f"--output-file={path}", *compile_args, *flags]) == 0
    text = path.read_text()
    assert "/srv/project/schemas/schema.pbtxt" in text
    assert "/srv/project/data/mnist" in text
    assert '\\"max_epochs\\": 3' in text
    assert '"train_limit"' in text and "2500" in text


def test_image_threshold_and_beam_args_are_as_given(compiled_file):
    spec = _spec(compiled_file)
    executors = spec.deployment_spec.fields["executors"].struct_value.fields
    images = {
        executor.struct_value.fields["container"].struct_value.fields["image"].string_value
        for executor in executors.values()
        if "container" in executor.struct_value.fields
    }
    assert images == {"registry.example/mnist-tfx:1.2"}
    text = compiled_file.read_text()
    assert "0.975" in text
    assert "--runner=DataflowRunner" in text
    assert "pipeline.modules.trainer.mnist_trainer.run_fn" in text


def test_compiled_file_holds_no_path_of_this_machine(compiled_file):
    text = compiled_file.read_text()
    for local_path in (str(PROJECT_ROOT), "/tmp/", "_wheels", "/root/"):
        assert local_path not in text, local_path


def test_compiling_twice_gives_the_same_file(compiled_file, tmp_path, v2_runner, compile_args):
    again = tmp_path / "again.json"
    v2_runner.main([f"--output-file={again}", *compile_args])
    assert again.read_text() == compiled_file.read_text()


def test_yaml_form_is_the_bare_spec_that_kfp_loads(
    tmp_path, v2_runner, compile_args, compiled_file
):
    import yaml
    from kfp import components

    path = tmp_path / "mnist_pipeline.yaml"
    v2_runner.main([f"--output-file={path}", *compile_args])
    job = json.loads(compiled_file.read_text())
    spec = yaml.safe_load(path.read_text())
    assert spec.pop("defaultPipelineRoot") == job["runtimeConfig"]["gcsOutputDirectory"]
    assert spec == job["pipelineSpec"]
    assert not (tmp_path / "mnist_pipeline.yaml.json").exists()
    loaded = components.load_component_from_file(str(path))
    assert loaded.name == "mnist"
    assert set(loaded.pipeline_spec.root.dag.tasks) == expected.COMPONENTS


def test_every_task_runs_the_images_task_entrypoint_with_tfxs_arguments(compiled_file):
    job = json.loads(compiled_file.read_text())
    for label, executor in job["pipelineSpec"]["deploymentSpec"]["executors"].items():
        container = executor["container"]
        assert container["command"] == ["python", "/pipeline/kubeflow/task_entrypoint.py"], label
        assert container["args"][:2] == ["--executor_class_path", container["args"][1]]
        assert "--json_serialized_inputs_spec_args" in container["args"], label
    assert (PROJECT_ROOT / "kubeflow" / "task_entrypoint.py").is_file()


def test_paths_the_components_open_cannot_be_minio(v2_runner, tmp_path, capsys):
    for flags in (
        ["--serving-dir=minio://mlpipeline/serving"],
        ["--serving-dir=s3://b/serving"],  # the TFDS dir defaults to <minio root>/tfds
    ):
        argv = [
            f"--output-file={tmp_path / 'x.json'}",
            "--pipeline-root=minio://mlpipeline/v2/artifacts",
            *flags,
        ]
        with pytest.raises(SystemExit):
            v2_runner.main(argv)
        assert "no minio:// filesystem" in capsys.readouterr().err


def test_spans_listing_is_never_cached_and_feeds_the_reader_a_parameter(
    tmp_path, v2_runner, compile_args
):
    path = tmp_path / "spans.json"
    argv = [f"--output-file={path}", *compile_args, "--spans-dir=gs://bucket/mnist/spans"]
    assert v2_runner.main(argv) == 0
    tasks = _spec(path).root.dag.tasks
    uncached = {name for name, task in tasks.items() if not task.caching_options.enable_cache}
    assert uncached == {"LatestRelease", "SpanListing"}
    listing = tasks["MnistExampleGen"].inputs.parameters["span_listing"]
    assert listing.task_output_parameter.producer_task == "SpanListing"
    assert listing.task_output_parameter.output_parameter_key == "listing"
    assert "SpanListing" in tasks["MnistExampleGen"].dependent_tasks
    spans_dir = tasks["SpanListing"].inputs.parameters["spans_dir"]
    assert spans_dir.runtime_value.constant.string_value == "gs://bucket/mnist/spans"


def test_a_warm_start_compiles_to_an_uncached_task_feeding_the_trainer(
    tmp_path, v2_runner, compile_args
):
    path = tmp_path / "warm.json"
    assert v2_runner.main([f"--output-file={path}", *compile_args, "--warm-start"]) == 0
    tasks = _spec(path).root.dag.tasks
    uncached = {name for name, task in tasks.items() if not task.caching_options.enable_cache}
    assert uncached == {"LatestRelease", "WarmStartModel"}
    base_model = tasks["Trainer"].inputs.artifacts["base_model"].task_output_artifact
    assert (base_model.producer_task, base_model.output_artifact_key) == (
        "WarmStartModel",
        "baseline_model",
    )
