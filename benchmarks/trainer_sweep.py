"""Trainer time-to-accuracy: TrainerConfig variants side by side, one process.

    python benchmarks/trainer_sweep.py [--variants NAME ...] [--seeds 42 ...]

Loads MNIST once (TFDS prepared from the archives, the pipeline's own
hold-out split), then trains each variant as `plain_keras.py` does, with the
Trainer's own helpers on in-memory arrays: the Trainer's computation without
TFX around it. Prints
one line per (variant, seed): seconds, epochs run, seconds per epoch, test
accuracy. benchmarks/README.md records what it showed.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import dataclasses
import json
import tempfile

import plain_keras

from components import tfds_mnist
from pipeline import config

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
    with tempfile.TemporaryDirectory() as scratch:
        builder = tfds_mnist.prepare_mnist(args.mnist_dir, scratch)
        splits = plain_keras.load_splits(builder, config.DataConfig())
        for name, overrides in variants.items():
            for seed in args.seeds:
                trainer = dataclasses.replace(config.TrainerConfig(), seed=seed, **overrides)
                figures = plain_keras.train_and_test(trainer, splits, scratch)
                print(
                    json.dumps({"variant": name, "seed": seed, **overrides, **figures}), flush=True
                )


if __name__ == "__main__":
    main()
