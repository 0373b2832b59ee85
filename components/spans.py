"""Spans of newly labelled digits: listing, checking and reading a spans folder.

A spans folder (local path or object store, read through `tf.io.gfile`)
holds one folder per batch of labelled digits, `span-<N>/`, N counting up,
in one of two forms:

- **tfrecord**: files of serialized tf.Examples in the feature contract
  (`image`: 784 int64 in 0..255, `label`: one int64 in 0..9), GZIP when the
  name ends in `.gz`, else plain;
- **images**: digit-named subfolders, `span-7/3/*.png`, the layout Keras's
  `image_dataset_from_directory` reads; each image becomes MNIST's 784
  pixels through `contract.digit_image`, the preprocessing `serving.predict`
  applies to a request.

Names starting with `.` or `_` are skipped everywhere (write a span as
`.span-8.tmp/` and rename it when complete; keep retired spans in
`_quarantine/`). Anything else that is not a span is an error naming the
path and the fix: nothing is silently dropped, nothing half-read is trained on.

The helpers are plain functions over paths, so unit tests call them directly;
`components/span_listing.py` and `components/mnist_example_gen.py` are the
TFX wiring.
"""

import dataclasses
import hashlib
import io
import json
import os
import re
import zlib
from typing import Any

import numpy as np
import tensorflow as tf

from components.example_export import DigitArrays
from contract import digit_image, features
from contract.errors import SpanError

SPAN_NAME = re.compile(r"^span-(\d+)$")
FORM_TFRECORD = "tfrecord"
FORM_IMAGES = "images"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
DIGIT_FOLDERS = tuple(str(digit) for digit in range(features.NUM_CLASSES))


@dataclasses.dataclass(frozen=True)
class Span:
    """One span folder as listed: its number, form, files and content fingerprint."""

    number: int
    path: str
    form: str
    files: tuple[str, ...]
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {
            "span": self.number,
            "form": self.form,
            "files": len(self.files),
            "sha256": self.sha256,
        }


def _skipped(name: str) -> bool:
    return name.startswith((".", "_"))


def _entries(directory: str) -> list[str]:
    """Names in `directory` (no trailing slash), skipped names left out, sorted."""
    return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(directory) if not _skipped(name))


def _span_files(span_dir: str, name: str) -> tuple[str, tuple[str, ...]]:
    """(form, files relative to the span) of one span folder; raises SpanError."""
    entries = _entries(span_dir)
    if not entries:
        raise SpanError(
            f"{span_dir} is empty: a span needs TFRecord files or digit folders 0..9. "
            "Remove the empty folder, or write spans under a name starting with '.' "
            "and rename them once complete."
        )
    folders = [entry for entry in entries if tf.io.gfile.isdir(os.path.join(span_dir, entry))]
    loose = [entry for entry in entries if entry not in folders]
    if not folders:
        return FORM_TFRECORD, tuple(loose)
    if loose:
        raise SpanError(
            f"{span_dir} mixes files ({loose[0]}, ...) with label folders ({folders[0]}, ...): "
            "a span is either TFRecord files or digit folders 0..9 of images; move one kind out"
        )
    files = []
    for folder in folders:
        if folder not in DIGIT_FOLDERS:
            raise SpanError(
                f"{os.path.join(span_dir, folder)}: label folders must be named after the digit, "
                f"0 to 9 ({folder!r} is not a digit). Rename it, or move it out of {name}."
            )
        for image in _entries(os.path.join(span_dir, folder)):
            path = os.path.join(span_dir, folder, image)
            if tf.io.gfile.isdir(path):
                raise SpanError(f"{path}: a folder inside a label folder; move it out")
            if not image.lower().endswith(IMAGE_SUFFIXES):
                raise SpanError(
                    f"{path}: not an image file (expected {', '.join(IMAGE_SUFFIXES)}); "
                    "remove it or move it out of the span"
                )
            files.append(f"{folder}/{image}")
    if not files:
        raise SpanError(f"{span_dir}: its label folders hold no images; remove the span")
    return FORM_IMAGES, tuple(files)


def _fingerprint(span_dir: str, files: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0")
        with tf.io.gfile.GFile(os.path.join(span_dir, name), "rb") as source:
            digest.update(hashlib.sha256(source.read()).digest())
    return digest.hexdigest()


def list_spans(spans_dir: str) -> list[Span]:
    """Lists and checks every span in `spans_dir`, oldest first.

    Raises:
      SpanError: the folder is missing or holds no span; an entry is not a
        span; two folders share a number; a span is empty or malformed.
    """
    if not tf.io.gfile.isdir(spans_dir):
        raise SpanError(f"spans folder {spans_dir} does not exist; create it or fix --spans-dir")
    numbered: dict[int, str] = {}
    for name in _entries(spans_dir):
        match = SPAN_NAME.match(name)
        if not match or not tf.io.gfile.isdir(os.path.join(spans_dir, name)):
            raise SpanError(
                f"{os.path.join(spans_dir, name)}: not a span. Spans are folders named "
                "span-<N> (N = 1, 2, ...); move other files out, or prefix them with '_'"
            )
        number = int(match.group(1))
        if number in numbered:
            raise SpanError(
                f"{spans_dir}: {numbered[number]} and {name} are both span {number}; "
                "rename one to the next free number"
            )
        numbered[number] = name
    if not numbered:
        raise SpanError(
            f"spans folder {spans_dir} holds no span-<N> folder yet; add one, or run "
            "without --spans-dir until the first span arrives"
        )
    spans = []
    for number in sorted(numbered):
        span_dir = os.path.join(spans_dir, numbered[number])
        form, files = _span_files(span_dir, numbered[number])
        spans.append(Span(number, span_dir, form, files, _fingerprint(span_dir, files)))
    return spans


def check_history(spans: list[Span], released_spans: list[int]) -> None:
    """Checks the spans against those present when the served model was released.

    Args:
      spans: What `list_spans` found now.
      released_spans: Span numbers present when the newest release was made
        (its manifest's `data.spans.present`); empty before the first one.

    Raises:
      SpanError: a span the release saw has vanished, or a new span is
        numbered at or below one the release saw (numbers went backwards).
    """
    present = {span.number for span in spans}
    vanished = sorted(set(released_spans) - present)
    if vanished:
        raise SpanError(
            f"span-{vanished[0]} was in the spans folder when the served model was released "
            "and is gone now: restore it (spans are never rewritten or removed once a release "
            "has seen them), or retire it into _quarantine/ and release a model without it "
            "from a fresh serving directory"
        )
    newest_seen = max(released_spans, default=0)
    backwards = sorted(present - set(released_spans) - {n for n in present if n > newest_seen})
    if backwards:
        raise SpanError(
            f"span-{backwards[0]} is new but numbered below span-{newest_seen}, which the served "
            f"model already saw: span numbers only go up. Rename it span-{max(present) + 1}."
        )


def window(spans: list[Span], span_window: int) -> list[Span]:
    """The newest `span_window` spans (0 = all)."""
    return list(spans) if span_window <= 0 else list(spans)[-span_window:]


def listing_json(spans_dir: str, spans: list[Span], span_window: int) -> str:
    """The listing a run trains on: every span present, and the window's numbers."""
    chosen = window(spans, span_window)
    return json.dumps(
        {
            "spans_dir": spans_dir,
            "present": [span.number for span in spans],
            "window": [span.number for span in chosen],
            "spans": [span.to_json() for span in chosen],
        },
        sort_keys=True,
    )


GZIP_CHUNK_BYTES = 1 << 20


def _gzip_stream_is_complete(path: str) -> bool:
    """Whether a GZIP file ends with its end-of-stream marker (read through gfile).

    TF's GZIP reader does not always fail on a file cut short: cut where a
    record ends, it may report a clean end of file, and the rest of the span
    would be lost without a word. zlib sees the missing trailer every time.
    """
    decompressor = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    try:
        with tf.io.gfile.GFile(path, "rb") as source:
            while chunk := source.read(GZIP_CHUNK_BYTES):
                decompressor.decompress(chunk)
                if decompressor.eof:
                    return True
    except zlib.error:
        return False
    return decompressor.eof


def read_examples_file(path: str) -> DigitArrays:
    """Every example of one TFRecord file (GZIP if *.gz), checked against the contract."""
    compression = "GZIP" if path.endswith(".gz") else ""
    if compression and not _gzip_stream_is_complete(path):
        raise SpanError(
            f"{path}: not a readable TFRecord file (its GZIP stream is cut short or "
            "corrupt); copy the file again from its source, or move it out of the span"
        )
    images, labels = [], []
    index = -1
    try:
        for index, record in enumerate(
            tf.data.TFRecordDataset(path, compression_type=compression).as_numpy_iterator()
        ):
            example = tf.train.Example.FromString(record)
            feature = example.features.feature
            image = list(feature[features.IMAGE_KEY].int64_list.value)
            label = list(feature[features.LABEL_KEY].int64_list.value)
            if len(image) != features.NUM_PIXELS or not all(
                0 <= value <= features.MAX_PIXEL_VALUE for value in image
            ):
                raise SpanError(
                    f"{path}, record {index}: `{features.IMAGE_KEY}` must be "
                    f"{features.NUM_PIXELS} int64 values in 0..{features.MAX_PIXEL_VALUE} "
                    f"(got {len(image)} values); re-export the span in the feature contract"
                )
            if len(label) != 1 or not 0 <= label[0] < features.NUM_CLASSES:
                raise SpanError(
                    f"{path}, record {index}: `{features.LABEL_KEY}` must be one int64 in "
                    f"0..{features.NUM_CLASSES - 1} (got {label}); fix the label"
                )
            images.append(image)
            labels.append(label[0])
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
        raise SpanError(
            f"{path}: not a readable TFRecord file at record {index + 1} "
            f"({type(error).__name__}: truncated, or not TFRecord/GZIP as its name says); "
            "copy the file again from its source, or move it out of the span"
        ) from None
    except Exception as error:  # a record that is not a tf.Example
        if isinstance(error, SpanError):
            raise
        raise SpanError(
            f"{path}, record {index}: not a serialized tf.Example ({error}); "
            "re-export the span in the feature contract"
        ) from None
    return DigitArrays(
        np.asarray(images, np.int64).reshape(-1, features.NUM_PIXELS),
        np.asarray(labels, np.int64),
    )


def _read_image_file(path: str) -> np.ndarray:
    """MNIST pixels of one image file (object stores through gfile, Pillow for the rest)."""
    with tf.io.gfile.GFile(path, "rb") as source:
        data = io.BytesIO(source.read())
    try:
        return digit_image.to_mnist_pixels(digit_image.read_grey(data)).astype(np.int64)
    except digit_image.DigitImageError as error:
        reason = str(error)
        if reason.startswith("<"):  # read_grey names the file object; name the file instead
            reason = reason.split(": ", 1)[-1]
        raise SpanError(
            f"{path}: {reason}; remove the file from the span or replace it with a picture "
            "of one digit"
        ) from None


def read_span(span: Span) -> DigitArrays:
    """Reads every example of a span; the order is the listing's file order.

    Raises:
      SpanError: a file is truncated, not a TFRecord / image, or an example
        breaks the feature contract (the message names the file), or the
        span holds no example at all.
    """
    if span.form == FORM_TFRECORD:
        parts = [read_examples_file(os.path.join(span.path, name)) for name in span.files]
        digits = DigitArrays(
            np.concatenate([part.images for part in parts]).reshape(-1, features.NUM_PIXELS),
            np.concatenate([part.labels for part in parts]),
        )
    else:
        images = [_read_image_file(os.path.join(span.path, name)) for name in span.files]
        labels = [int(name.split("/")[0]) for name in span.files]
        digits = DigitArrays(np.stack(images), np.asarray(labels, np.int64))
    if len(digits) == 0:
        raise SpanError(f"{span.path}: its files hold no example; remove the span")
    return digits


def split_span(
    num_examples: int, eval_fraction: float, test_fraction: float, seed: int, number: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic (train, eval, test) indices of one span's examples.

    The permutation depends on the seed and the span number only, so a span
    keeps its test slice in every run that reads it.
    """
    permutation = np.random.RandomState([seed, number]).permutation(num_examples)
    num_test = int(round(num_examples * test_fraction))
    num_eval = int(round(num_examples * eval_fraction))
    if num_examples - num_test - num_eval < 1 or num_test < 1:
        raise SpanError(
            f"span-{number} has {num_examples} examples: too few to hold out "
            f"{test_fraction:.0%} for its test slice and {eval_fraction:.0%} for eval and "
            "still train on some; add examples to the span"
        )
    test = np.sort(permutation[:num_test])
    evaluation = np.sort(permutation[num_test : num_test + num_eval])
    train = np.sort(permutation[num_test + num_eval :])
    return train, evaluation, test
