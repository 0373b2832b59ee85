"""ReleasePusher: releases a blessed model exactly once, whole, with a manifest.

TFX's filesystem Pusher copies every blessed model into a new
`<base>/<unix time>/` directory, in place. Three things go wrong with that:
a run killed mid-copy leaves a half-written version a model server may load;
the same model is released again whenever its blessing is recomputed (a
threshold-only change, a rerun after a kill between the copy and the ML
Metadata publish, an orchestrator without caching); and a release says
nothing about itself once ML Metadata is out of reach.

This executor keeps TFX's blessing checks and output properties and changes
the push:
1. If the newest release already holds this model (same fingerprint over
   `saved_model.pb` and `variables/`), nothing is copied: the PushedModel
   records `already_released = 1` with that version and directory.
2. Otherwise the model is copied into a staging directory unique to this
   push (`<base>/.staging/<version>-<random>`), the release manifest and the
   model card rendered from it are written into its `assets.extra/`
   (`release.json`, `model_card.md`, `model_card.html`), and the directory is
   renamed to `<base>/<version>`, so a version appears whole or not at all.
Versions are Unix seconds, bumped past the newest existing version.
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
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.utils import io_utils, path_utils

from components import evaluation_results, faults, release
from components.latest_release import has_release
from components.source_fingerprint import FingerprintDriver
from reporting import model_card

SERVING_MODEL_DIR_KEY = "serving_model_dir"
EVALUATION_KEY = "evaluation"
EXAMPLES_KEY = "examples"
BASELINE_MODEL_KEY = "baseline_model"
TFLITE_BLESSING_KEY = "tflite_blessing"
TFLITE_EVALUATION_KEY = "tflite_evaluation"
_TFLITE_FILES = ("model.tflite", "model_dynamic_range.tflite")


class ReleasePusherSpec(ComponentSpec):
    """TFX's Pusher inputs, plus what the release manifest records."""

    PARAMETERS = {SERVING_MODEL_DIR_KEY: ExecutionParameter(type=str)}
    INPUTS = {
        standard_component_specs.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        standard_component_specs.MODEL_BLESSING_KEY: ChannelParameter(
            type=standard_artifacts.ModelBlessing
        ),
        standard_component_specs.INFRA_BLESSING_KEY: ChannelParameter(
            type=standard_artifacts.InfraBlessing, optional=True
        ),
        EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation, optional=True),
        TFLITE_BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing, optional=True),
        TFLITE_EVALUATION_KEY: ChannelParameter(
            type=standard_artifacts.ModelEvaluation, optional=True
        ),
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples, optional=True),
        BASELINE_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
    }
    OUTPUTS = {
        standard_component_specs.PUSHED_MODEL_KEY: ChannelParameter(
            type=standard_artifacts.PushedModel
        )
    }


def _single(input_dict: dict[str, list[types.Artifact]], key: str) -> types.Artifact | None:
    artifacts = input_dict.get(key) or []
    return artifacts[0] if artifacts else None


def _property(artifact: types.Artifact, name: str, parse_json: bool = False) -> Any:
    """A custom property; `parse_json` for the JSON strings MnistExampleGen records."""
    value = artifact.get_custom_property(name)
    if parse_json and isinstance(value, str) and value:
        return json.loads(value)
    return value


def build_manifest(
    version: int,
    fingerprint: str,
    input_dict: dict[str, list[types.Artifact]],
    pipeline_run_id: str | None,
) -> dict[str, Any]:
    """What a release says about itself, and all its model card shows.

    Model, training (the Trainer's training.json, when the model has one),
    metrics overall and per digit, each digit's most frequent confusion,
    gates, baseline (with its accuracies when it was evaluated), TFLite,
    serving check, data and lineage.
    """
    model = _single(input_dict, standard_component_specs.MODEL_KEY)
    blessing = _single(input_dict, standard_component_specs.MODEL_BLESSING_KEY)
    evaluation = _single(input_dict, EVALUATION_KEY)
    examples = _single(input_dict, EXAMPLES_KEY)
    baseline = _single(input_dict, BASELINE_MODEL_KEY)
    manifest: dict[str, Any] = {
        "version": version,
        "model_fingerprint": fingerprint,
        "released_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "pipeline_run_id": pipeline_run_id,
        "baseline": None,
        "lineage": {
            "model": {"id": model.id, "uri": model.uri},
            "blessing": {"id": blessing.id, "uri": blessing.uri},
        },
    }
    if evaluation is not None:
        manifest.update(_accuracies(evaluation.uri))
        manifest["confusions"] = {
            str(digit): [predicted, count]
            for digit, (predicted, count) in evaluation_results.top_confusions(
                evaluation.uri
            ).items()
        }
        manifest["thresholds"] = evaluation_results.gates_of_evaluation(evaluation.uri)
        manifest["lineage"]["evaluation"] = {"id": evaluation.id, "uri": evaluation.uri}
    if baseline is not None and has_release(baseline):
        manifest["baseline"] = {
            "version": int(baseline.get_string_custom_property("release_version")),
            "model_fingerprint": baseline.get_string_custom_property("model_fingerprint"),
        }
        if evaluation is not None:
            manifest["baseline"].update(_accuracies(evaluation.uri, baseline=True))
    training = release.read_training_info(path_utils.serving_model_path(model.uri))
    if training is not None:
        manifest["training"] = training
    tflite_evaluation = _single(input_dict, TFLITE_EVALUATION_KEY)
    if tflite_evaluation is not None:
        manifest["tflite"] = {
            "test_accuracy": evaluation_results.overall_accuracy(tflite_evaluation.uri),
            "thresholds": evaluation_results.gates_of_evaluation(tflite_evaluation.uri),
            "bytes": _tflite_sizes(input_dict),
        }
    infra_blessing = _single(input_dict, standard_component_specs.INFRA_BLESSING_KEY)
    if infra_blessing is not None:
        # Typed getters: after a KFP hand-off a double custom property arrives
        # as a struct value, not as the double_value it was written as.
        manifest["serving_check"] = {
            name: infra_blessing.get_float_custom_property(name)
            for name in sorted(infra_blessing.mlmd_artifact.custom_properties)
            if name.startswith(("latency_", "canary_"))
        }
    if examples is not None:
        manifest["data"] = {
            "archive_sha256": _property(examples, "archive_sha256", parse_json=True),
            "split_counts": _property(examples, "split_counts", parse_json=True),
            "tfds_name": _property(examples, "tfds_name"),
            "tfds_version": _property(examples, "tfds_version"),
        }
        manifest["lineage"]["examples"] = {"id": examples.id, "uri": examples.uri}
    return manifest


def _accuracies(evaluation_uri: str, baseline: bool = False) -> dict[str, Any]:
    """Overall and per-digit test accuracy of the candidate (or the baseline)."""
    return {
        "test_accuracy": evaluation_results.overall_accuracy(evaluation_uri, baseline=baseline),
        "per_digit_accuracy": {
            str(digit): accuracy
            for digit, accuracy in evaluation_results.digit_accuracy(
                evaluation_uri, baseline=baseline
            ).items()
        },
    }


def _tflite_sizes(input_dict: dict[str, list[types.Artifact]]) -> dict[str, int]:
    model = _single(input_dict, standard_component_specs.MODEL_KEY)
    directory = os.path.join(path_utils.serving_model_path(model.uri), release.MANIFEST_DIR)
    return {
        name: tf.io.gfile.stat(os.path.join(directory, name)).length
        for name in _TFLITE_FILES
        if tf.io.gfile.exists(os.path.join(directory, name))
    }


def _not_blessed_reason(input_dict: dict[str, list[types.Artifact]]) -> str:
    """Every gate's reason for refusing the candidate, in one line."""
    reasons = []
    for blessing_key, evaluation_key, what in (
        (standard_component_specs.MODEL_BLESSING_KEY, EVALUATION_KEY, "SavedModel"),
        (TFLITE_BLESSING_KEY, TFLITE_EVALUATION_KEY, "TFLite"),
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
    newest = release.newest_release(serving_model_dir)
    version = int(time.time())
    if newest is not None:
        version = max(version, newest.version + 1)
    while tf.io.gfile.exists(os.path.join(serving_model_dir, str(version))):
        version += 1
    return version


def stage_release(model_dir: str, staging_dir: str, manifest: dict[str, Any]) -> None:
    """Copies the model, then its manifest and model card, then saved_model.pb.

    saved_model.pb last, as TFX does: a directory without it is no release,
    so no release exists without its manifest and card.
    """
    io_utils.copy_dir(model_dir, staging_dir, deny_regex_patterns=[r"saved_model\.pb"])
    release.write_manifest(staging_dir, manifest)
    model_card.write_model_card(staging_dir, manifest)
    faults.pause(faults.RELEASE_MID_COPY)
    io_utils.copy_file(
        os.path.join(model_dir, "saved_model.pb"), os.path.join(staging_dir, "saved_model.pb")
    )


def move_into_place(staged: str, final: str) -> None:
    """Makes the staged release the version directory, whole or not at all.

    On a local filesystem a directory rename is one atomic step. On object
    stores (`gs://`, `s3://`) TensorFlow renames object by object, so
    `saved_model.pb` could appear before the variables; there the release is
    copied with `saved_model.pb` last (a version directory without it is no
    release, for TF Serving and for `release.list_releases`), then the staged
    copy is deleted.
    """
    if "://" not in final:
        tf.io.gfile.rename(staged, final)
        return
    io_utils.copy_dir(staged, final, deny_regex_patterns=[r"saved_model\.pb"])
    io_utils.copy_file(
        os.path.join(staged, "saved_model.pb"), os.path.join(final, "saved_model.pb")
    )
    tf.io.gfile.rmtree(staged)


def remove_stale_staging(staging_root: str) -> list[str]:
    """Removes staged pushes of runs that are gone; returns what was removed.

    Only with a runner's lock held (RUN_STARTED_ENV set): a staged push older
    than the lock holder's start belongs to a killed run, since no other run
    can use this output directory meanwhile. Without the lock (Kubeflow)
    nothing is removed: another run may be pushing right now.
    """
    started = os.environ.get(release.RUN_STARTED_ENV)
    if not started or not tf.io.gfile.isdir(staging_root):
        return []
    removed = []
    for name in tf.io.gfile.listdir(staging_root):
        path = os.path.join(staging_root, name.rstrip("/"))
        if tf.io.gfile.stat(path).mtime_nsec / 1e9 < float(started):
            tf.io.gfile.rmtree(path)
            removed.append(path)
    _remove_if_empty(staging_root)
    return removed


def _remove_if_empty(staging_root: str) -> None:
    """Removes the staging root once no push is staged in it (other pushes' stay)."""
    if tf.io.gfile.isdir(staging_root) and not tf.io.gfile.listdir(staging_root):
        tf.io.gfile.rmtree(staging_root)


class ReleasePusherExecutor(pusher_executor.Executor):
    """Pushes a blessed model unless the newest release already holds it."""

    def CheckBlessing(self, input_dict: dict[str, list[types.Artifact]]) -> bool:  # noqa: N802
        """TFX's checks (model blessing, infra blessing), plus the TFLite blessing."""
        tflite = _single(input_dict, TFLITE_BLESSING_KEY)
        if tflite is not None and tflite.get_int_custom_property("blessed") != 1:
            return False
        return super().CheckBlessing(input_dict)

    def release_source(self, input_dict: dict[str, list[types.Artifact]]) -> str:
        """The serving check's copy (with its warmup file) if there is one, else the model."""
        infra = _single(input_dict, standard_component_specs.INFRA_BLESSING_KEY)
        if infra is not None and infra.get_int_custom_property("has_model") == 1:
            return path_utils.stamped_model_path(infra.uri)
        return self.GetModelPath(input_dict)

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
            self._MarkNotPushed(pushed_model)
            pushed_model.set_string_custom_property("reason", _not_blessed_reason(input_dict))
            return
        model_dir = self.release_source(input_dict)
        serving_model_dir = exec_properties[SERVING_MODEL_DIR_KEY]
        fingerprint = release.model_fingerprint(model_dir)
        pushed_model.set_string_custom_property("model_fingerprint", fingerprint)

        staging_root = os.path.join(serving_model_dir, release.STAGING_DIR)
        for stale in remove_stale_staging(staging_root):
            logging.info("Removed the staged push of a run that is gone: %s", stale)
        newest = release.newest_release(serving_model_dir)
        if newest is not None and release.model_fingerprint(newest.path) == fingerprint:
            _remove_if_empty(staging_root)  # e.g. left by a push killed after its rename
            self._MarkNotPushed(pushed_model)
            pushed_model.set_int_custom_property("already_released", 1)
            pushed_model.set_string_custom_property("pushed_destination", newest.path)
            pushed_model.set_string_custom_property("pushed_version", str(newest.version))
            return

        version = next_version(serving_model_dir)
        staged = os.path.join(staging_root, f"{version}-{uuid.uuid4().hex[:12]}")
        run_id = self._context.pipeline_run_id if self._context else None
        stage_release(model_dir, staged, build_manifest(version, fingerprint, input_dict, run_id))
        final = os.path.join(serving_model_dir, str(version))
        move_into_place(staged, final)
        faults.inject(faults.RELEASE_AFTER_RENAME)
        _remove_if_empty(staging_root)
        self._MarkPushed(pushed_model, pushed_destination=final, pushed_version=str(version))
        pushed_model.set_int_custom_property("already_released", 0)


class ReleasePusher(base_component.BaseComponent):
    """Releases blessed models into `serving_model_dir/<version>/`, exactly once."""

    SPEC_CLASS = ReleasePusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(ReleasePusherExecutor)
    DRIVER_CLASS = FingerprintDriver
    SOURCE_MODULES = (__name__,)

    def __init__(
        self,
        model: types.BaseChannel,
        model_blessing: types.BaseChannel,
        serving_model_dir: str,
        evaluation: types.BaseChannel | None = None,
        examples: types.BaseChannel | None = None,
        baseline_model: types.BaseChannel | None = None,
        infra_blessing: types.BaseChannel | None = None,
        tflite_blessing: types.BaseChannel | None = None,
        tflite_evaluation: types.BaseChannel | None = None,
    ):
        super().__init__(
            spec=ReleasePusherSpec(
                model=model,
                model_blessing=model_blessing,
                infra_blessing=infra_blessing,
                tflite_blessing=tflite_blessing,
                tflite_evaluation=tflite_evaluation,
                evaluation=evaluation,
                examples=examples,
                baseline_model=baseline_model,
                serving_model_dir=serving_model_dir,
                pushed_model=types.Channel(type=standard_artifacts.PushedModel),
            )
        )
