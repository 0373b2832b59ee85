"""Reads TFMA's outputs of an Evaluator run: accuracy, per-digit slices, confusions, gates.

Shared by the Pusher (the release manifest), the run summary and the lineage
command, so the three always report the same figures the same way.
"""

import tensorflow_model_analysis as tfma
from google.protobuf import json_format
from tensorflow_model_analysis.writers import eval_config_writer

ACCURACY_METRIC = "sparse_categorical_accuracy"


BASELINE_MODEL_NAME = "baseline"
"""TFX's Evaluator names the baseline model spec this; the candidate is the other."""


def _is_wanted(model_name: str, baseline: bool) -> bool:
    return (model_name == BASELINE_MODEL_NAME) == baseline


def _accuracy(metrics_for_slice, baseline: bool = False) -> float | None:
    for key_and_value in metrics_for_slice.metric_keys_and_values:
        key = key_and_value.key
        if key.name == ACCURACY_METRIC and not key.is_diff and _is_wanted(key.model_name, baseline):
            return key_and_value.value.double_value.value
    return None


def overall_accuracy(evaluation_uri: str, baseline: bool = False) -> float | None:
    """Overall test accuracy of the candidate (or, with baseline=True, the
    baseline model) from TFMA's metrics output; None if TFMA has no such figure."""
    for metrics_for_slice in tfma.load_metrics(evaluation_uri):
        if not metrics_for_slice.slice_key.single_slice_keys:
            return _accuracy(metrics_for_slice, baseline)
    return None


def label_key(evaluation_uri: str) -> str:
    """The label feature the Evaluator was configured with (its first model spec)."""
    eval_config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    return eval_config.model_specs[0].label_key


def digit_accuracy(evaluation_uri: str, baseline: bool = False) -> dict[int, float]:
    """Accuracy per true digit, from TFMA's slices on the evaluation's label."""
    per_digit = {}
    label = label_key(evaluation_uri)
    for metrics_for_slice in tfma.load_metrics(evaluation_uri):
        keys = metrics_for_slice.slice_key.single_slice_keys
        if len(keys) == 1 and keys[0].column == label:
            accuracy = _accuracy(metrics_for_slice, baseline)
            if accuracy is not None:
                per_digit[int(keys[0].int64_value)] = accuracy
    return per_digit


def confusion_matrix(evaluation_uri: str, baseline: bool = False) -> list[list[int]]:
    """TFMA's multi-class confusion matrix on the overall slice, as counts.

    Returns:
      rows[actual][predicted] for classes 0..N-1 (N from the entries TFMA
      wrote); an empty list if the evaluation has no such plot (e.g. no
      baseline was evaluated).
    """
    entries: dict[tuple[int, int], int] = {}
    for plots_for_slice in tfma.load_plots(evaluation_uri):
        if plots_for_slice.slice_key.single_slice_keys:
            continue
        for key_and_value in plots_for_slice.plot_keys_and_values:
            if not _is_wanted(key_and_value.key.model_name, baseline):
                continue
            for matrix in key_and_value.value.multi_class_confusion_matrix_at_thresholds.matrices:
                for entry in matrix.entries:
                    cell = (entry.actual_class_id, entry.predicted_class_id)
                    entries[cell] = entries.get(cell, 0) + int(entry.num_weighted_examples)
    if not entries:
        return []
    size = 1 + max(max(cell) for cell in entries)
    return [
        [entries.get((actual, predicted), 0) for predicted in range(size)] for actual in range(size)
    ]


def top_confusions(evaluation_uri: str) -> dict[int, tuple[int, int]]:
    """For each true digit: the wrong prediction it gets most often and how many
    times (from the candidate's confusion matrix; digits never confused are absent)."""
    confusions: dict[int, tuple[int, int]] = {}
    for actual, row in enumerate(confusion_matrix(evaluation_uri)):
        wrong = [(count, predicted) for predicted, count in enumerate(row) if predicted != actual]
        if wrong and max(wrong)[0] > 0:
            count, predicted = max(wrong)
            confusions[actual] = (predicted, count)
    return confusions


def validation_failures(evaluation_uri: str) -> list[str]:
    """TFMA's reasons for not blessing: metric, value and threshold, one per line."""
    result = tfma.load_validation_result(evaluation_uri)
    failures = []
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            kind = "change vs. baseline" if failure.metric_key.is_diff else "value"
            failures.append(
                f"{failure.metric_key.name} {kind} {failure.metric_value.double_value.value:.4f} "
                f"violates threshold {_threshold_text(failure.metric_threshold)}"
            )
    if not result.validation_ok and not failures and result.missing_thresholds:
        failures.append("thresholds missing")
    return failures


def _threshold_text(threshold: tfma.MetricThreshold) -> str:
    value = threshold.value_threshold
    if value.HasField("lower_bound"):
        return f">= {value.lower_bound.value}"
    if value.HasField("upper_bound"):
        return f"<= {value.upper_bound.value}"
    change = threshold.change_threshold
    if change.HasField("absolute"):
        return f"change >= {change.absolute.value} (higher is better)"
    return str(threshold).replace("\n", " ")


def gate_texts(eval_config: tfma.EvalConfig) -> list[str]:
    """The gates an EvalConfig sets, e.g. 'SparseCategoricalAccuracy >= 0.97'."""
    found = []
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            gates = [per_slice.threshold for per_slice in metric.per_slice_thresholds]
            if metric.HasField("threshold"):
                gates.append(metric.threshold)
            for threshold in gates:
                if threshold.value_threshold.HasField("lower_bound"):
                    bound = threshold.value_threshold.lower_bound.value
                    found.append(f"{metric.class_name} >= {bound}")
                if threshold.change_threshold.HasField("absolute"):
                    change = threshold.change_threshold.absolute.value
                    found.append(f"{metric.class_name} change vs baseline >= {change}")
    return found


def gates_of_evaluation(evaluation_uri: str) -> list[str]:
    """The gates of the EvalConfig TFMA wrote beside its results."""
    eval_config, _, _, _ = eval_config_writer.load_eval_run(evaluation_uri)
    return gate_texts(eval_config)


def gates_of_config_json(eval_config_json: str) -> list[str]:
    """The gates of an EvalConfig as TFX stores it (the Evaluator's exec property)."""
    eval_config = tfma.EvalConfig()
    json_format.Parse(eval_config_json or "{}", eval_config, ignore_unknown_fields=True)
    return gate_texts(eval_config)
