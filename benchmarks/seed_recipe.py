"""The blog post's plain script: the baseline a user compares the pipeline with.

    python benchmarks/seed_recipe.py [--mnist-dir DIR] [--train-limit N] [--test-limit N]

Written the way the blog does it, on purpose without the project's helpers:
TFDS `mnist` prepared from the archives into a fresh data dir,
`as_supervised`, scale by 1/255, 10% of train held out for validation,
shuffle, batch 100, Flatten -> Dense(50) -> Dense(50) -> Dense(10), Adam,
sparse categorical cross-entropy, EarlyStopping(patience=2), at most 10
epochs, then test accuracy. Prints one JSON line (seconds, accuracy, epochs)
for benchmarks/benchmark.py. The archives are the ones TFDS would download;
`manual_dir` stands in for the network.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import json
import pathlib
import tempfile
import time

import tensorflow as tf
import tensorflow_datasets as tfds

DEFAULT_MNIST_DIR = pathlib.Path(__file__).resolve().parent.parent / "data" / "mnist"
BATCH_SIZE = 100
MAX_EPOCHS = 10
VALIDATION_SHARE = 0.1


def scale(image, label):
    return tf.cast(image, tf.float32) / 255.0, label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist-dir", default=str(DEFAULT_MNIST_DIR))
    parser.add_argument("--train-limit", type=int, default=0, help="first N train digits; 0=all")
    parser.add_argument("--test-limit", type=int, default=0, help="first N test digits; 0=all")
    parser.add_argument("--epochs", type=int, default=MAX_EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.monotonic()
    tf.keras.utils.set_random_seed(args.seed)
    with tempfile.TemporaryDirectory() as data_dir:
        builder = tfds.builder("mnist", data_dir=data_dir)
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=args.mnist_dir)
        )
        train_split = f"train[:{args.train_limit}]" if args.train_limit else "train"
        test_split = f"test[:{args.test_limit}]" if args.test_limit else "test"
        mnist_train = builder.as_dataset(split=train_split, as_supervised=True)
        mnist_test = builder.as_dataset(split=test_split, as_supervised=True)
        num_train = int(mnist_train.cardinality())
        num_validation = int(VALIDATION_SHARE * num_train)

        scaled_train_and_validation = mnist_train.map(scale)
        scaled_test = mnist_test.map(scale)
        shuffled = scaled_train_and_validation.shuffle(10_000, seed=args.seed)
        validation = shuffled.take(num_validation).batch(num_validation)
        train = shuffled.skip(num_validation).batch(BATCH_SIZE)
        test = scaled_test.batch(10_000)

        model = tf.keras.Sequential(
            [
                tf.keras.layers.Flatten(input_shape=(28, 28, 1)),
                tf.keras.layers.Dense(50, activation="relu"),
                tf.keras.layers.Dense(50, activation="relu"),
                tf.keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(
            optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        history = model.fit(
            train,
            epochs=args.epochs,
            callbacks=[tf.keras.callbacks.EarlyStopping(patience=2)],
            validation_data=validation,
            verbose=0,
        )
        _, test_accuracy = model.evaluate(test, verbose=0)
    print(
        json.dumps(
            {
                "seconds": round(time.monotonic() - started, 1),
                "test_accuracy": round(float(test_accuracy), 4),
                "epochs_run": len(history.epoch),
            }
        )
    )


if __name__ == "__main__":
    main()
