"""The files inside artifacts and releases that more than one package reads.

Paths are relative to the artifact (or SavedModel / release) directory they
live in. TF Serving ignores `assets.extra/` except its warmup file, so a
release directory stays a loadable SavedModel version and still carries its
manifest, model card, training record and TFLite models.
"""

import os

EXTRA_DIR = "assets.extra"

MANIFEST_FILE = os.path.join(EXTRA_DIR, "release.json")
"""A release's manifest: version, fingerprint, metrics, gates, data, lineage."""
MODEL_CARD_MARKDOWN_FILE = os.path.join(EXTRA_DIR, "model_card.md")
MODEL_CARD_HTML_FILE = os.path.join(EXTRA_DIR, "model_card.html")
TRAINING_INFO_FILE = os.path.join(EXTRA_DIR, "training.json")
"""The Trainer's record inside its SavedModel: hyper-parameters, epochs, best epoch."""
TFLITE_FILE = os.path.join(EXTRA_DIR, "model.tflite")
"""Float TFLite model: one int64 [N, 784] input of raw pixels, float [N, 10] out."""
TFLITE_QUANTIZED_FILE = os.path.join(EXTRA_DIR, "model_dynamic_range.tflite")
WARMUP_FILE = os.path.join(EXTRA_DIR, "tf_serving_warmup_requests")
"""TF Serving's warmup requests (PredictionLog TFRecords), written by ServingCheck."""

SAVED_MODEL_FILE = "saved_model.pb"
STAGING_DIR = ".staging"
"""Under a serving directory: pushes being assembled, never served."""

HISTORY_FILE = "training_history.json"
"""In the Trainer's ModelRun artifact: per-epoch metrics, epochs run, best epoch."""
ANOMALIES_FILE = "SchemaDiff.pb"
"""In each `Split-<name>/` of an ExampleAnomalies artifact: TFDV's Anomalies proto."""
TRAIN_STATISTICS_FILE = os.path.join(EXTRA_DIR, "train_statistics.pb")
"""A release's copy of its training data's TFDV statistics (the train split's
FeatureStats.pb): the next run's drift baseline, wherever the pipeline root was."""
STATISTICS_FILE = "FeatureStats.pb"
"""In each `Split-<name>/` of an ExampleStatistics artifact: TFDV's statistics (binary)."""
DRIFT_FILE = "drift.json"
"""In DriftCheck's ExampleAnomalies artifact: baseline, distances, thresholds, verdict."""
LABEL_CHECK_FILE = "label_check.json"
"""In LabelCheck's File artifact: per span, disagreements, expected, verdict, worst examples."""
TFRECORD_COMPRESSION = "GZIP"
"""How every Examples artifact's TFRecords are compressed (TFX's default)."""
GALLERY_FILE = "gallery.json"
"""In ErrorGallery's File artifact: test examples read, how many wrong, test label counts."""
GALLERY_ARRAYS_FILE = "gallery.npz"
"""In ErrorGallery's File artifact: the most confident mistakes, most confident first."""
PROFILE_FILE = "profile.json"
"""In DataProfile's File artifact: per-split label counts and skipped-record counts."""
PROFILE_ARRAYS_FILE = "profile.npz"
"""In DataProfile's File artifact: the train split's mean image per digit, [10, 784]."""


def split_dir(artifact_uri: str, split: str) -> str:
    """Where TFX keeps one split of a multi-split artifact (`Split-<name>/`)."""
    return os.path.join(artifact_uri, f"Split-{split}")
