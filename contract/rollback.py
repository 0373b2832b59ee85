"""Rolling a serving directory back: an earlier model released again as a new, higher version.

TF Serving's default policy serves the highest version, so a rollback never
deletes or renames the bad release: it copies an earlier release's model into
a new version above it, with a manifest that says what was rolled back, to
what, when and why, and a model card that says so. The model rolled back
*from* is withdrawn: its fingerprint is listed in the new manifest's
`withdrawn` (carried forward by every later release), and the Pusher never
releases a withdrawn model again, even when it beats the rolled-back one.

The copy lands as a push does (`releases.move_into_place`): staged under
`.staging/`, `saved_model.pb` last, then renamed, so a killed rollback leaves
no half release, and running the same command again completes it. On a local
serving directory the command holds `<serving-dir>/.rollback.lock`
(`fcntl.flock`, dropped by the kernel when the holder dies), so of two
rollbacks at once one wins and the other says why. Object stores have no
lock: there, run one rollback at a time.
"""

import contextlib
import datetime
import os
import uuid
from collections.abc import Iterator
from typing import Any

import tensorflow as tf
from tfx.utils import io_utils

from contract import faults, files, locks, releases

ROLLBACK_KEY = "rollback"
WITHDRAWN_KEY = "withdrawn"
LOCK_FILE = ".rollback.lock"
ROLLBACK_MID_COPY = "rollback-mid-copy"
"""Fault point: the staged rollback has its variables but no saved_model.pb yet."""


class RollbackError(RuntimeError):
    """The rollback cannot be done; the message says why and what to do."""


def withdrawn(manifest: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The withdrawn models a manifest records: [{version, model_fingerprint, at, reason}]."""
    entries = (manifest or {}).get(WITHDRAWN_KEY) or []
    return [entry for entry in entries if isinstance(entry, dict)]


@contextlib.contextmanager
def serving_dir_lock(serving_dir: str, what: str = "rollback") -> Iterator[None]:
    """Holds `<serving-dir>/.rollback.lock` (rollback, prune); object stores have no lock.

    Raises:
      RollbackError: another rollback or prune holds it.
    """
    if "://" in serving_dir:  # object stores: no lock (see the module docstring)
        yield
        return
    busy = (
        f"another rollback or prune is in progress on {serving_dir}; wait for it, then run "
        "`list` to see what it did"
    )
    try:
        with locks.exclusive(os.path.join(serving_dir, LOCK_FILE), busy):
            yield
    except locks.LockBusyError as error:
        raise RollbackError(f"{what} refused: {error}") from None


def _choose_target(
    found: list[releases.Release], to_version: int | None, served_fingerprint: str, gone: set[str]
) -> releases.Release:
    served = found[-1]
    if to_version is not None:
        matches = [release for release in found if release.version == to_version]
        if not matches:
            versions = ", ".join(str(release.version) for release in found)
            raise RollbackError(f"no release {to_version}; there are: {versions}")
        target = matches[0]
        fingerprint = releases.release_fingerprint(target)
        if fingerprint == served_fingerprint:
            raise RollbackError(
                f"release {to_version} holds the model served now (version {served.version}): "
                "nothing to roll back"
            )
        if fingerprint in gone:
            raise RollbackError(
                f"release {to_version}'s model was withdrawn by an earlier rollback; "
                "choose another with --to"
            )
        return target
    for candidate in reversed(found[:-1]):
        fingerprint = releases.release_fingerprint(candidate)
        if fingerprint != served_fingerprint and fingerprint not in gone:
            return candidate
    raise RollbackError(
        f"no earlier release holds another model than the one served now (version "
        f"{served.version}): nothing to roll back to"
    )


def _card_notice(record: dict[str, Any]) -> tuple[str, str]:
    """The rollback notice, as Markdown and as HTML, from the manifest's record."""
    text = (
        f"Rolled back: this release (version {record['version']}) serves version "
        f"{record['to_version']}'s model again. Version {record['from_version']} was "
        f"withdrawn at {record['at']}. Reason: {record['reason']}."
    )
    return f"> **{text}**\n\n", f'<p class="rollback"><strong>{text}</strong></p>\n'


def _stage(target: releases.Release, staged: str, manifest: dict[str, Any]) -> None:
    """Copies the target's model and documents, writes the new manifest, saved_model.pb last."""
    io_utils.copy_dir(target.path, staged, deny_regex_patterns=[r"saved_model\.pb"])
    releases.write_manifest(staged, manifest)
    markdown, html = _card_notice(manifest[ROLLBACK_KEY])
    card = os.path.join(staged, files.MODEL_CARD_MARKDOWN_FILE)
    if tf.io.gfile.exists(card):
        with tf.io.gfile.GFile(card) as source:
            body = source.read()
        with tf.io.gfile.GFile(card, "w") as out:
            out.write(markdown + body)
    card = os.path.join(staged, files.MODEL_CARD_HTML_FILE)
    if tf.io.gfile.exists(card):
        with tf.io.gfile.GFile(card) as source:
            body = source.read()
        head, tag, rest = body.partition("<body>")
        with tf.io.gfile.GFile(card, "w") as out:
            out.write(head + tag + html + rest if tag else html + body)
    faults.pause(ROLLBACK_MID_COPY)
    io_utils.copy_file(
        os.path.join(target.path, files.SAVED_MODEL_FILE),
        os.path.join(staged, files.SAVED_MODEL_FILE),
    )


def rollback(
    serving_dir: str,
    reason: str,
    to_version: int | None = None,
    now: datetime.datetime | None = None,
) -> releases.Release:
    """Releases an earlier model again as a new, higher version; returns the new release.

    Args:
      serving_dir: The serving directory (local or object store).
      reason: Why (recorded in the manifest and the model card).
      to_version: The release whose model to serve again (default: the newest
        earlier release holding another model that was not withdrawn).
      now: The rollback's time (default: now, UTC).

    Raises:
      RollbackError: fewer than two releases, no such version, the target
        fails verify (its verdict is in the message), or another rollback holds
        the lock.
    """
    if not reason.strip():
        raise RollbackError("say why with --reason: the manifest and model card record it")
    found = releases.list_releases(serving_dir)
    if len(found) < 2:
        raise RollbackError(f"{serving_dir} holds {len(found)} release(s): nothing to roll back to")
    with serving_dir_lock(serving_dir):
        found = releases.list_releases(serving_dir)  # as it is now that we hold the lock
        served = found[-1]
        served_manifest = releases.read_manifest(served.path) or {}
        served_fingerprint = releases.release_fingerprint(served)
        earlier = withdrawn(served_manifest)
        gone = {entry.get("model_fingerprint") for entry in earlier}
        target = _choose_target(found, to_version, served_fingerprint, gone)
        verdict = releases.verify_release(target)
        if not verdict.ok:
            raise RollbackError(
                f"release {target.version} fails verify, so it is not rolled back to: "
                f"{verdict.problem}"
            )
        staging_root = os.path.join(serving_dir, files.STAGING_DIR)
        if tf.io.gfile.isdir(staging_root):  # a killed rollback's copy: this run redoes it
            for name in tf.io.gfile.listdir(staging_root):
                if name.startswith("rollback-"):
                    tf.io.gfile.rmtree(os.path.join(staging_root, name.rstrip("/")))
        at = (now or datetime.datetime.now(datetime.UTC)).isoformat(timespec="seconds")
        version = max(int(datetime.datetime.now(datetime.UTC).timestamp()), served.version + 1)
        while tf.io.gfile.exists(os.path.join(serving_dir, str(version))):
            version += 1
        manifest = dict(releases.read_manifest(target.path) or {})
        manifest.update(version=version, released_at=at)
        manifest[ROLLBACK_KEY] = {
            "version": version,
            "from_version": served.version,
            "from_fingerprint": served_fingerprint,
            "to_version": target.version,
            "at": at,
            "reason": reason,
        }
        manifest[WITHDRAWN_KEY] = earlier + [
            {
                "version": served.version,
                "model_fingerprint": served_fingerprint,
                "at": at,
                "reason": reason,
            }
        ]
        staged = os.path.join(staging_root, f"rollback-{version}-{uuid.uuid4().hex[:12]}")
        _stage(target, staged, manifest)
        final = os.path.join(serving_dir, str(version))
        releases.move_into_place(staged, final)
        if tf.io.gfile.isdir(staging_root) and not tf.io.gfile.listdir(staging_root):
            tf.io.gfile.rmtree(staging_root)
        return releases.Release(version, final)
