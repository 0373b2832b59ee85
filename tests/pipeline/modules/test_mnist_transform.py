"""preprocessing_fn through real tf.Transform (Beam), on a handful of digits."""

import numpy as np
import pytest
import tensorflow_data_validation as tfdv
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata

from contract import features
from pipeline import config
from pipeline.modules.transform import mnist_transform

IMAGE_XF = features.transformed_name(features.IMAGE_KEY)
LABEL_XF = features.transformed_name(features.LABEL_KEY)


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(4, features.NUM_PIXELS))
    images[0, :3] = [0, 51, 255]
    raw = [
        {features.IMAGE_KEY: image.astype(np.int64), features.LABEL_KEY: np.array([label])}
        for image, label in zip(images, [0, 3, 7, 9], strict=True)
    ]
    metadata = dataset_metadata.DatasetMetadata(tfdv.load_schema_text(config.SCHEMA_FILE))
    with tft_beam.Context(temp_dir=str(tmp_path_factory.mktemp("tft"))):
        (rows, _), _ = (raw, metadata) | tft_beam.AnalyzeAndTransformDataset(
            mnist_transform.preprocessing_fn
        )
    return images, rows


def test_pixels_are_scaled_into_unit_interval(transformed):
    images, rows = transformed
    pixels = np.stack([row[IMAGE_XF] for row in rows])
    assert pixels.shape == (4, features.NUM_PIXELS)
    assert pixels.dtype == np.float32
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0
    np.testing.assert_allclose(pixels, images / 255.0, rtol=1e-6)
    np.testing.assert_allclose(pixels[0, :3], [0.0, 0.2, 1.0], rtol=1e-6)


def test_label_passes_through_unchanged(transformed):
    _, rows = transformed
    assert [int(np.ravel(row[LABEL_XF])[0]) for row in rows] == [0, 3, 7, 9]


def test_only_the_model_features_are_produced(transformed):
    _, rows = transformed
    assert set(rows[0]) == {IMAGE_XF, LABEL_XF}
