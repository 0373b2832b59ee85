"""Compiles the MNIST pipeline for Kubeflow Pipelines (KFP v2 pipeline spec).

    python kubeflow/kubeflow_v2_runner.py --output-file mnist_pipeline.json \\
        --pipeline-root gs://BUCKET/mnist/root --serving-dir gs://BUCKET/mnist/serving \\
        --image REGISTRY/mnist-tfx-pipeline:TAG [--beam-args "--runner=DataflowRunner ..."]

Same `create_pipeline` as local_runner.py; only orchestration differs: the
runner class, the pipeline root, the container image, and user code that is
imported from the image (kubeflow/Dockerfile) instead of packaged from local
files, so the compiled file holds no path of the compiling machine.

The spec is PipelineSpec schema 2.1.0 (what the KFP 2.x SDK emits) and holds
container tasks only: the open-source KFP backend runs nothing else. Two
orchestration settings are added after TFX compiles: every task's command is
the image's kubeflow/task_entrypoint.py (TFX's executor, fed what a real KFP
backend sends: see that file), in place of TFX's own
`python -m ...kubeflow_v2_run_executor`, with the same arguments; and
LatestRelease is never cached, because what it reads (the serving directory)
is no input KFP can see; locally its driver puts the release into the cache
key instead.
`--image-project-dir` says where the project sits in the image (default
/pipeline); passing a checkout lets kubeflow/local_launcher.py run the same
file on this machine.
"""

import argparse
import json
import logging
import os
import shlex
import sys

import yaml
from tfx import v1 as tfx

from contract import tfx_internals
from pipeline import config as pipeline_config
from pipeline import run_flags
from pipeline.pipeline import create_pipeline

# Where kubeflow/Dockerfile puts the project inside the image.
IMAGE_PROJECT_DIR = "/pipeline"
IMAGE_SCHEMA_FILE = f"{IMAGE_PROJECT_DIR}/schemas/schema.pbtxt"
IMAGE_MNIST_DIR = f"{IMAGE_PROJECT_DIR}/data/mnist"
DEFAULT_IMAGE = "mnist-tfx-pipeline:latest"
NEVER_CACHED_TASKS = ("LatestRelease", "SpanListing", "WarmStartModel")
"""Tasks whose output depends on state outside the pipeline (the serving dir, the
spans folder); a task that is not in the spec (no --spans-dir, no --warm-start) is skipped."""
UNREADABLE_BY_COMPONENTS = ("minio://",)
"""Pipeline-root schemes that only the KFP launcher reads (it copies artifacts in and out)."""
TASK_ENTRYPOINT = "kubeflow/task_entrypoint.py"
"""The image's task command, relative to the project dir in the image."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses the compile flags."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--output-file",
        required=True,
        help="where to write: .json (TFX's pipeline job: spec + runtime config, for Vertex) "
        "or .yaml/.yml (the bare PipelineSpec, for the open-source KFP server)",
    )
    parser.add_argument("--pipeline-root", required=True, help="e.g. gs://BUCKET/mnist/root")
    parser.add_argument("--serving-dir", required=True, help="Pusher's base directory")
    parser.add_argument(
        "--image", default=DEFAULT_IMAGE, help="image built from kubeflow/Dockerfile"
    )
    parser.add_argument(
        "--tfds-data-dir", help="where TFDS keeps prepared MNIST (default: <pipeline-root>/tfds)"
    )
    parser.add_argument(
        "--image-project-dir",
        default=IMAGE_PROJECT_DIR,
        help="where the project sits in the image (default: /pipeline, as kubeflow/Dockerfile "
        "puts it); a checkout's path lets kubeflow/local_launcher.py run the file here",
    )
    parser.add_argument(
        "--mnist-dir",
        help="MNIST archives as seen by the container (default: <image-project-dir>/data/mnist)",
    )
    parser.add_argument(
        "--beam-args",
        default=None,
        help="Beam options for the Beam components, one string, passed through unchanged "
        "(default: the local DirectRunner settings)",
    )
    run_flags.add_run_flags(parser)
    args = parser.parse_args(argv)
    run_flags.check_run_flags(parser, args)
    tfds_data_dir = args.tfds_data_dir or f"{args.pipeline_root.rstrip('/')}/tfds"
    for flag, path in (("--serving-dir", args.serving_dir), ("--tfds-data-dir", tfds_data_dir)):
        if path.startswith(UNREADABLE_BY_COMPONENTS):
            parser.error(
                f"{flag} {path}: the components open this path themselves through tf.io.gfile, "
                "which has no minio:// filesystem; give an s3:// path (MinIO speaks S3: set "
                "S3_ENDPOINT in the pods) or gs:// (with a minio:// pipeline root, "
                "--tfds-data-dir and --serving-dir must be given)"
            )
    return args


def fix_parameter_producers(tasks: dict) -> list[str]:
    """Points each `taskOutputParameter` at its producer's real task name (in place).

    TFX 1.16's Kubeflow V2 compiler names the producer of a dynamic exec
    property `<component id>_task` (`tfx/orchestration/kubeflow/v2/
    step_builder.py`: `producer_task=channel.producer_component_id +
    '_task'`), while it names the task itself, and the consumer's
    `dependentTasks`, `<component id>`. KFP's driver looks `producerTask` up
    among the DAG's task names (backend/src/v2/driver), so the spec would
    fail on the consumer: SpanListing -> MnistExampleGen's `span_listing`
    (the strict launcher refuses it the same way). Returns the parameters
    fixed, as "task.parameter".
    """
    fixed = []
    for name, task in tasks.items():
        for key, parameter in task.get("inputs", {}).get("parameters", {}).items():
            source = parameter.get("taskOutputParameter")
            if not source or source["producerTask"] in tasks:
                continue
            producer = source["producerTask"].removesuffix("_task")
            if producer not in tasks:
                raise ValueError(f"{name}.{key}: no producer task {source['producerTask']!r}")
            source["producerTask"] = producer
            fixed.append(f"{name}.{key}")
    return fixed


def finish_spec(pipeline_file: str, never_cached: tuple[str, ...], project_dir: str) -> None:
    """Sets the task command, turns caching off for `never_cached` and fixes parameter
    producers (JSON job, in place)."""
    with open(pipeline_file) as source:
        job = json.load(source)
    spec = job["pipelineSpec"]
    fix_parameter_producers(spec["root"]["dag"]["tasks"])
    for name in never_cached:
        if name in spec["root"]["dag"]["tasks"]:
            spec["root"]["dag"]["tasks"][name]["cachingOptions"] = {"enableCache": False}
    for label, executor in spec["deploymentSpec"]["executors"].items():
        container = executor.get("container", {})
        if container.get("command") != tfx_internals.KUBEFLOW_V2_TASK_COMMAND:
            raise ValueError(f"{label}: unexpected command {container.get('command')}")
        container["command"] = ["python", f"{project_dir}/{TASK_ENTRYPOINT}"]
    with open(pipeline_file, "w") as out:
        json.dump(job, out, indent=2, sort_keys=True)


def compile_pipeline(args: argparse.Namespace) -> str:
    """Builds the pipeline and writes the KFP v2 spec; returns the file's path."""
    config = run_flags.build_config(args)
    project_dir = args.image_project_dir.rstrip("/")
    beam_args = (
        shlex.split(args.beam_args)
        if args.beam_args is not None
        else list(pipeline_config.default_beam_args(project_dir))
    )
    pipeline = create_pipeline(
        pipeline_root=args.pipeline_root,
        serving_model_dir=args.serving_dir,
        mnist_dir=args.mnist_dir or f"{project_dir}/data/mnist",
        tfds_data_dir=args.tfds_data_dir or f"{args.pipeline_root.rstrip('/')}/tfds",
        schema_file=f"{project_dir}/schemas/schema.pbtxt",
        user_code=pipeline_config.UserCode.import_paths(),
        config=config,
        beam_pipeline_args=beam_args,
        spans_dir=args.spans_dir,
    )
    output_file = os.path.abspath(args.output_file)
    as_yaml = output_file.endswith((".yaml", ".yml"))
    json_file = f"{output_file}.json" if as_yaml else output_file
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=args.image, use_pipeline_spec_2_1=True
        ),
        output_dir=os.path.dirname(json_file),
        output_filename=os.path.basename(json_file),
    )
    runner.run(pipeline)
    finish_spec(json_file, NEVER_CACHED_TASKS, project_dir)
    if as_yaml:
        with open(json_file) as source, open(output_file, "w") as out:
            yaml.safe_dump(job_to_pipeline_spec(json.load(source)), out, sort_keys=True)
        os.remove(json_file)
    return output_file


def job_to_pipeline_spec(job: dict) -> dict:
    """The YAML form: the bare PipelineSpec, with the pipeline root as its default.

    TFX writes a pipeline *job* (pipelineSpec + runtimeConfig); what the KFP
    SDK compiles, `kfp.components.load_component_from_file` loads and the
    open-source KFP server's upload takes is the bare PipelineSpec (IR YAML),
    whose `defaultPipelineRoot` carries the job's output directory.
    """
    spec = dict(job["pipelineSpec"])
    root = job.get("runtimeConfig", {}).get("gcsOutputDirectory")
    if root:
        spec["defaultPipelineRoot"] = root
    return spec


def main(argv: list[str] | None = None) -> int:
    """Compiles and prints where the spec went."""
    print(f"Compiled pipeline written to {compile_pipeline(parse_args(argv))}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main())
