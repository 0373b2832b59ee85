"""The compiled KFP v2 pipeline, checked with KFP's own protos. No cluster needed."""

import json
import pathlib

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


def test_every_component_is_a_task(compiled_file):
    tasks = set(_spec(compiled_file).root.dag.tasks)
    components = set(expected.COMPONENTS)
    assert components <= tasks
    # KFP splits TFX's latest-blessed-model resolver into two query tasks.
    assert {t for t in tasks - components} == {
        "latest_blessed_model_resolver-model-resolver",
        "latest_blessed_model_resolver-model-blessing-resolver",
    }


def test_dag_edges_match_the_local_pipeline(compiled_file, tmp_path):
    spec = _spec(compiled_file)
    # KFP names the resolver's two query tasks "<resolver id>-model-resolver" etc.
    compiled = {
        (upstream.split("-")[0], name)
        for name, task in spec.root.dag.tasks.items()
        for upstream in task.dependent_tasks
    }
    local = {
        edge
        for edge in _local_edges(tmp_path)
        # Locally the baseline resolver also waits for the Trainer (it excludes
        # the candidate); KFP's built-in resolver needs no such input.
        if edge != ("Trainer", "latest_blessed_model_resolver")
    }
    assert compiled == local


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


def test_yaml_extension_writes_the_same_pipeline_as_yaml(
    tmp_path, v2_runner, compile_args, compiled_file
):
    import yaml

    path = tmp_path / "mnist_pipeline.yaml"
    v2_runner.main([f"--output-file={path}", *compile_args])
    assert yaml.safe_load(path.read_text()) == json.loads(compiled_file.read_text())
    assert not (tmp_path / "mnist_pipeline.yaml.json").exists()
