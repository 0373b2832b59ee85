"""AtomicPusher's executor: a release appears whole, or not at all."""

import os

import pytest
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import io_utils, path_utils, proto_utils

from components import atomic_pusher


def _push(tmp_path):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    serving = path_utils.serving_model_path(model.uri)
    os.makedirs(os.path.join(serving, "variables"))
    for name in ("saved_model.pb", "variables/variables.index"):
        with open(os.path.join(serving, name), "w") as out:
            out.write(name)
    blessing = standard_artifacts.ModelBlessing()
    blessing.set_int_custom_property("blessed", 1)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(tmp_path / "serving"))
    )
    atomic_pusher.AtomicPusherExecutor().Do(
        {"model": [model], "model_blessing": [blessing]},
        {"pushed_model": [pushed]},
        {"push_destination": proto_utils.proto_to_json(destination)},
    )
    return pushed


def test_push_lands_in_a_version_dir_and_leaves_no_staging(tmp_path):
    pushed = _push(tmp_path)
    (version,) = os.listdir(tmp_path / "serving")
    assert version.isdigit()
    release = tmp_path / "serving" / version
    assert pushed.get_string_custom_property("pushed_destination") == str(release)
    assert (release / "saved_model.pb").read_text() == "saved_model.pb"
    assert (release / "variables" / "variables.index").exists()


def test_push_killed_mid_copy_with_failing_copy_leaves_no_version_dir(tmp_path, monkeypatch):
    def failing_copy_file(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(io_utils, "copy_file", failing_copy_file)
    with pytest.raises(OSError, match="disk full"):
        _push(tmp_path)
    assert os.listdir(tmp_path / "serving") == [atomic_pusher.STAGING_DIR]
