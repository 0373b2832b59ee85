"""Feature names and shapes, split names and the serving signatures: one contract.

Every module that touches a feature imports its name from here, so the
ExampleGen, the schema, preprocessing_fn, run_fn, the serving signature, the
serving client and the report cannot drift apart.
"""

IMAGE_KEY = "image"
"""784 int64 pixel values in 0..255, row-major 28x28, white digit on black."""

LABEL_KEY = "label"
"""The digit, int64 in 0..9."""

IMAGE_HEIGHT = 28
IMAGE_WIDTH = 28
IMAGE_SIDE = IMAGE_HEIGHT
"""MNIST images are square."""
NUM_PIXELS = IMAGE_HEIGHT * IMAGE_WIDTH
MAX_PIXEL_VALUE = 255
NUM_CLASSES = 10

SPLIT_TRAIN = "train"
SPLIT_EVAL = "eval"
SPLIT_TEST = "test"
SPLITS = (SPLIT_TRAIN, SPLIT_EVAL, SPLIT_TEST)
"""The Examples artifact's splits, in the order MnistExampleGen writes them."""
SPLIT_SPAN_TRAIN = "span_train"
"""With spans: the window's training examples (also in `train`), one file per span:
what the drift and label gates read."""
SPLIT_SPAN_TEST = "span_test"
"""With spans: the window's held-out new-data test slice, one file per span."""
SPAN_SPLITS = (SPLIT_SPAN_TRAIN, SPLIT_SPAN_TEST)

SIGNATURE_NAME = "serving_default"
"""Takes serialized tf.Examples (`examples`), returns `probabilities` [N, 10]."""
SIGNATURE_INPUT = "examples"
"""The signatures' one input: a batch of serialized tf.Examples."""
PREDICT_SIGNATURE = "predict"
"""Takes serialized tf.Examples, returns `probabilities` and `classes`."""
TRANSFORM_SIGNATURE = "transform_features"
"""What the Evaluator calls to apply the Transform graph."""

PROBABILITIES = "probabilities"
CLASSES = "classes"
PROBABILITIES_OUTPUT = PROBABILITIES
"""The serving signature's output; a model exported without a name returns
Keras's default `output_0`, which the serving client falls back to."""


def transformed_name(key: str) -> str:
    """Returns the name tf.Transform gives a feature after preprocessing.

    Args:
      key: A raw feature name, e.g. IMAGE_KEY.

    Returns:
      The transformed feature's name, e.g. "image_xf".
    """
    return f"{key}_xf"
