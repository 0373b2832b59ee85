"""LabelCheck: the served model reads each new span; many disagreements mark it suspect.

Drift statistics cannot see wrong labels: shuffling labels keeps the label
distribution. Before training, the served model (the newest release) runs
its `predict` signature over each span's training part (`span_train`, one
file per span) and counts disagreements with the given labels. Its own test
error e (the release manifest's test accuracy) predicts about n*e
disagreements in n examples. A span is suspect when its disagreement rate
is above e + `error_margin` (room for new data that is honestly a little
harder than MNIST's test split, and for a weak model's noise) and the
one-sided binomial tail P(X >= d | n, e) is below `max_p_value` (so a small
span is not condemned by chance). Each span's figures, verdict
and worst examples (the disagreements the model is most sure of, with their
pixels) go into `label_check.json`; the check only records, and AnomalyGate
stops the run before Transform on any suspect span, so nothing trained on it
is trained or released.
"""

import json
import logging
import os
from typing import Any

import numpy as np
import tensorflow as tf
from scipy import stats
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.types.experimental import simple_artifacts

from components import example_export, span_examples, spans
from components.source_fingerprint import FingerprintDriver
from contract import artifacts, features, files, releases, tfx_internals

WORST_SHOWN = 8
"""How many of a span's most confident disagreements the record keeps."""


def judge_span(
    number: int,
    labels: np.ndarray,
    classes: np.ndarray,
    confidence: np.ndarray,
    test_error: float,
    error_margin: float,
    max_p_value: float,
    images: np.ndarray | None = None,
) -> dict[str, Any]:
    """One span's verdict from the model's classes and the given labels.

    `images` (the span's pixels), when given, are kept for the worst examples
    so the report can show them.
    """
    n = len(labels)
    disagree = classes != labels
    d = int(disagree.sum())
    rate = d / n if n else 0.0
    limit = test_error + error_margin
    p_value = float(stats.binom.sf(d - 1, n, max(test_error, 1e-6))) if n else 1.0
    suspect = rate > limit and p_value < max_p_value
    order = np.argsort(-np.where(disagree, confidence, -1.0), kind="stable")[: min(WORST_SHOWN, d)]
    return {
        "span": number,
        "examples": n,
        "disagreements": d,
        "disagreement_rate": round(rate, 4),
        "expected_rate": round(test_error, 4),
        "limit_rate": round(limit, 4),
        "p_value": p_value,
        "suspect": bool(suspect),
        "worst": [
            {
                "index": int(index),
                "label": int(labels[index]),
                "predicted": int(classes[index]),
                "confidence": round(float(confidence[index]), 4),
                **({"pixels": images[index].astype(int).tolist()} if images is not None else {}),
            }
            for index in order
        ],
    }


def gate_message(record: dict[str, Any]) -> str:
    lines = [
        f"Suspect labels: the served model (release {record['release_version']}, test error "
        f"{record['test_error']:.2%}) disagrees with the given labels far more often than its "
        "test error predicts:"
    ]
    for span in record["spans"]:
        if not span["suspect"]:
            continue
        lines.append(
            f"  span-{span['span']}: {span['disagreements']} of {span['examples']} "
            f"({span['disagreement_rate']:.1%}; expected about {span['expected_rate']:.1%}, "
            f"limit {span['limit_rate']:.1%}, binomial p = {span['p_value']:.1e})"
        )
        worst = ", ".join(
            f"#{w['index']} labelled {w['label']}, read as {w['predicted']} ({w['confidence']:.0%})"
            for w in span["worst"][:5]
        )
        lines.append(f"    most certain disagreements: {worst}")
    lines.append(
        "The span is held back: nothing trained on it was trained or released. Check its "
        "labels (shuffled or shifted label folders?); fix them and resubmit as a new span, or "
        "move the span to _quarantine/."
    )
    return "\n".join(lines)


def check_spans(
    examples_uri: str,
    release_dir: str,
    test_error: float,
    error_margin: float,
    max_p_value: float,
) -> list[dict[str, Any]]:
    """Each span file of `span_train`, read by the served model, judged."""
    predict = tf.saved_model.load(release_dir).signatures[features.PREDICT_SIGNATURE]
    split_dir = files.split_dir(examples_uri, features.SPLIT_SPAN_TRAIN)
    verdicts = []
    for path in sorted(tf.io.gfile.glob(os.path.join(split_dir, "span-*.gz"))):
        digits = spans.read_examples_file(path)
        classes, confidence = [], []
        for start in range(0, len(digits), 2048):
            batch = digits.take(np.arange(start, min(start + 2048, len(digits))))
            requests = example_export.encode_examples(batch, features.IMAGE_KEY, None)
            outputs = predict(examples=tf.constant(requests))
            batch_classes = outputs[features.CLASSES].numpy()
            classes.append(batch_classes)
            confidence.append(
                outputs[features.PROBABILITIES].numpy()[np.arange(len(batch)), batch_classes]
            )
        verdicts.append(
            judge_span(
                span_examples.span_of_file(path),
                digits.labels,
                np.concatenate(classes),
                np.concatenate(confidence),
                test_error,
                error_margin,
                max_p_value,
                digits.images,
            )
        )
    return verdicts


@component
def LabelCheck(  # noqa: N802 (TFX components are named like classes)
    examples: InputArtifact[standard_artifacts.Examples],
    label_check: OutputArtifact[simple_artifacts.File],
    serving_model_dir: Parameter[str],
    error_margin: Parameter[float] = 0.1,
    max_p_value: Parameter[float] = 1e-6,
) -> None:
    """Reads each span with the served model and judges its labels.

    Args:
      examples: MnistExampleGen's output, with the `span_train` split.
      label_check: Output; `label_check.json` (release, test error, spans).
      serving_model_dir: The releases; the newest one reads the spans.
      error_margin: Suspect above the model's test error + this...
      max_p_value: ...and with a binomial tail below this.
    """
    newest = releases.newest_release(serving_model_dir)
    manifest = releases.read_manifest(newest.path) if newest else None
    record: dict[str, Any] = {"release_version": None, "test_error": None, "spans": []}
    if manifest is None or manifest.get("test_accuracy") is None:
        record["verdict"] = "no release with a test accuracy yet: labels not checked"
    else:
        record["release_version"] = newest.version
        record["test_error"] = 1.0 - float(manifest["test_accuracy"])
        record["spans"] = check_spans(
            examples.uri,
            newest.path,
            record["test_error"],
            error_margin,
            max_p_value,
        )
        suspect = [span["span"] for span in record["spans"] if span["suspect"]]
        record["verdict"] = f"suspect spans {suspect}" if suspect else "labels as expected"
    tf.io.gfile.makedirs(label_check.uri)
    with tf.io.gfile.GFile(os.path.join(label_check.uri, files.LABEL_CHECK_FILE), "w") as out:
        json.dump(record, out, indent=2, sort_keys=True)
    label_check.set_string_custom_property("verdict", record["verdict"])
    logging.info("LabelCheck: %s", record["verdict"])


def read_record(label_check_uri: str) -> dict[str, Any]:
    """The record this check wrote into its artifact."""
    return artifacts.read_record(label_check_uri, files.LABEL_CHECK_FILE)


# Cache key: this module's code and the inputs. Not the serving directory: a
# window already judged is not judged again against a model released since
# (that model was trained on it), so a run with no new span stays cached.
tfx_internals.declare_driver(LabelCheck, FingerprintDriver, (__name__,))
