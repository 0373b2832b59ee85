"""Turns TFDS MNIST splits into the pipeline's tf.Example TFRecords.

The tf.Examples are encoded in C++ by tfx_bsl from an Arrow RecordBatch, not
built one protobuf at a time in Python: 70,000 examples take well under a
second that way. The feature names come from the caller (the pipeline passes
its feature contract, `contract.features`): the image is 784 int64 values
0..255 row-major, the label one int64 0..9.
"""

import dataclasses
import math
import os

import numpy as np
import pyarrow as pa
import tensorflow as tf
import tensorflow_datasets as tfds
from tfx_bsl.public.tfxio import RecordBatchToExamplesEncoder

from contract import files

EXAMPLES_PER_SHARD = 20_000


@dataclasses.dataclass(frozen=True)
class DigitArrays:
    """A split held in memory: images (N, 784) and labels (N,), both int64."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: np.ndarray) -> "DigitArrays":
        """Returns the examples at `indices`, in that order."""
        return DigitArrays(self.images[indices], self.labels[indices])


def load_tfds_split(builder: tfds.core.DatasetBuilder, split: str, limit: int = 0) -> DigitArrays:
    """Reads a prepared TFDS split into memory (MNIST is ~55 MB as uint8).

    Args:
      builder: A prepared TFDS `mnist` builder.
      split: TFDS split name, "train" or "test".
      limit: Keep only the first `limit` examples; 0 keeps all.

    Returns:
      The split's images, flattened row-major to 784 values, and labels.
    """
    split_spec = f"{split}[:{limit}]" if limit else split
    data = tfds.as_numpy(builder.as_dataset(split=split_spec, batch_size=-1))
    images = data["image"].reshape(len(data["image"]), -1)
    return DigitArrays(images.astype(np.int64), data["label"].astype(np.int64))


def holdout_split(num_examples: int, holdout_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Splits indices 0..num_examples-1 into (train, held-out), deterministically.

    The same (num_examples, holdout_size, seed) always gives the same split, so a
    rerun trains and early-stops on the same examples.

    Returns:
      Sorted train indices and sorted held-out indices; together they cover
      every index once.
    """
    if not 0 < holdout_size < num_examples:
        raise ValueError(
            f"eval hold-out of {holdout_size} must be between 1 and {num_examples - 1} "
            f"(the train split has {num_examples} examples)"
        )
    permutation = np.random.RandomState(seed).permutation(num_examples)
    return np.sort(permutation[holdout_size:]), np.sort(permutation[:holdout_size])


def _list_array(rows: np.ndarray) -> pa.ListArray:
    """One Arrow list per row of a 2-D array (a 1-D array is one value per row)."""
    rows = rows.reshape(len(rows), -1)
    offsets = np.arange(0, rows.size + 1, rows.shape[1], dtype=np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(rows.reshape(-1)))


def encode_examples(digits: DigitArrays, image_key: str, label_key: str | None) -> list[bytes]:
    """Serializes digits as tf.Examples with the given feature names.

    Args:
      digits: The images and labels to encode.
      image_key: The image feature's name.
      label_key: The label feature's name; None gives serving requests: the
        image alone.

    Returns:
      One serialized tf.Example per digit.
    """
    columns = {image_key: _list_array(digits.images)}
    if label_key is not None:
        columns[label_key] = _list_array(digits.labels)
    record_batch = pa.RecordBatch.from_arrays(list(columns.values()), list(columns))
    return RecordBatchToExamplesEncoder().encode(record_batch)


def write_tfrecords(serialized_examples: list[bytes], split_dir: str) -> list[str]:
    """Writes examples as GZIP TFRecord shards named like TFX ExampleGen's.

    Returns:
      The paths of the shards written.
    """
    tf.io.gfile.makedirs(split_dir)
    num_shards = max(1, math.ceil(len(serialized_examples) / EXAMPLES_PER_SHARD))
    paths = []
    for shard in range(num_shards):
        path = os.path.join(split_dir, f"data_tfrecord-{shard:05d}-of-{num_shards:05d}.gz")
        with tf.io.TFRecordWriter(path, options=files.TFRECORD_COMPRESSION) as writer:
            for record in serialized_examples[shard::num_shards]:
                writer.write(record)
        paths.append(path)
    return paths


def read_examples_artifact(uri: str, split_names: list[str]) -> list[bytes]:
    """Reads every serialized record of an Examples artifact (GZIP TFRecords)."""
    records: list[bytes] = []
    for split in split_names:
        shards = sorted(tf.io.gfile.glob(os.path.join(files.split_dir(uri, split), "*")))
        dataset = tf.data.TFRecordDataset(shards, compression_type=files.TFRECORD_COMPRESSION)
        records.extend(dataset.as_numpy_iterator())
    return records
