"""Feature names and shapes: the one contract shared by data, model and serving.

Every module that touches a feature imports its name from here, so the
ExampleGen, the schema, preprocessing_fn, run_fn and the serving signature
cannot drift apart.
"""

IMAGE_KEY = "image"
"""784 int64 pixel values in 0..255, row-major 28x28."""

LABEL_KEY = "label"
"""The digit, int64 in 0..9."""

IMAGE_HEIGHT = 28
IMAGE_WIDTH = 28
NUM_PIXELS = IMAGE_HEIGHT * IMAGE_WIDTH
MAX_PIXEL_VALUE = 255
NUM_CLASSES = 10


def transformed_name(key: str) -> str:
    """Returns the name tf.Transform gives a feature after preprocessing.

    Args:
      key: A raw feature name, e.g. IMAGE_KEY.

    Returns:
      The transformed feature's name, e.g. "image_xf".
    """
    return f"{key}_xf"
