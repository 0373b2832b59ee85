"""TFLiteCandidate: the Trainer's TFLite model as a Model that TFMA can evaluate.

The Trainer writes `assets.extra/model.tflite` inside its SavedModel (so a
release carries both). TFMA evaluates a TFLite model (model_type tf_lite)
from a file named `tflite` in the model directory; this copies the file
there, as a Model of its own, for the second Evaluator. TFMA cannot mix
TFLite and SavedModel specs in one Evaluator.
"""

import os

import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.source_fingerprint import FingerprintDriver
from contract import files

TFMA_TFLITE_FILE = "tflite"


@component
def TFLiteCandidate(  # noqa: N802 (TFX components are named like classes)
    model: InputArtifact[standard_artifacts.Model],
    tflite_model: OutputArtifact[standard_artifacts.Model],
) -> None:
    """Copies the candidate's model.tflite to where TFMA reads a TFLite model.

    Args:
      model: The Trainer's model (a SavedModel with assets.extra/model.tflite).
      tflite_model: Output; `Format-Serving/tflite`.
    """
    source = os.path.join(path_utils.serving_model_path(model.uri), files.TFLITE_FILE)
    if not tf.io.gfile.exists(source):
        raise FileNotFoundError(f"the Trainer wrote no TFLite model: {source} is missing")
    target_dir = path_utils.serving_model_path(tflite_model.uri)
    tf.io.gfile.makedirs(target_dir)
    tf.io.gfile.copy(source, os.path.join(target_dir, TFMA_TFLITE_FILE), overwrite=True)
    tflite_model.set_int_custom_property("tflite_bytes", tf.io.gfile.stat(source).length)


# Cache key: this module's code.
TFLiteCandidate.DRIVER_CLASS = FingerprintDriver
TFLiteCandidate.SOURCE_MODULES = (__name__,)
