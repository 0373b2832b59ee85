"""Reads TFMA's outputs of an Evaluator run: accuracy, per-digit slices, confusions, gates.

Shared by the Pusher (the release manifest), the run summary and the lineage
command, so the three always report the same figures the same way.
"""

import tensorflow_model_analysis as tfma
from google.protobuf import json_format
from tensorflow_model_analysis.writers import eval_config_writer

from pipeline.features import LABEL_KEY

ACCURACY_METRIC = "sparse_categorical_accuracy"


def _candidate_accuracy(metrics_for_slice) -> float | None:
    for key_and_value in metrics_for_slice.metric_keys_and_values:
        key = key_and_value.key
        if key.name == ACCURACY_METRIC and not key.is_diff and key.model_name != "baseline":
            return key_and_value.value.double_value.value
    return None


def overall_accuracy(evaluation_uri: str) -> float | None:
    """The candidate model's overall test accuracy from TFMA's metrics output."""
    for metrics_for_slice in tfma.load_metrics(evaluation_uri):
        if not metrics_for_slice.slice_key.single_slice_keys:
            return _candidate_accuracy(metrics_for_slice)
    return None


def digit_accuracy(evaluation_uri: str) -> dict[int, float]:
    """Accuracy per true digit, from TFMA's slices on the label."""
    per_digit = {}
    for metrics_for_slice in tfma.load_metrics(evaluation_uri):
        keys = metrics_for_slice.slice_key.single_slice_keys
        if len(keys) == 1 and keys[0].column == LABEL_KEY:
            accuracy = _candidate_accuracy(metrics_for_slice)
            if accuracy is not None:
                per_digit[int(keys[0].int64_value)] = accuracy
    return per_digit


def top_confusions(evaluation_uri: str) -> dict[int, tuple[int, int]]:
    """From TFMA's multi-class confusion matrix (overall slice): for each true
    digit, the wrong prediction it gets most often and how many times."""
    confusions: dict[int, tuple[int, int]] = {}
    for plots_for_slice in tfma.load_plots(evaluation_uri):
        if plots_for_slice.slice_key.single_slice_keys:
            continue
        for key_and_value in plots_for_slice.plot_keys_and_values:
            if key_and_value.key.model_name == "baseline":
                continue
            for matrix in key_and_value.value.multi_class_confusion_matrix_at_thresholds.matrices:
                for entry in matrix.entries:
                    actual, predicted = entry.actual_class_id, entry.predicted_class_id
                    count = int(entry.num_weighted_examples)
                    if actual != predicted and count > confusions.get(actual, (None, 0))[1]:
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
