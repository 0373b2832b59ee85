"""AnomalyGate: stops the pipeline before Transform when the data has anomalies.

ExampleValidator only *records* anomalies in its ExampleAnomalies artifact;
nothing downstream reads them, so bad data would still be trained on. This
component reads that artifact and fails the run with every anomaly listed
(split, feature, kind, description) and where the full report is. With
spans it reads the two new-data checks' records too, which likewise only
record (so the report shows their figures for a stopped run as well): drift
beyond a threshold (DriftCheck; not when it was told to warn) and suspect
labels (LabelCheck). Transform runs only after it succeeds, so no model is
trained or released from bad data; its execution, failed or not, is
recorded in ML Metadata like any other.
"""

from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.experimental import simple_artifacts

from components import drift_check
from components import label_check as label_checks
from components.source_fingerprint import FingerprintDriver
from contract.artifacts import Anomaly, read_anomalies
from contract.errors import DataAnomaliesError, DataDriftError, InputError, SuspectLabelsError


def gate_message(anomalies: list[Anomaly], anomalies_uri: str) -> str:
    """The error a user sees: what is wrong, where the report is, what to do."""
    lines = [f"{len(anomalies)} data anomal{'y' if len(anomalies) == 1 else 'ies'} found:"]
    lines += [f"  {anomaly}" for anomaly in anomalies]
    lines += [
        f"Full report (TFDV Anomalies protos, one per split): {anomalies_uri}",
        "Nothing was trained or released from this data. Fix or remove the offending "
        "examples (e.g. the files passed with --extra-examples), or, if the data is "
        "right and the schema is wrong, update schemas/schema.pbtxt in a reviewed change.",
    ]
    return "\n".join(lines)


def stop_reasons(
    anomalies_uri: str,
    split_names: list[str],
    drift_uri: str | None = None,
    label_check_uri: str | None = None,
) -> list[tuple[type[InputError], str]]:
    """Every reason to stop: (error class, message), schema anomalies first."""
    reasons: list[tuple[type[InputError], str]] = []
    found = read_anomalies(anomalies_uri, split_names)
    if found:
        reasons.append((DataAnomaliesError, gate_message(found, anomalies_uri)))
    if drift_uri is not None:
        record = drift_check.read_record(drift_uri)
        if record["verdict"] == drift_check.DRIFTED:
            reasons.append((DataDriftError, drift_check.gate_message(record)))
    if label_check_uri is not None:
        record = label_checks.read_record(label_check_uri)
        if any(span["suspect"] for span in record["spans"]):
            reasons.append((SuspectLabelsError, label_checks.gate_message(record)))
    return reasons


@component
def AnomalyGate(  # noqa: N802 (TFX components are named like classes)
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    drift: InputArtifact[standard_artifacts.ExampleAnomalies] = None,
    label_check: InputArtifact[simple_artifacts.File] = None,
) -> None:
    """Fails when ExampleValidator found any anomaly, or a new-data check failed.

    Args:
      anomalies: ExampleValidator's output.
      drift: DriftCheck's output (with spans).
      label_check: LabelCheck's output (with spans).

    Raises:
      DataAnomaliesError: listing every anomaly and the report's location.
      DataDriftError: drift beyond a threshold (feature, distance, threshold).
      SuspectLabelsError: a suspect span (its figures and worst examples).
      The first of these that applies is raised, with every reason's message.
    """
    reasons = stop_reasons(
        anomalies.uri,
        artifact_utils.decode_split_names(anomalies.split_names),
        drift.uri if drift is not None else None,
        label_check.uri if label_check is not None else None,
    )
    if reasons:
        raise reasons[0][0]("\n".join(message for _, message in reasons))


# Cache key: this module's code (an edit to the gate reruns it).
AnomalyGate.DRIVER_CLASS = FingerprintDriver
AnomalyGate.SOURCE_MODULES = (__name__,)
