"""Serving figures for a pushed model, measured in a fresh process.

    python benchmarks/serving_latency.py MODEL_DIR [--requests N]

Loads the pushed SavedModel and times its `serving_default` signature on
serialized raw tf.Examples (parse + Transform graph + model), against calling
the same Keras model directly on already-scaled arrays. Prints one JSON line.
"""

import argparse
import json
import time

import numpy as np
import tensorflow as tf

from components import example_export
from contract import features

BATCH = 256


def _timings(call, requests: int) -> list[float]:
    call()  # warm-up: traces and allocates
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.RandomState(0)
    digits = example_export.DigitArrays(
        rng.randint(0, 256, size=(BATCH, features.NUM_PIXELS)).astype(np.int64),
        np.zeros(BATCH, np.int64),
    )
    examples = tf.constant(example_export.encode_examples(digits, features.IMAGE_KEY, None))
    scaled = {features.transformed_name(features.IMAGE_KEY): digits.images / 255.0}

    load_started = time.perf_counter()
    serving = tf.saved_model.load(args.model_dir).signatures["serving_default"]
    load_s = time.perf_counter() - load_started
    keras_model = tf.keras.models.load_model(args.model_dir)
    direct = tf.function(keras_model)
    one_scaled = {k: tf.constant(v[:1], tf.float32) for k, v in scaled.items()}
    all_scaled = {k: tf.constant(v, tf.float32) for k, v in scaled.items()}

    serving_one = _timings(lambda: serving(examples=examples[:1]), args.requests)
    direct_one = _timings(lambda: direct(one_scaled), args.requests)
    serving_batch = _timings(lambda: serving(examples=examples), args.requests // 3)
    direct_batch = _timings(lambda: direct(all_scaled), args.requests // 3)
    ms = 1000.0
    print(
        json.dumps(
            {
                "load_s": round(load_s, 2),
                "serving_p50_ms": round(np.percentile(serving_one, 50) * ms, 3),
                "serving_p95_ms": round(np.percentile(serving_one, 95) * ms, 3),
                "direct_p50_ms": round(np.percentile(direct_one, 50) * ms, 3),
                "direct_p95_ms": round(np.percentile(direct_one, 95) * ms, 3),
                "serving_batch256_per_s": round(BATCH / np.median(serving_batch)),
                "direct_batch256_per_s": round(BATCH / np.median(direct_batch)),
            }
        )
    )


if __name__ == "__main__":
    main()
