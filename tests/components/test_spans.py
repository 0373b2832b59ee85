"""The spans folder: listing, history, reading and splitting, on tiny real files.

Every bad input must be a SpanError naming the path (and the fix), never a
silently dropped file or a half-read span.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components import example_export, span_examples, span_listing, spans
from contract import features, files, releases
from contract.errors import SpanError


def _digits(count=20, label=None):
    rng = np.random.RandomState(count)
    images = np.zeros((count, features.NUM_PIXELS), np.int64)
    images[:, 300:330] = rng.randint(120, 256, size=(count, 30))
    labels = rng.randint(0, 10, count) if label is None else np.full(count, label)
    return example_export.DigitArrays(images, labels.astype(np.int64))


def _tfrecords(path, digits=None, records=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if records is None:
        records = example_export.encode_examples(
            digits or _digits(), features.IMAGE_KEY, features.LABEL_KEY
        )
    options = files.TFRECORD_COMPRESSION if path.endswith(".gz") else None
    with tf.io.TFRecordWriter(path, options=options) as writer:
        for record in records:
            writer.write(record)
    return path


def _png(path, blank=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.zeros((28, 28), np.uint8)
    if not blank:
        pixels[6:22, 12:16] = 255  # a "1"
    Image.fromarray(pixels).save(path)
    return path


def test_both_forms_are_listed_and_read(tmp_path):
    _tfrecords(str(tmp_path / "span-1" / "a.tfrecord.gz"), _digits(12))
    _tfrecords(str(tmp_path / "span-1" / "b.tfrecord"), _digits(8))
    for index in range(3):
        _png(str(tmp_path / "span-2" / "1" / f"{index}.png"))
    _png(str(tmp_path / "span-2" / "7" / "x.png"))
    (tmp_path / ".span-3.tmp").mkdir()  # being written: skipped
    (tmp_path / "_quarantine").mkdir()
    (tmp_path / "span-1" / ".DS_Store").write_text("")
    found = spans.list_spans(str(tmp_path))
    assert [(span.number, span.form, len(span.files)) for span in found] == [
        (1, spans.FORM_TFRECORD, 2),
        (2, spans.FORM_IMAGES, 4),
    ]
    assert len(spans.read_span(found[0])) == 20
    pngs = spans.read_span(found[1])
    assert pngs.labels.tolist() == [1, 1, 1, 7]
    assert pngs.images.shape == (4, 784) and pngs.images.max() > 200


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda root: (root / "notes.txt").write_text("x"), "notes.txt: not a span"),
        (lambda root: (root / "span-2").mkdir(), "span-2 is empty"),
        (lambda root: _png(str(root / "span-2" / "x" / "a.png")), "'x' is not a digit"),
        (lambda root: _png(str(root / "span-2" / "10" / "a.png")), "'10' is not a digit"),
        (
            lambda root: (
                (root / "span-2" / "3").mkdir(parents=True)
                or (root / "span-2" / "3" / "notes.txt").write_text("x")
            ),
            "3/notes.txt: not an image file",
        ),
        (
            lambda root: (
                _png(str(root / "span-2" / "3" / "a.png"))
                and (root / "span-2" / "b.tfrecord").write_text("x")
            ),
            "mixes files",
        ),
        (lambda root: (root / "span-01").mkdir(), "span-01 and span-1 are both span 1"),
    ],
)
def test_a_malformed_folder_is_an_error_naming_the_path(tmp_path, make, match):
    _tfrecords(str(tmp_path / "span-1" / "a.gz"))
    make(tmp_path)
    with pytest.raises(SpanError, match=match):
        spans.list_spans(str(tmp_path))


def test_no_span_and_no_folder_are_errors(tmp_path):
    with pytest.raises(SpanError, match="holds no span-<N> folder yet"):
        spans.list_spans(str(tmp_path))
    with pytest.raises(SpanError, match="does not exist"):
        spans.list_spans(str(tmp_path / "missing"))


def _only_span(root):
    (span,) = spans.list_spans(str(root))
    return span


def test_unreadable_files_are_errors_naming_the_file(tmp_path):
    path = _tfrecords(str(tmp_path / "a" / "span-1" / "part.gz"), _digits(200))
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) * 2 // 3])
    with pytest.raises(SpanError, match=r"span-1/part\.gz: not a readable TFRecord file"):
        spans.read_span(_only_span(tmp_path / "a"))

    _png(str(tmp_path / "b" / "span-1" / "4" / "blank.png"), blank=True)
    with pytest.raises(SpanError, match=r"4/blank\.png: .*blank"):
        spans.read_span(_only_span(tmp_path / "b"))

    (tmp_path / "c" / "span-1" / "4").mkdir(parents=True)
    (tmp_path / "c" / "span-1" / "4" / "fake.png").write_text("not a png")
    with pytest.raises(SpanError, match=r"4/fake\.png: not an image that can be read"):
        spans.read_span(_only_span(tmp_path / "c"))


def test_records_that_break_the_contract_are_errors(tmp_path):
    short = _digits(3)
    short = example_export.DigitArrays(short.images[:, :783], short.labels)
    _tfrecords(str(tmp_path / "a" / "span-1" / "p.gz"), short)
    with pytest.raises(SpanError, match=r"record 0: `image` must be 784"):
        spans.read_span(_only_span(tmp_path / "a"))
    ten = _digits(3, label=10)
    _tfrecords(str(tmp_path / "b" / "span-1" / "p.gz"), ten)
    with pytest.raises(SpanError, match=r"record 0: `label` must be one int64 in 0..9"):
        spans.read_span(_only_span(tmp_path / "b"))


def test_history_refuses_vanished_and_backwards_spans(tmp_path):
    for number in (1, 2, 4):
        _tfrecords(str(tmp_path / f"span-{number}" / "a.gz"))
    found = spans.list_spans(str(tmp_path))
    spans.check_history(found, [])  # no release yet
    spans.check_history(found, [1, 2])  # span-4 is new and higher
    with pytest.raises(SpanError, match="span-3 was in the spans folder .* gone now"):
        spans.check_history(found, [1, 2, 3])
    with pytest.raises(
        SpanError, match="span-2 is new but numbered below span-4.*Rename it span-5"
    ):
        spans.check_history(found, [1, 4])


def test_the_window_and_the_listing(tmp_path):
    for number in (1, 2, 3):
        _tfrecords(str(tmp_path / f"span-{number}" / "a.gz"), _digits(10 + number))
    found = spans.list_spans(str(tmp_path))
    assert [span.number for span in spans.window(found, 2)] == [2, 3]
    assert [span.number for span in spans.window(found, 0)] == [1, 2, 3]
    listing = json.loads(spans.listing_json(str(tmp_path), found, 2))
    assert listing["present"] == [1, 2, 3] and listing["window"] == [2, 3]
    assert spans.listing_json(str(tmp_path), spans.list_spans(str(tmp_path)), 2) == (
        spans.listing_json(str(tmp_path), found, 2)
    ), "an unchanged folder lists the same"
    _tfrecords(str(tmp_path / "span-3" / "a.gz"), _digits(30))
    assert spans.listing_json(str(tmp_path), spans.list_spans(str(tmp_path)), 2) != (
        spans.listing_json(str(tmp_path), found, 2)
    ), "rewritten bytes change the fingerprint"


def test_a_span_rewritten_after_listing_is_an_error(tmp_path):
    _tfrecords(str(tmp_path / "span-1" / "a.gz"), _digits(50))
    listing = spans.listing_json(str(tmp_path), spans.list_spans(str(tmp_path)), 0)
    parts = span_examples.read_window(listing, 0.1, 0.2, seed=0)
    assert {split: len(part[1]) for split, part in parts.items()} == {
        "train": 35,
        "eval": 5,
        "test": 10,
    }
    _tfrecords(str(tmp_path / "span-1" / "a.gz"), _digits(51))
    with pytest.raises(SpanError, match="span-1 in .* changed after it was listed"):
        span_examples.read_window(listing, 0.1, 0.2, seed=0)


def test_split_span_is_deterministic_disjoint_and_complete():
    train, evaluation, test = spans.split_span(100, 0.1, 0.2, seed=0, number=7)
    assert (len(train), len(evaluation), len(test)) == (70, 10, 20)
    assert sorted(np.concatenate([train, evaluation, test]).tolist()) == list(range(100))
    again = spans.split_span(100, 0.1, 0.2, seed=0, number=7)
    assert all(np.array_equal(a, b) for a, b in zip((train, evaluation, test), again, strict=True))
    other = spans.split_span(100, 0.1, 0.2, seed=0, number=8)
    assert not np.array_equal(test, other[2]), "each span has its own test slice"
    with pytest.raises(SpanError, match="too few"):
        spans.split_span(2, 0.1, 0.2, seed=0, number=1)


def test_released_spans_come_from_the_newest_manifest(tmp_path):
    assert span_listing.released_spans(str(tmp_path)) == []
    for version, present in ((10, [1]), (12, [1, 2, 3])):
        release_dir = tmp_path / str(version)
        (release_dir / "variables").mkdir(parents=True)
        (release_dir / files.SAVED_MODEL_FILE).write_bytes(b"model")
        releases.write_manifest(str(release_dir), {"data": {"spans": {"present": present}}})
    assert span_listing.released_spans(str(tmp_path)) == [1, 2, 3]
