"""Everything the HTML run report shows, gathered from ML Metadata and the run's artifacts.

`gather(output_dir, run_id)` reads one pipeline run: its executions (executed
or cached; a cached execution links the outputs of the run that made them),
the gates and their figures (TFMA, serving check, Pusher), the training
history, and two passes over the data: the test split through the
candidate's `predict` signature (the most confident mistakes) and the train
split for label counts and the mean image of each digit, streamed in
batches so memory stays flat on the full 60,000 digits.

A run that stopped early (at the anomaly gate, say) has no model: the parts
that need one are None and `unavailable[section]` says why, so the report
always has every section.
"""

import dataclasses
import json
import os
from collections.abc import Iterator

import numpy as np
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.utils import path_utils

from components import evaluation_results, example_export, release
from components.anomaly_gate import Anomaly, read_anomalies
from components.mnist_example_gen import SPLIT_TEST, SPLIT_TRAIN, SPLITS
from pipeline import features
from pipeline.config import PIPELINE_NAME, OutputLayout
from pipeline.modules.trainer import mnist_trainer
from pipeline.modules.trainer.mnist_trainer import CLASSES, PROBABILITIES
from reporting import lineage, model_card, run_summary
from reporting.report_cache import ReportCache

SECTION_IDS = (
    "outcome",
    "gates",
    "training",
    "confusion",
    "per-digit",
    "errors",
    "data",
    "timings",
    "lineage",
)
"""The report's sections, in page order; also the HTML ids of the sections."""

MODEL_CARD_FILE = os.path.join(release.MANIFEST_DIR, model_card.HTML_FILE)
MISTAKES_SHOWN = 24
PREDICT_SIGNATURE = "predict"
_BATCH_SIZE = 2048
_FIXED_SPEC = {
    features.IMAGE_KEY: tf.io.FixedLenFeature([features.NUM_PIXELS], tf.int64),
    features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
}

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


@dataclasses.dataclass(frozen=True)
class Mistake:
    """A test digit the candidate reads wrongly, with its confidence in the wrong digit."""

    pixels: np.ndarray
    label: int
    predicted: int
    probability: float


@dataclasses.dataclass(frozen=True)
class Predictions:
    """The candidate's pass over the test split."""

    examples: int
    wrong: int
    mistakes: list[Mistake]
    """The most confident mistakes, most confident first."""


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
class ReportData:
    """One pipeline run, as the report shows it."""

    run_id: str
    created: str
    output_dir: str
    outcome: Outcome
    components: list[run_summary.ComponentRun]
    gates: Gates | None = None
    training: TrainingHistory | None = None
    quality: ModelQuality | None = None
    predictions: Predictions | None = None
    data: DataProfile | None = None
    lineage_steps: list[lineage.Step] | None = None
    unavailable: dict[str, str] = dataclasses.field(default_factory=dict)
    """Section id -> why the run has no data for it."""

    def component(self, node_id: str) -> run_summary.ComponentRun | None:
        return next((c for c in self.components if c.node_id == node_id), None)


def _property(artifact: metadata_store_pb2.Artifact, name: str):
    """A (custom) property's value, JSON strings decoded; None when unset."""
    value = lineage.artifact_property(artifact, name)
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


def open_store(output_dir: str) -> metadata_store.MetadataStore:
    """Opens the run's ML Metadata read-only.

    Raises:
      NoMetadataError: there is no metadata.db under output_dir.
    """
    metadata_path = OutputLayout(output_dir).metadata_path
    if not os.path.isfile(metadata_path):
        raise NoMetadataError(
            f"no ML Metadata at {metadata_path}: not a pipeline output dir, "
            "or no run has started there yet (run local_runner.py first)"
        )
    return run_summary.connect(metadata_path)


def find_run(
    store: metadata_store.MetadataStore, run_id: str | None = None
) -> metadata_store_pb2.Context:
    """The `pipeline_run` context named run_id; the newest run when run_id is None.

    Raises:
      NoMetadataError: no such run.
    """
    try:
        return run_summary.run_context(store, run_id)
    except LookupError as error:
        raise NoMetadataError(str(error)) from None


def _output(
    runs: dict[str, run_summary.ComponentRun], node_id: str, key: str
) -> metadata_store_pb2.Artifact | None:
    component = runs.get(node_id)
    return component.outputs.get(key) if component else None


def _outcome(
    summary: run_summary.RunSummary,
    runs: dict[str, run_summary.ComponentRun],
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


def _refusals(
    summary: run_summary.RunSummary, runs: dict[str, run_summary.ComponentRun]
) -> list[str]:
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


def _gates(runs: dict[str, run_summary.ComponentRun]) -> Gates | None:
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


def _training(runs: dict[str, run_summary.ComponentRun]) -> TrainingHistory | None:
    model_run = _output(runs, "Trainer", "model_run")
    if model_run is None:
        return None
    record = mnist_trainer.read_history(model_run.uri)
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


def _ragged_batch(records: tf.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parses a batch that has malformed records: (images, labels, which rows are well-formed)."""
    parsed = tf.io.parse_example(
        records, {key: tf.io.RaggedFeature(tf.int64) for key in _FIXED_SPEC}
    )
    images, labels = parsed[features.IMAGE_KEY], parsed[features.LABEL_KEY]
    valid = (images.row_lengths().numpy() == features.NUM_PIXELS) & (
        labels.row_lengths().numpy() == 1
    )
    padded_images = images.to_tensor(shape=[None, features.NUM_PIXELS]).numpy()
    first_labels = labels.to_tensor(default_value=-1, shape=[None, 1]).numpy()[:, 0]
    return padded_images, first_labels, valid


def split_batches(
    examples_uri: str, split: str, batch_size: int = _BATCH_SIZE
) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """Streams one split of an Examples artifact as (images [B, 784], labels [B], skipped).

    Records that are not 784 pixels and one label in 0..9 (data the anomaly
    gate refused) are left out and counted in `skipped`, so a run stopped
    for bad data still gets its data section. Batches are parsed as fixed
    shapes (twice as fast) and only parsed again, record by record shape,
    when that fails.
    """
    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    dataset = (
        tf.data.TFRecordDataset(files, compression_type="GZIP", num_parallel_reads=2)
        .batch(batch_size)
        .prefetch(2)
    )
    for records in dataset:
        try:
            parsed = tf.io.parse_example(records, _FIXED_SPEC)
            images = parsed[features.IMAGE_KEY].numpy()
            labels = parsed[features.LABEL_KEY].numpy()
            valid = np.ones(len(labels), bool)
        except tf.errors.InvalidArgumentError:
            images, labels, valid = _ragged_batch(records)
        valid &= (labels >= 0) & (labels < features.NUM_CLASSES)
        yield images[valid], labels[valid], int((~valid).sum())


def _label_counts(labels: np.ndarray) -> np.ndarray:
    return np.bincount(labels, minlength=features.NUM_CLASSES)


def _profile_split(examples_uri: str, split: str) -> tuple[list[int], np.ndarray | None, int]:
    """Label counts of a split and, for train, the mean image per digit: one streaming pass."""
    counts = np.zeros(features.NUM_CLASSES, np.int64)
    sums = np.zeros((features.NUM_CLASSES, features.NUM_PIXELS), np.float64)
    skipped = 0
    for images, labels, left_out in split_batches(examples_uri, split):
        counts += _label_counts(labels)
        skipped += left_out
        if split == SPLIT_TRAIN:
            one_hot = np.eye(features.NUM_CLASSES)[labels]
            sums += one_hot.T @ images
    means = None
    if split == SPLIT_TRAIN:
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts[:, None]
    return counts.tolist(), means, skipped


def _data_profile(
    examples: metadata_store_pb2.Artifact,
    anomalies: list[Anomaly],
    test_labels: list[int] | None,
    cache: ReportCache,
) -> DataProfile:
    split_counts = _property(examples, "split_counts") or {}
    splits = _property(examples, "split_names") or list(SPLITS)
    label_counts, skipped, means = {}, {}, None
    for split in splits:
        if split == SPLIT_TEST and test_labels is not None:
            label_counts[split] = test_labels  # counted by the prediction pass
            continue
        label_counts[split], split_means, skipped[split] = cache.get(
            "split_profile",
            [_identity(examples), split],
            lambda split=split: _profile_split(examples.uri, split),
            load=lambda stored: (
                stored[0],
                None if stored[1] is None else np.asarray(stored[1], np.float64),
                stored[2],
            ),
        )
        means = split_means if split_means is not None else means
    return DataProfile(
        split_counts={split: int(count) for split, count in split_counts.items()},
        label_counts=label_counts,
        mean_images=means,
        anomalies=anomalies,
        skipped={split: count for split, count in skipped.items() if count},
    )


def _predictions(
    model_uri: str, examples_uri: str, shown: int = MISTAKES_SHOWN
) -> tuple[Predictions, list[int]]:
    """The candidate's `predict` signature over the test split, as a client calls it.

    Returns:
      The pass's mistakes (the `shown` most confident) and the split's label counts.
    """
    loaded = tf.saved_model.load(path_utils.serving_model_path(model_uri))
    predict = loaded.signatures[PREDICT_SIGNATURE]
    counts = np.zeros(features.NUM_CLASSES, np.int64)
    wrong_pixels, wrong_labels, wrong_classes, wrong_probabilities = [], [], [], []
    total = 0
    for images, labels, _ in split_batches(examples_uri, SPLIT_TEST):
        if not len(labels):
            continue
        requests = example_export.encode_examples(
            example_export.DigitArrays(images, labels), features.IMAGE_KEY, None
        )
        outputs = predict(examples=tf.constant(requests))
        classes = outputs[CLASSES].numpy()
        confidence = outputs[PROBABILITIES].numpy()[np.arange(len(classes)), classes]
        wrong = classes != labels
        wrong_pixels.append(images[wrong].astype(np.uint8))
        wrong_labels.append(labels[wrong])
        wrong_classes.append(classes[wrong])
        wrong_probabilities.append(confidence[wrong])
        counts += _label_counts(labels)
        total += len(labels)
    if not total:
        return Predictions(0, 0, []), counts.tolist()
    probabilities = np.concatenate(wrong_probabilities)
    order = np.argsort(-probabilities, kind="stable")[:shown]
    pixels, labels, classes = (
        np.concatenate(part) for part in (wrong_pixels, wrong_labels, wrong_classes)
    )
    mistakes = [
        Mistake(pixels[index], int(labels[index]), int(classes[index]), float(probabilities[index]))
        for index in order
    ]
    return Predictions(total, len(probabilities), mistakes), counts.tolist()


def _identity(artifact: metadata_store_pb2.Artifact) -> list:
    """What names an artifact's contents for good, as a cache key.

    Its URI alone could come back (a deleted store numbers executions from 1
    again); with its ML Metadata id and creation time it cannot.
    """
    return [artifact.id, artifact.uri, artifact.create_time_since_epoch]


def _dump_predictions(value: tuple[Predictions, list[int]]) -> dict:
    predictions, test_labels = value
    return {
        "examples": predictions.examples,
        "wrong": predictions.wrong,
        "mistakes": [[m.pixels, m.label, m.predicted, m.probability] for m in predictions.mistakes],
        "test_labels": test_labels,
    }


def _load_predictions(stored: dict) -> tuple[Predictions, list[int]]:
    mistakes = [
        Mistake(np.asarray(pixels, np.uint8), label, predicted, probability)
        for pixels, label, predicted, probability in stored["mistakes"]
    ]
    return Predictions(stored["examples"], stored["wrong"], mistakes), stored["test_labels"]


def _before(node_id: str, runs: dict[str, run_summary.ComponentRun]) -> str:
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
    runs: dict[str, run_summary.ComponentRun],
) -> list[lineage.Step] | None:
    if summary.pushed:
        return lineage.trace_release(store, runs["Pusher"].outputs["pushed_model"])
    model = _output(runs, "Trainer", "model")
    blessing = _output(runs, "Evaluator", "blessing")
    if model is not None and blessing is not None:
        return lineage.trace_model(lineage.Lineage(store), model, blessing)
    return None


def gather(
    output_dir: str,
    run_id: str | None = None,
    failure: str | None = None,
    cache: ReportCache | None = None,
) -> ReportData:
    """Reads one run of the local pipeline in output_dir.

    Args:
      output_dir: The runner's --output-dir (holds metadata.db).
      run_id: The run (its `pipeline_run` context name); None for the newest.
      failure: The runner's error message, when the run stopped.
      cache: Where the passes over the data are kept between reports (a
        cached rerun reads the same artifacts); None reads them every time.

    Returns:
      The report's data; sections the run has no data for are None, with
      the reason in `unavailable`.

    Raises:
      NoMetadataError: no ML Metadata in output_dir, or no such run.
    """
    cache = cache or ReportCache(None)
    store = open_store(output_dir)
    run = find_run(store, run_id)
    summary = run_summary.latest_run_summary(
        OutputLayout(output_dir).metadata_path, PIPELINE_NAME, run.name
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

    model = _output(runs, "Trainer", "model")
    examples = _output(runs, "MnistExampleGen", "examples")
    predictions, test_labels = None, None
    if model is not None and examples is not None:
        predictions, test_labels = cache.get(
            "predictions",
            [_identity(model), _identity(examples)],
            lambda: _predictions(model.uri, examples.uri),
            dump=_dump_predictions,
            load=_load_predictions,
        )
    else:
        unavailable["errors"] = _before("Trainer" if examples else "MnistExampleGen", runs)

    data = None
    if examples is not None:
        data = _data_profile(examples, anomalies, test_labels, cache)
    else:
        unavailable["data"] = _before("MnistExampleGen", runs)

    chain = _lineage(store, summary, runs)
    if chain is None:
        unavailable["lineage"] = f"{_before('Evaluator', runs)}; no evaluated model to trace"
    if not components:
        unavailable["timings"] = "ML Metadata recorded no execution for this run"

    return ReportData(
        run_id=run.name,
        created=lineage.iso_time(run.create_time_since_epoch),
        output_dir=output_dir,
        outcome=outcome,
        components=components,
        gates=gates,
        training=training,
        quality=quality,
        predictions=predictions,
        data=data,
        lineage_steps=chain,
        unavailable=unavailable,
    )
