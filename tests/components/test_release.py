"""What a release is: model fingerprints, the release listing, and the manifest."""

import os
import shutil

import pytest

from components import release
from tests.components.fake_saved_model import write_fake_saved_model


def test_fingerprint_is_equal_for_byte_identical_copies_at_different_paths(tmp_path):
    original = write_fake_saved_model(tmp_path / "a" / "model")
    copy = tmp_path / "elsewhere" / "17"
    shutil.copytree(original, copy)
    assert release.model_fingerprint(original) == release.model_fingerprint(str(copy))


def test_fingerprint_changes_when_variables_bytes_change(tmp_path):
    first = write_fake_saved_model(tmp_path / "first", variables=b"weights-1")
    second = write_fake_saved_model(tmp_path / "second", variables=b"weights-2")
    assert release.model_fingerprint(first) != release.model_fingerprint(second)


def test_fingerprint_changes_when_saved_model_pb_changes(tmp_path):
    first = write_fake_saved_model(tmp_path / "first")
    second = write_fake_saved_model(tmp_path / "second")
    (tmp_path / "second" / "saved_model.pb").write_bytes(b"another graph")
    assert release.model_fingerprint(first) != release.model_fingerprint(second)


def test_fingerprint_changes_when_a_variables_file_is_renamed(tmp_path):
    first = write_fake_saved_model(tmp_path / "first")
    second = write_fake_saved_model(tmp_path / "second")
    variables = tmp_path / "second" / "variables"
    os.rename(variables / "variables.index", variables / "renamed.index")
    assert release.model_fingerprint(first) != release.model_fingerprint(second)


def test_fingerprint_ignores_the_manifest_but_not_the_model_assets(tmp_path):
    model_dir = write_fake_saved_model(tmp_path / "model")
    before = release.model_fingerprint(model_dir)
    release.write_manifest(model_dir, {"version": 3, "model_fingerprint": before})
    assert release.model_fingerprint(model_dir) == before
    os.makedirs(tmp_path / "model" / "assets")
    (tmp_path / "model" / "assets" / "vocab.txt").write_text("zero\none\n")
    assert release.model_fingerprint(model_dir) != before, "assets are part of the model"


def test_fingerprint_of_a_dir_without_saved_model_pb_names_the_dir(tmp_path):
    model_dir = write_fake_saved_model(tmp_path / "model")
    os.remove(os.path.join(model_dir, "saved_model.pb"))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "model")):
        release.model_fingerprint(model_dir)


def test_list_releases_sorts_versions_numerically_and_ignores_strays(tmp_path):
    serving = tmp_path / "serving"
    for version in ("10", "9", "100"):
        write_fake_saved_model(serving / version)
    write_fake_saved_model(serving / release.STAGING_DIR / "200-abc")
    write_fake_saved_model(serving / "latest")
    write_fake_saved_model(serving / "²")  # a digit, but no version number
    write_fake_saved_model(serving / "007")  # would duplicate version 7
    os.makedirs(serving / "300" / "variables")  # half-written: no saved_model.pb
    (serving / "400").write_text("a file, not a directory")

    releases = release.list_releases(str(serving))

    assert [found.version for found in releases] == [9, 10, 100]
    assert [found.path for found in releases] == [str(serving / v) for v in ("9", "10", "100")]
    assert release.newest_release(str(serving)) == release.Release(100, str(serving / "100"))


def test_missing_or_empty_serving_dir_has_no_releases(tmp_path):
    assert release.list_releases(str(tmp_path / "missing")) == []
    assert release.newest_release(str(tmp_path / "missing")) is None
    os.makedirs(tmp_path / "empty" / "5")
    assert release.newest_release(str(tmp_path / "empty")) is None


def test_manifest_round_trips_into_assets_extra(tmp_path):
    release_dir = write_fake_saved_model(tmp_path / "7")
    manifest = {"version": 7, "model_fingerprint": "f" * 64, "baseline": None, "acc": 0.98}
    release.write_manifest(release_dir, manifest)
    assert release.read_manifest(release_dir) == manifest
    assert (tmp_path / "7" / "assets.extra" / "release.json").is_file()
    assert release.Release(7, release_dir).manifest_path == str(
        tmp_path / "7" / "assets.extra" / "release.json"
    )


def test_read_manifest_of_a_release_without_one_is_none(tmp_path):
    assert release.read_manifest(write_fake_saved_model(tmp_path / "7")) is None
