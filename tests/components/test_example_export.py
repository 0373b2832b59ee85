"""Export helpers on a handful of real MNIST examples."""

import numpy as np
import pytest
import tensorflow as tf

from components import example_export
from contract import features


@pytest.fixture(scope="module")
def few_digits(tfds_data_dir, mnist_dir):
    from components import tfds_mnist

    builder = tfds_mnist.prepare_mnist(mnist_dir, tfds_data_dir)
    return example_export.load_tfds_split(builder, "test", limit=8)


def test_load_flattens_images_row_major(few_digits):
    assert few_digits.images.shape == (8, features.NUM_PIXELS)
    assert few_digits.images.dtype == np.int64
    assert few_digits.images.min() >= 0 and few_digits.images.max() <= 255
    assert few_digits.labels.shape == (8,)
    assert set(few_digits.labels) <= set(range(features.NUM_CLASSES))
    # Real digits: ink on every image, and a blank border row on top.
    assert (few_digits.images.max(axis=1) > 0).all()
    assert (few_digits.images[:, : features.IMAGE_WIDTH] == 0).all()


def test_holdout_split_is_deterministic_disjoint_and_complete():
    train, held_out = example_export.holdout_split(100, 10, seed=3)
    again_train, again_held_out = example_export.holdout_split(100, 10, seed=3)
    np.testing.assert_array_equal(train, again_train)
    np.testing.assert_array_equal(held_out, again_held_out)
    assert len(held_out) == 10 and len(train) == 90
    assert sorted(np.concatenate([train, held_out]).tolist()) == list(range(100))
    _, other_held_out = example_export.holdout_split(100, 10, seed=4)
    assert set(other_held_out) != set(held_out)


@pytest.mark.parametrize("holdout_size", [0, 100, 150])
def test_holdout_split_rejects_impossible_sizes(holdout_size):
    with pytest.raises(ValueError, match="hold-out"):
        example_export.holdout_split(100, holdout_size, seed=0)


def test_encoded_examples_parse_back_to_the_same_digits(few_digits):
    serialized = example_export.encode_examples(few_digits, features.IMAGE_KEY, features.LABEL_KEY)
    parsed = tf.io.parse_example(
        serialized,
        {
            features.IMAGE_KEY: tf.io.FixedLenFeature([features.NUM_PIXELS], tf.int64),
            features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
        },
    )
    np.testing.assert_array_equal(parsed[features.IMAGE_KEY].numpy(), few_digits.images)
    np.testing.assert_array_equal(parsed[features.LABEL_KEY].numpy()[:, 0], few_digits.labels)


def test_write_tfrecords_writes_readable_gzip_shards(few_digits, tmp_path, monkeypatch):
    monkeypatch.setattr(example_export, "EXAMPLES_PER_SHARD", 3)
    serialized = example_export.encode_examples(few_digits, features.IMAGE_KEY, features.LABEL_KEY)
    paths = example_export.write_tfrecords(serialized, str(tmp_path / "Split-test"))
    assert len(paths) == 3
    assert all(path.endswith(".gz") for path in paths)
    read_back = list(tf.data.TFRecordDataset(paths, compression_type="GZIP").as_numpy_iterator())
    assert sorted(read_back) == sorted(serialized)
