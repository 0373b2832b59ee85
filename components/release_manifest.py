"""ReleaseManifest: what a release of the candidate will say about itself, drafted before the push.

Reads the gates' and the data's artifacts (TFMA's evaluations, the serving
check's InfraBlessing, the Examples' fingerprints, the baseline LatestRelease
chose, the Trainer's training.json) and writes the manifest draft,
`release.json`, into a File artifact: everything the release records except
what only the push knows (version, release time, pipeline run), which the
Pusher adds. ModelCardGen renders the model card from this draft; the
Pusher writes both into the release. Cached by TFX like any component: the
draft changes only when one of its inputs does.
"""

import json
import os
from typing import Any

import tensorflow as tf
from tfx import types
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.types.experimental import simple_artifacts
from tfx.utils import path_utils

from components import span_examples
from components.latest_release import has_release
from components.source_fingerprint import FingerprintDriver
from contract import artifacts, files, releases, tfx_internals
from contract import evaluation as evaluation_results

MANIFEST_FILE = os.path.basename(files.MANIFEST_FILE)
"""The draft's name inside the ReleaseManifest artifact (`release.json`)."""
TRAIN_STATISTICS_NAME = os.path.basename(files.TRAIN_STATISTICS_FILE)
"""The train split's statistics in the ReleaseManifest artifact, copied into the release."""
_TFLITE_FILES = (files.TFLITE_FILE, files.TFLITE_QUANTIZED_FILE)


def _property(artifact: types.Artifact, name: str, parse_json: bool = False) -> Any:
    """A custom property; `parse_json` for the JSON strings MnistExampleGen records."""
    value = artifact.get_custom_property(name)
    if parse_json and isinstance(value, str) and value:
        return json.loads(value)
    return value


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


def _tflite_sizes(model_dir: str) -> dict[str, int]:
    return {
        os.path.basename(name): tf.io.gfile.stat(os.path.join(model_dir, name)).length
        for name in _TFLITE_FILES
        if tf.io.gfile.exists(os.path.join(model_dir, name))
    }


def build_manifest(
    model: types.Artifact,
    evaluation: types.Artifact | None = None,
    examples: types.Artifact | None = None,
    baseline_model: types.Artifact | None = None,
    infra_blessing: types.Artifact | None = None,
    tflite_evaluation: types.Artifact | None = None,
    statistics: types.Artifact | None = None,
    drift: types.Artifact | None = None,
    label_check: types.Artifact | None = None,
    span_evaluation: types.Artifact | None = None,
) -> dict[str, Any]:
    """The manifest draft: model, training, metrics, gates, baseline, TFLite, serving check, data.

    Args:
      model: The Trainer's Model (its training.json is read, its files hashed).
      evaluation: The Evaluator's ModelEvaluation: accuracies overall and per
        digit, each digit's most frequent confusion, the gates.
      examples: MnistExampleGen's Examples: archive fingerprints and counts.
      baseline_model: LatestRelease's Model: the release the candidate beat.
      infra_blessing: ServingCheck's InfraBlessing: canary and latency figures.
      tflite_evaluation: The TFLite Evaluator's ModelEvaluation.
      statistics: StatisticsGen's output: its URI is where the next run's
        drift gate finds this model's training statistics.
      drift: DriftCheck's record (distances, thresholds, verdict).
      label_check: LabelCheck's record (per span: disagreements, verdict).
      span_evaluation: The new-data Evaluator's ModelEvaluation.

    Returns:
      The release manifest without `version`, `released_at` and
      `pipeline_run_id` (the Pusher adds them); parts without an input are absent.
    """
    model_dir = path_utils.serving_model_path(model.uri)
    manifest: dict[str, Any] = {
        "model_fingerprint": releases.model_fingerprint(model_dir),
        "baseline": None,
        "lineage": {"model": {"id": model.id, "uri": model.uri}},
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
    if baseline_model is not None and has_release(baseline_model):
        manifest["baseline"] = {
            "version": int(baseline_model.get_string_custom_property("release_version")),
            "model_fingerprint": baseline_model.get_string_custom_property("model_fingerprint"),
        }
        if evaluation is not None:
            manifest["baseline"].update(_accuracies(evaluation.uri, baseline=True))
    training = releases.read_training_info(model_dir)
    if training is not None:
        manifest["training"] = training
    if tflite_evaluation is not None:
        manifest["tflite"] = {
            "test_accuracy": evaluation_results.overall_accuracy(tflite_evaluation.uri),
            "thresholds": evaluation_results.gates_of_evaluation(tflite_evaluation.uri),
            "bytes": _tflite_sizes(model_dir),
        }
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
        window = _property(examples, span_examples.SPAN_WINDOW_PROPERTY, parse_json=True)
        if window:
            manifest["data"]["spans"] = {
                "window": window,
                "present": _property(examples, span_examples.SPANS_PRESENT_PROPERTY, True),
                "counts": _property(examples, span_examples.SPAN_COUNTS_PROPERTY, True),
                "newest": examples.span,
            }
    if statistics is not None:
        manifest.setdefault("data", {})["statistics_uri"] = statistics.uri
        manifest["lineage"]["statistics"] = {"id": statistics.id, "uri": statistics.uri}
    if drift is not None:
        manifest["drift"] = _property(drift, "drift", parse_json=True)
    if label_check is not None:
        record = artifacts.read_record(label_check.uri, files.LABEL_CHECK_FILE)
        for span in record.get("spans", []):
            for worst in span.get("worst", []):
                worst.pop("pixels", None)  # the report shows them; the manifest names them
        manifest["label_check"] = record
    if span_evaluation is not None:
        manifest["span_test"] = {
            "test_accuracy": evaluation_results.overall_accuracy(span_evaluation.uri),
            "thresholds": evaluation_results.gates_of_evaluation(span_evaluation.uri),
        }
    return manifest


@component
def ReleaseManifest(  # noqa: N802 (TFX components are named like classes)
    model: InputArtifact[standard_artifacts.Model],
    manifest: OutputArtifact[simple_artifacts.File],
    evaluation: InputArtifact[standard_artifacts.ModelEvaluation] = None,
    examples: InputArtifact[standard_artifacts.Examples] = None,
    baseline_model: InputArtifact[standard_artifacts.Model] = None,
    infra_blessing: InputArtifact[standard_artifacts.InfraBlessing] = None,
    tflite_evaluation: InputArtifact[standard_artifacts.ModelEvaluation] = None,
    statistics: InputArtifact[standard_artifacts.ExampleStatistics] = None,
    drift: InputArtifact[standard_artifacts.ExampleAnomalies] = None,
    label_check: InputArtifact[simple_artifacts.File] = None,
    span_evaluation: InputArtifact[standard_artifacts.ModelEvaluation] = None,
) -> None:
    """Writes the release manifest draft (`release.json`) of the candidate.

    Args:
      model: The Trainer's model.
      manifest: Output; `release.json`, the draft (see `build_manifest`).
      evaluation: The Evaluator's output.
      examples: The examples the model was trained and tested on.
      baseline_model: LatestRelease's output.
      infra_blessing: ServingCheck's output.
      tflite_evaluation: The TFLite Evaluator's output.
      statistics: StatisticsGen's output.
      drift: DriftCheck's output (with spans).
      label_check: LabelCheck's output (with spans).
      span_evaluation: The new-data Evaluator's output (with spans).
    """
    draft = build_manifest(
        model,
        evaluation,
        examples,
        baseline_model,
        infra_blessing,
        tflite_evaluation,
        statistics,
        drift,
        label_check,
        span_evaluation,
    )
    tf.io.gfile.makedirs(manifest.uri)
    with tf.io.gfile.GFile(os.path.join(manifest.uri, MANIFEST_FILE), "w") as out:
        json.dump(draft, out, indent=2, sort_keys=True)
    if statistics is not None:
        # The release carries its training statistics: the next run's drift baseline
        # (a pipeline root may be a pod's local copy, a release directory is not).
        train = os.path.join(files.split_dir(statistics.uri, "train"), files.STATISTICS_FILE)
        if tf.io.gfile.exists(train):
            tf.io.gfile.copy(train, os.path.join(manifest.uri, TRAIN_STATISTICS_NAME), True)


tfx_internals.declare_driver(ReleaseManifest, FingerprintDriver, (__name__,))
