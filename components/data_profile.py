"""DataProfile: what each split of the run's examples holds, made in the DAG.

One streaming pass over every split of an Examples artifact (batches, so
memory stays flat on the full 60,000 digits) gives each split's label
counts, the train split's mean image per digit and, per split, how many
records were left out because they are not 784 pixels and one label 0..9
(data the anomaly gate refuses). It needs only the examples, so it runs
before the anomaly gate and a run stopped for bad data still has its data
profile. The run report shows this artifact as it is; TFX caches it like
any output.
"""

import io
import json
import os

import numpy as np
import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.experimental import simple_artifacts

from components.source_fingerprint import FingerprintDriver
from contract import artifacts, features, files, tfx_internals


def profile_split(examples_uri: str, split: str) -> tuple[list[int], np.ndarray | None, int]:
    """Label counts of a split, its mean image per digit (train only) and its skipped records."""
    counts = np.zeros(features.NUM_CLASSES, np.int64)
    sums = np.zeros((features.NUM_CLASSES, features.NUM_PIXELS), np.float64)
    skipped = 0
    for images, labels, left_out in artifacts.split_batches(examples_uri, split):
        counts += np.bincount(labels, minlength=features.NUM_CLASSES)
        skipped += left_out
        if split == features.SPLIT_TRAIN:
            one_hot = np.eye(features.NUM_CLASSES)[labels]
            sums += one_hot.T @ images
    means = None
    if split == features.SPLIT_TRAIN:
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts[:, None]
    return counts.tolist(), means, skipped


def profile_examples(examples_uri: str, splits: list[str]) -> artifacts.Profile:
    """The profile of the given splits of an Examples artifact."""
    label_counts, skipped, means = {}, {}, None
    for split in splits:
        label_counts[split], split_means, skipped[split] = profile_split(examples_uri, split)
        means = split_means if split_means is not None else means
    return artifacts.Profile(label_counts=label_counts, mean_images=means, skipped=skipped)


def write_profile(profile: artifacts.Profile, uri: str) -> None:
    """Writes `profile.json` and `profile.npz` under uri (read by artifacts.read_profile)."""
    tf.io.gfile.makedirs(uri)
    arrays = io.BytesIO()
    if profile.mean_images is None:
        np.savez(arrays)
    else:
        np.savez(arrays, mean_images=np.asarray(profile.mean_images, np.float64))
    with tf.io.gfile.GFile(os.path.join(uri, files.PROFILE_ARRAYS_FILE), "wb") as out:
        out.write(arrays.getvalue())
    record = {"label_counts": profile.label_counts, "skipped": profile.skipped}
    with tf.io.gfile.GFile(os.path.join(uri, files.PROFILE_FILE), "w") as out:
        json.dump(record, out, indent=2)  # splits in the artifact's order


@component
def DataProfile(  # noqa: N802 (TFX components are named like classes)
    examples: InputArtifact[standard_artifacts.Examples],
    profile: OutputArtifact[simple_artifacts.File],
) -> None:
    """Writes each split's label counts and skipped records, and the train split's mean digits.

    Args:
      examples: MnistExampleGen's output (every split is read).
      profile: Output; `profile.json` (label_counts, skipped per split) and
        `profile.npz` (mean_images [10, 784], when there is a train split).
    """
    splits = artifact_utils.decode_split_names(examples.split_names) or list(features.SPLITS)
    write_profile(profile_examples(examples.uri, splits), profile.uri)


tfx_internals.declare_driver(DataProfile, FingerprintDriver, (__name__,))
