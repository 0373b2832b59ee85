"""A release is serving-ready: checked in a fresh process, with warmup and a TFLite model.

One small real run (the pipeline on a slice of MNIST); then what a model
server and a phone would get from the release directory.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import local_runner
from components import example_export, tfds_mnist
from contract import features, files, releases
from reporting import run_summary

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def released(tmp_path_factory, run_small_pipeline):
    output_dir = tmp_path_factory.mktemp("serving_release")
    assert run_small_pipeline(output_dir) == 0
    layout = local_runner.OutputLayout(str(output_dir))
    (newest,) = releases.list_releases(layout.serving_model_dir)
    return layout, newest


@pytest.fixture(scope="module")
def test_digits(tfds_data_dir, mnist_dir):
    builder = tfds_mnist.prepare_mnist(mnist_dir, tfds_data_dir)
    return example_export.load_tfds_split(builder, "test", limit=300)


def test_the_release_holds_both_models_and_the_warmup_file(released):
    _, newest = released
    extra = os.path.join(newest.path, "assets.extra")
    assert {"model.tflite", "model_dynamic_range.tflite", "tf_serving_warmup_requests"} <= set(
        os.listdir(extra)
    )
    manifest = releases.read_manifest(newest.path)
    sizes = manifest["tflite"]["bytes"]
    assert sizes["model_dynamic_range.tflite"] < sizes["model.tflite"] / 2
    # A TFLite input that TFMA cannot match to `image` gets defaults: chance accuracy.
    assert manifest["tflite"]["test_accuracy"] == pytest.approx(manifest["test_accuracy"], abs=0.01)
    assert manifest["serving_check"]["latency_batch_256_p99_ms"] > 0


def test_the_serving_check_recorded_its_figures(released):
    layout, _ = released
    summary = run_summary.latest_run_summary(layout.metadata_path, "mnist")
    check = summary.component("ServingCheck")
    assert check.state == "executed"
    properties = check.outputs["blessing"].custom_properties
    assert properties["blessed"].int_value == 1
    for batch in ("batch_1", "batch_256"):
        assert properties[f"latency_{batch}_p50_ms"].double_value > 0
    malformed = json.loads(properties["malformed_requests"].string_value)
    assert malformed["pixel_300"]["outcome"] == "answer", "out-of-range pixels are clipped"
    assert malformed["no_image"]["outcome"] == "error"
    tflite = summary.component("TFLiteEvaluator").outputs["blessing"]
    assert tflite.custom_properties["blessed"].int_value == 1


def test_serving_default_names_its_output_and_predict_gives_classes(released, test_digits):
    _, newest = released
    model = tf.saved_model.load(newest.path)
    examples = tf.constant(example_export.encode_examples(test_digits, features.IMAGE_KEY, None))
    served = model.signatures["serving_default"](examples=examples)
    assert list(served) == ["probabilities"]
    predicted = model.signatures["predict"](examples=examples)
    probabilities = served["probabilities"].numpy()
    np.testing.assert_array_equal(predicted["classes"].numpy(), probabilities.argmax(axis=1))


def test_tflite_and_saved_model_agree_on_real_digits(released, test_digits):
    _, newest = released
    interpreter = tf.lite.Interpreter(
        model_path=os.path.join(newest.path, "assets.extra", "model.tflite")
    )
    (detail,) = interpreter.get_input_details()
    assert detail["name"] == "serving_default_image:0" and detail["dtype"] == np.int64
    interpreter.resize_tensor_input(detail["index"], [len(test_digits.labels), 784])
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], test_digits.images.astype(np.int64))
    interpreter.invoke()
    lite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    model = tf.saved_model.load(newest.path)
    examples = tf.constant(example_export.encode_examples(test_digits, features.IMAGE_KEY, None))
    served = model.signatures["serving_default"](examples=examples)["probabilities"].numpy()
    np.testing.assert_allclose(lite, served, atol=1e-4)


def test_saved_model_cli_runs_the_release(released, test_digits):
    _, newest = released
    pixels = test_digits.images[0].tolist()
    command = [
        os.path.join(os.path.dirname(sys.executable), "saved_model_cli"),
        "run",
        "--dir",
        newest.path,
        "--tag_set",
        "serve",
        "--signature_def",
        "serving_default",
        "--input_examples",
        f"examples=[{{'image':{pixels}}}]",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Result for output key probabilities:" in result.stdout


def test_warmup_requests_answer(released):
    _, newest = released
    path = os.path.join(newest.path, files.WARMUP_FILE)
    model = tf.saved_model.load(newest.path)
    from tensorflow_serving.apis import prediction_log_pb2

    for record in tf.data.TFRecordDataset(path):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        examples = tf.constant(tf.make_ndarray(request.inputs["examples"]))
        answer = model.signatures["serving_default"](examples=examples)["probabilities"]
        assert answer.shape == (1, 10)


def test_the_release_reloads_as_keras_and_agrees_with_its_signature(released, test_digits):
    # The Trainer saves without Keras's per-layer traces (save_traces=False, to
    # skip their AutoGraph conversion): Keras must still rebuild the model from
    # its config, and the rebuilt model must be the one the signature serves.
    _, newest = released
    keras_model = tf.keras.models.load_model(newest.path)
    assert [layer.units for layer in keras_model.layers if hasattr(layer, "units")] == [50, 50, 10]
    scaled = test_digits.images.astype(np.float32) / features.MAX_PIXEL_VALUE
    direct = keras_model({features.transformed_name(features.IMAGE_KEY): scaled}).numpy()
    examples = tf.constant(example_export.encode_examples(test_digits, features.IMAGE_KEY, None))
    served = keras_model.signatures["serving_default"](examples=examples)["probabilities"].numpy()
    np.testing.assert_allclose(direct, served, atol=1e-5)
