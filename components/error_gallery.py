"""ErrorGallery: the candidate's most confident mistakes on the test split, made in the DAG.

Runs the Trainer's `predict` signature over the test split as a client
calls it (serialized tf.Examples, the image alone) and writes, into a File
artifact, the `shown` mistakes it was most sure of (pixels, true label,
predicted digit, its probability; most confident first), how many test
digits it read and got wrong, and the test split's label counts. The run
report shows this artifact as it is; TFX caches it like any output (same
model, same examples, same code: the same gallery), and ML Metadata records
it with `examples` and `wrong` as custom properties.
"""

import io
import json
import os

import numpy as np
import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.types.experimental import simple_artifacts
from tfx.utils import path_utils

from components import example_export
from components.source_fingerprint import FingerprintDriver
from contract import artifacts, features, files, tfx_internals

MISTAKES_SHOWN = 24
"""How many mistakes the gallery keeps (the component's default `shown`)."""


def predict_test_split(
    model_dir: str, examples_uri: str, shown: int = MISTAKES_SHOWN
) -> artifacts.Gallery:
    """The model's `predict` signature over the test split, as a client calls it.

    Args:
      model_dir: A SavedModel with the `predict` signature (classes, probabilities).
      examples_uri: An Examples artifact with a test split.
      shown: How many of the most confident mistakes to keep.

    Returns:
      How many test digits were read and how many were wrong, the `shown`
      most confident mistakes (ties keep the split's order), and the test
      split's label counts. Records that are not 784 pixels and one label
      0..9 are left out, as in the data profile.
    """
    predict = tf.saved_model.load(model_dir).signatures[features.PREDICT_SIGNATURE]
    counts = np.zeros(features.NUM_CLASSES, np.int64)
    wrong_pixels, wrong_labels, wrong_classes, wrong_probabilities = [], [], [], []
    total = 0
    for images, labels, _ in artifacts.split_batches(examples_uri, features.SPLIT_TEST):
        if not len(labels):
            continue
        requests = example_export.encode_examples(
            example_export.DigitArrays(images, labels), features.IMAGE_KEY, None
        )
        outputs = predict(examples=tf.constant(requests))
        classes = outputs[features.CLASSES].numpy()
        confidence = outputs[features.PROBABILITIES].numpy()[np.arange(len(classes)), classes]
        wrong = classes != labels
        wrong_pixels.append(images[wrong].astype(np.uint8))
        wrong_labels.append(labels[wrong])
        wrong_classes.append(classes[wrong])
        wrong_probabilities.append(confidence[wrong])
        counts += np.bincount(labels, minlength=features.NUM_CLASSES)
        total += len(labels)
    if not total:
        return artifacts.Gallery(0, 0, [], counts.tolist())
    probabilities = np.concatenate(wrong_probabilities)
    order = np.argsort(-probabilities, kind="stable")[:shown]
    pixels, labels, classes = (
        np.concatenate(part) for part in (wrong_pixels, wrong_labels, wrong_classes)
    )
    mistakes = [
        artifacts.Mistake(
            pixels[index], int(labels[index]), int(classes[index]), float(probabilities[index])
        )
        for index in order
    ]
    return artifacts.Gallery(total, len(probabilities), mistakes, counts.tolist())


def write_gallery(gallery: artifacts.Gallery, uri: str) -> None:
    """Writes `gallery.json` and `gallery.npz` under uri (read by artifacts.read_gallery)."""
    tf.io.gfile.makedirs(uri)
    mistakes = gallery.mistakes
    arrays = io.BytesIO()
    np.savez(
        arrays,
        pixels=np.array([m.pixels for m in mistakes], np.uint8).reshape(-1, features.NUM_PIXELS),
        labels=np.array([m.label for m in mistakes], np.int64),
        predicted=np.array([m.predicted for m in mistakes], np.int64),
        probabilities=np.array([m.probability for m in mistakes], np.float64),
    )
    with tf.io.gfile.GFile(os.path.join(uri, files.GALLERY_ARRAYS_FILE), "wb") as out:
        out.write(arrays.getvalue())
    record = {
        "examples": gallery.examples,
        "wrong": gallery.wrong,
        "shown": len(mistakes),
        "test_label_counts": gallery.test_label_counts,
    }
    with tf.io.gfile.GFile(os.path.join(uri, files.GALLERY_FILE), "w") as out:
        json.dump(record, out, indent=2, sort_keys=True)


@component
def ErrorGallery(  # noqa: N802 (TFX components are named like classes)
    model: InputArtifact[standard_artifacts.Model],
    examples: InputArtifact[standard_artifacts.Examples],
    gallery: OutputArtifact[simple_artifacts.File],
    shown: Parameter[int] = MISTAKES_SHOWN,
) -> None:
    """Writes the candidate's most confident test mistakes and the test label counts.

    Args:
      model: The Trainer's model (its `predict` signature is called).
      examples: The examples it was tested on (the test split is read).
      gallery: Output; `gallery.json` (examples, wrong, test_label_counts)
        and `gallery.npz` (pixels, labels, predicted, probabilities).
      shown: How many of the most confident mistakes to keep.
    """
    found = predict_test_split(path_utils.serving_model_path(model.uri), examples.uri, shown)
    write_gallery(found, gallery.uri)
    gallery.set_int_custom_property("examples", found.examples)
    gallery.set_int_custom_property("wrong", found.wrong)


tfx_internals.declare_driver(ErrorGallery, FingerprintDriver, (__name__,))
