"""Where a Trainer epoch's seconds go: input pipeline, shift augmentation, training step.

    python benchmarks/epoch_profile.py [--mnist-dir DIR]

On the 55,000 training digits held in memory (the Trainer caches its
transformed examples the same way), for batch 128 (the recipe before issue
12) and 1024 (now), with and without the random-shift augmentation: seconds
per epoch of (a) iterating the tf.data pipeline alone and (b) model.fit, after
a warm-up epoch (the first epoch in a process also traces the train and
test functions and fills the cache; benchmarks/trainer_phases.py times that
inside run_fn). Prints one line per figure.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import tempfile
import time

import numpy as np
import plain_keras
import tensorflow as tf

from components import tfds_mnist
from contract import features
from pipeline import config
from pipeline.modules.trainer import mnist_trainer


def make_dataset(images, labels, batch_size: int, shift: float) -> tf.data.Dataset:
    image_xf = features.transformed_name(features.IMAGE_KEY)
    dataset = tf.data.Dataset.from_tensor_slices(({image_xf: images}, labels)).cache()
    dataset = dataset.shuffle(10_000, seed=1).batch(batch_size)
    if shift:
        augment = mnist_trainer.make_shift_augmentation(shift, 1)
        dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def seconds_per_epoch(run_epoch, epochs: int = 2) -> float:
    run_epoch()  # warm-up: tracing, cache fill
    started = time.monotonic()
    for _ in range(epochs):
        run_epoch()
    return (time.monotonic() - started) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist-dir", default=config.DEFAULT_MNIST_DIR)
    args = parser.parse_args()
    shift = config.TrainerConfig().augment_max_shift
    with tempfile.TemporaryDirectory() as scratch:
        builder = tfds_mnist.prepare_mnist(args.mnist_dir, scratch)
        digits = plain_keras.load_splits(builder, config.DataConfig())["train"]
    images = (digits.images / 255.0).astype(np.float32)
    for batch_size in (128, 1024):
        for augment in (0.0, shift):
            dataset = make_dataset(images, digits.labels, batch_size, augment)

            def iterate(dataset=dataset):
                for _ in dataset:
                    pass

            model = mnist_trainer.build_keras_model((50, 50), 1e-3)

            def fit(model=model, dataset=dataset):
                model.fit(dataset, epochs=1, verbose=0)

            print(
                f"batch {batch_size:>4}, shift {'on ' if augment else 'off'}: "
                f"input pipeline alone {seconds_per_epoch(iterate):.2f} s/epoch, "
                f"model.fit {seconds_per_epoch(fit):.2f} s/epoch",
                flush=True,
            )


if __name__ == "__main__":
    main()
