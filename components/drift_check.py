"""DriftCheck: measures how far the new data drifted from the served model's training data.

Compared are the window as a whole (StatisticsGen's `span_train` statistics)
and each span on its own (its statistics computed in memory by TFDV's own
generators): one drifted span among several clean ones is diluted in the
window's histogram, not in its own.

The window's statistics (StatisticsGen's `span_train` split: the spans'
training examples) are compared with the statistics of the data the served
model was trained on, found through its release manifest
(its copy in `assets.extra/train_statistics.pb`, else `data.statistics_uri`,
both written by ReleaseManifest), not through a resolver
(open-source KFP runs none). TFDV's `validate_statistics(...,
previous_statistics=...)` measures, with the schema's drift comparators set
from the config: the Jensen-Shannon divergence of the pixel intensities
(`image`) and the L-infinity distance of the label distribution (`label`,
categorical in the curated schema). TFX 1.16's DistributionValidator does
the same comparison but takes its baseline as an input channel: with no
release yet there is no baseline artifact to give it, and making one from a
release file would be a resolver in disguise.

Every run records the distances (`drift.json` and the artifact's `drift`
property, TFDV's Anomalies proto in `Split-span_train/SchemaDiff.pb`), also
when they are beyond a threshold: the check only records, as ExampleValidator
does, and AnomalyGate stops the run before Transform, naming the feature,
distance and threshold, unless `warn_only` (the record then says "warned").
"""

import json
import logging
import os
from typing import Any

import pandas as pd
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

from components import span_examples, spans
from components.example_export import DigitArrays
from components.source_fingerprint import FingerprintDriver
from contract import artifacts, features, files, releases, tfx_internals

DRIFTED = "drift beyond a threshold"
WARNED = "drift beyond a threshold (warned, not stopped)"
_MEASURE_NAMES = {
    anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: "Jensen-Shannon divergence",
    anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: "L-infinity distance",
}


def baseline_statistics(serving_model_dir: str) -> tuple[int, str] | None:
    """(version, statistics file) of the served model's training data.

    The release's own copy (`files.TRAIN_STATISTICS_FILE`), else the
    StatisticsGen artifact its manifest names (`data.statistics_uri`).
    """
    newest = releases.newest_release(serving_model_dir)
    if newest is not None:
        copy = os.path.join(newest.path, files.TRAIN_STATISTICS_FILE)
        if tf.io.gfile.exists(copy):
            return newest.version, copy
    manifest = releases.read_manifest(newest.path) if newest else None
    uri = ((manifest or {}).get("data") or {}).get("statistics_uri")
    if not uri:
        return None
    return newest.version, os.path.join(
        files.split_dir(uri, features.SPLIT_TRAIN), files.STATISTICS_FILE
    )


def drift_schema(
    schema: schema_pb2.Schema, image_js: float, label_linf: float
) -> schema_pb2.Schema:
    """The schema with the drift comparators the config asks for."""
    schema = schema_pb2.Schema.FromString(schema.SerializeToString())
    for feature in schema.feature:
        if feature.name == features.IMAGE_KEY:
            feature.drift_comparator.jensen_shannon_divergence.threshold = image_js
        elif feature.name == features.LABEL_KEY:
            feature.drift_comparator.infinity_norm.threshold = label_linf
    return schema


def measurements(anomalies: anomalies_pb2.Anomalies) -> list[dict[str, Any]]:
    """Every drift distance TFDV measured: feature, measure, value, threshold, beyond it."""
    found = []
    for info in anomalies.drift_skew_info:
        for measurement in info.drift_measurements:
            found.append(
                {
                    "feature": ".".join(info.path.step),
                    "measure": _MEASURE_NAMES.get(measurement.type, str(measurement.type)),
                    "value": round(float(measurement.value), 6),
                    "threshold": float(measurement.threshold),
                    "drifted": float(measurement.value) > float(measurement.threshold),
                }
            )
    return found


def compare(
    current: Any, baseline: Any, schema: schema_pb2.Schema, image_js: float, label_linf: float
) -> tuple[anomalies_pb2.Anomalies, list[dict[str, Any]]]:
    """TFDV's drift comparison of two DatasetFeatureStatisticsLists."""
    anomalies = tfdv.validate_statistics(
        current, drift_schema(schema, image_js, label_linf), previous_statistics=baseline
    )
    return anomalies, measurements(anomalies)


def span_statistics(digits: DigitArrays, schema: schema_pb2.Schema) -> Any:
    """TFDV statistics of one span's examples, computed in memory (no Beam pipeline).

    The same generators StatisticsGen runs (the schema makes `label`
    categorical), on a few thousand examples: well under a second.
    """
    frame = pd.DataFrame(
        {
            features.IMAGE_KEY: list(digits.images),
            features.LABEL_KEY: [[label] for label in digits.labels],
        }
    )
    return tfdv.generate_statistics_from_dataframe(
        frame, stats_options=tfdv.StatsOptions(schema=schema), n_jobs=1
    )


def per_span_measurements(
    examples_uri: str, schema: schema_pb2.Schema, baseline: Any, image_js: float, label_linf: float
) -> list[dict[str, Any]]:
    """Each span of `span_train` against the baseline: one drifted span is not diluted."""
    split_dir = files.split_dir(examples_uri, features.SPLIT_SPAN_TRAIN)
    found = []
    for path in sorted(tf.io.gfile.glob(os.path.join(split_dir, "span-*.gz"))):
        digits = spans.read_examples_file(path)
        _, measured = compare(
            span_statistics(digits, schema), baseline, schema, image_js, label_linf
        )
        found.append({"span": span_examples.span_of_file(path), "measurements": measured})
    return sorted(found, key=lambda entry: entry["span"])


def _beyond(record: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(what was compared, measurement) for every distance beyond its threshold."""
    beyond = [("the window", m) for m in record["measurements"] if m["drifted"]]
    for entry in record.get("per_span", []):
        beyond += [(f"span-{entry['span']}", m) for m in entry["measurements"] if m["drifted"]]
    return beyond


def gate_message(record: dict[str, Any]) -> str:
    lines = [f"The new spans {record['window']} drifted from the served model's training data:"]
    lines += [
        f"  {where}, {m['feature']}: {m['measure']} {m['value']:.4f} > threshold "
        f"{m['threshold']:.4f}"
        for where, m in _beyond(record)
    ]
    lines.append(
        f"(statistics of the spans' training part vs release {record['baseline_version']}'s "
        f"train statistics, {record['baseline_statistics']}). Nothing was trained or "
        "released. Inspect the spans (inverted or rescaled images, a skewed label mix); "
        "move a bad span to "
        "_quarantine/, or, if the world changed, raise the threshold in pipeline/config.py "
        "(SpanConfig) or rerun with --drift-action warn."
    )
    return "\n".join(lines)


def _load_statistics(path: str):
    return tfdv.load_stats_binary(path)


@component
def DriftCheck(  # noqa: N802 (TFX components are named like classes)
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    schema: InputArtifact[standard_artifacts.Schema],
    drift: OutputArtifact[standard_artifacts.ExampleAnomalies],
    serving_model_dir: Parameter[str],
    image_js_threshold: Parameter[float] = 0.1,
    label_linf_threshold: Parameter[float] = 0.1,
    examples: InputArtifact[standard_artifacts.Examples] = None,
    warn_only: Parameter[int] = 0,
) -> None:
    """Compares the window's statistics with the served model's training statistics.

    Args:
      statistics: StatisticsGen's output (with the `span_train` split).
      schema: The curated schema (the drift comparators are added to a copy).
      drift: Output; `Split-span_train/SchemaDiff.pb` and `drift.json`.
      serving_model_dir: The releases; the newest one's manifest names its
        training statistics.
      image_js_threshold: Largest Jensen-Shannon divergence of `image` allowed.
      label_linf_threshold: Largest L-infinity distance of `label` allowed.
      examples: MnistExampleGen's output: its `span_window` names the spans,
        its `span_train` split holds one file per span.
      warn_only: 1: drift beyond a threshold is recorded as "warned" (the gate
        lets the run go on).
    """
    drift.split_names = artifact_utils.encode_split_names([features.SPLIT_SPAN_TRAIN])
    out_dir = files.split_dir(drift.uri, features.SPLIT_SPAN_TRAIN)
    tf.io.gfile.makedirs(out_dir)
    record: dict[str, Any] = {
        "window": json.loads(examples.get_string_custom_property("span_window") or "[]")
        if examples is not None
        else [],
        "baseline_version": None,
        "baseline_statistics": None,
        "measurements": [],
        "verdict": "no release yet: nothing to compare with",
    }
    anomalies = anomalies_pb2.Anomalies()
    found = baseline_statistics(serving_model_dir)
    if found is not None and not tf.io.gfile.exists(found[1]):
        record["verdict"] = (
            f"release {found[0]}'s training statistics are gone ({found[1]}): not compared"
        )
        logging.warning("DriftCheck: %s", record["verdict"])
        found = None
    if found is not None:
        record["baseline_version"], record["baseline_statistics"] = found
        current = _load_statistics(
            os.path.join(
                files.split_dir(statistics.uri, features.SPLIT_SPAN_TRAIN), files.STATISTICS_FILE
            )
        )
        curated = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema.uri))
        baseline = _load_statistics(found[1])
        anomalies, record["measurements"] = compare(
            current, baseline, curated, image_js_threshold, label_linf_threshold
        )
        if examples is not None:
            record["per_span"] = per_span_measurements(
                examples.uri, curated, baseline, image_js_threshold, label_linf_threshold
            )
        drifted = _beyond(record)
        record["verdict"] = (WARNED if warn_only else DRIFTED) if drifted else "within thresholds"
    io_utils.write_bytes_file(
        os.path.join(out_dir, files.ANOMALIES_FILE), anomalies.SerializeToString()
    )
    with tf.io.gfile.GFile(os.path.join(drift.uri, files.DRIFT_FILE), "w") as out:
        json.dump(record, out, indent=2, sort_keys=True)
    drift.set_string_custom_property("drift", json.dumps(record, sort_keys=True))
    logging.info("DriftCheck: %s %s", record["verdict"], record["measurements"])
    if record["verdict"] == WARNED:
        logging.warning("%s", gate_message(record))


def read_record(drift_uri: str) -> dict[str, Any]:
    """The record this check wrote into its artifact."""
    return artifacts.read_record(drift_uri, files.DRIFT_FILE)


# Cache key: this module's code and the inputs. Not the serving directory: a
# window already judged is not judged again against a model released since
# (that model was trained on it), so a run with no new span stays cached.
tfx_internals.declare_driver(DriftCheck, FingerprintDriver, (__name__,))
