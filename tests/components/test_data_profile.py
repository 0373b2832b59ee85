"""DataProfile: label counts, the train split's mean digits and malformed records, per split.

Tiny Examples artifacts written here as GZIP TFRecords, like MnistExampleGen's,
with records that break the schema where a test needs them.
"""

import numpy as np
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.experimental import simple_artifacts

from components import data_profile, example_export
from contract import artifacts, features, files


def _encoded(images: np.ndarray, labels: list[int], with_label: bool = True) -> list[bytes]:
    digits = example_export.DigitArrays(images, np.array(labels, np.int64))
    return example_export.encode_examples(
        digits, features.IMAGE_KEY, features.LABEL_KEY if with_label else None
    )


def _image(value: int) -> np.ndarray:
    return np.full((1, features.NUM_PIXELS), value, np.int64)


def _examples(tmp_path, splits: dict[str, list[bytes]]) -> standard_artifacts.Examples:
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(list(splits))
    for split, records in splits.items():
        example_export.write_tfrecords(records, files.split_dir(examples.uri, split))
    return examples


def test_split_batches_leave_out_records_that_break_the_schema(tmp_path):
    good = np.arange(3 * 784, dtype=np.int64).reshape(3, 784) % 256
    records = (
        _encoded(good[:2], [0, 1])
        + _encoded(good[2:], [10])  # label out of range: parses, then is filtered
        + _encoded(good[2:], [2])
        + _encoded(good[2:, :783], [3])  # 783 pixels: the batch falls back to ragged parsing
        + _encoded(good[2:], [4], with_label=False)
    )
    example_export.write_tfrecords(records, str(tmp_path / "Split-train"))
    batches = list(artifacts.split_batches(str(tmp_path), "train", batch_size=4))
    assert len(batches) == 2
    images = np.concatenate([batch[0] for batch in batches])
    labels = np.concatenate([batch[1] for batch in batches])
    assert labels.tolist() == [0, 1, 2]
    assert np.array_equal(images, good)
    assert sum(batch[2] for batch in batches) == 3


def _splits() -> dict[str, list[bytes]]:
    train = (
        _encoded(_image(10), [0])
        + _encoded(_image(30), [0])
        + _encoded(_image(200), [7])
        + _encoded(_image(5)[:, :783], [7])  # malformed: not in the counts nor the means
        + _encoded(_image(1), [12])  # label out of range
    )
    return {
        features.SPLIT_TRAIN: train,
        features.SPLIT_EVAL: _encoded(_image(0), [3]) + _encoded(_image(0), [3]),
        features.SPLIT_TEST: _encoded(_image(0), [9]),
    }


def test_profile_counts_each_split_and_averages_the_train_digits(tmp_path):
    examples = _examples(tmp_path, _splits())
    profile = data_profile.profile_examples(examples.uri, list(features.SPLITS))
    assert list(profile.label_counts) == list(features.SPLITS), "in the artifact's split order"
    assert profile.label_counts["train"] == [2, 0, 0, 0, 0, 0, 0, 1, 0, 0]
    assert profile.label_counts["eval"] == [0, 0, 0, 2, 0, 0, 0, 0, 0, 0]
    assert profile.label_counts["test"] == [0] * 9 + [1]
    assert profile.skipped == {"train": 2, "eval": 0, "test": 0}
    means = profile.mean_images
    assert means.shape == (features.NUM_CLASSES, features.NUM_PIXELS)
    np.testing.assert_array_equal(means[0], np.full(features.NUM_PIXELS, 20.0))
    np.testing.assert_array_equal(means[7], np.full(features.NUM_PIXELS, 200.0))
    assert np.isnan(means[1]).all(), "no train 1: a NaN row, not a black digit"


def test_the_component_writes_what_the_reader_reads(tmp_path):
    examples = _examples(tmp_path, _splits())
    profile = simple_artifacts.File()
    profile.uri = str(tmp_path / "profile")
    data_profile.DataProfile.EXECUTOR_SPEC.executor_class().Do(
        {"examples": [examples]}, {"profile": [profile]}, {}
    )
    read = artifacts.read_profile(profile.uri)
    computed = data_profile.profile_examples(examples.uri, list(features.SPLITS))
    assert read.label_counts == computed.label_counts
    assert list(read.label_counts) == list(features.SPLITS)
    assert read.skipped == computed.skipped
    np.testing.assert_array_equal(read.mean_images, computed.mean_images)  # NaN rows too


def test_without_a_train_split_there_are_no_mean_images(tmp_path):
    examples = _examples(tmp_path, {features.SPLIT_TEST: _encoded(_image(0), [9])})
    profile = simple_artifacts.File()
    profile.uri = str(tmp_path / "profile")
    data_profile.DataProfile.EXECUTOR_SPEC.executor_class().Do(
        {"examples": [examples]}, {"profile": [profile]}, {}
    )
    read = artifacts.read_profile(profile.uri)
    assert read.mean_images is None
    assert read.label_counts == {"test": [0] * 9 + [1]}


def test_the_cache_key_sees_this_modules_code():
    assert data_profile.DataProfile.SOURCE_MODULES == ("components.data_profile",)
    assert data_profile.DataProfile.DRIVER_CLASS.__name__ == "FingerprintDriver"
