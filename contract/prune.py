"""Retention for a serving directory: removes old releases, never the ones still needed.

`plan(serving_dir, keep)` says what would go: every release except the
`keep` newest, the served one (the highest version, always kept) and the
release the served one is a rollback to (its provenance: a rollback copies
it). `prune(..., apply=True)` removes them, holding two locks so that
nothing else changes the serving directory meanwhile: the output
directory's run lock (`<output-dir>/.lock`: no local run starts or pushes
while a prune runs, and a prune is refused while a run holds it) and the
serving directory's lock that rollback holds.

A local release is first renamed into `.staging/pruned-...` (one atomic step:
a model server sees the version whole or not at all), then deleted; a
prune killed between the two leaves only the staged copy, which the next
prune or local run removes. On object stores `saved_model.pb` is deleted
first (a version directory without it is no release, for TF Serving and for
`releases.list_releases`), then the rest. Object stores have no locks: there,
prune only when no run is pushing.
"""

import contextlib
import dataclasses
import os
import uuid

import tensorflow as tf

from contract import files, locks, releases, rollback

PRUNED_PREFIX = "pruned-"


class PruneError(RuntimeError):
    """The prune cannot be done; the message says why and what to do."""


class PruneRefusedError(PruneError):
    """A run, a rollback or another prune holds a lock the prune needs."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a prune keeps (each with why) and removes, oldest first."""

    kept: list[tuple[releases.Release, str]]
    removed: list[releases.Release]


def _rollback_target(served: releases.Release) -> int | None:
    try:
        manifest = releases.read_manifest(served.path) or {}
    except ValueError:  # unreadable JSON: no rollback recorded that we can honour
        return None
    record = manifest.get(rollback.ROLLBACK_KEY) or {}
    return record.get("to_version")


def plan(serving_dir: str, keep: int) -> Plan:
    """What `prune --keep keep` would remove from `serving_dir`.

    Raises:
      PruneError: `keep` < 1.
    """
    if keep < 1:
        raise PruneError(f"--keep {keep}: keep at least 1 (the served release always stays)")
    found = releases.list_releases(serving_dir)
    if not found:
        return Plan([], [])
    why: dict[int, str] = {}
    served = found[-1]
    why[served.version] = "served"
    target = _rollback_target(served)
    if target is not None:
        why.setdefault(target, "the served release is a rollback to it")
    for released in found[-keep:]:
        why.setdefault(released.version, f"one of the {keep} newest")
    kept = [(released, why[released.version]) for released in found if released.version in why]
    removed = [released for released in found if released.version not in why]
    return Plan(kept, removed)


def default_output_dir(serving_dir: str) -> str | None:
    """The local run's output directory that holds `serving_dir` (`<X>/serving/<name>` -> X)."""
    if "://" in serving_dir:
        return None
    parent = os.path.dirname(os.path.abspath(serving_dir))
    return os.path.dirname(parent) if os.path.basename(parent) == "serving" else None


def _remove(released: releases.Release, staging_root: str) -> None:
    if "://" in released.path:
        tf.io.gfile.remove(os.path.join(released.path, files.SAVED_MODEL_FILE))
        tf.io.gfile.rmtree(released.path)
        return
    os.makedirs(staging_root, exist_ok=True)
    name = f"{PRUNED_PREFIX}{released.version}-{uuid.uuid4().hex[:12]}"
    doomed = os.path.join(staging_root, name)
    os.rename(released.path, doomed)
    tf.io.gfile.rmtree(doomed)


def _clear_pruned(staging_root: str) -> None:
    """Removes what a killed prune left staged; leaves the staging root if others use it."""
    if not tf.io.gfile.isdir(staging_root):
        return
    for name in tf.io.gfile.listdir(staging_root):
        if name.startswith(PRUNED_PREFIX):
            tf.io.gfile.rmtree(os.path.join(staging_root, name.rstrip("/")))
    if not tf.io.gfile.listdir(staging_root):
        tf.io.gfile.rmtree(staging_root)


def prune(serving_dir: str, keep: int, output_dir: str | None = None) -> Plan:
    """Removes what `plan(serving_dir, keep)` says, under the locks; returns the plan it applied.

    Args:
      serving_dir: The serving directory (local or object store).
      keep: How many of the newest releases stay (>= 1).
      output_dir: The local run's output directory whose run lock to hold
        (default: inferred from `<output-dir>/serving/<name>`; none for object
        stores or a serving directory outside an output directory).

    Raises:
      PruneError: `keep` < 1.
      PruneRefusedError: a run holds the output directory, or a rollback or
        another prune holds the serving directory.
    """
    plan(serving_dir, keep)  # a bad --keep fails before any lock
    output_dir = output_dir or default_output_dir(serving_dir)
    try:
        with _run_lock(output_dir), rollback.serving_dir_lock(serving_dir, "prune"):
            staging_root = os.path.join(serving_dir, files.STAGING_DIR)
            _clear_pruned(staging_root)
            applied = plan(serving_dir, keep)  # as it is now that we hold the locks
            for released in applied.removed:
                _remove(released, staging_root)
            _clear_pruned(staging_root)
            return applied
    except locks.OutputDirBusyError as error:
        raise PruneRefusedError(f"prune refused: {error}") from None
    except rollback.RollbackError as error:
        raise PruneRefusedError(str(error)) from None


def _run_lock(output_dir: str | None):
    if output_dir is None or not os.path.isdir(output_dir):
        return contextlib.nullcontext()
    return locks.hold_output_dir(output_dir, by="prune")
