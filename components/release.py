"""What a release is: a numbered SavedModel directory in the serving dir, plus its manifest.

The serving directory, not ML Metadata, is the record of what is released:
a model server reads it, it lives wherever the orchestrator runs (a local
folder or `gs://`), and it survives a lost or separate metadata store. So
the baseline for the Evaluator (LatestRelease) and the exactly-once check of
the Pusher both read it here, through `tf.io.gfile` (local paths and `gs://`).

Each release carries `assets.extra/release.json` (TF Serving ignores
`assets.extra` except its warmup file): version, model fingerprint, metrics,
thresholds, baseline, data fingerprint and lineage ids.
"""

import dataclasses
import hashlib
import json
import os
from typing import Any

import tensorflow as tf

MANIFEST_DIR = "assets.extra"
MANIFEST_FILE = "release.json"
TRAINING_INFO_FILE = "training.json"
"""The Trainer's record in a model's `assets.extra/`: hyper-parameters, epochs
run, best epoch. Named here, not imported: mnist_trainer.TRAINING_INFO_FILE
writes it, and components do not import the `pipeline/` package."""
STAGING_DIR = ".staging"
RUN_STARTED_ENV = "MNIST_PIPELINE_RUN_STARTED"
"""Set by a runner that holds the output directory's lock: when it started
(Unix seconds). Staged pushes older than that belong to runs that are gone."""


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
    return os.path.join(release_dir, MANIFEST_DIR, MANIFEST_FILE)


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
    if not tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        raise FileNotFoundError(f"no SavedModel (saved_model.pb) in {model_dir}")
    files = [os.path.join(model_dir, "saved_model.pb")]
    for subdir in ("variables", "assets"):
        files += _files_under(os.path.join(model_dir, subdir))
    digest = hashlib.sha256()
    for path in sorted(files):
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
        if _is_version(name) and tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
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
    return _read_json(os.path.join(model_dir, MANIFEST_DIR, TRAINING_INFO_FILE))


def write_manifest(release_dir: str, manifest: dict[str, Any]) -> None:
    """Writes the manifest into a (staged) release directory."""
    tf.io.gfile.makedirs(os.path.join(release_dir, MANIFEST_DIR))
    with tf.io.gfile.GFile(manifest_path(release_dir), "w") as out:
        json.dump(manifest, out, indent=2, sort_keys=True)
