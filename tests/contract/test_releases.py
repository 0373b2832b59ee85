"""What a release is: model fingerprints, the release listing, and the manifest."""

import os
import shutil

import pytest

from contract import releases
from tests.components.fake_saved_model import write_fake_saved_model


def test_fingerprint_is_equal_for_byte_identical_copies_at_different_paths(tmp_path):
    original = write_fake_saved_model(tmp_path / "a" / "model")
    copy = tmp_path / "elsewhere" / "17"
    shutil.copytree(original, copy)
    assert releases.model_fingerprint(original) == releases.model_fingerprint(str(copy))


def test_fingerprint_changes_when_variables_bytes_change(tmp_path):
    first = write_fake_saved_model(tmp_path / "first", variables=b"weights-1")
    second = write_fake_saved_model(tmp_path / "second", variables=b"weights-2")
    assert releases.model_fingerprint(first) != releases.model_fingerprint(second)


def test_fingerprint_changes_when_saved_model_pb_changes(tmp_path):
    first = write_fake_saved_model(tmp_path / "first")
    second = write_fake_saved_model(tmp_path / "second")
    (tmp_path / "second" / "saved_model.pb").write_bytes(b"another graph")
    assert releases.model_fingerprint(first) != releases.model_fingerprint(second)


def test_fingerprint_changes_when_a_variables_file_is_renamed(tmp_path):
    first = write_fake_saved_model(tmp_path / "first")
    second = write_fake_saved_model(tmp_path / "second")
    variables = tmp_path / "second" / "variables"
    os.rename(variables / "variables.index", variables / "renamed.index")
    assert releases.model_fingerprint(first) != releases.model_fingerprint(second)


def test_fingerprint_ignores_the_manifest_but_not_the_model_assets(tmp_path):
    model_dir = write_fake_saved_model(tmp_path / "model")
    before = releases.model_fingerprint(model_dir)
    releases.write_manifest(model_dir, {"version": 3, "model_fingerprint": before})
    assert releases.model_fingerprint(model_dir) == before
    os.makedirs(tmp_path / "model" / "assets")
    (tmp_path / "model" / "assets" / "vocab.txt").write_text("zero\none\n")
    assert releases.model_fingerprint(model_dir) != before, "assets are part of the model"


def test_fingerprint_of_a_dir_without_saved_model_pb_names_the_dir(tmp_path):
    model_dir = write_fake_saved_model(tmp_path / "model")
    os.remove(os.path.join(model_dir, "saved_model.pb"))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "model")):
        releases.model_fingerprint(model_dir)


def test_list_releases_sorts_versions_numerically_and_ignores_strays(tmp_path):
    serving = tmp_path / "serving"
    for version in ("10", "9", "100"):
        write_fake_saved_model(serving / version)
    write_fake_saved_model(serving / releases.STAGING_DIR / "200-abc")
    write_fake_saved_model(serving / "latest")
    write_fake_saved_model(serving / "²")  # a digit, but no version number
    write_fake_saved_model(serving / "007")  # would duplicate version 7
    os.makedirs(serving / "300" / "variables")  # half-written: no saved_model.pb
    (serving / "400").write_text("a file, not a directory")

    found = releases.list_releases(str(serving))

    assert [release.version for release in found] == [9, 10, 100]
    assert [release.path for release in found] == [str(serving / v) for v in ("9", "10", "100")]
    assert releases.newest_release(str(serving)) == releases.Release(100, str(serving / "100"))


def test_missing_or_empty_serving_dir_has_no_releases(tmp_path):
    assert releases.list_releases(str(tmp_path / "missing")) == []
    assert releases.newest_release(str(tmp_path / "missing")) is None
    os.makedirs(tmp_path / "empty" / "5")
    assert releases.newest_release(str(tmp_path / "empty")) is None


def test_manifest_round_trips_into_assets_extra(tmp_path):
    release_dir = write_fake_saved_model(tmp_path / "7")
    manifest = {"version": 7, "model_fingerprint": "f" * 64, "baseline": None, "acc": 0.98}
    releases.write_manifest(release_dir, manifest)
    assert releases.read_manifest(release_dir) == manifest
    assert (tmp_path / "7" / "assets.extra" / "release.json").is_file()
    assert releases.Release(7, release_dir).manifest_path == str(
        tmp_path / "7" / "assets.extra" / "release.json"
    )


def test_read_manifest_of_a_release_without_one_is_none(tmp_path):
    assert releases.read_manifest(write_fake_saved_model(tmp_path / "7")) is None


def _release(serving, version, variables=b"weights-1") -> releases.Release:
    path = write_fake_saved_model(serving / str(version), variables)
    fingerprint = releases.model_fingerprint(path)
    releases.write_manifest(path, {"version": version, "model_fingerprint": fingerprint})
    return releases.Release(version, path)


def test_a_releases_fingerprint_is_read_from_its_manifest(tmp_path):
    released = _release(tmp_path, 7)
    releases.write_manifest(released.path, {"version": 7, "model_fingerprint": "recorded"})
    assert releases.release_fingerprint(released) == "recorded"  # read, not rehashed


def test_a_release_without_a_manifest_fingerprint_is_hashed(tmp_path):
    path = write_fake_saved_model(tmp_path / "8")
    assert releases.release_fingerprint(releases.Release(8, path)) == (
        releases.model_fingerprint(path)
    )


def test_verify_accepts_an_untouched_release(tmp_path):
    assert releases.verify_release(_release(tmp_path, 7)) == releases.Verdict(7, True)


def test_verify_names_a_tampered_variable_file(tmp_path):
    released = _release(tmp_path, 7)
    with open(os.path.join(released.path, "variables", "variables.index"), "wb") as out:
        out.write(b"tampered")
    verdict = releases.verify_release(released)
    assert not verdict.ok
    assert "changed since release" in verdict.problem


def test_verify_names_a_missing_saved_model_or_manifest(tmp_path):
    released = _release(tmp_path, 7)
    os.remove(os.path.join(released.path, "saved_model.pb"))
    assert "no SavedModel" in releases.verify_release(released).problem
    other = _release(tmp_path, 8)
    os.remove(releases.manifest_path(other.path))
    assert "no manifest" in releases.verify_release(other).problem


def test_verify_names_a_manifest_edited_or_copied_from_another_release(tmp_path):
    released = _release(tmp_path, 7)
    manifest = releases.read_manifest(released.path)
    releases.write_manifest(released.path, {**manifest, "version": 6})
    assert "does not describe version 7" in releases.verify_release(released).problem
    with open(releases.manifest_path(released.path), "w") as out:
        out.write("{not json")
    assert "is not JSON" in releases.verify_release(released).problem


def test_remove_staged_clears_the_staging_area_and_no_release(tmp_path):
    released = _release(tmp_path, 7)
    write_fake_saved_model(tmp_path / releases.STAGING_DIR / "9-abc")
    (tmp_path / releases.STAGING_DIR / "stray-file").write_text("x")

    removed = releases.remove_staged(str(tmp_path))

    assert sorted(os.path.basename(path) for path in removed) == ["9-abc", "stray-file"]
    assert not (tmp_path / releases.STAGING_DIR).exists()
    assert releases.list_releases(str(tmp_path)) == [released]
    assert releases.remove_staged(str(tmp_path)) == []
