"""What a released model expects and returns, as seen from outside the pipeline.

These mirror `pipeline.features` (the pipeline's single source of feature
names); `serving/` keeps its own copy because dependencies point down and a
serving client must not need the pipeline package. A test
(`tests/serving/test_predict.py`) fails if the two drift apart.
"""

IMAGE_KEY = "image"
"""The tf.Example feature the serving signature parses: 784 int64 values 0..255."""

IMAGE_SIDE = 28
"""MNIST images are IMAGE_SIDE x IMAGE_SIDE, row-major, white digit on black."""

NUM_PIXELS = IMAGE_SIDE * IMAGE_SIDE
MAX_PIXEL_VALUE = 255
NUM_CLASSES = 10

SIGNATURE_NAME = "serving_default"
SIGNATURE_INPUT = "examples"
"""The signature's one input: a batch of serialized tf.Examples."""

PROBABILITIES_OUTPUT = "probabilities"
"""The signature's output name once the Trainer names it; until then its one
output is Keras's default `output_0`, which the predictor falls back to."""

TFLITE_MODEL_PATH = "assets.extra/model.tflite"
"""Where a release keeps its TFLite model (relative to the release directory):
one int64 [N, 784] input of raw pixels, one float [N, 10] probabilities output."""
