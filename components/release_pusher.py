"""ReleasePusher: TFX's Pusher, releasing a blessed model exactly once and whole.

It keeps TFX Pusher's contract: the same inputs (`model`, `model_blessing`,
`infra_blessing`), `push_destination` (a `PushDestination` with a filesystem
`base_directory`), the same blessing checks (an unblessed model or a failed
infra validation pushes nothing; with neither blessing it pushes, with TFX's
warning), the same choice of what to push (the model, or without one the
InfraBlessing's copy with its warmup requests), and the same PushedModel
properties (`pushed`, `pushed_destination`, `pushed_version`). It changes
how the copy lands:
1. If the newest release already holds this model (the fingerprint its
   manifest records equals the candidate's), nothing is copied: the
   PushedModel records `already_released = 1` with that version. If the
   newest release's manifest lists the model as withdrawn (rolled back from,
   `contract.rollback`), nothing is copied either, and the PushedModel's
   `reason` says so; a new release carries the withdrawn list forward.
2. Otherwise the model is copied into a staging directory unique to this
   push (`<base>/.staging/<version>-<random>`), with the release manifest
   (ReleaseManifest's draft plus version, time and run) and the model card
   (ModelCardGen's) in its `assets.extra/`, then renamed to `<base>/<version>`,
   so a version appears whole or not at all.
Versions are Unix seconds (TFX's UNIX_TIMESTAMP versioning), bumped past the
newest existing version. Cleaning up the staged pushes of killed runs is the
runner's job (it holds the output directory's lock), not this component's.
"""

import datetime
import json
import logging
import os
import time
import uuid
from typing import Any

import tensorflow as tf
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.types.experimental import simple_artifacts
from tfx.utils import io_utils, json_utils, proto_utils

from components.model_card import HTML_FILE, MARKDOWN_FILE
from components.release_manifest import MANIFEST_FILE, TRAIN_STATISTICS_NAME
from components.source_fingerprint import FingerprintDriver
from contract import evaluation as evaluation_results
from contract import faults, files, releases, rollback, tfx_internals

TFLITE_BLESSING_KEY = "tflite_blessing"
TFLITE_EVALUATION_KEY = "tflite_evaluation"
SPAN_BLESSING_KEY = "span_blessing"
SPAN_EVALUATION_KEY = "span_evaluation"
MANIFEST_KEY = "manifest"
MODEL_CARD_KEY = "model_card"


class ReleasePusherSpec(standard_component_specs.PusherSpec):
    """TFX's PusherSpec, plus the TFLite gate and the release's documents."""

    INPUTS = {
        **standard_component_specs.PusherSpec.INPUTS,
        TFLITE_BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing, optional=True),
        TFLITE_EVALUATION_KEY: ChannelParameter(
            type=standard_artifacts.ModelEvaluation, optional=True
        ),
        SPAN_BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing, optional=True),
        SPAN_EVALUATION_KEY: ChannelParameter(
            type=standard_artifacts.ModelEvaluation, optional=True
        ),
        standard_component_specs.EVALUATION_KEY: ChannelParameter(
            type=standard_artifacts.ModelEvaluation, optional=True
        ),
        MANIFEST_KEY: ChannelParameter(type=simple_artifacts.File, optional=True),
        MODEL_CARD_KEY: ChannelParameter(type=simple_artifacts.File, optional=True),
    }


def _single(input_dict: dict[str, list[types.Artifact]], key: str) -> types.Artifact | None:
    artifacts = input_dict.get(key) or []
    return artifacts[0] if artifacts else None


def filesystem_destination(exec_properties: dict[str, Any]) -> str:
    """The `base_directory` of the filesystem `push_destination`, as TFX's Pusher reads it.

    Raises:
      NotImplementedError: a destination other than a filesystem (TFX's Pusher
        raises the same for what it cannot push to).
    """
    destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination
    )
    kind = destination.WhichOneof("destination")
    if kind != "filesystem" or not destination.filesystem.base_directory:
        raise NotImplementedError(
            f"ReleasePusher pushes to a filesystem base_directory only, not {kind!r}"
        )
    return destination.filesystem.base_directory


def not_blessed_reason(input_dict: dict[str, list[types.Artifact]]) -> str:
    """Every gate's reason for refusing the candidate, in one line."""
    reasons = []
    for blessing_key, evaluation_key, what in (
        (
            standard_component_specs.MODEL_BLESSING_KEY,
            standard_component_specs.EVALUATION_KEY,
            "SavedModel",
        ),
        (TFLITE_BLESSING_KEY, TFLITE_EVALUATION_KEY, "TFLite"),
        (SPAN_BLESSING_KEY, SPAN_EVALUATION_KEY, "new-data test slice"),
    ):
        blessing = _single(input_dict, blessing_key)
        if blessing is None or blessing.get_int_custom_property("blessed") == 1:
            continue
        evaluation = _single(input_dict, evaluation_key)
        failures = evaluation_results.validation_failures(evaluation.uri) if evaluation else []
        reasons.append(f"{what}: " + ("; ".join(failures) or "the Evaluator did not bless it"))
    infra = _single(input_dict, standard_component_specs.INFRA_BLESSING_KEY)
    if infra is not None and infra.get_int_custom_property("blessed") != 1:
        reasons.append(f"serving check: {infra.get_string_custom_property('reason')}")
    return "not blessed: " + ("; ".join(reasons) or "a gate did not bless the model")


def next_version(serving_model_dir: str) -> int:
    """Unix seconds, or one past the newest release if that is not later."""
    newest = releases.newest_release(serving_model_dir)
    version = int(time.time())
    if newest is not None:
        version = max(version, newest.version + 1)
    while tf.io.gfile.exists(os.path.join(serving_model_dir, str(version))):
        version += 1
    return version


def read_documents(
    input_dict: dict[str, list[types.Artifact]],
) -> tuple[dict[str, Any], dict[str, str]]:
    """ReleaseManifest's draft ({} without one) and the files the release carries in
    `assets.extra` ({name: path}): ModelCardGen's card, the training statistics."""
    draft: dict[str, Any] = {}
    card_files = {}
    manifest = _single(input_dict, MANIFEST_KEY)
    if manifest is not None:
        with tf.io.gfile.GFile(os.path.join(manifest.uri, MANIFEST_FILE)) as source:
            draft = json.load(source)
        statistics = os.path.join(manifest.uri, TRAIN_STATISTICS_NAME)
        if tf.io.gfile.exists(statistics):  # the next run's drift baseline
            card_files[TRAIN_STATISTICS_NAME] = statistics
    card = _single(input_dict, MODEL_CARD_KEY)
    if card is not None:
        for name in (MARKDOWN_FILE, HTML_FILE):
            path = os.path.join(card.uri, name)
            if tf.io.gfile.exists(path):
                card_files[name] = path
    return draft, card_files


def final_manifest(
    draft: dict[str, Any],
    version: int,
    fingerprint: str,
    input_dict: dict[str, list[types.Artifact]],
    pipeline_run_id: str | None,
) -> dict[str, Any]:
    """The draft with what only the push knows: version, time, run, fingerprint, blessing."""
    manifest = dict(draft)
    manifest.update(
        version=version,
        model_fingerprint=fingerprint,
        released_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        pipeline_run_id=pipeline_run_id,
    )
    manifest.setdefault("baseline", None)
    lineage = dict(manifest.get("lineage") or {})
    for key, name in (
        (standard_component_specs.MODEL_KEY, "model"),
        (standard_component_specs.MODEL_BLESSING_KEY, "blessing"),
    ):
        artifact = _single(input_dict, key)
        if artifact is not None:
            lineage[name] = {"id": artifact.id, "uri": artifact.uri}
    manifest["lineage"] = lineage
    return manifest


def stage_release(
    model_dir: str, staging_dir: str, manifest: dict[str, Any], card_files: dict[str, str]
) -> None:
    """Copies the model, then its manifest and model card, then saved_model.pb.

    saved_model.pb last, as TFX does: a directory without it is no release,
    so no release exists without its manifest and card.
    """
    io_utils.copy_dir(model_dir, staging_dir, deny_regex_patterns=[r"saved_model\.pb"])
    releases.write_manifest(staging_dir, manifest)
    for name, path in card_files.items():
        io_utils.copy_file(path, os.path.join(staging_dir, files.EXTRA_DIR, name), overwrite=True)
    faults.pause(faults.RELEASE_MID_COPY)
    io_utils.copy_file(
        os.path.join(model_dir, files.SAVED_MODEL_FILE),
        os.path.join(staging_dir, files.SAVED_MODEL_FILE),
    )


def _remove_if_empty(staging_root: str) -> None:
    """Removes the staging root once no push is staged in it (other pushes' stay)."""
    if tf.io.gfile.isdir(staging_root) and not tf.io.gfile.listdir(staging_root):
        tf.io.gfile.rmtree(staging_root)


class ReleasePusherExecutor(pusher_executor.Executor):
    """Pushes a blessed model unless the newest release already holds it."""

    def CheckBlessing(self, input_dict: dict[str, list[types.Artifact]]) -> bool:  # noqa: N802
        """TFX's checks (model blessing, infra blessing), plus the TFLite and span blessings."""
        for key in (TFLITE_BLESSING_KEY, SPAN_BLESSING_KEY):
            blessing = _single(input_dict, key)
            if blessing is not None and blessing.get_int_custom_property("blessed") != 1:
                return False
        return super().CheckBlessing(input_dict)

    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        pushed_model = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        if not self.CheckBlessing(input_dict):
            tfx_internals.mark_not_pushed(self, pushed_model)
            pushed_model.set_string_custom_property("reason", not_blessed_reason(input_dict))
            return
        serving_model_dir = filesystem_destination(exec_properties)
        model_dir = self.GetModelPath(input_dict)  # TFX's: the model, else the infra copy
        fingerprint = releases.model_fingerprint(model_dir)
        pushed_model.set_string_custom_property("model_fingerprint", fingerprint)

        staging_root = os.path.join(serving_model_dir, files.STAGING_DIR)
        newest = releases.newest_release(serving_model_dir)
        if newest is not None and releases.release_fingerprint(newest) == fingerprint:
            _remove_if_empty(staging_root)  # e.g. left by a push killed after its rename
            tfx_internals.mark_not_pushed(self, pushed_model)
            pushed_model.set_int_custom_property("already_released", 1)
            pushed_model.set_string_custom_property("pushed_destination", newest.path)
            pushed_model.set_string_custom_property("pushed_version", str(newest.version))
            return

        newest_manifest = releases.read_manifest(newest.path) if newest is not None else None
        withdrawn = rollback.withdrawn(newest_manifest)
        entry = next((e for e in withdrawn if e.get("model_fingerprint") == fingerprint), None)
        if entry is not None:
            _remove_if_empty(staging_root)
            tfx_internals.mark_not_pushed(self, pushed_model)
            pushed_model.set_string_custom_property(
                "reason",
                f"withdrawn: this model was release {entry.get('version')}, rolled back at "
                f"{entry.get('at')} ({entry.get('reason')}); only a new model can replace the "
                "rolled-back release",
            )
            return

        version = next_version(serving_model_dir)
        draft, card_files = read_documents(input_dict)
        manifest = final_manifest(
            draft, version, fingerprint, input_dict, tfx_internals.pipeline_run_id(self)
        )
        if withdrawn:  # a withdrawal outlives the releases after it
            manifest[rollback.WITHDRAWN_KEY] = withdrawn
        staged = os.path.join(staging_root, f"{version}-{uuid.uuid4().hex[:12]}")
        stage_release(model_dir, staged, manifest, card_files)
        final = os.path.join(serving_model_dir, str(version))
        releases.move_into_place(staged, final)
        faults.inject(faults.RELEASE_AFTER_RENAME)
        _remove_if_empty(staging_root)
        logging.info("Released version %s: %s", version, final)
        tfx_internals.mark_pushed(self, pushed_model, final, str(version))
        pushed_model.set_int_custom_property("already_released", 0)


class ReleasePusher(base_component.BaseComponent):
    """TFX's Pusher, releasing into `push_destination`'s base directory exactly once."""

    SPEC_CLASS = ReleasePusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(ReleasePusherExecutor)
    DRIVER_CLASS = FingerprintDriver
    SOURCE_MODULES = (__name__,)

    def __init__(
        self,
        model: types.BaseChannel | None = None,
        model_blessing: types.BaseChannel | None = None,
        infra_blessing: types.BaseChannel | None = None,
        push_destination: pusher_pb2.PushDestination | None = None,
        custom_config: dict[str, Any] | None = None,
        tflite_blessing: types.BaseChannel | None = None,
        tflite_evaluation: types.BaseChannel | None = None,
        evaluation: types.BaseChannel | None = None,
        manifest: types.BaseChannel | None = None,
        model_card: types.BaseChannel | None = None,
        span_blessing: types.BaseChannel | None = None,
        span_evaluation: types.BaseChannel | None = None,
    ):
        """As TFX's `Pusher(model, model_blessing, infra_blessing, push_destination)`.

        Args:
          model: The model to push (else the infra_blessing's copy is pushed).
          model_blessing: The Evaluator's blessing.
          infra_blessing: A serving validation's blessing (with a model copy).
          push_destination: Where to release: `filesystem.base_directory`.
          custom_config: Passed through, as TFX's Pusher does.
          tflite_blessing: The TFLite Evaluator's blessing: unblessed, no push.
          tflite_evaluation: Its evaluation (why it refused, for the PushedModel).
          evaluation: The Evaluator's evaluation (why it refused).
          manifest: ReleaseManifest's draft, completed into `release.json`.
          model_card: ModelCardGen's card, copied into the release.
          span_blessing: The new-data Evaluator's blessing: unblessed, no push.
          span_evaluation: Its evaluation (why it refused).

        Raises:
          ValueError: no push_destination, or neither model nor infra_blessing
            (TFX's Pusher raises the same).
        """
        if push_destination is None:
            raise ValueError("push_destination is required (a filesystem base_directory)")
        if model is None and infra_blessing is None:
            raise ValueError("Either one of model or infra_blessing channel should be given.")
        super().__init__(
            spec=ReleasePusherSpec(
                model=model,
                model_blessing=model_blessing,
                infra_blessing=infra_blessing,
                push_destination=push_destination,
                custom_config=json_utils.dumps(custom_config),
                tflite_blessing=tflite_blessing,
                tflite_evaluation=tflite_evaluation,
                evaluation=evaluation,
                manifest=manifest,
                model_card=model_card,
                span_blessing=span_blessing,
                span_evaluation=span_evaluation,
                pushed_model=types.Channel(type=standard_artifacts.PushedModel),
            )
        )
