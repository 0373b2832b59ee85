"""The plain baseline: the same model trained by a plain Keras script, no TFX.

Like the seed blog post: MNIST from TFDS (prepared from the same archives),
scale by 1/255, shuffle, batch, the same dense model, optimizer, shift
augmentation and early stopping (built by the pipeline's own helpers and
TrainerConfig), then test accuracy. Prints one JSON line, so benchmarks can
compare it with the pipeline.

    python benchmarks/plain_keras.py [--mnist-dir DIR] [--tfds-data-dir DIR]
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import tensorflow as tf  # noqa: E402

from components import example_export, tfds_mnist  # noqa: E402
from pipeline import config, features  # noqa: E402
from pipeline.modules.trainer import mnist_trainer  # noqa: E402


def _dataset(digits: example_export.DigitArrays) -> tf.data.Dataset:
    images = {features.transformed_name(features.IMAGE_KEY): digits.images / 255.0}
    return tf.data.Dataset.from_tensor_slices((images, digits.labels))


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
    tf.keras.utils.set_random_seed(trainer.seed)
    with tempfile.TemporaryDirectory() as scratch:
        builder = tfds_mnist.prepare_mnist(args.mnist_dir, args.tfds_data_dir or scratch)
        train_all = example_export.load_tfds_split(builder, "train", args.train_limit)
        test = example_export.load_tfds_split(builder, "test", args.test_limit)
        train_idx, eval_idx = example_export.holdout_split(
            len(train_all), data.eval_holdout_size, data.split_seed
        )
        train = _dataset(train_all.take(train_idx)).shuffle(
            trainer.shuffle_buffer, seed=trainer.seed
        )
        augment = mnist_trainer.make_shift_augmentation(trainer.augment_max_shift, trainer.seed)
        model = mnist_trainer.build_keras_model(
            trainer.hidden_units, trainer.learning_rate, trainer.dropout_rate
        )
        history = model.fit(
            train.batch(trainer.batch_size).map(augment).prefetch(tf.data.AUTOTUNE),
            validation_data=_dataset(train_all.take(eval_idx)).batch(trainer.batch_size),
            epochs=trainer.max_epochs,
            callbacks=mnist_trainer.training_callbacks(trainer, os.path.join(scratch, "logs")),
            verbose=0,
        )
        _, test_accuracy = model.evaluate(_dataset(test).batch(1024), verbose=0)
    print(
        json.dumps(
            {
                "wall_s": round(time.monotonic() - started, 1),
                "test_accuracy": round(float(test_accuracy), 4),
                "epochs_run": len(history.epoch),
            }
        )
    )


if __name__ == "__main__":
    main()
