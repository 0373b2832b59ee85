"""The span part of MnistExampleGen: the window's spans, cut and written as splits.

`read_window` reads the spans a SpanListing picked, checks each against the
fingerprint the listing recorded (a span rewritten between listing and
reading is an error, not a silent mix) and cuts each into train / eval /
test parts (`spans.split_span`). `write_span_splits` writes the `span_train`
and `span_test` splits, one file per span (`span-<N>.gz`), so the gates can
judge each span on its own, and records the window on the Examples artifact:
TFX's `span` property (the newest span) and `span_window` / `span_counts`.
"""

import json
import os

import numpy as np
from tfx import types
from tfx.types import artifact_utils

from components import example_export, spans
from components.example_export import DigitArrays
from contract import features, files
from contract.errors import SpanError

SPAN_WINDOW_PROPERTY = "span_window"
SPANS_PRESENT_PROPERTY = "spans_present"
SPAN_COUNTS_PROPERTY = "span_counts"


def concat(parts: list[DigitArrays]) -> DigitArrays:
    """One DigitArrays of all `parts`, in order."""
    return DigitArrays(
        np.concatenate([part.images for part in parts]).reshape(-1, features.NUM_PIXELS),
        np.concatenate([part.labels for part in parts]),
    )


def read_window(
    listing_json: str, eval_fraction: float, test_fraction: float, seed: int
) -> dict[str, dict[int, DigitArrays]]:
    """{split: {span number: examples}} for the window of a SpanListing's listing.

    Raises:
      SpanError: a span of the window is gone or changed since it was listed,
        or cannot be read (see `spans.read_span`).
    """
    listing = json.loads(listing_json)
    now = {span.number: span for span in spans.list_spans(listing["spans_dir"])}
    parts: dict[str, dict[int, DigitArrays]] = {
        features.SPLIT_TRAIN: {},
        features.SPLIT_EVAL: {},
        features.SPLIT_TEST: {},
    }
    for listed in listing["spans"]:
        number = listed["span"]
        span = now.get(number)
        if span is None or span.sha256 != listed["sha256"]:
            raise SpanError(
                f"span-{number} in {listing['spans_dir']} changed after it was listed "
                "(spans are written once, then only read): write new examples as a new span "
                "and rerun"
            )
        digits = spans.read_span(span)
        train, evaluation, test = spans.split_span(
            len(digits), eval_fraction, test_fraction, seed, number
        )
        parts[features.SPLIT_TRAIN][number] = digits.take(train)
        parts[features.SPLIT_EVAL][number] = digits.take(evaluation)
        parts[features.SPLIT_TEST][number] = digits.take(test)
    return parts


def span_file(split_dir: str, number: int) -> str:
    """Where one span's examples of a span split live."""
    return os.path.join(split_dir, f"span-{number}.gz")


def span_of_file(path: str) -> int:
    """The span number of a `span_file` path."""
    return int(os.path.basename(path).removeprefix("span-").removesuffix(".gz"))


def write_span_splits(
    examples: types.Artifact,
    parts: dict[str, dict[int, DigitArrays]],
    image_feature: str,
    label_feature: str,
    counts: dict,
    listing_json: str,
) -> None:
    """Writes `span_train` / `span_test` and records the window on the artifact."""
    import tensorflow as tf

    for split, source in (
        (features.SPLIT_SPAN_TRAIN, features.SPLIT_TRAIN),
        (features.SPLIT_SPAN_TEST, features.SPLIT_TEST),
    ):
        split_dir = artifact_utils.get_split_uri([examples], split)
        tf.io.gfile.makedirs(split_dir)
        for number, digits in parts[source].items():
            records = example_export.encode_examples(digits, image_feature, label_feature)
            with tf.io.TFRecordWriter(
                span_file(split_dir, number), options=files.TFRECORD_COMPRESSION
            ) as writer:
                for record in records:
                    writer.write(record)
        counts[split] = sum(len(digits) for digits in parts[source].values())
    window = sorted(parts[features.SPLIT_TRAIN])
    examples.span = window[-1]
    examples.set_string_custom_property(SPAN_WINDOW_PROPERTY, json.dumps(window))
    examples.set_string_custom_property(
        SPANS_PRESENT_PROPERTY, json.dumps(json.loads(listing_json)["present"])
    )
    examples.set_string_custom_property(
        SPAN_COUNTS_PROPERTY,
        json.dumps(
            {
                str(number): {split: len(parts[split][number]) for split in parts}
                for number in window
            },
            sort_keys=True,
        ),
    )
