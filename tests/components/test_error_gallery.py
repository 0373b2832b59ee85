"""ErrorGallery: the candidate's most confident test mistakes, from its `predict` signature.

A tiny real SavedModel built here reads each digit's first pixel as its
answer and its second pixel as how sure it is, so every test below knows
which digits are wrong and in which order they must come.
"""

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.experimental import simple_artifacts
from tfx.utils import path_utils

from components import error_gallery, example_export
from contract import artifacts, features, files


class _FirstPixelModel(tf.Module):
    """`predict`: class = pixel 0 (mod 10), with a confidence growing with pixel 1."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def predict(self, examples):
        spec = {features.IMAGE_KEY: tf.io.FixedLenFeature([features.NUM_PIXELS], tf.int64)}
        pixels = tf.io.parse_example(examples, spec)[features.IMAGE_KEY]
        answer = tf.math.floormod(pixels[:, 0], features.NUM_CLASSES)
        sureness = tf.cast(pixels[:, 1], tf.float32) / 10.0
        logits = tf.one_hot(answer, features.NUM_CLASSES) * sureness[:, None]
        return {
            features.PROBABILITIES: tf.nn.softmax(logits),
            features.CLASSES: tf.argmax(logits, axis=1),
        }


def _model(tmp_path) -> standard_artifacts.Model:
    """A Trainer-shaped Model artifact: the SavedModel under `<uri>/Format-Serving`."""
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    module = _FirstPixelModel()
    tf.saved_model.save(
        module,
        path_utils.serving_model_path(model.uri),
        signatures={features.PREDICT_SIGNATURE: module.predict},
    )
    return model


# (label, answer, sureness): which test digits the tiny model gets wrong, and how surely.
DIGITS = [
    (3, 3, 50),  # right
    (1, 7, 20),  # wrong, third most sure
    (2, 5, 90),  # wrong, most sure
    (4, 4, 10),  # right
    (0, 8, 40),  # wrong, second most sure
    (9, 6, 5),  # wrong, least sure
    (2, 2, 70),  # right
]


def _examples(tmp_path, digits=DIGITS, extra_records=()) -> standard_artifacts.Examples:
    images = np.zeros((len(digits), features.NUM_PIXELS), np.int64)
    images[:, 0] = [answer for _, answer, _ in digits]
    images[:, 1] = [sureness for _, _, sureness in digits]
    images[:, 2:] = np.arange(len(digits))[:, None]  # tells the digits apart
    labels = np.array([label for label, _, _ in digits], np.int64)
    records = (
        example_export.encode_examples(
            example_export.DigitArrays(images, labels), features.IMAGE_KEY, features.LABEL_KEY
        )
        if digits
        else []
    )
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(list(features.SPLITS))
    for split in features.SPLITS:
        split_records = records + list(extra_records) if split == features.SPLIT_TEST else []
        example_export.write_tfrecords(split_records, files.split_dir(examples.uri, split))
    return examples


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return _model(tmp_path_factory.mktemp("error_gallery"))


def test_mistakes_are_the_wrong_digits_most_confident_first(tmp_path, model):
    found = error_gallery.predict_test_split(
        path_utils.serving_model_path(model.uri), _examples(tmp_path).uri
    )
    assert (found.examples, found.wrong) == (7, 4)
    assert [(m.label, m.predicted) for m in found.mistakes] == [(2, 5), (0, 8), (1, 7), (9, 6)]
    probabilities = [m.probability for m in found.mistakes]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < min(probabilities)
    assert found.mistakes[0].pixels.dtype == np.uint8
    assert found.mistakes[0].pixels.shape == (features.NUM_PIXELS,)
    assert found.mistakes[0].pixels[2] == 2, "the pixels are the wrong digit's own"
    assert found.test_label_counts == [1, 1, 2, 1, 1, 0, 0, 0, 0, 1]


def test_only_the_most_confident_are_shown_but_all_are_counted(tmp_path, model):
    found = error_gallery.predict_test_split(
        path_utils.serving_model_path(model.uri), _examples(tmp_path).uri, shown=2
    )
    assert found.wrong == 4
    assert [(m.label, m.predicted) for m in found.mistakes] == [(2, 5), (0, 8)]


def test_records_that_break_the_schema_are_left_out(tmp_path, model):
    short = example_export.encode_examples(
        example_export.DigitArrays(np.zeros((1, 783), np.int64), np.array([1])),
        features.IMAGE_KEY,
        features.LABEL_KEY,
    )
    examples = _examples(tmp_path, extra_records=short)
    found = error_gallery.predict_test_split(path_utils.serving_model_path(model.uri), examples.uri)
    assert (found.examples, found.wrong) == (7, 4)


def test_the_component_writes_what_the_reader_reads_and_records_the_counts(tmp_path, model):
    gallery = simple_artifacts.File()
    gallery.uri = str(tmp_path / "gallery")
    error_gallery.ErrorGallery.EXECUTOR_SPEC.executor_class().Do(
        {"model": [model], "examples": [_examples(tmp_path)]},
        {"gallery": [gallery]},
        {"shown": 3},
    )
    read = artifacts.read_gallery(gallery.uri)
    assert (read.examples, read.wrong) == (7, 4)
    assert [(m.label, m.predicted) for m in read.mistakes] == [(2, 5), (0, 8), (1, 7)]
    expected = error_gallery.predict_test_split(
        path_utils.serving_model_path(model.uri), _examples(tmp_path / "again").uri, shown=3
    )
    for written, computed in zip(read.mistakes, expected.mistakes, strict=True):
        assert written.probability == computed.probability
        np.testing.assert_array_equal(written.pixels, computed.pixels)
    assert read.test_label_counts == expected.test_label_counts
    assert gallery.get_int_custom_property("examples") == 7
    assert gallery.get_int_custom_property("wrong") == 4


def test_an_empty_test_split_gives_an_empty_gallery(tmp_path, model):
    gallery = simple_artifacts.File()
    gallery.uri = str(tmp_path / "gallery")
    error_gallery.ErrorGallery.EXECUTOR_SPEC.executor_class().Do(
        {"model": [model], "examples": [_examples(tmp_path, digits=[])]},
        {"gallery": [gallery]},
        {"shown": 24},
    )
    read = artifacts.read_gallery(gallery.uri)
    assert (read.examples, read.wrong, read.mistakes) == (0, 0, [])
    assert read.test_label_counts == [0] * features.NUM_CLASSES


def test_the_cache_key_sees_this_modules_code():
    assert error_gallery.ErrorGallery.SOURCE_MODULES == ("components.error_gallery",)
    assert error_gallery.ErrorGallery.DRIVER_CLASS.__name__ == "FingerprintDriver"
