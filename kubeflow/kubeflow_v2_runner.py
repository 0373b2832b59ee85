"""Compiles the MNIST pipeline for Kubeflow Pipelines (KFP v2 pipeline spec).

    python kubeflow/kubeflow_v2_runner.py --output-file mnist_pipeline.json \\
        --pipeline-root gs://BUCKET/mnist/root --serving-dir gs://BUCKET/mnist/serving \\
        --image REGISTRY/mnist-tfx-pipeline:TAG [--beam-args "--runner=DataflowRunner ..."]

Same `create_pipeline` as local_runner.py; only orchestration differs: the
runner class, the pipeline root, the container image, and user code that is
imported from the image (kubeflow/Dockerfile) instead of packaged from local
files, so the compiled file holds no path of the compiling machine.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402

import yaml  # noqa: E402
from tfx import v1 as tfx  # noqa: E402

from pipeline import config as pipeline_config  # noqa: E402
from pipeline.pipeline import create_pipeline  # noqa: E402

# Where kubeflow/Dockerfile puts the project inside the image.
IMAGE_PROJECT_DIR = "/pipeline"
IMAGE_SCHEMA_FILE = f"{IMAGE_PROJECT_DIR}/schemas/schema.pbtxt"
IMAGE_MNIST_DIR = f"{IMAGE_PROJECT_DIR}/data/mnist"
DEFAULT_IMAGE = "mnist-tfx-pipeline:latest"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses the compile flags."""
    defaults = pipeline_config.PipelineConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--output-file", required=True, help="pipeline spec to write: .json, or .yaml/.yml"
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
        "--mnist-dir",
        default=IMAGE_MNIST_DIR,
        help="MNIST archives as seen by the container (default: baked into the image)",
    )
    parser.add_argument(
        "--beam-args",
        default=None,
        help="Beam options for the Beam components, one string, passed through unchanged "
        "(default: the local DirectRunner settings)",
    )
    parser.add_argument("--accuracy-threshold", type=float, default=defaults.accuracy_threshold)
    return parser.parse_args(argv)


def compile_pipeline(args: argparse.Namespace) -> str:
    """Builds the pipeline and writes the KFP v2 spec; returns the file's path."""
    config = dataclasses.replace(
        pipeline_config.PipelineConfig(), accuracy_threshold=args.accuracy_threshold
    )
    beam_args = shlex.split(args.beam_args) if args.beam_args is not None else None
    pipeline = create_pipeline(
        pipeline_root=args.pipeline_root,
        serving_model_dir=args.serving_dir,
        mnist_dir=args.mnist_dir,
        tfds_data_dir=args.tfds_data_dir or f"{args.pipeline_root.rstrip('/')}/tfds",
        schema_file=IMAGE_SCHEMA_FILE,
        user_code=pipeline_config.UserCode.import_paths(),
        config=config,
        beam_pipeline_args=beam_args,
        exclude_candidate_from_baseline=False,
    )
    output_file = os.path.abspath(args.output_file)
    as_yaml = output_file.endswith((".yaml", ".yml"))
    json_file = f"{output_file}.json" if as_yaml else output_file
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=args.image),
        output_dir=os.path.dirname(json_file),
        output_filename=os.path.basename(json_file),
    )
    runner.run(pipeline)
    if as_yaml:
        # TFX writes JSON; the same document as YAML (KFP reads both).
        with open(json_file) as source, open(output_file, "w") as out:
            yaml.safe_dump(json.load(source), out, sort_keys=True)
        os.remove(json_file)
    return output_file


def main(argv: list[str] | None = None) -> int:
    """Compiles and prints where the spec went."""
    print(f"Compiled pipeline written to {compile_pipeline(parse_args(argv))}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main())
