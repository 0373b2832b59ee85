"""ServingCheck: InfraValidator's job without Docker: does the candidate serve?

TFX's InfraValidator starts TF Serving in Docker or Kubernetes; neither exists
here. This component does what a model server would do with the candidate,
in a fresh process with only TensorFlow (components/serving_probe.py, run
with `python -I`): load it with the `serve` tag and call `serving_default`
with real label-less test examples (the canary) and with malformed requests.
It blesses the model (TFX's standard InfraBlessing, which the Pusher checks)
only if
- the process ran to the end and still answered after the malformed requests,
- the output is [N, 10] probabilities whose rows sum to 1 within 1e-4,
- the canary's accuracy is within `accuracy_tolerance` of the Evaluator's
  (or within the canary's sampling noise, if larger: `accuracy_allowance`),
- no project module was loaded in the probe process.
It records the p50 / p99 latency of batch 1 and batch 256 and what each
malformed request returned, and writes the candidate with a TF Serving
warmup file (`assets.extra/tf_serving_warmup_requests`, PredictionLog
records of canary requests) into the InfraBlessing: that copy is what the
Pusher releases.
"""

import json
import math
import os
import subprocess
import sys

import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import io_utils, path_utils

from components.source_fingerprint import FingerprintDriver
from contract import artifacts, features, files, tfx_internals
from contract import evaluation as evaluation_results

PROBE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "serving_probe.py")
WARMUP_REQUESTS = 5
ROW_SUM_TOLERANCE = 1e-4


def canary_examples(examples_uri: str, split: str, count: int) -> tuple[list[bytes], list[int]]:
    """`count` examples spread evenly over a split, without their label, and the labels.

    Evenly spread, not the first ones: MNIST's test split is ordered (its first
    half was written by a different, neater population), so its first 200
    digits are easier than the split as a whole.
    """
    dataset = tf.data.TFRecordDataset(
        artifacts.split_files(examples_uri, split), compression_type=files.TFRECORD_COMPRESSION
    )
    everything = [record.numpy() for record in dataset]
    step = max(1, len(everything) // count)
    records, labels = [], []
    for serialized in everything[::step][:count]:
        example = tf.train.Example.FromString(serialized)
        labels.append(int(example.features.feature[features.LABEL_KEY].int64_list.value[0]))
        del example.features.feature[features.LABEL_KEY]
        records.append(example.SerializeToString())
    return records, labels


def run_probe(model_dir: str, records: list[bytes], work_dir: str) -> dict:
    """Runs components/serving_probe.py in a fresh, isolated Python; returns its JSON."""
    tf.io.gfile.makedirs(work_dir)
    canary = os.path.join(work_dir, "canary.tfrecord")
    with tf.io.TFRecordWriter(canary) as writer:
        for record in records:
            writer.write(record)
    out = os.path.join(work_dir, "probe.json")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-I", PROBE_SCRIPT, "--model-dir", model_dir]
    process = subprocess.run(
        [*command, "--canary", canary, "--out", out],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if process.returncode != 0 or not tf.io.gfile.exists(out):
        tail = "\n".join(process.stderr.strip().splitlines()[-8:])
        return {"probe_failed": f"exit code {process.returncode}: {tail}"}
    with tf.io.gfile.GFile(out) as source:
        return json.load(source)


def accuracy_allowance(evaluator_accuracy: float, canary_size: int, tolerance: float) -> float:
    """The largest canary-vs-Evaluator accuracy gap that still passes.

    `tolerance`, or the canary's own sampling noise if that is larger: 3.29
    standard errors of an accuracy measured on `canary_size` examples (99.9%
    two-sided), so a model that serves correctly is not refused because 200
    examples cannot measure accuracy to 0.02 (at 0.98 the noise allows 0.033;
    at 0.81, as on the test slice, 0.091). A serving path that breaks the
    model (e.g. unscaled pixels) falls to chance, far outside either.
    """
    noise = 3.29 * math.sqrt(evaluator_accuracy * (1 - evaluator_accuracy) / canary_size)
    return max(tolerance, noise)


def judge(
    result: dict, labels: list[int], evaluator_accuracy: float | None, tolerance: float
) -> list[str]:
    """Why the candidate does not serve; empty if it does."""
    if "probe_failed" in result:
        return [f"the model did not load or answer in a fresh process: {result['probe_failed']}"]
    problems = []
    if result["canary_shape"] != [len(labels), 10]:
        problems.append(f"output shape {result['canary_shape']}, expected [{len(labels)}, 10]")
    elif result["max_row_sum_error"] > ROW_SUM_TOLERANCE:
        problems.append(f"rows do not sum to 1 (off by up to {result['max_row_sum_error']:.2e})")
    else:
        accuracy = sum(
            p == t for p, t in zip(result["canary_classes"], labels, strict=False)
        ) / len(labels)
        result["canary_accuracy"] = accuracy
        if evaluator_accuracy is not None:
            allowed = accuracy_allowance(evaluator_accuracy, len(labels), tolerance)
            result["accuracy_tolerance_used"] = allowed
            if abs(accuracy - evaluator_accuracy) > allowed:
                problems.append(
                    f"canary accuracy {accuracy:.4f} is not within {allowed:.4f} of the "
                    f"Evaluator's {evaluator_accuracy:.4f}"
                )
    if not result.get("answers_after_malformed"):
        problems.append("the model stopped answering after the malformed requests")
    if result.get("project_modules_loaded"):
        problems.append(f"serving needed project code: {result['project_modules_loaded']}")
    return problems


def write_warmup(model_dir: str, records: list[bytes]) -> str:
    """TF Serving's warmup file: PredictionLog records of a few canary requests."""
    path = os.path.join(model_dir, files.WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for record in records[:WARMUP_REQUESTS]:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name="mnist", signature_name=features.SIGNATURE_NAME)
            )
            request.inputs["examples"].CopyFrom(tf.make_tensor_proto([record], dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path


@component
def ServingCheck(  # noqa: N802 (TFX components are named like classes)
    model: InputArtifact[standard_artifacts.Model],
    examples: InputArtifact[standard_artifacts.Examples],
    blessing: OutputArtifact[standard_artifacts.InfraBlessing],
    evaluation: InputArtifact[standard_artifacts.ModelEvaluation] = None,
    split: Parameter[str] = "test",
    canary_count: Parameter[int] = 200,
    accuracy_tolerance: Parameter[float] = 0.02,
) -> None:
    """Blesses the candidate for serving if it loads and answers as a server would call it.

    Args:
      model: The Trainer's model.
      examples: Where the canary requests come from (`split`, labels removed).
      blessing: Output InfraBlessing; with the blessed model + warmup file.
      evaluation: The Evaluator's output; the canary accuracy must be near it.
      split: The split of `examples` to take the canary from.
      canary_count: How many canary requests.
      accuracy_tolerance: Largest allowed gap between canary and Evaluator accuracy.
    """
    model_dir = path_utils.serving_model_path(model.uri)
    records, labels = canary_examples(examples.uri, split, canary_count)
    result = run_probe(model_dir, records, os.path.join(blessing.uri, "probe"))
    evaluator_accuracy = (
        evaluation_results.overall_accuracy(evaluation.uri) if evaluation is not None else None
    )
    problems = judge(result, labels, evaluator_accuracy, accuracy_tolerance)
    for name in ("canary_accuracy", "max_row_sum_error", "accuracy_tolerance_used"):
        if name in result:
            blessing.set_float_custom_property(name, float(result[name]))
    for batch, figures in result.get("latency", {}).items():
        for figure, value in figures.items():
            blessing.set_float_custom_property(f"latency_{batch}_{figure}", value)
    blessing.set_string_custom_property(
        "malformed_requests", json.dumps(result.get("malformed", {}), sort_keys=True)
    )
    if problems:
        blessing.set_int_custom_property("blessed", 0)
        blessing.set_string_custom_property("reason", "; ".join(problems))
        io_utils.write_string_file(os.path.join(blessing.uri, "INFRA_NOT_BLESSED"), "")
        return
    stamped = path_utils.stamped_model_path(blessing.uri)
    io_utils.copy_dir(model_dir, stamped)
    write_warmup(stamped, records)
    blessing.set_int_custom_property("blessed", 1)
    blessing.set_int_custom_property(tfx_internals.INFRA_BLESSING_HAS_MODEL, 1)
    io_utils.write_string_file(os.path.join(blessing.uri, "INFRA_BLESSED"), "")


# Cache key: this module's code and the probe script it runs.
ServingCheck.DRIVER_CLASS = FingerprintDriver
ServingCheck.SOURCE_MODULES = (__name__, "components.serving_probe")
