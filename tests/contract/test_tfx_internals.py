"""One test per assumption `contract.tfx_internals` makes about TFX 1.16, tf-keras and CPython.

When an upgrade breaks one of them, the failure is here, named after it.
"""

import inspect
import logging
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.component.experimental.annotations import OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.components.base import base_driver, base_executor
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor
from tfx.orchestration.local import local_dag_runner
from tfx.types import standard_artifacts

from contract import tfx_internals
from tests.conftest import PROJECT_ROOT


@component
def TinyComponent(  # noqa: N802 (a TFX component for the tests below)
    examples: OutputArtifact[standard_artifacts.Examples], count: Parameter[int] = 1
) -> None:
    del examples, count


@component
def TinyRun(  # noqa: N802 (a TFX component without a driver, for the registration test)
    examples: OutputArtifact[standard_artifacts.Examples],
) -> None:
    del examples


class TinyDriver(base_driver.BaseDriver):
    """A driver class to declare."""


def _record(message: str, *args) -> logging.LogRecord:
    return logging.LogRecord("absl", logging.INFO, __file__, 1, message, args, None)


def test_local_dag_runner_logs_the_format_strings_the_console_matches():
    source = inspect.getsource(local_dag_runner)
    assert f"'{tfx_internals.LOCAL_DAG_RUNNER_STARTED}', node_id" in source
    assert f"'{tfx_internals.LOCAL_DAG_RUNNER_FINISHED}', node_id" in source
    assert tfx_internals.component_event(
        _record(tfx_internals.LOCAL_DAG_RUNNER_STARTED, "Trainer")
    ) == ("started", "Trainer")
    assert tfx_internals.component_event(
        _record(tfx_internals.LOCAL_DAG_RUNNER_FINISHED, "Pusher")
    ) == ("finished", "Pusher")
    assert tfx_internals.component_event(_record("Component Trainer is running.")) is None


def test_make_pipeline_proto_compiles_and_the_run_id_is_substituted(tmp_path):
    pipeline = tfx_pipeline.Pipeline(
        pipeline_name="tiny", pipeline_root=str(tmp_path), components=[TinyComponent()]
    )
    pipeline_ir = tfx_internals.compile_with_run_id(pipeline, "run-42")
    assert pipeline_ir.pipeline_info.id == "tiny"
    assert "run-42" in str(pipeline_ir.runtime_spec.pipeline_run_id)
    assert "RuntimeParameter" not in str(pipeline_ir.runtime_spec.pipeline_run_id)


def test_kubeflow_v2_executor_has_the_main_and_flag_parser_used():
    args, beam_args = kubeflow_v2_run_executor._parse_flags(  # noqa: SLF001 (the assumption)
        [
            "prog",
            "--executor_class_path=a.B",
            "--json_serialized_invocation_args={}",
            "--json_serialized_inputs_spec_args={}",
            "--runner=DirectRunner",
        ]
    )
    assert (args.executor_class_path, args.json_serialized_invocation_args) == ("a.B", "{}")
    assert args.json_serialized_inputs_spec_args == "{}"
    assert beam_args == ["prog", "--runner=DirectRunner"]  # absl hands the program name on
    assert list(inspect.signature(kubeflow_v2_run_executor.main).parameters) == ["parsed_argv"]


def test_the_kubeflow_v2_compiler_emits_the_task_command_replaced():
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    assert list(kubeflow_v2_dag_runner.KUBEFLOW_TFX_CMD) == (tfx_internals.KUBEFLOW_V2_TASK_COMMAND)


def test_an_executors_context_carries_the_pipeline_run_id():
    executor = pusher_executor.Executor(base_executor.BaseExecutor.Context(pipeline_run_id="run-7"))
    assert tfx_internals.pipeline_run_id(executor) == "run-7"
    assert tfx_internals.pipeline_run_id(pusher_executor.Executor()) is None


def test_pushers_mark_methods_set_tfxs_pushed_properties():
    executor = pusher_executor.Executor()
    pushed = standard_artifacts.PushedModel()
    tfx_internals.mark_pushed(executor, pushed, "/serving/7", "7")
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property("pushed_destination") == "/serving/7"
    assert pushed.get_string_custom_property("pushed_version") == "7"
    tfx_internals.mark_not_pushed(executor, pushed)
    assert pushed.get_int_custom_property("pushed") == 0


def test_the_infra_blessing_model_flag_is_tfxs():
    assert tfx_internals.INFRA_BLESSING_HAS_MODEL == (
        pusher_executor._INFRA_BLESSING_MODEL_FLAG_KEY  # noqa: SLF001 (the assumption)
    )


def test_a_component_class_takes_a_driver_and_is_found_again_by_its_type_name(tmp_path):
    tfx_internals.declare_driver(TinyComponent, TinyDriver, ("tests.contract",), lambda e: {})
    instance = TinyComponent()
    assert instance.driver_class is TinyDriver
    pipeline = tfx_pipeline.Pipeline(
        pipeline_name="tiny", pipeline_root=str(tmp_path), components=[instance]
    )
    (node,) = tfx_internals.compile_with_run_id(pipeline, "run-1").nodes

    class Info:
        pipeline_node = node.pipeline_node

    found = tfx_internals.component_class_of(Info)
    assert found is TinyComponent
    assert found.SOURCE_MODULES == ("tests.contract",)
    assert found.content_fingerprints({}) == {}


def test_keras_steps_run_without_autograph_and_still_train():
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(2)])
    model.compile(
        optimizer=tf.keras.optimizers.Adam(0.1),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    tfx_internals.skip_autograph_of_steps(model)
    assert tf.keras.__name__.startswith("tf_keras")
    x = np.array([[0.0, 1.0], [1.0, 0.0]] * 16, np.float32)
    y = np.array([0, 1] * 16)
    history = model.fit(x, y, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_exit_runs_atexit_handlers_then_exits_with_the_code():
    script = textwrap.dedent(
        """
        import atexit
        from contract import tfx_internals
        atexit.register(lambda: print("handler ran", flush=True))
        tfx_internals.exit_skipping_native_teardown(3)
        print("not reached")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout == "handler ran\n"


def test_a_fresh_process_gets_tf_keras_from_the_contract_package_alone():
    script = "import os, contract, tensorflow as tf; print(tf.keras.__name__)"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().startswith("tf_keras")


def _registered(store) -> dict[str, list]:
    """What a store holds that registration is about: types, and contexts with parents."""
    contexts = sorted(
        (
            context.type,
            context.name,
            tuple(p.name for p in store.get_parent_contexts_by_context(context.id)),
        )
        for context in store.get_contexts()
        if context.type in ("pipeline", "pipeline_run", "node")
    )
    return {
        "artifact types": sorted((t.name, t.id) for t in store.get_artifact_types()),
        "execution types": sorted((t.name, t.id) for t in store.get_execution_types()),
        "contexts": contexts,
    }


def test_registering_a_run_first_leaves_tfxs_launcher_nothing_to_register(tmp_path):
    from ml_metadata.metadata_store import metadata_store
    from tfx.orchestration import metadata

    config = metadata.sqlite_metadata_connection_config(str(tmp_path / "metadata.db"))
    pipeline = tfx_pipeline.Pipeline(
        pipeline_name="tiny",
        pipeline_root=str(tmp_path / "root"),
        components=[TinyRun()],
        metadata_connection_config=config,
    )
    pipeline_ir = tfx_internals.compile_with_run_id(pipeline, "run-7")
    tfx_internals.register_run_in_metadata(pipeline_ir, config)
    tfx_internals.register_run_in_metadata(pipeline_ir, config)  # idempotent
    store = metadata_store.MetadataStore(config)
    before = _registered(store)
    assert ("pipeline", "tiny", ()) in before["contexts"]
    assert ("pipeline_run", "run-7", ("tiny",)) in before["contexts"]
    assert ("node", "tiny.TinyRun", ()) in before["contexts"]
    assert "Examples" in dict(before["artifact types"])
    assert tfx_internals.PIPELINE_CONTEXT_TYPE == "pipeline"

    local_dag_runner.LocalDagRunner().run_with_ir(pipeline_ir)

    (execution,) = store.get_executions()
    assert execution.last_known_state == execution.COMPLETE
    assert _registered(store) == before, "TFX's launcher registered something not done first"
