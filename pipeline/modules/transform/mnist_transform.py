"""tf.Transform module: the preprocessing shared by training and serving.

Transform bakes `preprocessing_fn` into the transform graph, which the Trainer
attaches to the exported model, so serving applies exactly this scaling to
raw tf.Examples.
"""

import tensorflow as tf

from contract import features


def scale_pixels(image: tf.Tensor) -> tf.Tensor:
    """Maps int pixels 0..255 to float32 in [0, 1]; out-of-range pixels are clipped.

    Training data never leaves 0..255 (the schema gate stops it), but serving
    takes what clients send: a pixel of 300 (or -5) is read as 255 (or 0), so
    the model never sees an input outside what it was trained on.
    """
    pixels = tf.cast(image, tf.float32)
    return tf.clip_by_value(pixels, 0.0, float(features.MAX_PIXEL_VALUE)) / float(
        features.MAX_PIXEL_VALUE
    )


def preprocessing_fn(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """tf.Transform callback: raw features -> model features.

    Args:
      inputs: Raw features parsed with the curated schema.

    Returns:
      `image_xf` (float32 [batch, 784] in [0, 1]) and `label_xf` (the label,
      unchanged).
    """
    return {
        features.transformed_name(features.IMAGE_KEY): scale_pixels(inputs[features.IMAGE_KEY]),
        features.transformed_name(features.LABEL_KEY): inputs[features.LABEL_KEY],
    }
