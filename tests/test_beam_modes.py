"""Beam DirectRunner: multi-processing with 2 workers computes what in-memory does.

The same TFDV statistics pass StatisticsGen runs, on the same small slice of
real MNIST, under both running modes: the examples and the statistics
(counts, pixel ranges, value counts) must agree.
"""

import pytest
import tensorflow_data_validation as tfdv
from apache_beam.options.pipeline_options import PipelineOptions

from components import example_export, tfds_mnist
from contract import features

pytestmark = pytest.mark.slow


def _statistics(path: str, output: str, mode: str, workers: int):
    options = PipelineOptions([f"--direct_running_mode={mode}", f"--direct_num_workers={workers}"])
    return tfdv.generate_statistics_from_tfrecord(
        data_location=path, output_path=output, pipeline_options=options
    )


def _summary(statistics) -> dict:
    dataset = statistics.datasets[0]
    summary = {"num_examples": dataset.num_examples}
    for feature in dataset.features:
        stats = feature.num_stats
        summary[feature.path.step[0]] = (
            stats.common_stats.num_non_missing,
            stats.common_stats.min_num_values,
            stats.common_stats.max_num_values,
            stats.min,
            stats.max,
            round(stats.mean, 6),
        )
    return summary


def test_multi_processing_matches_in_memory(tmp_path, tfds_data_dir, mnist_dir):
    builder = tfds_mnist.prepare_mnist(mnist_dir, tfds_data_dir)
    digits = example_export.load_tfds_split(builder, "test", limit=2000)
    paths = example_export.write_tfrecords(
        example_export.encode_examples(digits, features.IMAGE_KEY, features.LABEL_KEY),
        str(tmp_path / "examples"),
    )
    in_memory = _statistics(paths[0], str(tmp_path / "a.pb"), "in_memory", 1)
    multi = _statistics(paths[0], str(tmp_path / "b.pb"), "multi_processing", 2)
    assert _summary(in_memory) == _summary(multi)
    assert _summary(multi)["num_examples"] == 2000
    assert _summary(multi)[features.IMAGE_KEY][1:3] == (784, 784)
