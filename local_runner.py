"""Runs the MNIST pipeline on this machine: LocalDagRunner, Beam, SQLite MLMD.

    python local_runner.py [--output-dir DIR] [--accuracy-threshold X]
                           [--epochs N] [--mnist-dir DIR] [--beam-args "..."]

Everything lands under --output-dir: `pipeline/` (the pipeline root),
`metadata.db` (ML Metadata), `serving/mnist/<version>/` (released models)
and `tfds/` (TFDS's prepared copy of MNIST, reused across runs).
"""

import os

# TFX 1.16 needs tf-keras; this must be set before TensorFlow is first imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import argparse  # noqa: E402
import atexit  # noqa: E402
import dataclasses  # noqa: E402
import logging  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402

from tfx.orchestration import metadata  # noqa: E402
from tfx.orchestration.local.local_dag_runner import LocalDagRunner  # noqa: E402

from components import tfds_mnist  # noqa: E402
from pipeline import config as pipeline_config  # noqa: E402
from pipeline import run_flags, run_lock  # noqa: E402
from pipeline.config import OutputLayout  # noqa: E402
from pipeline.pipeline import create_pipeline  # noqa: E402
from reporting import run_summary  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses the runner's flags; defaults come from pipeline.config."""
    defaults = pipeline_config.PipelineConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output-dir", default="output", help="default: ./output")
    run_flags.add_run_flags(parser)
    parser.add_argument(
        "--mnist-dir",
        default=pipeline_config.DEFAULT_MNIST_DIR,
        help="folder with the four MNIST archives (default: data/mnist)",
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="without the archives in --mnist-dir, let TFDS download MNIST from the internet",
    )
    parser.add_argument("--tfds-data-dir", help="default: <output-dir>/tfds")
    parser.add_argument(
        "--extra-examples",
        metavar="DIR",
        help="folder of tf.Example TFRecord files (GZIP if *.gz, else plain) with `image` "
        "and `label` as in schemas/schema.pbtxt, added to the training data",
    )
    parser.add_argument(
        "--beam-args",
        help="Beam options for ExampleGen/StatisticsGen/Transform/Evaluator as one string, "
        'passed through unchanged (e.g. "--runner=FlinkRunner --flink_master=HOST:8081 '
        '--setup_file=./setup.py"); default: ' + " ".join(defaults.beam_pipeline_args),
    )
    args = parser.parse_args(argv)
    run_flags.check_run_flags(parser, args)
    if not args.download and not tfds_mnist.has_all_archives(args.mnist_dir):
        parser.error(
            f"--mnist-dir {args.mnist_dir} does not hold the four MNIST archives "
            f"({', '.join(tfds_mnist.ARCHIVE_NAMES)}); pass a folder that does, or --download"
        )
    if args.extra_examples is not None:
        problem = _extra_examples_problem(args.extra_examples)
        if problem:
            parser.error(f"--extra-examples {args.extra_examples}: {problem}")
    return args


def _extra_examples_problem(folder: str) -> str | None:
    """Why `folder` cannot be --extra-examples, or None."""
    if not os.path.isdir(folder):
        return "no such folder"
    files = [
        name
        for name in os.listdir(folder)
        if not name.startswith(".") and os.path.isfile(os.path.join(folder, name))
    ]
    if not any(_reads_as_tfrecord(os.path.join(folder, name)) for name in files):
        return f"holds no TFRecord files ({len(files)} files, none reads as one)"
    return None


def _reads_as_tfrecord(path: str) -> bool:
    """True if the file's first record reads as a TFRecord (GZIP if named *.gz)."""
    import tensorflow as tf

    compression = "GZIP" if path.endswith(".gz") else ""
    try:
        for _ in tf.data.TFRecordDataset(path, compression_type=compression).take(1):
            return True
    except tf.errors.OpError:
        return False
    return False


def run(args: argparse.Namespace) -> run_summary.RunSummary:
    """Builds and runs the pipeline, then reads its outcome from ML Metadata."""
    layout = OutputLayout(os.path.abspath(args.output_dir))
    config = run_flags.build_config(args)
    config = dataclasses.replace(
        config, data=dataclasses.replace(config.data, allow_download=args.download)
    )
    pipeline = create_pipeline(
        pipeline_root=layout.pipeline_root,
        serving_model_dir=layout.serving_model_dir,
        mnist_dir=os.path.abspath(args.mnist_dir),
        tfds_data_dir=os.path.abspath(args.tfds_data_dir or layout.tfds_data_dir),
        schema_file=pipeline_config.SCHEMA_FILE,
        user_code=pipeline_config.UserCode.module_files(),
        config=config,
        beam_pipeline_args=shlex.split(args.beam_args) if args.beam_args else None,
        extra_examples_dir=os.path.abspath(args.extra_examples) if args.extra_examples else None,
        metadata_connection_config=metadata.sqlite_metadata_connection_config(layout.metadata_path),
    )
    LocalDagRunner().run(pipeline)
    return run_summary.latest_run_summary(layout.metadata_path, config.pipeline_name)


def main(argv: list[str] | None = None) -> int:
    """Runs the pipeline and prints its summary.

    Exit code 0: this run's model is released (now, or by an earlier run);
    2: not blessed, nothing released; 1: the run failed, or another run holds
    the output directory; 130: interrupted (Ctrl-C).
    """
    args = parse_args(argv)
    try:
        with run_lock.hold(os.path.abspath(args.output_dir)):
            summary = run(args)
    except run_lock.OutputDirBusyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; a rerun resumes from the cache", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - turned into a message and exit code
        print(run_summary.explain_failure(error), file=sys.stderr)
        return 1
    print(summary.render())
    return 0 if summary.pushed else 2


def exit_skipping_native_teardown(exit_code: int) -> None:
    """Exits after Python's own clean-up, skipping TensorFlow's native teardown.

    Everything is written and closed by then (outputs, ML Metadata commits),
    and the atexit handlers (logging, temp dirs, Beam) still run. What is
    skipped is the C++ finalization of the loaded TensorFlow/TFX libraries,
    which took ~2.5 s of a ~11 s cached rerun (benchmarks/README.md).
    """
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("absl").setLevel(logging.INFO)
    exit_skipping_native_teardown(main())
