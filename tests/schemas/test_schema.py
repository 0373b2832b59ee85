"""The curated schema: it parses, accepts real MNIST and rejects broken digits (TFDV)."""

import numpy as np
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx_bsl.coders import example_coder

from components import example_export
from contract import features
from pipeline import config


@pytest.fixture(scope="module")
def schema():
    return tfdv.load_schema_text(config.SCHEMA_FILE)


def _anomalies_for(digits: example_export.DigitArrays, schema) -> dict:
    serialized = example_export.encode_examples(digits, features.IMAGE_KEY, features.LABEL_KEY)
    record_batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(serialized)
    statistics = stats_impl.generate_statistics_in_memory(record_batch)
    return dict(tfdv.validate_statistics(statistics, schema).anomaly_info)


def _digits(images: list[list[int]], labels: list[int]) -> example_export.DigitArrays:
    return example_export.DigitArrays(
        np.array(images, dtype=np.int64), np.array(labels, dtype=np.int64)
    )


def test_schema_declares_the_feature_contract(schema):
    by_name = {feature.name: feature for feature in schema.feature}
    image, label = by_name[features.IMAGE_KEY], by_name[features.LABEL_KEY]
    assert [dim.size for dim in image.shape.dim] == [features.NUM_PIXELS]
    assert (image.int_domain.min, image.int_domain.max) == (0, features.MAX_PIXEL_VALUE)
    assert (label.int_domain.min, label.int_domain.max) == (0, features.NUM_CLASSES - 1)
    assert image.presence.min_fraction == label.presence.min_fraction == 1.0


def test_valid_digits_have_no_anomalies(schema):
    images = [[0] * 783 + [255], [17] * 784]
    assert _anomalies_for(_digits(images, [0, 9]), schema) == {}


@pytest.mark.parametrize("num_pixels", [783, 785])
def test_wrong_pixel_count_is_a_shape_anomaly(schema, num_pixels):
    anomalies = _anomalies_for(_digits([[0] * num_pixels] * 2, [3, 4]), schema)
    kinds = {reason.type for reason in anomalies[features.IMAGE_KEY].reason}
    assert kinds == {anomalies_pb2.AnomalyInfo.INVALID_FEATURE_SHAPE}


def test_pixel_256_is_out_of_the_int_domain(schema):
    anomalies = _anomalies_for(_digits([[0] * 783 + [256]], [3]), schema)
    descriptions = [reason.description for reason in anomalies[features.IMAGE_KEY].reason]
    assert any("256" in description for description in descriptions), descriptions


def test_label_10_is_an_anomaly(schema):
    anomalies = _anomalies_for(_digits([[0] * 784], [10]), schema)
    descriptions = [reason.description for reason in anomalies[features.LABEL_KEY].reason]
    assert any("10" in description for description in descriptions), descriptions
