"""Trainer time-to-accuracy: TrainerConfig variants side by side, one process.

    python benchmarks/trainer_sweep.py [--variants NAME ...] [--seeds 42 ...]

Loads MNIST once (TFDS prepared from the archives, the pipeline's own
hold-out split), then trains each variant with the Trainer's own helpers
(`build_keras_model`, `make_shift_augmentation`, `training_callbacks`) on
in-memory arrays: the Trainer's computation without TFX around it. Prints
one line per (variant, seed): seconds, epochs run, seconds per epoch, test
accuracy. benchmarks/README.md records what it showed.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import tensorflow as tf  # noqa: E402

from components import example_export, tfds_mnist  # noqa: E402
from pipeline import config, features  # noqa: E402
from pipeline.modules.trainer import mnist_trainer  # noqa: E402

_BEFORE = dict(
    batch_size=128,
    learning_rate=1e-3,
    dropout_rate=0.1,
    max_epochs=60,
    early_stopping_patience=10,
    lr_schedule="plateau",
    warmup_epochs=0,
)
VARIANTS: dict[str, dict] = {
    # Issue 12's starting point (TrainerConfig before the change) and today's.
    "before": _BEFORE,
    "current": {},
    "current_no_shift": {"augment_max_shift": 0.0},
}


def _dataset(digits: example_export.DigitArrays) -> tf.data.Dataset:
    images = {features.transformed_name(features.IMAGE_KEY): digits.images / 255.0}
    return tf.data.Dataset.from_tensor_slices((images, digits.labels))


def train_variant(trainer: config.TrainerConfig, data: dict, scratch: str) -> dict:
    """Trains one config the way run_fn does; returns its figures."""
    tf.keras.utils.set_random_seed(trainer.seed)
    started = time.monotonic()
    train = _dataset(data["train"]).cache().shuffle(trainer.shuffle_buffer, seed=trainer.seed)
    train = train.batch(trainer.batch_size)
    if trainer.augment_max_shift:
        augment = mnist_trainer.make_shift_augmentation(trainer.augment_max_shift, trainer.seed)
        train = train.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    model = mnist_trainer.build_keras_model(
        trainer.hidden_units, trainer.learning_rate, trainer.dropout_rate
    )
    callbacks = mnist_trainer.training_callbacks(trainer, os.path.join(scratch, "logs"))
    history = model.fit(
        train.prefetch(tf.data.AUTOTUNE),
        validation_data=_dataset(data["eval"]).cache().batch(1024),
        epochs=trainer.max_epochs,
        callbacks=callbacks,
        verbose=0,
    )
    seconds = time.monotonic() - started
    _, accuracy = model.evaluate(_dataset(data["test"]).batch(1024), verbose=0)
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
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[42])
    parser.add_argument("--set", action="append", default=[], help="extra variant as JSON")
    args = parser.parse_args()
    variants = {name: VARIANTS[name] for name in args.variants}
    for index, extra in enumerate(args.set):
        variants[f"set{index}"] = json.loads(extra)
    data_config = config.DataConfig()
    with tempfile.TemporaryDirectory() as scratch:
        builder = tfds_mnist.prepare_mnist(args.mnist_dir, scratch)
        train_all = example_export.load_tfds_split(builder, "train")
        train_idx, eval_idx = example_export.holdout_split(
            len(train_all), data_config.eval_holdout_size, data_config.split_seed
        )
        data = {
            "train": train_all.take(train_idx),
            "eval": train_all.take(eval_idx),
            "test": example_export.load_tfds_split(builder, "test"),
        }
        for name, overrides in variants.items():
            for seed in args.seeds:
                trainer = dataclasses.replace(config.TrainerConfig(), seed=seed, **overrides)
                figures = train_variant(trainer, data, scratch)
                print(
                    json.dumps({"variant": name, "seed": seed, **overrides, **figures}), flush=True
                )


if __name__ == "__main__":
    main()
