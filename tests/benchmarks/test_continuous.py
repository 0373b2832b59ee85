"""benchmarks/continuous.py's spans and table, without running the pipeline.

The spans it writes must be what the table says they are (read back through
the pipeline's own span reader), and its table must come from the figures.
The simulation itself is a benchmark (benchmarks/README.md), not a test.
"""

import numpy as np
import pytest

from benchmarks import continuous
from components import example_export, spans
from contract.errors import SpanError


def _digits(count=200):
    rng = np.random.RandomState(0)
    images = np.zeros((count, 784), np.int64)
    images[:, 300:320] = rng.randint(150, 256, size=(count, 20))  # a stroke: a readable digit
    return example_export.DigitArrays(images, rng.randint(0, 10, count).astype(np.int64))


def _read(span_dir):
    (span,) = spans.list_spans(str(span_dir.parent))
    return span, spans.read_span(span)


@pytest.mark.parametrize("kind", [continuous.CLEAN, continuous.INVERTED, continuous.SHUFFLED])
def test_tfrecord_spans_read_back_as_their_kind_says(tmp_path, kind):
    digits = _digits()
    continuous.make_span(str(tmp_path / "span-1"), digits, kind, seed=1)
    span, read = _read(tmp_path / "span-1")
    assert span.form == spans.FORM_TFRECORD
    # Written in two files, read back in listing order: the same examples, in order.
    expected_images = 255 - digits.images if kind == continuous.INVERTED else digits.images
    np.testing.assert_array_equal(read.images, expected_images)
    assert sorted(read.labels) == sorted(digits.labels)  # the label mix never changes
    changed = np.mean(read.labels != digits.labels)
    if kind == continuous.SHUFFLED:
        assert 0.15 < changed <= 0.3  # 30% permuted among themselves; some keep their label
    else:
        assert changed == 0


def test_the_corrupt_span_is_an_error_naming_its_truncated_file(tmp_path):
    continuous.make_span(str(tmp_path / "span-6"), _digits(), continuous.CORRUPT, seed=6)
    (span,) = spans.list_spans(str(tmp_path))
    with pytest.raises(SpanError, match=r"span-6/part-1\.tfrecord\.gz: not a readable TFRecord"):
        spans.read_span(span)


def test_the_png_span_is_digit_folders_of_images(tmp_path):
    digits = _digits(60)
    continuous.make_span(str(tmp_path / "span-2"), digits, continuous.PNG, seed=2)
    span, read = _read(tmp_path / "span-2")
    assert span.form == spans.FORM_IMAGES
    assert sorted(read.labels.tolist()) == sorted(digits.labels.tolist())
    assert read.images.shape == (60, 784)


def test_the_table_is_rendered_from_the_figures():
    arrival = continuous.Arrival(
        span=3,
        kind=continuous.INVERTED,
        wall_s=12.3,
        exit_code=1,
        released=None,
        outcome="Pipeline stopped: drift",
        drift="image 0.499, label 0.020",
        labels="not reached",
        served=17,
        mnist_test_accuracy=0.98123,
        span_test_accuracy=0.0712,
        executed=7,
        cached=1,
    )
    base = continuous.Arrival(
        None, continuous.BASE_ONLY, 80.0, 0, 17, "released 17", "x", "y", 17, 0.98, None, 17, 0
    )
    table = continuous.render([base, arrival]).splitlines()
    assert table[2].startswith(
        "| 0 | base only | - | - | released 17 | 17 | 0.9800 | - | 17 / 0 | 80 s |"
    )
    assert table[3] == (
        "| 1 | span-3: drifted (inverted digits) | image 0.499, label 0.020 | not reached | "
        "Pipeline stopped: drift | 17 | 0.9812 | 0.0712 | 7 / 1 | 12 s |"
    )
