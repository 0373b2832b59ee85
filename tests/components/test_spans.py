"""The spans folder: listing, history, reading and splitting, on tiny real files.

Every bad input must be a SpanError naming the offending path (and the fix),
never a silently dropped file or a half-read span.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageDraw

from components import example_export, span_examples, span_listing, spans
from contract import digit_image, features, files, releases
from contract.errors import SpanError
from tests.components.fake_saved_model import write_fake_saved_model


def _digits(count=20, seed=0, label=None):
    """`count` digit-like examples, each with its own pixels (so order is checkable)."""
    rng = np.random.RandomState(seed)
    images = np.zeros((count, features.NUM_PIXELS), np.int64)
    images[:, 300:330] = rng.randint(120, 256, size=(count, 30))
    labels = rng.randint(0, 10, count) if label is None else np.full(count, label)
    return example_export.DigitArrays(images, labels.astype(np.int64))


def _tfrecords(path, digits=None, records=None):
    """Writes serialized examples to `path`, GZIP when the name ends in .gz."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if records is None:
        records = example_export.encode_examples(
            digits if digits is not None else _digits(),
            features.IMAGE_KEY,
            features.LABEL_KEY,
        )
    options = files.TFRECORD_COMPRESSION if str(path).endswith(".gz") else None
    with tf.io.TFRecordWriter(str(path), options=options) as writer:
        for record in records:
            writer.write(record)
    return str(path)


def _png(path, blank=False, stroke=((14, 5), (14, 22))):
    """A 28x28 PNG: a white stroke on black (a "1"), or all black when `blank`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.new("L", (28, 28), 0)
    if not blank:
        ImageDraw.Draw(image).line(stroke, fill=255, width=3)
    image.save(path)
    return str(path)


def _error(call, *args) -> str:
    with pytest.raises(SpanError) as raised:
        call(*args)
    return str(raised.value)


def _only_span(root):
    (span,) = spans.list_spans(str(root))
    return span


# Reading both forms.


def test_a_tfrecord_span_reads_back_every_pixel_and_label_in_file_order(tmp_path):
    gzipped, plain = _digits(12, seed=1), _digits(8, seed=2)
    _tfrecords(tmp_path / "span-1" / "a.tfrecord.gz", gzipped)
    _tfrecords(tmp_path / "span-1" / "b.tfrecord", plain)
    span = _only_span(tmp_path)
    assert (span.number, span.form, span.files) == (
        1,
        spans.FORM_TFRECORD,
        ("a.tfrecord.gz", "b.tfrecord"),
    )
    digits = spans.read_span(span)
    assert digits.images.shape == (20, features.NUM_PIXELS)
    np.testing.assert_array_equal(digits.images, np.concatenate([gzipped.images, plain.images]))
    np.testing.assert_array_equal(digits.labels, np.concatenate([gzipped.labels, plain.labels]))


def test_an_image_span_reads_each_png_as_mnist_pixels_labelled_by_its_folder(tmp_path):
    paths = [_png(tmp_path / "span-2" / "1" / f"{index}.png") for index in range(3)]
    paths.append(_png(tmp_path / "span-2" / "7" / "x.png", stroke=((6, 6), (21, 6), (10, 22))))
    span = _only_span(tmp_path)
    assert (span.number, span.form) == (2, spans.FORM_IMAGES)
    assert span.files == ("1/0.png", "1/1.png", "1/2.png", "7/x.png")
    digits = spans.read_span(span)
    assert digits.labels.tolist() == [1, 1, 1, 7]
    assert digits.images.shape == (4, features.NUM_PIXELS)
    assert digits.images.dtype == np.int64
    expected = np.stack([digit_image.load_digit(path) for path in paths]).astype(np.int64)
    np.testing.assert_array_equal(digits.images, expected)
    assert digits.images.max() == 255 and not np.array_equal(digits.images[0], digits.images[3])


def test_hidden_and_underscored_entries_are_skipped_everywhere(tmp_path):
    _tfrecords(tmp_path / "span-1" / "a.gz", _digits(5))
    _png(tmp_path / "span-2" / "4" / "a.png")
    (tmp_path / ".span-3.tmp").mkdir()  # being written
    (tmp_path / ".span-3.tmp" / "junk").write_text("half written")
    _tfrecords(tmp_path / "_quarantine" / "span-9" / "a.gz")  # retired
    (tmp_path / "_README.txt").write_text("notes")
    (tmp_path / ".DS_Store").write_text("")
    (tmp_path / "span-1" / ".DS_Store").write_text("")
    (tmp_path / "span-1" / "_SUCCESS").write_text("")
    (tmp_path / "span-2" / "4" / ".a.png").write_bytes(b"AppleDouble, not an image")
    (tmp_path / "span-2" / "4" / "_notes.txt").write_text("x")
    (tmp_path / "span-2" / "_extra").mkdir()
    found = spans.list_spans(str(tmp_path))
    assert [(span.number, span.files) for span in found] == [(1, ("a.gz",)), (2, ("4/a.png",))]
    assert len(spans.read_span(found[0])) == 5
    assert spans.read_span(found[1]).labels.tolist() == [4]


# Malformed folders: each case makes something wrong and returns the path the
# message must name, and a fragment of the reason.


def _non_span_file(root):
    (root / "notes.txt").write_text("x")
    return root / "notes.txt", "not a span"


def _non_span_folder(root):
    (root / "batch-2").mkdir()
    return root / "batch-2", "not a span"


def _span_named_file(root):
    (root / "span-2").write_text("a file, not a folder")
    return root / "span-2", "not a span"


def _duplicate_number(root):
    _tfrecords(root / "span-3" / "a.gz")
    _tfrecords(root / "span-03" / "a.gz")
    return root, "span-03 and span-3 are both span 3"


def _empty_span(root):
    (root / "span-2").mkdir()
    return root / "span-2", "is empty"


def _mixed_span(root):
    _png(root / "span-2" / "3" / "a.png")
    (root / "span-2" / "b.tfrecord").write_text("x")
    return root / "span-2", "mixes files"


def _label_folder_x(root):
    _png(root / "span-2" / "x" / "a.png")
    return root / "span-2" / "x", "'x' is not a digit"


def _label_folder_10(root):
    _png(root / "span-2" / "3" / "a.png")
    _png(root / "span-2" / "10" / "a.png")
    return root / "span-2" / "10", "'10' is not a digit"


def _text_in_label_folder(root):
    _png(root / "span-2" / "3" / "a.png")
    (root / "span-2" / "3" / "notes.txt").write_text("x")
    return root / "span-2" / "3" / "notes.txt", "not an image file"


def _folder_in_label_folder(root):
    (root / "span-2" / "3" / "more").mkdir(parents=True)
    return root / "span-2" / "3" / "more", "a folder inside a label folder"


def _empty_label_folders(root):
    (root / "span-2" / "3").mkdir(parents=True)
    return root / "span-2", "hold no images"


@pytest.mark.parametrize(
    "make",
    [
        _non_span_file,
        _non_span_folder,
        _span_named_file,
        _duplicate_number,
        _empty_span,
        _mixed_span,
        _label_folder_x,
        _label_folder_10,
        _text_in_label_folder,
        _folder_in_label_folder,
        _empty_label_folders,
    ],
)
def test_a_malformed_folder_is_an_error_naming_the_path(tmp_path, make):
    _tfrecords(tmp_path / "span-1" / "a.gz")  # a good span beside the bad entry
    path, reason = make(tmp_path)
    message = _error(spans.list_spans, str(tmp_path))
    assert str(path) in message and reason in message


def test_no_span_and_a_missing_folder_are_errors_naming_the_folder(tmp_path):
    (tmp_path / "_quarantine").mkdir()
    message = _error(spans.list_spans, str(tmp_path))
    assert str(tmp_path) in message and "holds no span-<N> folder yet" in message
    missing = tmp_path / "missing"
    message = _error(spans.list_spans, str(missing))
    assert str(missing) in message and "does not exist" in message


# Unreadable files and records that break the feature contract: listing is
# fine, reading names the file.


def test_a_truncated_gzip_tfrecord_is_an_error_naming_the_file(tmp_path):
    path = _tfrecords(tmp_path / "span-1" / "part.gz", _digits(200))
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) * 2 // 3])
    message = _error(spans.read_span, _only_span(tmp_path))
    assert f"{path}: not a readable TFRecord file" in message


def test_a_gzip_tfrecord_cut_anywhere_is_an_error_even_where_tf_reads_a_clean_end(tmp_path):
    # TF's GZIP reader may end cleanly on a file cut at a record boundary;
    # the reader checks the GZIP trailer, so every cut point is caught.
    whole = open(_tfrecords(tmp_path / "whole.gz", _digits(50)), "rb").read()
    for cut in range(len(whole) // 4, len(whole), max(1, len(whole) // 23)):
        span_dir = tmp_path / f"cut-{cut}" / "span-1"
        span_dir.mkdir(parents=True)
        (span_dir / "part.gz").write_bytes(whole[:cut])
        message = _error(spans.read_span, _only_span(span_dir.parent))
        assert f"{span_dir / 'part.gz'}: not a readable TFRecord file" in message


def test_a_plain_tfrecord_named_gz_is_an_error_naming_the_file(tmp_path):
    plain = _tfrecords(tmp_path / "plain.tfrecord", _digits(5))
    os.makedirs(tmp_path / "spans" / "span-1")
    path = str(tmp_path / "spans" / "span-1" / "part.gz")
    os.rename(plain, path)
    message = _error(spans.read_span, _only_span(tmp_path / "spans"))
    assert f"{path}: not a readable TFRecord file" in message


def test_a_png_that_is_not_an_image_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "span-1" / "4" / "fake.png"
    path.parent.mkdir(parents=True)
    path.write_text("not a png")
    message = _error(spans.read_span, _only_span(tmp_path))
    assert f"{path}: not an image that can be read" in message


def test_a_blank_png_is_an_error_naming_the_file(tmp_path):
    _png(tmp_path / "span-1" / "4" / "good.png")
    path = _png(tmp_path / "span-1" / "4" / "blank.png", blank=True)
    message = _error(spans.read_span, _only_span(tmp_path))
    assert f"{path}: no digit found" in message and "blank" in message


def _short_image(digits):
    return example_export.DigitArrays(digits.images[:, :783], digits.labels)


def _bright_image(digits):
    digits.images[1, 5] = 256
    return digits


def _label_ten(digits):
    return example_export.DigitArrays(digits.images, np.full(len(digits), 10, np.int64))


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (_short_image, "record 0: `image` must be 784 int64 values in 0..255 (got 783 values)"),
        (_bright_image, "record 1: `image` must be 784 int64 values in 0..255"),
        (_label_ten, "record 0: `label` must be one int64 in 0..9 (got [10])"),
    ],
    ids=["783 pixels", "pixel 256", "label 10"],
)
def test_a_record_that_breaks_the_contract_is_an_error_naming_file_and_record(
    tmp_path, corrupt, match
):
    path = _tfrecords(tmp_path / "span-1" / "p.gz", corrupt(_digits(3)))
    message = _error(spans.read_span, _only_span(tmp_path))
    assert f"{path}, {match}" in message


def test_a_record_that_is_not_a_tf_example_is_named_by_its_index(tmp_path):
    path = _tfrecords(tmp_path / "span-1" / "p.tfrecord", records=[b"\xff\xff not a proto"])
    message = _error(spans.read_span, _only_span(tmp_path))
    assert f"{path}, record 0: not a serialized tf.Example" in message


# History against the newest release.


def _spans_numbered(root, *numbers):
    for number in numbers:
        _tfrecords(root / f"span-{number}" / "a.gz", _digits(10, seed=number))
    return spans.list_spans(str(root))


def test_history_passes_new_higher_spans_and_the_first_release(tmp_path):
    found = _spans_numbered(tmp_path, 1, 2, 4)
    spans.check_history(found, [])  # no release yet: anything goes
    spans.check_history(found, [1, 2])  # span-4 is new and higher
    spans.check_history(found, [1, 2, 4])  # nothing new


def test_history_refuses_a_vanished_span(tmp_path):
    found = _spans_numbered(tmp_path, 1, 2, 4)
    message = _error(spans.check_history, found, [1, 2, 3])
    assert "span-3 was in the spans folder" in message and "gone now" in message


def test_history_refuses_numbers_that_go_backwards(tmp_path):
    found = _spans_numbered(tmp_path, 1, 2, 4)
    message = _error(spans.check_history, found, [1, 4])
    assert "span-2 is new but numbered below span-4" in message
    assert "Rename it span-5" in message


def _release(serving, version, manifest):
    path = write_fake_saved_model(serving / str(version))
    releases.write_manifest(path, manifest)
    return path


def test_released_spans_come_from_the_newest_releases_manifest(tmp_path):
    serving = tmp_path / "serving"
    assert span_listing.released_spans(str(serving)) == []  # no serving dir yet
    assert span_listing.released_spans("") == []
    _release(serving, 9, {"version": 9})  # released before spans existed
    assert span_listing.released_spans(str(serving)) == []
    _release(serving, 10, {"data": {"spans": {"present": [1]}}})
    _release(serving, 100, {"data": {"spans": {"present": [1, 2, 3]}}})
    (serving / "200").mkdir()  # half-written: no saved_model.pb, not a release
    releases.write_manifest(str(serving / "200"), {"data": {"spans": {"present": [7]}}})
    assert span_listing.released_spans(str(serving)) == [1, 2, 3]


def test_make_listing_checks_the_folder_against_the_release(tmp_path):
    serving, root = tmp_path / "serving", tmp_path / "spans"
    _spans_numbered(root, 1, 3, 4)
    first = json.loads(span_listing.make_listing(str(root), 2, str(serving)))  # no release
    assert first["present"] == [1, 3, 4] and first["window"] == [3, 4]
    _release(serving, 100, {"data": {"spans": {"present": [1, 3]}}})
    assert json.loads(span_listing.make_listing(str(root), 0, str(serving)))["window"] == [1, 3, 4]
    _release(serving, 101, {"data": {"spans": {"present": [1, 2, 3]}}})
    assert "span-2 was in the spans folder" in _error(
        span_listing.make_listing, str(root), 0, str(serving)
    )
    _release(serving, 102, {"data": {"spans": {"present": [1, 4]}}})
    assert "span-3 is new but numbered below span-4" in _error(
        span_listing.make_listing, str(root), 0, str(serving)
    )


# The window and the listing.


def test_the_window_keeps_the_newest_spans(tmp_path):
    found = _spans_numbered(tmp_path, 1, 2, 5)
    assert [span.number for span in spans.window(found, 2)] == [2, 5]
    assert [span.number for span in spans.window(found, 1)] == [5]
    assert [span.number for span in spans.window(found, 0)] == [1, 2, 5]
    assert [span.number for span in spans.window(found, 10)] == [1, 2, 5]


def test_the_listing_records_present_window_and_each_spans_fingerprint(tmp_path):
    found = _spans_numbered(tmp_path, 1, 2, 3)
    listing = json.loads(spans.listing_json(str(tmp_path), found, 2))
    assert listing["spans_dir"] == str(tmp_path)
    assert listing["present"] == [1, 2, 3] and listing["window"] == [2, 3]
    assert [(s["span"], s["form"], s["files"]) for s in listing["spans"]] == [
        (2, spans.FORM_TFRECORD, 1),
        (3, spans.FORM_TFRECORD, 1),
    ]
    assert len({s["sha256"] for s in listing["spans"]}) == 2


def test_the_listing_changes_with_a_files_bytes_and_only_then(tmp_path):
    before = spans.listing_json(str(tmp_path), _spans_numbered(tmp_path, 1, 2, 3), 0)
    again = spans.listing_json(str(tmp_path), spans.list_spans(str(tmp_path)), 0)
    assert again == before, "an unchanged folder lists the same"
    changed = _digits(10, seed=3)
    changed.images[4, 310] = (changed.images[4, 310] + 1) % 256  # one pixel of one example
    _tfrecords(tmp_path / "span-3" / "a.gz", changed)
    after = spans.listing_json(str(tmp_path), spans.list_spans(str(tmp_path)), 0)
    assert after != before, "rewritten bytes change the fingerprint"
    sha = {
        label: {s["span"]: s["sha256"] for s in json.loads(listing)["spans"]}
        for label, listing in (("before", before), ("after", after))
    }
    assert sha["before"][1] == sha["after"][1] and sha["before"][2] == sha["after"][2]
    assert sha["before"][3] != sha["after"][3]


# Splitting and reading the window.


def test_split_span_is_deterministic_disjoint_and_covering():
    train, evaluation, test = spans.split_span(100, 0.1, 0.2, seed=0, number=7)
    assert (len(train), len(evaluation), len(test)) == (70, 10, 20)
    assert sorted(np.concatenate([train, evaluation, test]).tolist()) == list(range(100))
    again = spans.split_span(100, 0.1, 0.2, seed=0, number=7)
    for first, second in zip((train, evaluation, test), again, strict=True):
        np.testing.assert_array_equal(first, second)
    other_span = spans.split_span(100, 0.1, 0.2, seed=0, number=8)
    assert not np.array_equal(test, other_span[2]), "each span has its own test slice"
    other_seed = spans.split_span(100, 0.1, 0.2, seed=1, number=7)
    assert not np.array_equal(test, other_seed[2])


def test_split_span_refuses_a_span_too_small_to_hold_out_a_test_slice():
    with pytest.raises(SpanError, match="span-4 has 2 examples: too few"):
        spans.split_span(2, 0.1, 0.2, seed=0, number=4)
    with pytest.raises(SpanError, match="too few"):
        spans.split_span(5, 0.4, 0.6, seed=0, number=4)  # nothing left to train on
    assert [len(part) for part in spans.split_span(5, 0.0, 0.2, seed=0, number=4)] == [4, 0, 1]


def test_read_window_cuts_each_listed_span_as_split_span_does(tmp_path):
    _tfrecords(tmp_path / "span-1" / "a.gz", _digits(10, seed=1))
    _tfrecords(tmp_path / "span-2" / "a.gz", _digits(50, seed=2))
    listing = spans.listing_json(str(tmp_path), spans.list_spans(str(tmp_path)), 1)
    parts = span_examples.read_window(listing, 0.1, 0.2, seed=0)
    assert {split: sorted(part) for split, part in parts.items()} == {
        features.SPLIT_TRAIN: [2],
        features.SPLIT_EVAL: [2],
        features.SPLIT_TEST: [2],
    }
    digits = spans.read_span(spans.list_spans(str(tmp_path))[1])
    indices = spans.split_span(50, 0.1, 0.2, seed=0, number=2)
    for split, chosen in zip(
        (features.SPLIT_TRAIN, features.SPLIT_EVAL, features.SPLIT_TEST), indices, strict=True
    ):
        np.testing.assert_array_equal(parts[split][2].images, digits.images[chosen])
        np.testing.assert_array_equal(parts[split][2].labels, digits.labels[chosen])
    assert [len(parts[split][2]) for split in parts] == [35, 5, 10]


def test_read_window_refuses_a_span_changed_or_gone_after_listing(tmp_path):
    _spans_numbered(tmp_path, 1, 2)
    listing = spans.listing_json(str(tmp_path), spans.list_spans(str(tmp_path)), 0)
    _tfrecords(tmp_path / "span-3" / "a.gz")  # a new span outside the listing is fine
    assert sorted(span_examples.read_window(listing, 0.1, 0.2, seed=0)["train"]) == [1, 2]
    _tfrecords(tmp_path / "span-2" / "a.gz", _digits(11, seed=99))
    message = _error(span_examples.read_window, listing, 0.1, 0.2, 0)
    assert f"span-2 in {tmp_path} changed after it was listed" in message
    os.rename(tmp_path / "span-1", tmp_path / "_quarantine")
    message = _error(span_examples.read_window, listing, 0.1, 0.2, 0)
    assert f"span-1 in {tmp_path} changed after it was listed" in message
