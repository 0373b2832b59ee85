"""The plain baseline: the same model trained by a plain Keras script, no TFX.

Like the seed blog post: MNIST from TFDS (prepared from the same archives),
scale by 1/255, shuffle, batch, the same dense model, optimizer, shift
augmentation and early stopping (built by the pipeline's own helpers and
TrainerConfig), then test accuracy. Prints one JSON line, so benchmarks can
compare it with the pipeline.

    python benchmarks/plain_keras.py [--mnist-dir DIR] [--tfds-data-dir DIR]
"""

import argparse
import json
import os
import tempfile
import time

import tensorflow as tf

from components import example_export, tfds_mnist
from contract import features
from pipeline import config
from pipeline.modules.trainer import mnist_trainer


def _dataset(digits: example_export.DigitArrays) -> tf.data.Dataset:
    images = {features.transformed_name(features.IMAGE_KEY): digits.images / 255.0}
    return tf.data.Dataset.from_tensor_slices((images, digits.labels))


def load_splits(
    builder, data: config.DataConfig, train_limit: int = 0, test_limit: int = 0
) -> dict[str, example_export.DigitArrays]:
    """train / eval / test as the pipeline cuts them (the same hold-out), in memory."""
    train_all = example_export.load_tfds_split(builder, "train", train_limit)
    train_idx, eval_idx = example_export.holdout_split(
        len(train_all), data.eval_holdout_size, data.split_seed
    )
    return {
        "train": train_all.take(train_idx),
        "eval": train_all.take(eval_idx),
        "test": example_export.load_tfds_split(builder, "test", test_limit),
    }


def train_and_test(
    trainer: config.TrainerConfig, splits: dict[str, example_export.DigitArrays], scratch: str
) -> dict:
    """Trains one config the way run_fn does (the Trainer's own helpers), then tests it.

    Returns:
      {"seconds" (training), "epochs_run", "s_per_epoch", "test_accuracy"}.
    """
    tf.keras.utils.set_random_seed(trainer.seed)
    started = time.monotonic()
    train = _dataset(splits["train"]).cache().shuffle(trainer.shuffle_buffer, seed=trainer.seed)
    train = train.batch(trainer.batch_size)
    if trainer.augment_max_shift:
        augment = mnist_trainer.make_shift_augmentation(trainer.augment_max_shift, trainer.seed)
        train = train.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    model = mnist_trainer.build_keras_model(
        trainer.hidden_units, trainer.learning_rate, trainer.dropout_rate
    )
    history = model.fit(
        train.prefetch(tf.data.AUTOTUNE),
        validation_data=_dataset(splits["eval"]).cache().batch(1024),
        epochs=trainer.max_epochs,
        callbacks=mnist_trainer.training_callbacks(trainer, os.path.join(scratch, "logs")),
        verbose=0,
    )
    seconds = time.monotonic() - started
    _, accuracy = model.evaluate(_dataset(splits["test"]).batch(1024), verbose=0)
    epochs = len(history.epoch)
    return {
        "seconds": round(seconds, 1),
        "epochs_run": epochs,
        "s_per_epoch": round(seconds / epochs, 2),
        "test_accuracy": round(float(accuracy), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist-dir", default=config.DEFAULT_MNIST_DIR)
    parser.add_argument("--tfds-data-dir", default=None, help="default: a fresh temp dir")
    parser.add_argument("--train-limit", type=int, default=0, help="first N train digits; 0=all")
    parser.add_argument("--test-limit", type=int, default=0, help="first N test digits; 0=all")
    parser.add_argument("--eval-holdout", type=int, default=config.DataConfig().eval_holdout_size)
    parser.add_argument("--epochs", type=int, default=config.TrainerConfig().max_epochs)
    args = parser.parse_args()
    started = time.monotonic()
    trainer = config.TrainerConfig(max_epochs=args.epochs)
    data = config.DataConfig(eval_holdout_size=args.eval_holdout)
    with tempfile.TemporaryDirectory() as scratch:
        builder = tfds_mnist.prepare_mnist(args.mnist_dir, args.tfds_data_dir or scratch)
        splits = load_splits(builder, data, args.train_limit, args.test_limit)
        figures = train_and_test(trainer, splits, scratch)
    print(
        json.dumps(
            {
                "wall_s": round(time.monotonic() - started, 1),
                "test_accuracy": figures["test_accuracy"],
                "epochs_run": figures["epochs_run"],
            }
        )
    )


if __name__ == "__main__":
    main()
