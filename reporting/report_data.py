"""Everything the HTML run report shows, gathered from ML Metadata and the run's artifacts.

`gather(output_dir, run_id)` reads one pipeline run: its executions (executed
or cached; a cached execution links the outputs of the run that made them),
the gates and their figures (TFMA, serving check, Pusher), the training
history, TFMA's confusion matrices and per-digit accuracy, and two
artifacts the DAG computes for the report: ErrorGallery's (the candidate's
most confident test mistakes) and DataProfile's (label counts, the train
split's mean digits, malformed records). The report computes nothing from
the data itself: what it shows is what TFX made, cached and recorded.

A run that stopped early (at the anomaly gate, say) has no model: the parts
that need one are None and `unavailable[section]` says why, so the report
always has every section.
"""

import dataclasses
import json
import os
from typing import Any

import numpy as np
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from contract import artifacts, files, releases
from contract import evaluation as evaluation_results
from contract import metadata_store as stores
from contract.artifacts import Anomaly, read_anomalies
from contract.layout import OutputLayout
from reporting import lineage, metadata, run_summary

SECTION_IDS = (
    "outcome",
    "gates",
    "training",
    "confusion",
    "per-digit",
    "errors",
    "data",
    "new-data",
    "timings",
    "lineage",
)
"""The report's sections, in page order; also the HTML ids of the sections."""

MODEL_CARD_FILE = files.MODEL_CARD_HTML_FILE
ERROR_GALLERY = ("ErrorGallery", "gallery")
DATA_PROFILE = ("DataProfile", "profile")
"""(component id, output key) of the DAG's artifacts the report shows as they are."""

RELEASED = "released"
ALREADY_RELEASED = "already released"
NOT_BLESSED = "not blessed"
STOPPED = "stopped"
INCOMPLETE = "incomplete"


class NoMetadataError(LookupError):
    """The output directory has no ML Metadata store, or not the run asked for."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the run ended with: a release, a refusal, or a stop."""

    status: str
    """RELEASED, ALREADY_RELEASED, NOT_BLESSED, STOPPED or INCOMPLETE."""
    headline: str
    reasons: list[str] = dataclasses.field(default_factory=list)
    failure: str | None = None
    """The runner's error message when the run stopped."""
    release_dir: str | None = None
    release_version: str | None = None
    model_card: str | None = None
    """The release's model card (an HTML file), if it has one."""


@dataclasses.dataclass(frozen=True)
class GateCheck:
    """One threshold of one Evaluator, with the figures it was judged on."""

    evaluator: str
    threshold: str
    candidate: float | None
    baseline: float | None
    passed: bool | None
    """None when TFMA gave no verdict per threshold (e.g. thresholds missing)."""


@dataclasses.dataclass(frozen=True)
class ServingCheckResult:
    """ServingCheck's InfraBlessing: verdict, reason and the figures it recorded."""

    blessed: bool
    reason: str
    figures: dict[str, float]
    """canary_accuracy, accuracy_tolerance_used, max_row_sum_error, latency_<batch>_<p>."""


@dataclasses.dataclass(frozen=True)
class Gates:
    checks: list[GateCheck]
    serving: ServingCheckResult | None


@dataclasses.dataclass(frozen=True)
class TrainingHistory:
    """The Trainer's `training_history.json` (see mnist_trainer.training_record)."""

    epochs_run: int
    max_epochs: int | None
    best_epoch: int | None
    metrics: dict[str, list[float]]


@dataclasses.dataclass(frozen=True)
class ModelQuality:
    """TFMA's test figures of the candidate and, if there was one, the baseline."""

    accuracy: float | None
    confusion: list[list[int]]
    digit_accuracy: dict[int, float]
    baseline_accuracy: float | None = None
    baseline_confusion: list[list[int]] = dataclasses.field(default_factory=list)
    baseline_digit_accuracy: dict[int, float] = dataclasses.field(default_factory=dict)
    baseline_version: str | None = None
    """The release the candidate was compared with (LatestRelease's choice)."""

    @property
    def has_baseline(self) -> bool:
        return bool(self.baseline_confusion or self.baseline_digit_accuracy)

    @property
    def baseline_name(self) -> str:
        return f"version {self.baseline_version}" if self.baseline_version else "baseline"


Mistake = artifacts.Mistake
"""A test digit the candidate reads wrongly, with its confidence in the wrong digit."""
Predictions = artifacts.Gallery
"""ErrorGallery's pass over the test split: examples, wrong, the most confident mistakes."""


@dataclasses.dataclass(frozen=True)
class DataProfile:
    """What the run's examples hold."""

    split_counts: dict[str, int]
    label_counts: dict[str, list[int]]
    """Per split: how many examples of each digit 0..9."""
    mean_images: np.ndarray | None
    """[10, 784] mean pixels of each digit in the train split (NaN rows: no such digit)."""
    anomalies: list[Anomaly]
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)
    """Per split: records left out of the counts (not 784 pixels and one label 0..9)."""


@dataclasses.dataclass(frozen=True)
class NewData:
    """The run's spans and what the new-data checks said about them."""

    window: list[int]
    span_counts: dict[str, dict[str, int]]
    drift: dict[str, Any] | None
    """DriftCheck's record: baseline, measurements, verdict."""
    labels: dict[str, Any] | None
    """LabelCheck's record: per span, disagreements, verdict, worst examples."""
    span_test_accuracy: float | None


@dataclasses.dataclass(frozen=True)
class ReleaseRecord:
    """One release in the serving directory, as its manifest describes it."""

    version: int
    released_at: str | None
    test_accuracy: float | None
    span_test_accuracy: float | None
    window: list[int]


@dataclasses.dataclass(frozen=True)
class ReportData:
    """One pipeline run, as the report shows it."""

    run_id: str
    created: str
    output_dir: str
    outcome: Outcome
    components: list[metadata.ComponentRun]
    gates: Gates | None = None
    training: TrainingHistory | None = None
    quality: ModelQuality | None = None
    predictions: Predictions | None = None
    data: DataProfile | None = None
    lineage_steps: list[lineage.Step] | None = None
    new_data: NewData | None = None
    releases: list[ReleaseRecord] = dataclasses.field(default_factory=list)
    """Every release in the serving directory, oldest first (the history figure)."""
    unavailable: dict[str, str] = dataclasses.field(default_factory=dict)
    """Section id -> why the run has no data for it."""

    def component(self, node_id: str) -> metadata.ComponentRun | None:
        return next((c for c in self.components if c.node_id == node_id), None)


def _property(artifact: metadata_store_pb2.Artifact, name: str):
    """A (custom) property's value, JSON strings decoded; None when unset."""
    value = metadata.artifact_property(artifact, name)
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


def open_store(output_dir: str, metadata_url: str | None = None) -> metadata_store.MetadataStore:
    """Opens the run's ML Metadata read-only.

    Args:
      output_dir: The runner's --output-dir.
      metadata_url: The runner's --metadata, if it had one (a shared store).

    Raises:
      NoMetadataError: there is no metadata.db under output_dir, or the
        `--metadata` store cannot be opened (the message says why).
    """
    if metadata_url:
        try:
            return metadata.connect(metadata_url)
        except stores.StoreError as error:
            raise NoMetadataError(str(error)) from None
    metadata_path = OutputLayout(output_dir).metadata_path
    if not os.path.isfile(metadata_path):
        raise NoMetadataError(
            f"no ML Metadata at {metadata_path}: not a pipeline output dir, "
            "or no run has started there yet (run local_runner.py first)"
        )
    return metadata.connect(metadata_path)


def find_run(
    store: metadata_store.MetadataStore, run_id: str | None = None
) -> metadata_store_pb2.Context:
    """The `pipeline_run` context named run_id; the newest run when run_id is None.

    Raises:
      NoMetadataError: no such run.
    """
    try:
        return metadata.run_context(store, run_id)
    except LookupError as error:
        raise NoMetadataError(str(error)) from None


def _output(
    runs: dict[str, metadata.ComponentRun], node_id: str, key: str
) -> metadata_store_pb2.Artifact | None:
    component = runs.get(node_id)
    return component.outputs.get(key) if component else None


def _outcome(
    summary: run_summary.RunSummary,
    runs: dict[str, metadata.ComponentRun],
    failure: str | None,
    anomalies: list[Anomaly],
) -> Outcome:
    failed = [node for node, component in runs.items() if component.state == "failed"]
    if failure or failed:
        where = f" at {', '.join(failed)}" if failed else ""
        reasons = [f"{anomaly}" for anomaly in anomalies]
        return Outcome(STOPPED, f"Stopped{where}: nothing released", reasons, failure=failure)
    if _output(runs, "Pusher", "pushed_model") is None:
        return Outcome(
            INCOMPLETE,
            "Incomplete: the run did not reach the Pusher (still running, or killed)",
        )
    if summary.pushed:
        version = summary.pushed_version
        card = os.path.join(summary.pushed_destination, MODEL_CARD_FILE)
        return Outcome(
            RELEASED if summary.released_now else ALREADY_RELEASED,
            f"Released as version {version}"
            if summary.released_now
            else f"Nothing new: already released as version {version}",
            release_dir=summary.pushed_destination,
            release_version=version,
            model_card=card if tf.io.gfile.exists(card) else None,
        )
    return Outcome(NOT_BLESSED, "Not blessed: nothing released", _refusals(summary, runs))


def _refusals(summary: run_summary.RunSummary, runs: dict[str, metadata.ComponentRun]) -> list[str]:
    """Each gate's reason for refusing the candidate (else the Pusher's summary of them)."""
    reasons = [f"Evaluator: {failure}" for failure in summary.validation_failures]
    tflite = _output(runs, "TFLiteEvaluator", "evaluation")
    if tflite is not None:
        failures = evaluation_results.validation_failures(tflite.uri)
        reasons.extend(f"TFLiteEvaluator: {failure}" for failure in failures)
    serving = _output(runs, "ServingCheck", "blessing")
    if serving is not None and _property(serving, "blessed") != 1:
        reasons.append(f"ServingCheck: {_property(serving, 'reason')}")
    if summary.not_released_reason and not reasons:
        reasons.append(f"Pusher: {summary.not_released_reason}")
    return reasons


def _gate_checks(node_id: str, evaluation_uri: str, blessed: bool) -> list[GateCheck]:
    candidate = evaluation_results.overall_accuracy(evaluation_uri)
    baseline = evaluation_results.overall_accuracy(evaluation_uri, baseline=True)
    failures = evaluation_results.validation_failures(evaluation_uri)
    checks = []
    for threshold in evaluation_results.gates_of_evaluation(evaluation_uri):
        is_change = "change vs baseline" in threshold
        if is_change and baseline is None:
            continue  # no baseline (first release): TFMA did not apply this gate
        failed = any(("change vs. baseline" in failure) == is_change for failure in failures)
        # TFMA lists every threshold that failed; with no list, no verdict per threshold.
        passed = not failed if blessed or failures else None
        checks.append(GateCheck(node_id, threshold, candidate, baseline, passed))
    return checks


def _gates(runs: dict[str, metadata.ComponentRun]) -> Gates | None:
    checks = []
    for node_id in ("Evaluator", "TFLiteEvaluator"):
        evaluation = _output(runs, node_id, "evaluation")
        blessing = _output(runs, node_id, "blessing")
        if evaluation is not None and blessing is not None:
            blessed = _property(blessing, "blessed") == 1
            checks.extend(_gate_checks(node_id, evaluation.uri, blessed))
    infra = _output(runs, "ServingCheck", "blessing")
    serving = None
    if infra is not None:
        serving = ServingCheckResult(
            blessed=_property(infra, "blessed") == 1,
            reason=_property(infra, "reason") or "",
            figures={
                name: value.double_value
                for name, value in sorted(infra.custom_properties.items())
                if name.startswith(("canary_", "latency_", "accuracy_", "max_"))
            },
        )
    if not checks and serving is None:
        return None
    return Gates(checks, serving)


def _training(runs: dict[str, metadata.ComponentRun]) -> TrainingHistory | None:
    model_run = _output(runs, "Trainer", "model_run")
    if model_run is None:
        return None
    record = artifacts.read_history(model_run.uri)
    if record is None:
        return None
    return TrainingHistory(
        epochs_run=record["epochs_run"],
        max_epochs=record.get("max_epochs"),
        best_epoch=record.get("best_epoch"),
        metrics=record.get("metrics", {}),
    )


def _quality(
    summary: run_summary.RunSummary, evaluation_uri: str, baseline_version: str | None
) -> ModelQuality:
    return ModelQuality(
        accuracy=summary.test_accuracy,
        confusion=evaluation_results.confusion_matrix(evaluation_uri),
        digit_accuracy=summary.digit_accuracy,
        baseline_accuracy=evaluation_results.overall_accuracy(evaluation_uri, baseline=True),
        baseline_confusion=evaluation_results.confusion_matrix(evaluation_uri, baseline=True),
        baseline_digit_accuracy=evaluation_results.digit_accuracy(evaluation_uri, baseline=True),
        baseline_version=baseline_version,
    )


def _data_profile(
    examples: metadata_store_pb2.Artifact | None,
    profile_uri: str,
    anomalies: list[Anomaly],
) -> DataProfile:
    """DataProfile's artifact, with MnistExampleGen's split counts and the validator's anomalies."""
    profile = artifacts.read_profile(profile_uri)
    split_counts = (_property(examples, "split_counts") if examples is not None else None) or {}
    return DataProfile(
        split_counts={split: int(count) for split, count in split_counts.items()},
        label_counts=profile.label_counts,
        mean_images=profile.mean_images,
        anomalies=anomalies,
        skipped={split: count for split, count in profile.skipped.items() if count},
    )


def _new_data(runs: dict[str, metadata.ComponentRun]) -> NewData | None:
    """The spans of the run (MnistExampleGen) and the checks' records, if it had spans."""
    examples = _output(runs, "MnistExampleGen", "examples")
    window = _property(examples, "span_window") if examples is not None else None
    if not window:
        return None
    drift = _output(runs, "DriftCheck", "drift")
    labels = _output(runs, "LabelCheck", "label_check")
    span_evaluation = _output(runs, "SpanEvaluator", "evaluation")
    return NewData(
        window=window,
        span_counts=_property(examples, "span_counts") or {},
        drift=artifacts.read_record(drift.uri, files.DRIFT_FILE) if drift else None,
        labels=artifacts.read_record(labels.uri, files.LABEL_CHECK_FILE) if labels else None,
        span_test_accuracy=evaluation_results.overall_accuracy(span_evaluation.uri)
        if span_evaluation
        else None,
    )


def release_history(serving_dir: str) -> list[ReleaseRecord]:
    """Every release's version, time, accuracies and spans, from its manifest."""
    history = []
    for release in releases.list_releases(serving_dir):
        manifest = releases.read_manifest(release.path) or {}
        spans = ((manifest.get("data") or {}).get("spans") or {}).get("window") or []
        history.append(
            ReleaseRecord(
                version=release.version,
                released_at=manifest.get("released_at"),
                test_accuracy=manifest.get("test_accuracy"),
                span_test_accuracy=(manifest.get("span_test") or {}).get("test_accuracy"),
                window=list(spans),
            )
        )
    return history


def _before(node_id: str, runs: dict[str, metadata.ComponentRun]) -> str:
    """Why a component's output is missing: it failed, or the run never got there."""
    component = runs.get(node_id)
    if component is not None and component.state == "failed":
        return f"{node_id} failed in this run"
    failed = [node for node, run in runs.items() if run.state == "failed"]
    if failed:
        return f"the run stopped at {failed[0]}, before {node_id} ran"
    if component is None:
        return f"{node_id} did not run in this run"
    return f"{node_id} ({component.state}) recorded no output"


def _lineage(
    store: metadata_store.MetadataStore,
    summary: run_summary.RunSummary,
    runs: dict[str, metadata.ComponentRun],
) -> list[lineage.Step] | None:
    if summary.pushed:
        return lineage.trace_release(store, runs["Pusher"].outputs["pushed_model"])
    model = _output(runs, "Trainer", "model")
    blessing = _output(runs, "Evaluator", "blessing")
    if model is not None and blessing is not None:
        return lineage.trace_model(metadata.Lineage(store), model, blessing)
    return None


def gather(
    output_dir: str,
    run_id: str | None = None,
    failure: str | None = None,
    metadata_url: str | None = None,
) -> ReportData:
    """Reads one run of the local pipeline in output_dir.

    Args:
      output_dir: The runner's --output-dir (holds metadata.db).
      run_id: The run (its `pipeline_run` context name); None for the newest.
      failure: The runner's error message, when the run stopped.
      metadata_url: The runner's --metadata, if it had one (a shared store).

    Returns:
      The report's data; sections the run has no data for are None, with
      the reason in `unavailable`.

    Raises:
      NoMetadataError: no ML Metadata in output_dir, or no such run.
    """
    store = open_store(output_dir, metadata_url)
    run = find_run(store, run_id)
    summary = run_summary.latest_run_summary(
        metadata_url or OutputLayout(output_dir).metadata_path,
        metadata.pipeline_of(store, run),
        run.name,
    )
    components = summary.components
    runs = {component.node_id: component for component in components}
    unavailable: dict[str, str] = {}

    anomalies_artifact = _output(runs, "ExampleValidator", "anomalies")
    anomalies = (
        read_anomalies(anomalies_artifact.uri, _property(anomalies_artifact, "split_names") or [])
        if anomalies_artifact is not None
        else []
    )
    outcome = _outcome(summary, runs, failure, anomalies)

    gates = _gates(runs)
    if gates is None:
        unavailable["gates"] = _before("Evaluator", runs)

    training = _training(runs)
    if training is None:
        unavailable["training"] = _before("Trainer", runs)

    evaluation = _output(runs, "Evaluator", "evaluation")
    baseline = _output(runs, "LatestRelease", "baseline_model")
    baseline_version = _property(baseline, "release_version") if baseline is not None else None
    quality = (
        _quality(summary, evaluation.uri, baseline_version) if evaluation is not None else None
    )
    if quality is None:
        unavailable["confusion"] = unavailable["per-digit"] = _before("Evaluator", runs)

    gallery = _output(runs, *ERROR_GALLERY)
    predictions = artifacts.read_gallery(gallery.uri) if gallery is not None else None
    if predictions is None:
        unavailable["errors"] = _before(ERROR_GALLERY[0], runs)

    profile = _output(runs, *DATA_PROFILE)
    examples = _output(runs, "MnistExampleGen", "examples")
    data = _data_profile(examples, profile.uri, anomalies) if profile is not None else None
    if data is None:
        unavailable["data"] = _before(DATA_PROFILE[0], runs)

    new_data = _new_data(runs)  # None: a run without --spans-dir (the section says so)
    history = release_history(OutputLayout(output_dir).serving_model_dir)

    chain = _lineage(store, summary, runs)
    if chain is None:
        unavailable["lineage"] = f"{_before('Evaluator', runs)}; no evaluated model to trace"
    if not components:
        unavailable["timings"] = "ML Metadata recorded no execution for this run"

    return ReportData(
        run_id=run.name,
        created=metadata.iso_time(run.create_time_since_epoch),
        output_dir=output_dir,
        outcome=outcome,
        components=components,
        gates=gates,
        training=training,
        quality=quality,
        predictions=predictions,
        data=data,
        lineage_steps=chain,
        new_data=new_data,
        releases=history,
        unavailable=unavailable,
    )
