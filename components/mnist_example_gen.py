"""MnistExampleGen: TFDS MNIST -> tf.Example TFRecords with train/eval/test splits.

A function-based `@component` (no Beam needed): the TFX wiring lives here,
the work in `tfds_mnist` (TFDS prepare, checksum errors) and
`example_export` (splitting and encoding), which unit tests call directly.
"""

import json
import logging
import os
import time

from tfx.components.example_gen import utils as example_gen_utils
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

from components import example_export, span_examples, tfds_mnist
from components.source_fingerprint import FingerprintDriver
from contract import features


@component
def MnistExampleGen(  # noqa: N802 (TFX components are named like classes)
    examples: OutputArtifact[standard_artifacts.Examples],
    image_feature: Parameter[str],
    label_feature: Parameter[str],
    mnist_dir: Parameter[str] = "",
    tfds_data_dir: Parameter[str] = "",
    eval_holdout_size: Parameter[int] = 5000,
    split_seed: Parameter[int] = 0,
    train_limit: Parameter[int] = 0,
    test_limit: Parameter[int] = 0,
    allow_download: Parameter[int] = 0,
    extra_examples: InputArtifact[standard_artifacts.Examples] = None,
    span_listing: Parameter[str] = "",
    span_eval_fraction: Parameter[float] = 0.1,
    span_test_fraction: Parameter[float] = 0.2,
) -> None:
    """Exports MNIST from TFDS as the pipeline's `Examples` artifact.

    Args:
      examples: Output; GZIP TFRecords of tf.Example under Split-train/,
        Split-eval/ and Split-test/.
      image_feature: Name of the image feature (784 int64 pixels), from the
        pipeline's feature contract.
      label_feature: Name of the label feature (int64 digit).
      mnist_dir: Folder with the four original archives (TFDS manual dir),
        checked against TFDS's checksums on every run.
      tfds_data_dir: Where TFDS keeps its prepared data ("" = TFDS default).
      eval_holdout_size: Examples held out of TFDS train as the `eval` split,
        used for early stopping.
      split_seed: Seed of the deterministic hold-out.
      train_limit: Use only the first N TFDS train examples (0 = all); for
        small test runs.
      test_limit: Use only the first N TFDS test examples (0 = all).
      allow_download: 1: without the archives, TFDS downloads MNIST (else an
        error).
      extra_examples: Optional newly labelled digits (ImportExampleGen's
        output, all its splits) added to the `train` split as they are: bad
        records surface in StatisticsGen/ExampleValidator and stop the run.
      span_listing: SpanListing's output (JSON), passed as a parameter so the
        cache key holds its value; "" = no spans. Each span in its window is
        read (`components.spans`), checked against its listed fingerprint and
        cut into train / eval / test parts: train and eval join MNIST's, and
        the parts are also written as the `span_train` and `span_test` splits
        (one file per span), what the gates and the new-data Evaluator read.
      span_eval_fraction: Part of each span held out for early stopping.
      span_test_fraction: Part of each span held out as its test slice.
    """
    started = time.monotonic()
    builder = tfds_mnist.prepare_mnist(mnist_dir, tfds_data_dir, bool(allow_download))
    local_archives = tfds_mnist.has_all_archives(mnist_dir)
    train_all = example_export.load_tfds_split(builder, "train", train_limit)
    train_indices, eval_indices = example_export.holdout_split(
        len(train_all), eval_holdout_size, split_seed
    )
    split_data = {
        features.SPLIT_TRAIN: train_all.take(train_indices),
        features.SPLIT_EVAL: train_all.take(eval_indices),
        features.SPLIT_TEST: example_export.load_tfds_split(builder, "test", test_limit),
    }
    span_parts = {}
    if span_listing:
        span_parts = span_examples.read_window(
            span_listing, span_eval_fraction, span_test_fraction, split_seed
        )
        for split in (features.SPLIT_TRAIN, features.SPLIT_EVAL):
            split_data[split] = span_examples.concat(
                [split_data[split], *span_parts[split].values()]
            )
    split_names = list(features.SPLITS) + (list(features.SPAN_SPLITS) if span_parts else [])
    examples.split_names = artifact_utils.encode_split_names(split_names)
    extra_records = []
    if extra_examples is not None:
        extra_records = example_export.read_examples_artifact(
            extra_examples.uri, artifact_utils.decode_split_names(extra_examples.split_names)
        )
    counts = {}
    for split, digits in split_data.items():
        records = example_export.encode_examples(digits, image_feature, label_feature)
        if split == features.SPLIT_TRAIN:
            records += extra_records
        example_export.write_tfrecords(records, artifact_utils.get_split_uri([examples], split))
        counts[split] = len(records)
    counts["extra_in_train"] = len(extra_records)
    if span_parts:
        span_examples.write_span_splits(
            examples, span_parts, image_feature, label_feature, counts, span_listing
        )

    examples.set_string_custom_property(
        example_gen_utils.PAYLOAD_FORMAT_PROPERTY_NAME, "FORMAT_TF_EXAMPLE"
    )
    examples.set_string_custom_property(
        example_gen_utils.FILE_FORMAT_PROPERTY_NAME, "tfrecords_gzip"
    )
    examples.set_string_custom_property("tfds_name", builder.info.name)
    examples.set_string_custom_property("tfds_version", str(builder.info.version))
    # The sums of the files read (verified equal to TFDS's registered ones).
    sums = tfds_mnist.archive_sha256(mnist_dir) if local_archives else {}
    examples.set_string_custom_property("archive_sha256", json.dumps(sums, sort_keys=True))
    examples.set_string_custom_property(
        "archive_source", os.path.abspath(mnist_dir) if local_archives else "download"
    )
    examples.set_string_custom_property("split_counts", json.dumps(counts))
    logging.info("MnistExampleGen wrote %s examples in %.1f s", counts, time.monotonic() - started)


def _archive_fingerprints(exec_properties: dict) -> dict[str, str]:
    """The archives' SHA-256, read before the cache look-up (see source_fingerprint)."""
    mnist_dir = exec_properties.get("mnist_dir", "")
    if not tfds_mnist.has_all_archives(mnist_dir):
        return {"archive_sha256": "no local archives"}
    return {"archive_sha256": json.dumps(tfds_mnist.archive_sha256(mnist_dir), sort_keys=True)}


# Cache key: the code below and the archives' content, not only their folder's name.
MnistExampleGen.DRIVER_CLASS = FingerprintDriver
MnistExampleGen.SOURCE_MODULES = (__name__,)
MnistExampleGen.content_fingerprints = staticmethod(_archive_fingerprints)
