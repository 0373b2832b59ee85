"""The serving directory's format: numbered SavedModel versions, each with its manifest.

The serving directory, not ML Metadata, is the record of what is released:
a model server reads it, it lives wherever the orchestrator runs (a local
folder or `gs://`), and it survives a lost or separate metadata store. So
the baseline for the Evaluator (LatestRelease) and the exactly-once check of
the Pusher both read it here, through `tf.io.gfile` (local paths and `gs://`).

Each release carries `assets.extra/release.json` (TF Serving ignores
`assets.extra` except its warmup file): version, model fingerprint, metrics,
thresholds, baseline, data fingerprint and lineage ids. A release's
fingerprint is read from that manifest (`release_fingerprint`); hashing the
model again is what `verify_release` does, on demand, not every run.
"""

import dataclasses
import hashlib
import json
import os
from typing import Any

import tensorflow as tf
from tfx.utils import io_utils

from contract import files

MANIFEST_DIR = files.EXTRA_DIR
STAGING_DIR = files.STAGING_DIR
FINGERPRINT_KEY = "model_fingerprint"


@dataclasses.dataclass(frozen=True)
class Release:
    """One released version: its number and its directory."""

    version: int
    path: str

    @property
    def manifest_path(self) -> str:
        return manifest_path(self.path)


def manifest_path(release_dir: str) -> str:
    """Where the release manifest of `release_dir` lives."""
    return os.path.join(release_dir, files.MANIFEST_FILE)


def _files_under(directory: str) -> list[str]:
    if not tf.io.gfile.isdir(directory):
        return []
    found = []
    for root, _, names in tf.io.gfile.walk(directory):
        found.extend(os.path.join(root, name) for name in names)
    # Prefix-based filesystems (TF's ram://) can list `assets.extra/x` as
    # `assets/.extra`; only files that really exist count.
    return [path for path in found if tf.io.gfile.exists(path)]


def model_fingerprint(model_dir: str) -> str:
    """SHA-256 over `saved_model.pb`, `variables/` and `assets/` (relative names and bytes).

    Two directories with the same fingerprint hold the same model, whatever
    their paths. `assets.extra` (manifest, warmup requests) is left out
    because the Pusher adds it; TF's `fingerprint.pb` and Keras metadata are
    left out because they describe the files fingerprinted here.

    Raises:
      FileNotFoundError: `model_dir` holds no saved_model.pb.
    """
    saved_model = os.path.join(model_dir, files.SAVED_MODEL_FILE)
    if not tf.io.gfile.exists(saved_model):
        raise FileNotFoundError(f"no SavedModel ({files.SAVED_MODEL_FILE}) in {model_dir}")
    hashed = [saved_model]
    for subdir in ("variables", "assets"):
        hashed += _files_under(os.path.join(model_dir, subdir))
    digest = hashlib.sha256()
    for path in sorted(hashed):
        relative = os.path.relpath(path, model_dir).replace(os.sep, "/")
        digest.update(relative.encode() + b"\0")
        with tf.io.gfile.GFile(path, "rb") as source:
            digest.update(hashlib.sha256(source.read()).digest())
    return digest.hexdigest()


def list_releases(serving_dir: str) -> list[Release]:
    """Every released version in `serving_dir`, oldest first.

    Only directories named by a number that hold a saved_model.pb count, the
    same rule TF Serving applies; `.staging` and strays are ignored.
    """
    if not tf.io.gfile.isdir(serving_dir):
        return []
    releases = []
    for name in tf.io.gfile.listdir(serving_dir):
        name = name.rstrip("/")
        path = os.path.join(serving_dir, name)
        if _is_version(name) and tf.io.gfile.exists(os.path.join(path, files.SAVED_MODEL_FILE)):
            releases.append(Release(int(name), path))
    return sorted(releases, key=lambda release: release.version)


def _is_version(name: str) -> bool:
    """A version directory name: ASCII digits, no leading zero (7, not 007 or ²)."""
    return name.isascii() and name.isdigit() and str(int(name)) == name


def newest_release(serving_dir: str) -> Release | None:
    """The release a model server would serve now, or None before the first."""
    releases = list_releases(serving_dir)
    return releases[-1] if releases else None


def _read_json(path: str) -> dict[str, Any] | None:
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as source:
        return json.load(source)


def read_manifest(release_dir: str) -> dict[str, Any] | None:
    """The manifest of a release, or None when it has none."""
    return _read_json(manifest_path(release_dir))


def read_training_info(model_dir: str) -> dict[str, Any] | None:
    """The Trainer's `assets.extra/training.json` in a SavedModel dir, or None without one."""
    return _read_json(os.path.join(model_dir, files.TRAINING_INFO_FILE))


def write_manifest(release_dir: str, manifest: dict[str, Any]) -> None:
    """Writes the manifest into a (staged) release directory."""
    tf.io.gfile.makedirs(os.path.join(release_dir, MANIFEST_DIR))
    with tf.io.gfile.GFile(manifest_path(release_dir), "w") as out:
        json.dump(manifest, out, indent=2, sort_keys=True)


def release_fingerprint(released: Release) -> str:
    """The model fingerprint a release's manifest records.

    Read, not recomputed: on an object store hashing a release reads the
    whole model. A release without a manifest fingerprint (made by hand, or
    by an older version of the Pusher) is hashed instead. `verify_release`
    checks that the two still agree.
    """
    manifest = read_manifest(released.path) or {}
    recorded = manifest.get(FINGERPRINT_KEY)
    return recorded if isinstance(recorded, str) and recorded else model_fingerprint(released.path)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Whether a release still holds the model its manifest describes."""

    version: int
    ok: bool
    problem: str = ""
    """What is wrong and what to do about it, when not ok."""


def verify_release(released: Release) -> Verdict:
    """Hashes a release again and compares the result with its manifest.

    Args:
      released: A release as `list_releases` returns it.

    Returns:
      ok when the manifest exists, names this version and records the
      fingerprint the files hash to; otherwise what differs.
    """
    try:
        manifest = read_manifest(released.path)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        problem = f"{manifest_path(released.path)} is not JSON ({error})"
        return Verdict(released.version, False, problem)
    if manifest is None:
        return Verdict(released.version, False, f"no manifest at {manifest_path(released.path)}")
    recorded = manifest.get(FINGERPRINT_KEY)
    if manifest.get("version") != released.version or not recorded:
        return Verdict(
            released.version,
            False,
            f"{manifest_path(released.path)} does not describe version {released.version} "
            f"(version {manifest.get('version')!r}, fingerprint {recorded!r}): it was edited "
            "or copied from another release",
        )
    try:
        actual = model_fingerprint(released.path)
    except FileNotFoundError as error:
        return Verdict(released.version, False, str(error))
    if actual != recorded:
        return Verdict(
            released.version,
            False,
            f"the model files hash to {actual[:12]}, the manifest records {recorded[:12]}: "
            "a file under saved_model.pb, variables/ or assets/ changed since release; "
            "release the model again rather than serve this one",
        )
    return Verdict(released.version, True)


def move_into_place(staged: str, final: str) -> None:
    """Makes the staged release the version directory, whole or not at all.

    On a local filesystem a directory rename is one atomic step. On object
    stores (`gs://`, `s3://`) TensorFlow renames object by object, so
    `saved_model.pb` could appear before the variables; there the release is
    copied with `saved_model.pb` last (a version directory without it is no
    release, for TF Serving and for `releases.list_releases`), then the staged
    copy is deleted.
    """
    if "://" not in final:
        tf.io.gfile.rename(staged, final)
        return
    io_utils.copy_dir(staged, final, deny_regex_patterns=[r"saved_model\.pb"])
    io_utils.copy_file(
        os.path.join(staged, files.SAVED_MODEL_FILE), os.path.join(final, files.SAVED_MODEL_FILE)
    )
    tf.io.gfile.rmtree(staged)


def remove_staged(serving_dir: str) -> list[str]:
    """Removes every push staged under `serving_dir/.staging`; returns what was removed.

    Only for the holder of the serving directory's run lock (the local
    runner, before its run starts): then no push can be in progress, and a
    staged push belongs to a run that was killed. Released versions are never
    touched. On Kubeflow nothing calls this: another run may be pushing.
    """
    staging_root = os.path.join(serving_dir, STAGING_DIR)
    if not tf.io.gfile.isdir(staging_root):
        return []
    removed = []
    for name in tf.io.gfile.listdir(staging_root):
        path = os.path.join(staging_root, name.rstrip("/"))
        tf.io.gfile.rmtree(path) if tf.io.gfile.isdir(path) else tf.io.gfile.remove(path)
        removed.append(path)
    tf.io.gfile.rmtree(staging_root)
    return removed
