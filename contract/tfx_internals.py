"""Every dependency on TFX (and tf-keras, CPython) behaviour that is not public API.

Each function here names the private API or undocumented behaviour it relies
on, for TFX 1.16 (tf-keras 2.16, CPython 3.11); `tests/contract/test_tfx_internals.py`
checks each assumption against the installed packages, so an upgrade that
breaks one fails there, loudly, in one place. Nothing else in the project
touches a private TFX name.

TensorFlow and TFX are imported inside the functions: the progress console
imports this module before TensorFlow is loaded.
"""

import atexit
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

LOCAL_DAG_RUNNER_STARTED = "Component %s is running."
LOCAL_DAG_RUNNER_FINISHED = "Component %s is finished."
"""The format strings LocalDagRunner logs around each component's launch
(`tfx/orchestration/local/local_dag_runner.py`, `_run_node`); the progress
console matches them on the log record, not on the text."""

KUBEFLOW_V2_TASK_COMMAND = [
    "python",
    "-m",
    "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor",
]
"""The container command TFX's Kubeflow V2 compiler gives every task
(`tfx/orchestration/kubeflow/v2/kubeflow_v2_dag_runner.py` `_KUBEFLOW_TFX_CMD`); the Kubeflow runner
replaces it with the project's task entrypoint, and refuses any other."""

INFRA_BLESSING_HAS_MODEL = "has_model"
"""The InfraBlessing custom property saying it holds a copy of the model
(`tfx/components/pusher/executor.py` `_INFRA_BLESSING_MODEL_FLAG_KEY`);
TFX's Pusher pushes that copy (with its warmup requests) instead of the model."""


def component_event(record: logging.LogRecord) -> tuple[str, str] | None:
    """("started" | "finished", component id) when `record` is LocalDagRunner's, else None."""
    if not record.args or not isinstance(record.args, tuple):
        return None
    if record.msg == LOCAL_DAG_RUNNER_STARTED:
        return "started", str(record.args[0])
    if record.msg == LOCAL_DAG_RUNNER_FINISHED:
        return "finished", str(record.args[0])
    return None


def compile_with_run_id(pipeline: Any, run_id: str) -> Any:
    """The pipeline's IR with the run id filled in, as `LocalDagRunner.run` builds it.

    `LocalDagRunner.run()` picks the run id itself when it starts; choosing it
    first lets the log file and the console name the run before it begins.
    Relies on `tfx.orchestration.portable.tfx_runner._make_pipeline_proto`
    (what `run()` calls, TFX 1.16) and on `run_with_ir()` leaving a filled
    run-id parameter alone.
    """
    from tfx.dsl.compiler import constants
    from tfx.orchestration.portable import runtime_parameter_utils, tfx_runner

    pipeline_ir = tfx_runner._make_pipeline_proto(pipeline)  # noqa: SLF001 (see docstring)
    runtime_parameter_utils.substitute_runtime_parameter(
        pipeline_ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id}
    )
    return pipeline_ir


PIPELINE_CONTEXT_TYPE = "pipeline"
"""The ML Metadata context type of a pipeline, named by the pipeline's name
(`tfx/dsl/compiler/constants.py` `PIPELINE_CONTEXT_TYPE_NAME`); each run's
`pipeline_run` context is its child."""


def register_run_in_metadata(pipeline_ir: Any, connection_config: Any) -> None:
    """Registers every context and type the run's nodes will, before the first node runs.

    LocalDagRunner's launcher registers a node's contexts when the node
    starts, its execution type when it records the execution and each
    output's artifact type when it publishes. Two runs doing that into one
    PostgreSQL store at the same moment can collide (a CI run saw "current
    transaction is aborted" at a component's start, which TFX does not
    retry). Done here first, with TFX's own functions on the compiled IR,
    the nodes then only find what exists. Idempotent. Relies on, in TFX 1.16:
    `tfx.orchestration.portable.mlmd.context_lib.prepare_contexts` and
    `common_utils.register_type_if_not_exist` (what the launcher calls), and
    on the IR's `nodes[].pipeline_node` carrying `contexts`, `node_info.type`
    and `outputs.outputs[].artifact_spec.type`.
    """
    from tfx.orchestration import metadata
    from tfx.orchestration.portable.mlmd import common_utils, context_lib

    with metadata.Metadata(connection_config) as handle:
        for node in pipeline_ir.nodes:
            pipeline_node = node.pipeline_node
            context_lib.prepare_contexts(handle, pipeline_node.contexts)
            common_utils.register_type_if_not_exist(handle, pipeline_node.node_info.type)
            for output in pipeline_node.outputs.outputs.values():
                common_utils.register_type_if_not_exist(handle, output.artifact_spec.type)


def run_kubeflow_v2_executor(argv: Sequence[str], then: Callable[[], None]) -> None:
    """Runs TFX's Kubeflow v2 container executor on `argv`, then `then()`.

    As `python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`
    does: absl's `app.run` with that module's `main` and its flag parser
    `_parse_flags` (private), which defines the executor's flags.
    """
    from absl import app
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    def run_then(parsed_argv: Any) -> None:
        kubeflow_v2_run_executor.main(parsed_argv)
        then()

    app.run(
        run_then,
        argv=[sys.argv[0], *argv],
        flags_parser=kubeflow_v2_run_executor._parse_flags,  # noqa: SLF001 (see docstring)
    )


def pipeline_run_id(executor: Any) -> str | None:
    """The run id TFX hands an executor (`BaseExecutor._context.pipeline_run_id`), if any."""
    context = getattr(executor, "_context", None)
    return context.pipeline_run_id if context is not None else None


def mark_pushed(executor: Any, pushed_model: Any, destination: str, version: str) -> None:
    """Marks a PushedModel pushed as TFX's Pusher does (`Executor._MarkPushed`)."""
    executor._MarkPushed(  # noqa: SLF001 (TFX's Pusher subclasses call it)
        pushed_model, pushed_destination=destination, pushed_version=version
    )


def mark_not_pushed(executor: Any, pushed_model: Any) -> None:
    """Marks a PushedModel not pushed as TFX's Pusher does (`Executor._MarkNotPushed`)."""
    executor._MarkNotPushed(pushed_model)  # noqa: SLF001 (TFX's Pusher subclasses call it)


def declare_driver(
    component_class: type,
    driver_class: type,
    source_modules: Sequence[str],
    content_fingerprints: Callable[[dict[str, Any]], dict[str, str]] | None = None,
) -> None:
    """Gives a `@component` class a custom driver and what the driver fingerprints.

    Relies on three TFX 1.16 behaviours: a `@component` function becomes a
    class whose class attributes can be set (`DRIVER_CLASS` is read when the
    pipeline compiles); the node's type name is that class's import path, so
    the driver finds it again (`FingerprintDriver.run`); and LocalDagRunner
    runs a node's custom driver before its cache look-up, with the exec
    properties the driver returns in the cache key. Kubeflow runs no driver.
    """
    component_class.DRIVER_CLASS = driver_class
    component_class.SOURCE_MODULES = tuple(source_modules)
    if content_fingerprints is not None:
        component_class.content_fingerprints = staticmethod(content_fingerprints)


def component_class_of(execution_info: Any) -> type:
    """The component class of the node a driver runs for (its type name is the class path)."""
    from tfx.utils import import_utils

    return import_utils.import_class_by_path(execution_info.pipeline_node.node_info.type.name)


def skip_autograph_of_steps(model: Any) -> None:
    """Traces a tf-keras model's train/test steps without AutoGraph conversion.

    tf-keras converts `Model.train_step` / `test_step` (overridable, but how
    `make_train_function` wraps them is not API) with AutoGraph on the first
    fit; their Python control flow depends only on Python values, so plain
    tracing gives the same graph, faster (benchmarks/README.md).
    """
    import tensorflow as tf

    model.train_step = tf.autograph.experimental.do_not_convert(model.train_step)
    model.test_step = tf.autograph.experimental.do_not_convert(model.test_step)


def exit_skipping_native_teardown(exit_code: int) -> None:
    """Exits after Python's own clean-up, skipping TensorFlow's native teardown.

    Runs the atexit handlers (logging, temp dirs, Beam) with CPython's private
    `atexit._run_exitfuncs`, then `os._exit`: everything is written and closed
    by then, and what is skipped is the C++ finalization of the loaded
    TensorFlow/TFX libraries (seconds of a cached rerun; benchmarks/README.md).
    """
    atexit._run_exitfuncs()  # noqa: SLF001 (see docstring)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
