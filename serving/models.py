"""Finds a release in the serving directory and runs its model on MNIST pixels.

Two runtimes read the same release: the SavedModel's `serving_default`
signature (what TF Serving runs: serialized tf.Examples in) and, where the
release has one, its TFLite model (`assets.extra/model.tflite`: raw int64
pixels in). Both return class probabilities [N, 10].
"""

import os
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from contract import features, files, releases

Predictor = Callable[[np.ndarray], np.ndarray]
"""Pixels [N, 784] (0..255) -> class probabilities [N, 10]."""

BATCH_SIZE = 256
"""Images per model call: bounds memory for long file lists."""


class ModelNotFoundError(LookupError):
    """No release, no such version, or no TFLite model in the release."""


class ModelLoadError(RuntimeError):
    """The release's model file is there but cannot be loaded (corrupt, wrong format)."""


def find_release(serving_dir: str, version: int | None = None) -> releases.Release:
    """The newest release in `serving_dir`, or the one numbered `version`.

    Raises:
      ModelNotFoundError: the directory holds no release, or not that version
        (the message lists the versions there are).
    """
    found = releases.list_releases(serving_dir)
    if not found:
        state = "holds no release" if tf.io.gfile.isdir(serving_dir) else "does not exist"
        raise ModelNotFoundError(
            f"serving dir {serving_dir} {state} (a release is a numbered subdirectory "
            "holding saved_model.pb). Run the pipeline first (make run), or pass "
            "--serving-dir with the pipeline's <output-dir>/serving/mnist."
        )
    if version is None:
        return found[-1]
    for candidate in found:
        if candidate.version == version:
            return candidate
    versions = ", ".join(str(candidate.version) for candidate in found)
    raise ModelNotFoundError(f"no release {version} in {serving_dir}; releases there: {versions}")


def tflite_path(release_dir: str) -> str:
    """Where a release keeps its TFLite model."""
    return os.path.join(release_dir, files.TFLITE_FILE)


def encode_examples(pixels: np.ndarray) -> list[bytes]:
    """Serializes each row of pixels [N, 784] as a tf.Example with the `image` feature."""
    return [
        tf.train.Example(
            features=tf.train.Features(
                feature={
                    features.IMAGE_KEY: tf.train.Feature(
                        int64_list=tf.train.Int64List(value=row.tolist())
                    )
                }
            )
        ).SerializeToString()
        for row in np.asarray(pixels, np.int64)
    ]


def pick_probabilities(outputs: dict[str, tf.Tensor]) -> tf.Tensor:
    """The probabilities among a signature's outputs.

    `probabilities` when the signature names it; else its one output (a
    Keras model's unnamed output is `output_0`).

    Raises:
      ValueError: several outputs, none named `probabilities`.
    """
    if features.PROBABILITIES_OUTPUT in outputs:
        return outputs[features.PROBABILITIES_OUTPUT]
    if len(outputs) == 1:
        return next(iter(outputs.values()))
    raise ValueError(
        f"the {features.SIGNATURE_NAME} signature returns {sorted(outputs)}, "
        f"none named {features.PROBABILITIES_OUTPUT!r}"
    )


def load_saved_model(release_dir: str) -> Predictor:
    """The release's `serving_default` signature as a predictor."""
    signature = tf.saved_model.load(release_dir).signatures[features.SIGNATURE_NAME]

    def predict(pixels: np.ndarray) -> np.ndarray:
        examples = tf.constant(encode_examples(pixels))
        outputs = signature(**{features.SIGNATURE_INPUT: examples})
        return pick_probabilities(outputs).numpy()

    return predict


def load_tflite(release_dir: str) -> Predictor:
    """The release's TFLite model as a predictor.

    Raises:
      ModelNotFoundError: the release has no `assets.extra/model.tflite`.
    """
    path = tflite_path(release_dir)
    if not tf.io.gfile.exists(path):
        raise ModelNotFoundError(
            f"release {release_dir} has no TFLite model ({files.TFLITE_FILE}); "
            "leave out --tflite to use its SavedModel"
        )
    interpreter = tf.lite.Interpreter(model_path=path)
    inputs = interpreter.get_input_details()
    image_input = next(
        (detail for detail in inputs if features.IMAGE_KEY in detail["name"]), inputs[0]
    )
    output_index = interpreter.get_output_details()[0]["index"]

    def predict(pixels: np.ndarray) -> np.ndarray:
        interpreter.resize_tensor_input(image_input["index"], [len(pixels), features.NUM_PIXELS])
        interpreter.allocate_tensors()
        interpreter.set_tensor(image_input["index"], np.asarray(pixels, image_input["dtype"]))
        interpreter.invoke()
        return interpreter.get_tensor(output_index).copy()

    return predict


def load_predictor(release_dir: str, use_tflite: bool = False) -> Predictor:
    """The release's model (SavedModel, or TFLite with `use_tflite`), batched.

    Returns:
      A predictor that takes any number of images and calls the model in
      batches of BATCH_SIZE.

    Raises:
      ModelNotFoundError: `use_tflite` and the release has no TFLite model.
      ModelLoadError: the model file is corrupt or has no `serving_default`.
    """
    try:
        model = load_tflite(release_dir) if use_tflite else load_saved_model(release_dir)
    except (OSError, ValueError, KeyError, tf.errors.OpError) as error:
        kind = "TFLite model" if use_tflite else "SavedModel"
        raise ModelLoadError(f"cannot load the {kind} of release {release_dir}: {error}") from error

    def predict(pixels: np.ndarray) -> np.ndarray:
        batches = [
            model(pixels[start : start + BATCH_SIZE]) for start in range(0, len(pixels), BATCH_SIZE)
        ]
        return np.concatenate(batches).astype(np.float64)

    return predict
