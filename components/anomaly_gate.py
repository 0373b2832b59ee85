"""AnomalyGate: stops the pipeline before Transform when the data has anomalies.

ExampleValidator only *records* anomalies in its ExampleAnomalies artifact;
nothing downstream reads them, so bad data would still be trained on. This
component reads that artifact and fails the run with every anomaly listed
(split, feature, kind, description) and where the full report is. Transform
runs only after it succeeds, so no model is trained or released from bad
data; its execution, failed or not, is recorded in ML Metadata like any other.
"""

from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

from components.source_fingerprint import FingerprintDriver
from contract.artifacts import Anomaly, read_anomalies
from contract.errors import DataAnomaliesError


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


@component
def AnomalyGate(  # noqa: N802 (TFX components are named like classes)
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
) -> None:
    """Fails when ExampleValidator found any anomaly in any split.

    Args:
      anomalies: ExampleValidator's output.

    Raises:
      DataAnomaliesError: listing every anomaly and the report's location.
    """
    split_names = artifact_utils.decode_split_names(anomalies.split_names)
    found = read_anomalies(anomalies.uri, split_names)
    if found:
        raise DataAnomaliesError(gate_message(found, anomalies.uri))


# Cache key: this module's code (an edit to the gate reruns it).
AnomalyGate.DRIVER_CLASS = FingerprintDriver
AnomalyGate.SOURCE_MODULES = (__name__,)
