"""The new-data checks' judgements: drift distances (TFDV) and the label check's statistics."""

import json

import numpy as np
import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

from components import anomaly_gate, drift_check, label_check
from components.example_export import DigitArrays
from contract import files
from contract.errors import DataDriftError, SuspectLabelsError
from pipeline import config as pipeline_config


def _schema():
    with open(pipeline_config.SCHEMA_FILE) as source:
        return text_format.Parse(source.read(), schema_pb2.Schema())


def _digits(count, seed, inverted=False, label=None):
    rng = np.random.RandomState(seed)
    images = np.zeros((count, 784), np.int64)
    images[:, 300:400] = rng.randint(100, 256, size=(count, 100))
    if inverted:
        images = 255 - images
    labels = rng.randint(0, 10, count) if label is None else np.full(count, label)
    return DigitArrays(images, labels.astype(np.int64))


@pytest.fixture(scope="module")
def baseline():
    return drift_check.span_statistics(_digits(600, 0), _schema())


def _distances(current, baseline):
    _, measured = drift_check.compare(current, baseline, _schema(), 0.1, 0.1)
    return {m["feature"]: m for m in measured}


def test_data_like_the_baseline_is_within_the_thresholds(baseline):
    measured = _distances(drift_check.span_statistics(_digits(600, 1), _schema()), baseline)
    assert set(measured) == {"image", "label"}
    assert not any(m["drifted"] for m in measured.values())
    assert measured["image"]["measure"] == "Jensen-Shannon divergence"
    assert measured["label"]["measure"] == "L-infinity distance"


def test_inverted_digits_drift_in_pixel_intensity(baseline):
    measured = _distances(
        drift_check.span_statistics(_digits(600, 2, inverted=True), _schema()), baseline
    )
    assert measured["image"]["drifted"] and measured["image"]["value"] > 0.3
    assert not measured["label"]["drifted"]


def test_a_skewed_label_mix_drifts_in_l_infinity(baseline):
    skewed = _digits(600, 3)
    skewed.labels[:300] = 7
    measured = _distances(drift_check.span_statistics(skewed, _schema()), baseline)
    assert measured["label"]["drifted"] and measured["label"]["value"] > 0.3
    assert not measured["image"]["drifted"]


def test_the_drift_message_names_span_feature_distance_and_threshold():
    record = {
        "window": [1, 2],
        "baseline_version": 17,
        "baseline_statistics": "stats/FeatureStats.pb",
        "measurements": [
            {
                "feature": "image",
                "measure": "Jensen-Shannon divergence",
                "value": 0.05,
                "threshold": 0.1,
                "drifted": False,
            }
        ],
        "per_span": [
            {
                "span": 2,
                "measurements": [
                    {
                        "feature": "image",
                        "measure": "Jensen-Shannon divergence",
                        "value": 0.49,
                        "threshold": 0.1,
                        "drifted": True,
                    }
                ],
            }
        ],
        "verdict": drift_check.DRIFTED,
    }
    message = drift_check.gate_message(record)
    assert "span-2, image: Jensen-Shannon divergence 0.4900 > threshold 0.1000" in message
    assert "the window" not in message  # within its threshold
    assert "release 17" in message and "--drift-action warn" in message


def _judge(labels, classes, test_error=0.02):
    confidence = np.linspace(0.5, 1.0, len(labels))
    return label_check.judge_span(3, labels, classes, confidence, test_error, 0.1, 1e-6)


def test_thirty_percent_shuffled_labels_are_suspect():
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 10, 2000)
    classes = labels.copy()
    classes[:40] = (classes[:40] + 1) % 10  # the model's own 2% errors
    chosen = rng.choice(2000, 600, replace=False)
    labels[chosen] = rng.permutation(labels[chosen])
    verdict = _judge(labels, classes)
    assert verdict["suspect"]
    assert 0.25 < verdict["disagreement_rate"] < 0.32
    assert verdict["p_value"] < 1e-6
    worst = verdict["worst"]
    assert len(worst) == label_check.WORST_SHOWN
    assert all(w["label"] != w["predicted"] for w in worst)
    assert [w["confidence"] for w in worst] == sorted(
        (w["confidence"] for w in worst), reverse=True
    )


def test_disagreements_near_the_test_error_are_not_suspect():
    labels = np.arange(2000) % 10
    classes = labels.copy()
    classes[:70] = (classes[:70] + 1) % 10  # 3.5%: a little harder than the test split
    verdict = _judge(labels, classes)
    assert not verdict["suspect"] and verdict["disagreements"] == 70


def test_a_tiny_span_is_not_condemned_by_chance():
    labels = np.arange(20) % 10
    classes = labels.copy()
    classes[:4] = (classes[:4] + 1) % 10  # 20% of 20: above the limit, but p is not small
    verdict = _judge(labels, classes)
    assert verdict["disagreement_rate"] > verdict["limit_rate"]
    assert verdict["p_value"] > 1e-6 and not verdict["suspect"]


def test_the_gate_stops_on_drift_and_suspect_labels_naming_both(tmp_path):
    anomalies = tmp_path / "anomalies"
    (anomalies / "Split-train").mkdir(parents=True)
    (anomalies / "Split-train" / files.ANOMALIES_FILE).write_bytes(
        anomalies_pb2.Anomalies().SerializeToString()
    )  # ExampleValidator found nothing
    drift = tmp_path / "drift"
    drift.mkdir()
    drifted = {
        "window": [1],
        "baseline_version": 5,
        "baseline_statistics": "s",
        "measurements": [
            {
                "feature": "image",
                "measure": "Jensen-Shannon divergence",
                "value": 0.5,
                "threshold": 0.1,
                "drifted": True,
            }
        ],
        "verdict": drift_check.DRIFTED,
    }
    (drift / files.DRIFT_FILE).write_text(json.dumps(drifted))
    labels = tmp_path / "labels"
    labels.mkdir()
    rng = np.random.RandomState(1)
    given = rng.randint(0, 10, 500)
    judged = _judge(given, (given + (rng.rand(500) < 0.4)) % 10)
    record = {"release_version": 5, "test_error": 0.02, "spans": [judged], "verdict": "x"}
    (labels / files.LABEL_CHECK_FILE).write_text(json.dumps(record))

    reasons = anomaly_gate.stop_reasons(str(anomalies), ["train"], str(drift), str(labels))
    assert [kind for kind, _ in reasons] == [DataDriftError, SuspectLabelsError]
    assert "span-3: " in reasons[1][1] and "most certain disagreements" in reasons[1][1]

    drifted["verdict"] = drift_check.WARNED
    (drift / files.DRIFT_FILE).write_text(json.dumps(drifted))
    reasons = anomaly_gate.stop_reasons(str(anomalies), ["train"], str(drift), None)
    assert reasons == [], "warned drift lets the run go on"
