"""Runs the MNIST pipeline on this machine: LocalDagRunner, Beam, SQLite MLMD.

    python local_runner.py [--output-dir DIR] [--accuracy-threshold X]
                           [--epochs N] [--mnist-dir DIR] [--beam-args "..."]
                           [--verbose]

Everything lands under --output-dir: `pipeline/` (the pipeline root),
`metadata.db` (ML Metadata), `serving/mnist/<version>/` (released models),
`tfds/` (TFDS's prepared copy of MNIST, reused across runs), `logs/<run-id>.log`
(the run's full log) and `reports/<run-id>/index.html` (the run report).
The terminal shows a header, a line per component, the Trainer's epochs and
the summary; `--verbose` streams the full log instead.
"""

# ruff: noqa: E402 (the imports below follow quiet_library_startup on purpose)
import os

from reporting import console as run_console

# Before TensorFlow loads: its C++ start-up messages and library warnings are
# silenced at their source (see reporting.console).
run_console.quiet_library_startup()

import argparse
import contextlib
import dataclasses
import datetime
import logging
import re
import shlex
import signal
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

from tfx.orchestration import pipeline as tfx_pipeline
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

from components import tfds_mnist
from contract import locks, releases, tfx_internals
from contract import metadata_store as stores
from pipeline import config as pipeline_config
from pipeline import run_flags
from pipeline.config import OutputLayout
from pipeline.pipeline import create_pipeline
from reporting import run_summary
from reporting.metadata import node_state

PIPELINE_NAME_FORM = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
"""Pipeline names: no '.', which separates the name from a node's in ML Metadata."""


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
        "--metadata",
        metavar="URL",
        help="the ML Metadata store: sqlite:///PATH, or postgresql://USER@HOST:PORT/DBNAME for a "
        "store a team shares (password from the URL, PGPASSWORD or a passfile; create its "
        f"schema once with `{stores.INIT_COMMAND}`); default: <output-dir>/metadata.db",
    )
    parser.add_argument(
        "--pipeline-name",
        default=defaults.pipeline_name,
        help="the pipeline's name in ML Metadata (TFX's cache is keyed on it); in a store a "
        "team shares, each output dir runs under its own name, e.g. mnist-alice "
        f"(default: {defaults.pipeline_name})",
    )
    parser.add_argument(
        "--extra-examples",
        metavar="DIR",
        help="folder of tf.Example TFRecord files (GZIP if *.gz, else plain) with `image` "
        "and `label` as in schemas/schema.pbtxt, added to the training data",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="stream the full log (TFX, Beam, TensorFlow) to the terminal instead of progress "
        "lines; it is written to <output-dir>/logs/<run-id>.log either way",
    )
    parser.add_argument(
        "--beam-args",
        help="Beam options for ExampleGen/StatisticsGen/Transform/Evaluator as one string, "
        'passed through unchanged (e.g. "--runner=FlinkRunner --flink_master=HOST:8081 '
        '--setup_file=./setup.py"); default: ' + " ".join(defaults.beam_pipeline_args),
    )
    args = parser.parse_args(argv)
    run_flags.check_run_flags(parser, args)
    if args.metadata is not None:
        try:
            stores.parse(args.metadata)
        except stores.StoreError as error:
            parser.error(str(error))
    if not PIPELINE_NAME_FORM.fullmatch(args.pipeline_name):
        parser.error(
            f"--pipeline-name {args.pipeline_name!r}: use 1 to 63 lower-case letters, digits, "
            "'-' or '_', starting with a letter or digit"
        )
    if not args.download and not tfds_mnist.has_all_archives(args.mnist_dir):
        parser.error(
            f"--mnist-dir {args.mnist_dir} does not hold the four MNIST archives "
            f"({', '.join(tfds_mnist.ARCHIVE_NAMES)}); pass a folder that does, or --download"
        )
    if args.spans_dir and "://" not in args.spans_dir and not os.path.isdir(args.spans_dir):
        parser.error(f"--spans-dir {args.spans_dir}: no such folder")
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


def new_run_id() -> str:
    """A run id in LocalDagRunner's own format (local time, ISO 8601 with microseconds)."""
    return datetime.datetime.now().isoformat()


def run_with_id(pipeline: tfx_pipeline.Pipeline, run_id: str) -> None:
    """Runs the pipeline with LocalDagRunner under a run id chosen here (see tfx_internals).

    Every context and type the run will register in ML Metadata is registered
    first, in one step that retries lost races: two runs into one shared
    store then never collide mid-run (see `tfx_internals.register_run_in_metadata`).
    """
    pipeline_ir = tfx_internals.compile_with_run_id(pipeline, run_id)
    stores.retrying_races(
        lambda: tfx_internals.register_run_in_metadata(
            pipeline_ir, pipeline.metadata_connection_config
        )
    )
    LocalDagRunner().run_with_ir(pipeline_ir)


def run(args: argparse.Namespace, run_id: str | None = None) -> run_summary.RunSummary:
    """Builds and runs the pipeline, then reads its outcome from ML Metadata.

    Called with the output directory's lock held (`main`): pushes staged in
    the serving directory then belong to killed runs, and are removed first.
    """
    layout = OutputLayout(os.path.abspath(args.output_dir))
    config = run_config(args)
    for stale in releases.remove_staged(layout.serving_model_dir):
        logging.info("Removed the staged push of a run that is gone: %s", stale)
    pipeline = create_pipeline(
        pipeline_root=layout.pipeline_root,
        serving_model_dir=layout.serving_model_dir,
        mnist_dir=os.path.abspath(args.mnist_dir),
        tfds_data_dir=os.path.abspath(args.tfds_data_dir or layout.tfds_data_dir),
        schema_file=pipeline_config.SCHEMA_FILE,
        user_code=pipeline_config.UserCode.import_paths(),
        config=config,
        beam_pipeline_args=shlex.split(args.beam_args) if args.beam_args else None,
        extra_examples_dir=os.path.abspath(args.extra_examples) if args.extra_examples else None,
        spans_dir=_spans_dir(args.spans_dir),
        metadata_connection_config=stores.connection_config(stores.parse(metadata_of(args))),
    )
    run_id = run_id or new_run_id()
    run_with_id(pipeline, run_id)
    return run_summary.latest_run_summary(metadata_of(args), config.pipeline_name, run_id)


def metadata_of(args: argparse.Namespace) -> str:
    """The run's ML Metadata store: --metadata, else `<output-dir>/metadata.db`."""
    return args.metadata or OutputLayout(os.path.abspath(args.output_dir)).metadata_path


def _spans_dir(path: str | None) -> str | None:
    """The spans folder as the components get it: absolute, or an object store URI."""
    if not path:
        return None
    return path if "://" in path else os.path.abspath(path)


def run_config(args: argparse.Namespace) -> pipeline_config.PipelineConfig:
    """The PipelineConfig the flags ask for."""
    config = run_flags.build_config(args)
    return dataclasses.replace(
        config,
        pipeline_name=args.pipeline_name,
        data=dataclasses.replace(config.data, allow_download=args.download),
    )


def shared_store(args: argparse.Namespace) -> bool:
    """True when --metadata names a store other than the output dir's own metadata.db."""
    if args.metadata is None:
        return False
    store = stores.parse(args.metadata)
    own = OutputLayout(os.path.abspath(args.output_dir)).metadata_path
    return store.scheme != stores.SQLITE or os.path.abspath(store.path) != own


def store_owner(output_dir: str) -> str:
    """How a shared store names this output dir: `HOST:ABSOLUTE-PATH`."""
    return f"{socket.gethostname()}:{os.path.abspath(output_dir)}"


def header_lines(args: argparse.Namespace, run_id: str, log_path: str) -> list[str]:
    """What the run will do, in a few lines: where, on what data, against which bar."""
    config = run_config(args)
    limits = [
        f"{name} {value}"
        for name, value in (
            ("train limit", config.data.train_limit),
            ("test limit", config.data.test_limit),
        )
        if value
    ]
    shown = run_summary.shown_path
    data = f"MNIST archives in {shown(os.path.abspath(args.mnist_dir))}"
    if args.extra_examples:
        data += f" + extra examples in {shown(os.path.abspath(args.extra_examples))}"
    if args.spans_dir:
        window = f"newest {args.span_window}" if args.span_window else "all"
        data += f" + spans ({window}) in {shown(_spans_dir(args.spans_dir))}"
    data += f"; eval hold-out {config.data.eval_holdout_size}"
    if limits:
        data += f"; {', '.join(limits)}"
    return [
        f"MNIST pipeline run {run_id}",
        f"  output dir   {shown(os.path.abspath(args.output_dir))}",
        f"  data         {data}",
        f"  training     at most {config.trainer.max_epochs} epochs, early stopping",
        f"  release gate test accuracy >= {config.accuracy_threshold}, not worse than the "
        "newest release",
        f"  log          {shown(log_path)}",
        *([f"  metadata     {_store_line(args, config)}"] if args.metadata else []),
    ]


def _store_line(args: argparse.Namespace, config: pipeline_config.PipelineConfig) -> str:
    return f"{stores.parse(args.metadata).redacted()} (pipeline {config.pipeline_name})"


def write_run_report(
    output_dir: str, run_id: str, failure: str | None, metadata_url: str | None = None
) -> str:
    """Writes the run's HTML report; returns a line saying where (or why not)."""
    started = time.monotonic()
    try:
        from reporting import report

        path = report.write_report(os.path.abspath(output_dir), run_id, failure, metadata_url)
    except Exception as error:  # noqa: BLE001 - the run's outcome stands without its report
        logging.exception("run report not written")
        return f"Report: not written ({type(error).__name__}: {error})"
    seconds = time.monotonic() - started
    return f"Report: {run_summary.shown_path(path)} (written in {seconds:.1f} s)"


def main(argv: list[str] | None = None) -> int:
    """Runs the pipeline and prints its progress and summary.

    Exit code 0: this run's model is released (now, or by an earlier run);
    2: not blessed, nothing released; 1: the run failed, or another run holds
    the output directory; 130: interrupted (Ctrl-C).
    """
    args = parse_args(argv)
    output_dir = os.path.abspath(args.output_dir)
    run_id = new_run_id()
    log_path = os.path.join(OutputLayout(output_dir).logs_dir, f"{run_id}.log")
    try:
        with locks.hold_output_dir(output_dir):
            if args.metadata is not None:
                stores.open_store(args.metadata)  # before any work: say now if it cannot be used
            if shared_store(args):
                stores.claim_pipeline(args.metadata, args.pipeline_name, store_owner(output_dir))
            os.makedirs(os.path.dirname(log_path), exist_ok=True)
            if args.verbose:
                return _run_verbose(args, run_id, log_path)
            return _run_quiet(args, run_id, log_path)
    except (locks.OutputDirBusyError, stores.StoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _run_quiet(args: argparse.Namespace, run_id: str, log_path: str) -> int:
    """The default: progress lines on the terminal, everything else in the log."""
    metadata_path = metadata_of(args)
    pipeline_name = run_config(args).pipeline_name
    with run_console.output_to_log(log_path) as terminal:
        console = run_console.RunConsole(terminal)
        handlers = [
            run_console.log_file_handler(sys.stderr),
            run_console.ProgressHandler(
                console,
                lambda node_id: node_state(metadata_path, pipeline_name, run_id, node_id),
            ),
        ]
        with run_console.logging_to(handlers):
            for line in header_lines(args, run_id, log_path):
                console.line(line)
            exit_code, outcome, failure = _outcome(args, run_id)
            if failure is not None:
                console.component_failed()
            report_line = write_run_report(args.output_dir, run_id, failure, args.metadata)
            if failure is not None:
                console.error(failure)
                console.error(f"Log: {run_summary.shown_path(log_path)}")
                if exit_code == 1:
                    console.error("Last log lines:")
                    for line in run_console.relevant_log_lines(log_path):
                        console.error(f"  {line}")
            else:
                console.line(outcome.render(with_components=False))
                console.line(f"Log: {run_summary.shown_path(log_path)}")
            console.line(report_line)
    return exit_code


def _run_verbose(args: argparse.Namespace, run_id: str, log_path: str) -> int:
    """--verbose: the full log on stderr (as well as in the log file), then the summary."""
    with open(log_path, "a", encoding="utf-8") as log:
        handlers = [run_console.log_file_handler(sys.stderr), run_console.log_file_handler(log)]
        with run_console.logging_to(handlers):
            exit_code, outcome, failure = _outcome(args, run_id)
            report_line = write_run_report(args.output_dir, run_id, failure, args.metadata)
    if failure is not None:
        print(failure, file=sys.stderr)
        print(f"Log: {run_summary.shown_path(log_path)}", file=sys.stderr)
    else:
        print(outcome.render())
        print(f"Log: {run_summary.shown_path(log_path)}")
    print(report_line)
    return exit_code


class InterruptGuard(logging.Handler):
    """A Ctrl-C that code on its way swallowed still stops the run, at the next component.

    The first SIGINT raises KeyboardInterrupt where the main thread is, as
    Python's default handler does, and is remembered: if a library between
    there and the runner catches it and carries on, the next component that
    LocalDagRunner starts or finishes (its log record, see
    `tfx_internals.component_event`) raises it again.
    """

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.interrupted = False

    def on_sigint(self, signum: int, frame: Any) -> None:
        self.interrupted = True
        signal.default_int_handler(signum, frame)

    def emit(self, record: logging.LogRecord) -> None:
        if self.interrupted and tfx_internals.component_event(record) is not None:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """SIGINT handler and root-logger handler for the block (main thread only)."""
        try:
            previous = signal.signal(signal.SIGINT, self.on_sigint)
        except ValueError:  # not the main thread: signals cannot be handled here
            yield
            return
        logging.getLogger().addHandler(self)
        try:
            yield
        finally:
            logging.getLogger().removeHandler(self)
            signal.signal(signal.SIGINT, previous)


def _outcome(
    args: argparse.Namespace, run_id: str
) -> tuple[int, run_summary.RunSummary | None, str | None]:
    """Runs the pipeline: (exit code, summary if it finished, failure message if not)."""
    guard = InterruptGuard()
    try:
        with guard.installed():
            summary = run(args, run_id)
    except KeyboardInterrupt:
        return 130, None, "interrupted; a rerun resumes from the cache"
    except Exception as error:  # noqa: BLE001 - turned into a message and exit code
        logging.exception("pipeline run failed")
        return 1, None, run_summary.explain_failure(error)
    return (0 if summary.pushed else 2), summary, None


if __name__ == "__main__":
    tfx_internals.exit_skipping_native_teardown(main())
