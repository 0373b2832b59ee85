"""Calls a SavedModel the way a model server does, in a fresh process with only TensorFlow.

    python -I components/serving_probe.py --model-dir DIR --canary FILE --out FILE.json

Run by ServingCheck (components/serving_check.py) as a subprocess with `-I`
(no script directory, no PYTHONPATH on sys.path): it imports TensorFlow and
numpy only, loads the model with the `serve` tag, and calls
`serving_default` with serialized tf.Examples:
- the canary requests (a TFRecord file of label-less test examples):
  output names and shapes, row sums, predicted classes;
- latency of batch 1 and batch 256 (p50 and p99 over repeated calls);
- malformed requests, each in its own try: its outcome is recorded, an
  error must not end the process;
- the canary again, to show the process still answers.
The result is one JSON file; the exit code is 0 if the script ran to the end.
Every path goes through `tf.io.gfile`, so the model, the canary and the result
may live on an object store (`gs://`; `s3://` with tensorflow-io installed).
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import tensorflow as tf

_LATENCY_CALLS = {1: 50, 256: 10}


def _example(image_feature: tf.train.Feature | None) -> bytes:
    features = {} if image_feature is None else {"image": image_feature}
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def malformed_requests(pixels: list[int]) -> dict[str, list[bytes]]:
    """Requests a client may send by mistake, built from one good digit's pixels."""
    too_bright = list(pixels)
    too_bright[400] = 300
    return {
        "no_image": [_example(None)],
        "783_pixels": [
            _example(tf.train.Feature(int64_list=tf.train.Int64List(value=pixels[:783])))
        ],
        "float_pixels": [
            _example(
                tf.train.Feature(float_list=tf.train.FloatList(value=[float(p) for p in pixels]))
            )
        ],
        "pixel_300": [_example(tf.train.Feature(int64_list=tf.train.Int64List(value=too_bright)))],
        "not_an_example": [b"these bytes are not a tf.Example"],
        "empty_batch": [],
    }


def _outputs(signature, records: list[bytes]) -> dict[str, np.ndarray]:
    batch = tf.constant(records, dtype=tf.string, shape=[len(records)])
    return {name: value.numpy() for name, value in signature(examples=batch).items()}


def _percentiles(signature, records: list[bytes], batch_size: int) -> dict[str, float]:
    batch = (records * (batch_size // len(records) + 1))[:batch_size]
    _outputs(signature, batch)  # the first call traces; servers warm up for it
    seconds = []
    for _ in range(_LATENCY_CALLS[batch_size]):
        started = time.perf_counter()
        _outputs(signature, batch)
        seconds.append(time.perf_counter() - started)
    return {
        "p50_ms": float(np.percentile(seconds, 50) * 1000),
        "p99_ms": float(np.percentile(seconds, 99) * 1000),
    }


def _reason(error: Exception) -> str:
    """The line of a TensorFlow error that says what was wrong with the request."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if any(marker in line for marker in ("Key:", "Could not parse", "Feature:", "Name:")):
            return line[:300]
    return (lines[-1] if lines else type(error).__name__)[:300]


def _outcome(signature, records: list[bytes]) -> dict:
    try:
        outputs = _outputs(signature, records)
    except Exception as error:  # noqa: BLE001 - the outcome is the record
        return {"outcome": "error", "error": type(error).__name__, "message": _reason(error)}
    answer = {name: list(value.shape) for name, value in outputs.items()}
    probabilities = outputs.get("probabilities")
    result = {"outcome": "answer", "shapes": answer}
    if probabilities is not None and len(probabilities):
        result["classes"] = probabilities.argmax(axis=1).tolist()
    return result


def probe(model_dir: str, canary_file: str) -> dict:
    """Everything ServingCheck needs to judge the model, as plain JSON values."""
    records = [record.numpy() for record in tf.data.TFRecordDataset(canary_file)]
    model = tf.saved_model.load(model_dir, tags=["serve"])
    signature = model.signatures["serving_default"]
    outputs = _outputs(signature, records)
    probabilities = (
        next(iter(outputs.values())) if len(outputs) == 1 else outputs.get("probabilities")
    )
    first = tf.train.Example.FromString(records[0])
    pixels = list(first.features.feature["image"].int64_list.value)
    result = {
        "output_names": sorted(outputs),
        "canary_shape": list(probabilities.shape),
        "max_row_sum_error": float(np.abs(probabilities.sum(axis=1) - 1.0).max()),
        "canary_classes": probabilities.argmax(axis=1).tolist(),
        "latency": {
            f"batch_{size}": _percentiles(signature, records, size) for size in _LATENCY_CALLS
        },
        "malformed": {
            name: _outcome(signature, requests)
            for name, requests in malformed_requests(pixels).items()
        },
    }
    again = _outputs(signature, records)
    result["answers_after_malformed"] = bool(
        np.array_equal(next(iter(again.values())).argmax(axis=1), probabilities.argmax(axis=1))
    )
    result["project_modules_loaded"] = sorted(
        name for name in sys.modules if name.split(".")[0] in ("components", "pipeline")
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--canary", required=True, help="TFRecord file of serialized tf.Examples")
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args()
    if any(path.startswith("s3://") for path in (args.model_dir, args.canary, args.out)):
        import tensorflow_io  # noqa: F401  (registers s3:// with tf.io.gfile; TF 2.16 has none)
    result = probe(args.model_dir, args.canary)
    with tf.io.gfile.GFile(args.out, "w") as out:
        json.dump(result, out, indent=2, sort_keys=True)
    # The result is written and closed; skip interpreter teardown, where
    # tensorflow-io's filesystem aborts with "pure virtual method called".
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
