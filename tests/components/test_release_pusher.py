"""ReleasePusher: TFX's Pusher contract; a blessed model is released once, whole, documented."""

import json
import os
import signal
import time

import pytest
import tensorflow as tf
from tfx import types
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.types.experimental import simple_artifacts
from tfx.utils import io_utils, path_utils, proto_utils

from components import model_card, release_manifest, release_pusher
from contract import faults, files, releases
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


def documents(tmp_path, model) -> tuple[simple_artifacts.File, simple_artifacts.File]:
    """ReleaseManifest's draft and ModelCardGen's card for `model`, as the DAG makes them."""
    draft = release_manifest.build_manifest(model)
    manifest = simple_artifacts.File()
    manifest.uri = str(tmp_path / "manifest" / str(time.monotonic_ns()))
    os.makedirs(manifest.uri)
    with open(os.path.join(manifest.uri, release_manifest.MANIFEST_FILE), "w") as out:
        json.dump(draft, out)
    card = simple_artifacts.File()
    card.uri = str(tmp_path / "card" / str(time.monotonic_ns()))
    os.makedirs(card.uri)
    for name, text in model_card.render_model_card(draft).items():
        with open(os.path.join(card.uri, name), "w") as out:
            out.write(text)
    return manifest, card


def destination(serving_dir: str) -> str:
    """`push_destination` as TFX hands it to a Pusher executor: the proto as JSON."""
    return proto_utils.proto_to_json(
        pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving_dir)
        )
    )


def blessing_of(tmp_path, kind, blessed) -> types.Artifact:
    artifact = kind()
    artifact.uri = str(tmp_path / kind.TYPE_NAME / str(time.monotonic_ns()))
    artifact.set_int_custom_property("blessed", blessed)
    return artifact


def push(tmp_path, serving_dir, model, blessed=1, with_documents=True, **inputs):
    """Runs the executor once with a fresh PushedModel; returns it."""
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pusher" / f"pushed-{time.monotonic_ns()}")
    input_dict = {}
    if model is not None:
        input_dict["model"] = [model]
    if blessed is not None:
        input_dict["model_blessing"] = [
            blessing_of(tmp_path, standard_artifacts.ModelBlessing, blessed)
        ]
    if with_documents and model is not None:
        manifest, card = documents(tmp_path, model)
        input_dict.update(manifest=[manifest], model_card=[card])
    input_dict.update({key: [artifact] for key, artifact in inputs.items()})
    release_pusher.ReleasePusherExecutor().Do(
        input_dict, {"pushed_model": [pushed]}, {"push_destination": destination(serving_dir)}
    )
    return pushed


def test_blessed_push_creates_one_whole_version_with_its_manifest_and_card(tmp_path, serving_dir):
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
    manifest = releases.read_manifest(final)
    assert manifest["version"] == int(version)
    assert manifest["model_fingerprint"] == releases.model_fingerprint(final)
    assert manifest["model_fingerprint"] == releases.model_fingerprint(source)
    assert manifest["released_at"] and manifest["baseline"] is None
    assert manifest["lineage"]["model"]["uri"] == model.uri
    assert "test_accuracy" not in manifest  # the draft had no evaluation
    with open(os.path.join(final, files.MODEL_CARD_MARKDOWN_FILE)) as card:
        assert manifest["model_fingerprint"] in card.read()
    assert os.path.isfile(os.path.join(final, files.MODEL_CARD_HTML_FILE))
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


def test_the_released_models_fingerprint_is_read_from_its_manifest_not_rehashed(
    tmp_path, serving_dir, monkeypatch
):
    model = trained_model(tmp_path)
    first = push(tmp_path, serving_dir, model)
    released_dir = first.get_string_custom_property("pushed_destination")
    hashed = []
    real_fingerprint = releases.model_fingerprint
    monkeypatch.setattr(
        releases, "model_fingerprint", lambda path: hashed.append(path) or real_fingerprint(path)
    )

    again = push(tmp_path, serving_dir, model, with_documents=False)

    assert again.get_int_custom_property("already_released") == 1
    assert released_dir not in hashed  # only the candidate was hashed
    assert hashed == [path_utils.serving_model_path(model.uri)]


def test_a_byte_identical_copy_of_the_released_model_is_already_released(tmp_path, serving_dir):
    first = push(tmp_path, serving_dir, trained_model(tmp_path, "run-1"))
    again = push(tmp_path, serving_dir, trained_model(tmp_path, "run-2"))
    assert again.get_int_custom_property("already_released") == 1
    assert again.get_string_custom_property("pushed_version") == first.get_string_custom_property(
        "pushed_version"
    )
    assert len(releases.list_releases(serving_dir)) == 1


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
    assert releases.newest_release(serving_dir).version == second_version
    assert releases.read_manifest(os.path.join(serving_dir, str(second_version)))["version"] == (
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


def test_a_failed_infra_validation_is_not_pushed_as_with_tfx(tmp_path, serving_dir):
    infra = blessing_of(tmp_path, standard_artifacts.InfraBlessing, 0)
    infra.set_string_custom_property("reason", "canary accuracy 0.1")
    pushed = push(tmp_path, serving_dir, trained_model(tmp_path), infra_blessing=infra)
    assert not os.path.exists(serving_dir)
    assert pushed.get_int_custom_property("pushed") == 0
    assert "serving check: canary accuracy 0.1" in pushed.get_string_custom_property("reason")


def test_without_a_model_input_the_infra_blessings_copy_is_pushed_as_with_tfx(
    tmp_path, serving_dir
):
    infra = blessing_of(tmp_path, standard_artifacts.InfraBlessing, 1)
    infra.set_int_custom_property("has_model", 1)
    copy = write_fake_saved_model(path_utils.stamped_model_path(infra.uri))
    with open(os.path.join(copy, "warmup-marker"), "w") as out:
        out.write("warm")

    pushed = push(tmp_path, serving_dir, None, infra_blessing=infra)

    final = pushed.get_string_custom_property("pushed_destination")
    assert pushed.get_int_custom_property("pushed") == 1
    assert os.path.isfile(os.path.join(final, "warmup-marker"))
    assert releases.read_manifest(final)["model_fingerprint"] == releases.model_fingerprint(copy)


def test_with_no_blessing_at_all_it_pushes_as_tfxs_pusher_does(tmp_path, serving_dir):
    pushed = push(tmp_path, serving_dir, trained_model(tmp_path), blessed=None)
    assert pushed.get_int_custom_property("pushed") == 1


def test_an_unblessed_tflite_model_stops_the_push(tmp_path, serving_dir):
    tflite = blessing_of(tmp_path, standard_artifacts.ModelBlessing, 0)
    pushed = push(tmp_path, serving_dir, trained_model(tmp_path), tflite_blessing=tflite)
    assert pushed.get_int_custom_property("pushed") == 0
    assert "TFLite" in pushed.get_string_custom_property("reason")


def test_it_is_configured_as_tfxs_pusher_is(tmp_path):
    model = types.Channel(type=standard_artifacts.Model)
    blessing = types.Channel(type=standard_artifacts.ModelBlessing)
    target = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(tmp_path))
    )
    pusher = release_pusher.ReleasePusher(
        model=model, model_blessing=blessing, push_destination=target
    )
    parsed = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(pusher.exec_properties["push_destination"], parsed)
    assert parsed == target
    assert set(pusher.inputs) >= {"model", "model_blessing"}
    assert set(pusher.outputs) == {"pushed_model"}
    with pytest.raises(ValueError, match="push_destination"):
        release_pusher.ReleasePusher(model=model, model_blessing=blessing)
    with pytest.raises(ValueError, match="model or infra_blessing"):
        release_pusher.ReleasePusher(model_blessing=blessing, push_destination=target)


def test_a_destination_it_cannot_push_to_is_refused(tmp_path):
    unsupported = proto_utils.proto_to_json(pusher_pb2.PushDestination())
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    with pytest.raises(NotImplementedError, match="filesystem"):
        release_pusher.ReleasePusherExecutor().Do(
            {"model": [trained_model(tmp_path)]},
            {"pushed_model": [pushed]},
            {"push_destination": unsupported},
        )


def test_a_fake_failing_copy_leaves_no_version_dir(tmp_path, serving_dir, monkeypatch):
    def fake_failing_copy_file(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(io_utils, "copy_file", fake_failing_copy_file)
    with pytest.raises(OSError, match="disk full"):
        push(tmp_path, serving_dir, trained_model(tmp_path))
    assert os.listdir(serving_dir) == [files.STAGING_DIR]
    assert releases.list_releases(serving_dir) == []


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
    (only,) = releases.list_releases(serving_dir)
    assert str(only.version) == pushed.get_string_custom_property("pushed_version")


def test_fault_point_with_fake_kill_fires_after_the_version_is_whole(
    tmp_path, serving_dir, monkeypatch
):
    seen = {}

    def fake_kill(pid, sig):
        seen["pid"], seen["signal"] = pid, sig
        seen["releases"] = releases.list_releases(serving_dir)

    monkeypatch.setattr(faults.os, "kill", fake_kill)
    monkeypatch.setenv(faults.FAULT_ENV, faults.RELEASE_AFTER_RENAME)
    model = trained_model(tmp_path)
    push(tmp_path, serving_dir, model)

    assert seen["pid"] == os.getpid()
    assert seen["signal"] == signal.SIGKILL
    (whole,) = seen["releases"]
    assert releases.verify_release(whole).ok
    assert releases.model_fingerprint(whole.path) == releases.model_fingerprint(
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
    local = write_fake_saved_model(tmp_path / "model")
    staged, final = "ram://serving/.staging/5-abc", "ram://serving/5"
    release_pusher.stage_release(local, staged, {"version": 5}, {})
    copied = []
    real_copy_file = io_utils.copy_file

    def recording_copy_file(source, destination, *args, **kwargs):
        copied.append(os.path.basename(destination))
        return real_copy_file(source, destination, *args, **kwargs)

    io_utils.copy_file = recording_copy_file
    try:
        releases.move_into_place(staged, final)
    finally:
        io_utils.copy_file = real_copy_file
    assert copied[-1] == "saved_model.pb"
    assert not tf.io.gfile.exists(staged)
    assert releases.model_fingerprint(final) == releases.model_fingerprint(local)
    assert releases.read_manifest(final) == {"version": 5}


def test_the_manifest_and_card_are_staged_before_saved_model_pb(tmp_path, serving_dir, monkeypatch):
    seen = []
    real_copy_file = io_utils.copy_file

    def recording_copy_file(source, destination, *args, **kwargs):
        staging_dir = os.path.dirname(os.path.dirname(destination))
        if os.path.basename(destination) == model_card.MARKDOWN_FILE:
            seen.append(os.path.exists(os.path.join(staging_dir, "saved_model.pb")))
            seen.append(os.path.exists(releases.manifest_path(staging_dir)))
        return real_copy_file(source, destination, *args, **kwargs)

    monkeypatch.setattr(io_utils, "copy_file", recording_copy_file)
    push(tmp_path, serving_dir, trained_model(tmp_path))
    assert seen == [False, True]  # no saved_model.pb yet; the manifest already there
