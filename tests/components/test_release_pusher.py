"""ReleasePusher's executor: a blessed model is released once, whole, with a manifest."""

import json
import os
import signal
import time

import pytest
from tfx.types import standard_artifacts
from tfx.utils import io_utils, path_utils

from components import evaluation_results, faults, release, release_pusher
from reporting import model_card
from tests.components.fake_saved_model import write_fake_saved_model


@pytest.fixture(autouse=True)
def no_fault_injection(monkeypatch):
    monkeypatch.delenv(faults.FAULT_ENV, raising=False)


@pytest.fixture
def serving_dir(tmp_path):
    return str(tmp_path / "serving")


def trained_model(tmp_path, name="model", variables=b"weights-1") -> standard_artifacts.Model:
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "trainer" / name)
    write_fake_saved_model(path_utils.serving_model_path(model.uri), variables)
    return model


def push(tmp_path, serving_dir, model, blessed=1, **extra_inputs):
    """Runs the executor once with a fresh PushedModel; returns it."""
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "evaluator" / "blessing")
    blessing.set_int_custom_property("blessed", blessed)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pusher" / f"pushed-{time.monotonic_ns()}")
    input_dict = {"model": [model], "model_blessing": [blessing]}
    input_dict.update({key: [artifact] for key, artifact in extra_inputs.items()})
    release_pusher.ReleasePusherExecutor().Do(
        input_dict, {"pushed_model": [pushed]}, {"serving_model_dir": serving_dir}
    )
    return pushed


def test_blessed_push_creates_one_whole_version_with_its_manifest(tmp_path, serving_dir):
    model = trained_model(tmp_path)
    pushed = push(tmp_path, serving_dir, model)

    (version,) = os.listdir(serving_dir)  # no .staging left either
    assert version.isdigit()
    final = os.path.join(serving_dir, version)
    source = path_utils.serving_model_path(model.uri)
    for name in ("saved_model.pb", "variables/variables.index"):
        with (
            open(os.path.join(final, name), "rb") as got,
            open(os.path.join(source, name), "rb") as want,
        ):
            assert got.read() == want.read()
    manifest = release.read_manifest(final)
    assert manifest["version"] == int(version)
    assert manifest["model_fingerprint"] == release.model_fingerprint(final)
    assert manifest["model_fingerprint"] == release.model_fingerprint(source)
    assert manifest["baseline"] is None
    assert manifest["lineage"]["model"]["uri"] == model.uri
    assert "test_accuracy" not in manifest  # no evaluation input
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property("pushed_destination") == final
    assert pushed.get_string_custom_property("pushed_version") == version
    assert pushed.get_int_custom_property("already_released") == 0
    assert pushed.get_string_custom_property("model_fingerprint") == manifest["model_fingerprint"]


def test_pushing_the_same_model_again_releases_nothing_new(tmp_path, serving_dir):
    model = trained_model(tmp_path)
    first = push(tmp_path, serving_dir, model)
    version = first.get_string_custom_property("pushed_version")

    again = push(tmp_path, serving_dir, model)

    assert os.listdir(serving_dir) == [version]
    assert again.get_int_custom_property("pushed") == 0
    assert again.get_int_custom_property("already_released") == 1
    assert again.get_string_custom_property("pushed_version") == version
    assert again.get_string_custom_property("pushed_destination") == os.path.join(
        serving_dir, version
    )


def test_a_byte_identical_copy_of_the_released_model_is_already_released(tmp_path, serving_dir):
    first = push(tmp_path, serving_dir, trained_model(tmp_path, "run-1"))
    again = push(tmp_path, serving_dir, trained_model(tmp_path, "run-2"))
    assert again.get_int_custom_property("already_released") == 1
    assert again.get_string_custom_property("pushed_version") == first.get_string_custom_property(
        "pushed_version"
    )
    assert len(release.list_releases(serving_dir)) == 1


def test_a_newer_model_gets_a_higher_version_even_with_a_fake_clock_gone_back(
    tmp_path, serving_dir, monkeypatch
):
    first = push(tmp_path, serving_dir, trained_model(tmp_path, "old", b"old"))
    first_version = int(first.get_string_custom_property("pushed_version"))
    monkeypatch.setattr(time, "time", lambda: 1_000.0)

    second = push(tmp_path, serving_dir, trained_model(tmp_path, "new", b"new"))

    second_version = int(second.get_string_custom_property("pushed_version"))
    assert second_version > first_version
    assert second.get_int_custom_property("pushed") == 1
    assert release.newest_release(serving_dir).version == second_version
    assert release.read_manifest(os.path.join(serving_dir, str(second_version)))["version"] == (
        second_version
    )


def test_versions_are_unix_seconds_with_a_fake_clock(tmp_path, serving_dir, monkeypatch):
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.7)
    pushed = push(tmp_path, serving_dir, trained_model(tmp_path))
    assert pushed.get_string_custom_property("pushed_version") == "1700000000"


def test_version_skips_a_numbered_dir_that_is_not_a_release_with_a_fake_clock(
    tmp_path, serving_dir, monkeypatch
):
    monkeypatch.setattr(time, "time", lambda: 500.0)
    os.makedirs(os.path.join(serving_dir, "500", "variables"))  # half-written, no saved_model.pb
    pushed = push(tmp_path, serving_dir, trained_model(tmp_path))
    assert pushed.get_string_custom_property("pushed_version") == "501"
    assert os.listdir(os.path.join(serving_dir, "500")) == ["variables"]


def test_a_model_not_blessed_is_not_pushed(tmp_path, serving_dir):
    pushed = push(tmp_path, serving_dir, trained_model(tmp_path), blessed=0)
    assert not os.path.exists(serving_dir)
    assert pushed.get_int_custom_property("pushed") == 0
    assert pushed.get_string_custom_property("reason").startswith("not blessed")


def test_a_fake_failing_copy_leaves_no_version_dir(tmp_path, serving_dir, monkeypatch):
    def fake_failing_copy_file(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(io_utils, "copy_file", fake_failing_copy_file)
    with pytest.raises(OSError, match="disk full"):
        push(tmp_path, serving_dir, trained_model(tmp_path))
    assert os.listdir(serving_dir) == [release.STAGING_DIR]
    assert release.list_releases(serving_dir) == []


def test_a_push_after_a_fake_failed_copy_releases_the_model(tmp_path, serving_dir, monkeypatch):
    def fake_failing_copy_file(*args, **kwargs):
        raise OSError("disk full")

    model = trained_model(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(io_utils, "copy_file", fake_failing_copy_file)
        with pytest.raises(OSError, match="disk full"):
            push(tmp_path, serving_dir, model)
    pushed = push(tmp_path, serving_dir, model)
    assert pushed.get_int_custom_property("pushed") == 1
    (only,) = release.list_releases(serving_dir)
    assert str(only.version) == pushed.get_string_custom_property("pushed_version")


def test_the_manifest_records_the_baseline_release(tmp_path, serving_dir):
    baseline = standard_artifacts.Model()
    baseline.set_int_custom_property("has_release", 1)
    baseline.set_string_custom_property("release_version", "5")
    baseline.set_string_custom_property("model_fingerprint", "abc")
    pushed = push(tmp_path, serving_dir, trained_model(tmp_path), baseline_model=baseline)
    manifest = release.read_manifest(pushed.get_string_custom_property("pushed_destination"))
    assert manifest["baseline"] == {"version": 5, "model_fingerprint": "abc"}


def test_the_manifest_has_no_baseline_when_latest_release_found_none(tmp_path, serving_dir):
    baseline = standard_artifacts.Model()
    baseline.set_int_custom_property("has_release", 0)
    pushed = push(tmp_path, serving_dir, trained_model(tmp_path), baseline_model=baseline)
    manifest = release.read_manifest(pushed.get_string_custom_property("pushed_destination"))
    assert manifest["baseline"] is None


def test_fault_point_with_fake_kill_fires_after_the_version_is_whole(
    tmp_path, serving_dir, monkeypatch
):
    seen = {}

    def fake_kill(pid, sig):
        seen["pid"], seen["signal"] = pid, sig
        seen["releases"] = release.list_releases(serving_dir)

    monkeypatch.setattr(faults.os, "kill", fake_kill)
    monkeypatch.setenv(faults.FAULT_ENV, faults.RELEASE_AFTER_RENAME)
    model = trained_model(tmp_path)
    push(tmp_path, serving_dir, model)

    assert seen["pid"] == os.getpid()
    assert seen["signal"] == signal.SIGKILL
    (whole,) = seen["releases"]
    assert release.read_manifest(whole.path)["version"] == whole.version
    assert release.model_fingerprint(whole.path) == release.model_fingerprint(
        path_utils.serving_model_path(model.uri)
    )


def test_fault_point_with_fake_kill_does_not_fire_for_another_name(
    tmp_path, serving_dir, monkeypatch
):
    kills = []
    monkeypatch.setattr(faults.os, "kill", lambda pid, sig: kills.append(sig))
    monkeypatch.setenv(faults.FAULT_ENV, "some-other-point")
    push(tmp_path, serving_dir, trained_model(tmp_path))
    assert kills == []


def test_on_an_object_store_the_release_is_copied_with_saved_model_pb_last(tmp_path):
    """ram:// is TensorFlow's in-memory filesystem: a non-local path like gs://."""
    import tensorflow as tf

    local = write_fake_saved_model(tmp_path / "model")
    staged, final = "ram://serving/.staging/5-abc", "ram://serving/5"
    release_pusher.stage_release(local, staged, {"version": 5})
    copied = []
    real_copy_file = io_utils.copy_file

    def recording_copy_file(source, destination, *args, **kwargs):
        copied.append(os.path.basename(destination))
        return real_copy_file(source, destination, *args, **kwargs)

    io_utils.copy_file = recording_copy_file
    try:
        release_pusher.move_into_place(staged, final)
    finally:
        io_utils.copy_file = real_copy_file
    assert copied[-1] == "saved_model.pb"
    assert not tf.io.gfile.exists(staged)
    assert release.model_fingerprint(final) == release.model_fingerprint(local)
    assert release.read_manifest(final) == {"version": 5}


def test_a_release_carries_its_model_card_naming_version_and_fingerprint(tmp_path, serving_dir):
    pushed = push(tmp_path, serving_dir, trained_model(tmp_path))
    final = pushed.get_string_custom_property("pushed_destination")
    version = pushed.get_string_custom_property("pushed_version")
    fingerprint = release.read_manifest(final)["model_fingerprint"]
    for name in (model_card.MARKDOWN_FILE, model_card.HTML_FILE):
        with open(os.path.join(final, release.MANIFEST_DIR, name)) as card:
            text = card.read()
        assert f"release {version}" in text
        assert fingerprint in text
        assert "first release" in text


def test_the_model_card_is_staged_before_saved_model_pb(tmp_path, serving_dir, monkeypatch):
    seen = []
    real_write_model_card = model_card.write_model_card

    def recording_write_model_card(staging_dir, manifest):
        seen.append(os.path.exists(os.path.join(staging_dir, "saved_model.pb")))
        seen.append(os.path.exists(release.manifest_path(staging_dir)))
        return real_write_model_card(staging_dir, manifest)

    monkeypatch.setattr(model_card, "write_model_card", recording_write_model_card)
    push(tmp_path, serving_dir, trained_model(tmp_path))
    assert seen == [False, True]  # no saved_model.pb yet; the manifest already there


def test_a_failing_model_card_leaves_no_version_dir(tmp_path, serving_dir, monkeypatch):
    def fake_failing_write_model_card(staging_dir, manifest):
        raise OSError("disk full")

    monkeypatch.setattr(model_card, "write_model_card", fake_failing_write_model_card)
    with pytest.raises(OSError, match="disk full"):
        push(tmp_path, serving_dir, trained_model(tmp_path))
    assert release.list_releases(serving_dir) == []


def test_the_manifest_records_the_trainers_training_info(tmp_path, serving_dir):
    model = trained_model(tmp_path)
    info = {
        "hyperparameters": {"hidden_units": [50, 50], "learning_rate": 0.001},
        "epochs_run": 3,
        "best_epoch": 2,
        "final_eval_accuracy": 0.9,
    }
    info_path = os.path.join(
        path_utils.serving_model_path(model.uri), release.MANIFEST_DIR, release.TRAINING_INFO_FILE
    )
    os.makedirs(os.path.dirname(info_path))
    with open(info_path, "w") as out:
        json.dump(info, out)
    pushed = push(tmp_path, serving_dir, model)
    final = pushed.get_string_custom_property("pushed_destination")
    assert release.read_manifest(final)["training"] == info
    with open(os.path.join(final, release.MANIFEST_DIR, model_card.MARKDOWN_FILE)) as card:
        assert "| learning_rate | 0.001 |" in card.read()


def test_without_training_info_the_manifest_has_no_training_key(tmp_path, serving_dir):
    pushed = push(tmp_path, serving_dir, trained_model(tmp_path))
    assert "training" not in release.read_manifest(
        pushed.get_string_custom_property("pushed_destination")
    )


def test_the_manifest_records_confusions_and_the_baselines_accuracies(tmp_path, monkeypatch):
    """TFMA's readers are faked: what matters here is where their figures land."""

    def fake_overall_accuracy(uri, baseline=False):
        return 0.97 if baseline else 0.98

    def fake_digit_accuracy(uri, baseline=False):
        return {8: 0.95 if baseline else 0.96}

    monkeypatch.setattr(evaluation_results, "overall_accuracy", fake_overall_accuracy)
    monkeypatch.setattr(evaluation_results, "digit_accuracy", fake_digit_accuracy)
    monkeypatch.setattr(evaluation_results, "top_confusions", lambda uri: {8: (0, 7)})
    monkeypatch.setattr(evaluation_results, "gates_of_evaluation", lambda uri: ["gate"])
    evaluation = standard_artifacts.ModelEvaluation()
    evaluation.uri = str(tmp_path / "evaluation")
    baseline = standard_artifacts.Model()
    baseline.set_int_custom_property("has_release", 1)
    baseline.set_string_custom_property("release_version", "5")
    baseline.set_string_custom_property("model_fingerprint", "abc")
    blessing = standard_artifacts.ModelBlessing()
    input_dict = {
        "model": [trained_model(tmp_path)],
        "model_blessing": [blessing],
        "evaluation": [evaluation],
        "baseline_model": [baseline],
    }

    manifest = release_pusher.build_manifest(6, "def", input_dict, "run-1")

    assert manifest["test_accuracy"] == 0.98
    assert manifest["per_digit_accuracy"] == {"8": 0.96}
    assert manifest["confusions"] == {"8": [0, 7]}
    assert manifest["baseline"] == {
        "version": 5,
        "model_fingerprint": "abc",
        "test_accuracy": 0.97,
        "per_digit_accuracy": {"8": 0.95},
    }
    assert json.loads(json.dumps(manifest)) == manifest  # JSON as written, lists not tuples
