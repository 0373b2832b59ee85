"""ServingCheck: the candidate is served in a fresh process; a broken one is not blessed.

The probe really runs (components/serving_probe.py in `python -I`) against
tiny real SavedModels built here: one that serves like the pipeline's model,
and deliberately broken candidates (wrong output shape, unnormalised
output), named as such. The Pusher then refuses what the check refused.
"""

import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import path_utils, proto_utils

from components import release_pusher, serving_check
from contract import files, releases


class _Served(tf.Module):
    """serving_default on serialized tf.Examples with `image` (784 int64 pixels)."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.weights = tf.Variable(tf.random.stateless_normal([784, 10], seed=[1, 2]) * 0.01)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(self, examples):
        spec = {"image": tf.io.FixedLenFeature([784], tf.int64)}
        pixels = tf.cast(tf.io.parse_example(examples, spec)["image"], tf.float32) / 255.0
        logits = tf.matmul(pixels, self.weights)
        if self.kind == "broken_shape":
            return {"probabilities": tf.nn.softmax(logits[:, :3])}
        if self.kind == "broken_unnormalised":
            return {"probabilities": logits}
        return {"probabilities": tf.nn.softmax(logits)}


def _saved_model(path, kind: str) -> str:
    module = _Served(kind)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return str(path)


def _canary(count: int = 20) -> tuple[list[bytes], list[int]]:
    rng = np.random.default_rng(0)
    records, labels = [], []
    for _ in range(count):
        pixels = rng.integers(0, 256, 784).tolist()
        feature = tf.train.Feature(int64_list=tf.train.Int64List(value=pixels))
        example = tf.train.Example(features=tf.train.Features(feature={"image": feature}))
        records.append(example.SerializeToString())
        labels.append(int(rng.integers(0, 10)))
    return records, labels


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """The probe's result for a serving model and two deliberately broken ones."""
    root = tmp_path_factory.mktemp("probe")
    records, labels = _canary()
    results = {}
    for kind in ("serving", "broken_shape", "broken_unnormalised"):
        model_dir = _saved_model(root / kind / "model", kind)
        results[kind] = serving_check.run_probe(model_dir, records, str(root / kind / "work"))
    return results, labels


def test_a_serving_model_answers_and_survives_malformed_requests(probed):
    results, labels = probed
    result = results["serving"]
    assert result["canary_shape"] == [len(labels), 10]
    assert result["max_row_sum_error"] < 1e-4
    assert result["answers_after_malformed"] is True
    assert result["project_modules_loaded"] == []
    malformed = result["malformed"]
    assert set(malformed) == {
        "no_image",
        "783_pixels",
        "float_pixels",
        "pixel_300",
        "not_an_example",
        "empty_batch",
    }
    assert malformed["783_pixels"]["outcome"] == "error"
    assert "784" in malformed["783_pixels"]["message"]
    assert malformed["not_an_example"]["outcome"] == "error"
    assert malformed["empty_batch"] == {"outcome": "answer", "shapes": {"probabilities": [0, 10]}}
    for batch in ("batch_1", "batch_256"):
        assert 0 < result["latency"][batch]["p50_ms"] <= result["latency"][batch]["p99_ms"]
    assert serving_check.judge(result, labels, None, 0.02) == []


def test_a_deliberately_broken_shape_is_not_blessed(probed):
    results, labels = probed
    (problem,) = serving_check.judge(results["broken_shape"], labels, None, 0.02)
    assert f"output shape [{len(labels)}, 3], expected [{len(labels)}, 10]" in problem


def test_deliberately_unnormalised_output_is_not_blessed(probed):
    results, labels = probed
    (problem,) = serving_check.judge(results["broken_unnormalised"], labels, None, 0.02)
    assert "rows do not sum to 1" in problem


def test_canary_accuracy_far_from_the_evaluators_is_not_blessed(probed):
    results, labels = probed
    result = dict(results["serving"])
    result["canary_classes"] = [(label + 1) % 10 for label in labels]  # all wrong
    (problem,) = serving_check.judge(result, labels, 0.98, 0.02)
    assert "canary accuracy 0.0000 is not within" in problem


def test_a_gap_within_the_canarys_sampling_noise_passes(probed):
    results, labels = probed
    result = dict(results["serving"])
    result["canary_classes"] = list(labels)  # canary accuracy 1.0
    assert serving_check.judge(result, labels, 0.99, 0.02) == []
    result["canary_classes"] = [(label + 1) % 10 for label in labels]
    (problem,) = serving_check.judge(result, labels, 0.9, 0.02)
    allowed = serving_check.accuracy_allowance(0.9, len(labels), 0.02)
    assert f"is not within {allowed:.4f}" in problem and allowed > 0.02


def test_allowance_is_the_tolerance_unless_the_canary_is_too_noisy():
    assert serving_check.accuracy_allowance(1.0, 200, 0.02) == 0.02
    assert serving_check.accuracy_allowance(0.98, 20_000, 0.02) == 0.02
    assert serving_check.accuracy_allowance(0.98, 200, 0.02) == pytest.approx(0.0326, abs=1e-3)


def test_a_model_that_does_not_load_is_not_blessed(tmp_path):
    broken = tmp_path / "broken_model"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"deliberately broken: not a SavedModel")
    records, labels = _canary(3)
    result = serving_check.run_probe(str(broken), records, str(tmp_path / "work"))
    (problem,) = serving_check.judge(result, labels, None, 0.02)
    assert "did not load or answer in a fresh process" in problem


def test_warmup_file_holds_prediction_logs_of_canary_requests(tmp_path):
    records, _ = _canary(8)
    path = serving_check.write_warmup(str(tmp_path), records)
    assert path == str(tmp_path / "assets.extra" / "tf_serving_warmup_requests")
    logs = [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(path)
    ]
    assert len(logs) == serving_check.WARMUP_REQUESTS
    request = logs[0].predict_log.request
    assert request.model_spec.signature_name == "serving_default"
    assert tf.make_ndarray(request.inputs["examples"]).tolist() == [records[0]]


def _push_after_check(tmp_path, infra) -> tuple[standard_artifacts.PushedModel, str]:
    """Runs ReleasePusher as the pipeline wires it: the Evaluator's blessing and `infra`.

    No `model` input: as TFX's Pusher, it then pushes the serving check's copy.
    """
    blessing = standard_artifacts.ModelBlessing()
    blessing.set_int_custom_property("blessed", 1)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    serving = str(tmp_path / "serving")
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving)
    )
    release_pusher.ReleasePusherExecutor().Do(
        {"model_blessing": [blessing], "infra_blessing": [infra]},
        {"pushed_model": [pushed]},
        {"push_destination": proto_utils.proto_to_json(destination)},
    )
    return pushed, serving


def test_pusher_refuses_a_deliberately_broken_candidate_the_check_refused(tmp_path):
    infra = standard_artifacts.InfraBlessing()
    infra.uri = str(tmp_path / "infra")
    infra.set_int_custom_property("blessed", 0)
    infra.set_string_custom_property("reason", "output shape [20, 3], expected [20, 10]")
    pushed, serving = _push_after_check(tmp_path, infra)
    assert pushed.get_int_custom_property("pushed") == 0
    assert "serving check: output shape [20, 3]" in pushed.get_string_custom_property("reason")
    assert releases.list_releases(serving) == []


def test_pusher_releases_the_checked_copy_with_its_warmup_file(tmp_path):
    infra = standard_artifacts.InfraBlessing()
    infra.uri = str(tmp_path / "infra")
    stamped = path_utils.stamped_model_path(infra.uri)
    tf.io.gfile.makedirs(os.path.dirname(stamped))
    _saved_model(stamped, "serving")
    records, _ = _canary(5)
    serving_check.write_warmup(stamped, records)
    infra.set_int_custom_property("blessed", 1)
    infra.set_int_custom_property("has_model", 1)
    _, serving = _push_after_check(tmp_path, infra)
    (released,) = releases.list_releases(serving)
    assert os.path.exists(os.path.join(released.path, files.WARMUP_FILE))
    manifest = releases.read_manifest(released.path)
    assert manifest["model_fingerprint"] == releases.model_fingerprint(stamped)
    assert releases.model_fingerprint(released.path) == releases.model_fingerprint(stamped)
