"""AtomicPusher: TFX's Pusher, but a release directory appears whole or not at all.

TFX's filesystem Pusher copies the model straight into
`<base>/<version>/` (saved_model.pb last), so a run killed mid-copy leaves a
half-written version directory that a model server may try to load. This
executor lets TFX push into `<base>/.staging/<version>/` and then renames
the finished directory to `<base>/<version>/` in one step. Model servers
ignore `.staging` (it is not a version number).
"""

import os

import tensorflow as tf
from tfx.components.pusher import component as pusher_component
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

STAGING_DIR = ".staging"


class AtomicPusherExecutor(pusher_executor.Executor):
    """Stages the push, then renames it into place and records the final path."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 (TFX API)
        key = standard_component_specs.PUSH_DESTINATION_KEY
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[key], destination)
        base_directory = destination.filesystem.base_directory
        staging = os.path.join(base_directory, STAGING_DIR)
        destination.filesystem.base_directory = staging
        super().Do(
            input_dict,
            output_dict,
            {**exec_properties, key: proto_utils.proto_to_json(destination)},
        )

        pushed_model = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        if pushed_model.get_int_custom_property("pushed") != 1:
            return
        staged = pushed_model.get_string_custom_property("pushed_destination")
        version = pushed_model.get_string_custom_property("pushed_version")
        final = os.path.join(base_directory, version)
        if tf.io.gfile.exists(final):
            raise RuntimeError(f"release {final} already exists; the staged copy stays in {staged}")
        tf.io.gfile.rename(staged, final)
        pushed_model.set_string_custom_property("pushed_destination", final)
        if not tf.io.gfile.listdir(staging):
            tf.io.gfile.rmtree(staging)


class AtomicPusher(pusher_component.Pusher):
    """The TFX Pusher with AtomicPusherExecutor (same inputs, outputs, config)."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AtomicPusherExecutor)
