"""Readers of the artifacts the components write, for the components after them and the report.

TFMA's outputs have their own reader (`contract.evaluation`); releases theirs
(`contract.releases`).
"""

import dataclasses
import io
import json
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2

from contract import features, files


@dataclasses.dataclass(frozen=True)
class Anomaly:
    """One schema violation in one split."""

    split: str
    feature: str
    kind: str
    description: str

    def __str__(self) -> str:
        return f"[{self.split}] {self.feature}: {self.kind}: {self.description}"


def read_anomalies(anomalies_uri: str, split_names: list[str]) -> list[Anomaly]:
    """Reads TFDV's per-split anomaly reports from an ExampleAnomalies artifact."""
    found = []
    for split in split_names:
        path = os.path.join(files.split_dir(anomalies_uri, split), files.ANOMALIES_FILE)
        report = anomalies_pb2.Anomalies()
        report.ParseFromString(tf.io.gfile.GFile(path, "rb").read())
        for feature, info in sorted(report.anomaly_info.items()):
            kinds = [anomalies_pb2.AnomalyInfo.Type.Name(reason.type) for reason in info.reason]
            found.append(Anomaly(split, feature, ", ".join(kinds) or "UNKNOWN", info.description))
        if report.HasField("dataset_anomaly_info"):
            info = report.dataset_anomaly_info
            found.append(Anomaly(split, "(dataset)", "DATASET", info.description))
    return found


def read_record(uri: str, name: str) -> dict[str, Any]:
    """A JSON record a component wrote into its artifact (`files.DRIFT_FILE`, ...)."""
    with tf.io.gfile.GFile(os.path.join(uri, name)) as source:
        return json.load(source)


def read_history(model_run_uri: str) -> dict[str, Any] | None:
    """The Trainer's training record in its ModelRun artifact, or None if there is none.

    Keys: `epochs_run`, `max_epochs`, `best_epoch`, `metrics` (name -> per-epoch list).
    """
    path = os.path.join(model_run_uri, files.HISTORY_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as source:
        return json.load(source)


def split_files(examples_uri: str, split: str) -> list[str]:
    """The TFRecord files of one split of an Examples artifact, sorted."""
    return sorted(tf.io.gfile.glob(os.path.join(files.split_dir(examples_uri, split), "*")))


_BATCH_SIZE = 2048
_FIXED_SPEC = {
    features.IMAGE_KEY: tf.io.FixedLenFeature([features.NUM_PIXELS], tf.int64),
    features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
}


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
    gate refuses) are left out and counted in `skipped`, so a run stopped
    for bad data still gets its data profile. Batches are parsed as fixed
    shapes (twice as fast) and only parsed again, record by record shape,
    when that fails. Memory stays flat on the full 60,000 digits.
    """
    dataset = (
        tf.data.TFRecordDataset(
            split_files(examples_uri, split),
            compression_type=files.TFRECORD_COMPRESSION,
            num_parallel_reads=2,
        )
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


@dataclasses.dataclass(frozen=True)
class Mistake:
    """A test digit the candidate reads wrongly, with its confidence in the wrong digit."""

    pixels: np.ndarray
    """[784] uint8."""
    label: int
    predicted: int
    probability: float


@dataclasses.dataclass(frozen=True)
class Gallery:
    """ErrorGallery's output: the candidate's `predict` pass over the test split."""

    examples: int
    wrong: int
    mistakes: list[Mistake]
    """The most confident mistakes, most confident first."""
    test_label_counts: list[int]
    """How many test examples of each digit 0..9 the pass read."""


@dataclasses.dataclass(frozen=True)
class Profile:
    """DataProfile's output: what each split of an Examples artifact holds."""

    label_counts: dict[str, list[int]]
    """Per split: how many examples of each digit 0..9."""
    mean_images: np.ndarray | None
    """[10, 784] mean pixels of each digit in the train split (NaN rows: no such digit)."""
    skipped: dict[str, int]
    """Per split: records left out (not 784 pixels and one label 0..9)."""


def _bytes(path: str) -> io.BytesIO:
    """A file's bytes, seekable (np.load needs that; a GFile on gs:// may not be)."""
    with tf.io.gfile.GFile(path, "rb") as source:
        return io.BytesIO(source.read())


def read_gallery(gallery_uri: str) -> Gallery:
    """Reads ErrorGallery's File artifact (`gallery.json` and `gallery.npz`)."""
    with tf.io.gfile.GFile(os.path.join(gallery_uri, files.GALLERY_FILE)) as source:
        record = json.load(source)
    with np.load(_bytes(os.path.join(gallery_uri, files.GALLERY_ARRAYS_FILE))) as arrays:
        pixels, labels = arrays["pixels"], arrays["labels"]
        predicted, probabilities = arrays["predicted"], arrays["probabilities"]
    mistakes = [
        Mistake(pixels[index], int(labels[index]), int(predicted[index]), float(probability))
        for index, probability in enumerate(probabilities)
    ]
    return Gallery(
        examples=int(record["examples"]),
        wrong=int(record["wrong"]),
        mistakes=mistakes,
        test_label_counts=[int(count) for count in record["test_label_counts"]],
    )


def read_profile(profile_uri: str) -> Profile:
    """Reads DataProfile's File artifact (`profile.json` and `profile.npz`)."""
    with tf.io.gfile.GFile(os.path.join(profile_uri, files.PROFILE_FILE)) as source:
        record = json.load(source)
    with np.load(_bytes(os.path.join(profile_uri, files.PROFILE_ARRAYS_FILE))) as arrays:
        means = arrays["mean_images"] if "mean_images" in arrays else None
    return Profile(
        label_counts={
            split: [int(count) for count in counts]
            for split, counts in record["label_counts"].items()
        },
        mean_images=means,
        skipped={split: int(count) for split, count in record["skipped"].items()},
    )
