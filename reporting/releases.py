"""Operator commands on a serving directory (local path or object store).

    python -m reporting.releases list --serving-dir output/serving/mnist [--json]
    python -m reporting.releases verify --serving-dir output/serving/mnist [VERSION | --all]
    python -m reporting.releases rollback --serving-dir output/serving/mnist \
        --reason TEXT [--to VERSION]
    python -m reporting.releases prune --serving-dir output/serving/mnist --keep N [--apply]

`list` prints one row per release, oldest first, from each release's
manifest: version, release time, MNIST test accuracy, the spans it was
trained on, the baseline release it beat, the pipeline run that pushed it,
and which one a model server serves now (the highest version). A release
without a readable manifest is listed as such. `--json` prints the same rows
as JSON.

`rollback` releases an earlier model again as a new, higher version (the
one a model server then serves) and withdraws the model served until now
(`contract.rollback`): exit 0 when done, 1 when refused (the reason is
printed: nothing to roll back to, a target that fails verify, another
rollback in progress).

`prune` removes every release except the N newest, the served one and the
one the served release is a rollback to (`contract.prune`). Without
`--apply` it only prints what it would remove. It holds the output
directory's run lock (`<output-dir>/.lock`, the output directory inferred
from `<output-dir>/serving/<name>` or given with `--output-dir`) and the
rollback lock: exit 0 when done (or planned), 1 when refused (a run, a
rollback or another prune holds a lock), 2 on a bad `--keep`.

`verify` hashes a release again and compares it with the fingerprint its
manifest records (`contract.releases.verify_release`): the check the pipeline
does not repeat on every run, since it reads the whole model. Without a
version it checks the newest release (the one a model server serves).
Exit code 0 when every checked release holds what its manifest says, 1 when
one does not (each verdict is printed), 2 on a bad command line or no release.
"""

import argparse
import json
import os
import sys
import warnings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="every release, oldest first, from its manifest")
    listing.add_argument("--serving-dir", required=True, help="e.g. output/serving/mnist")
    listing.add_argument("--json", action="store_true", help="the rows as JSON")
    back = commands.add_parser("rollback", help="serve an earlier model again, as a new version")
    back.add_argument("--serving-dir", required=True, help="e.g. output/serving/mnist")
    back.add_argument("--reason", required=True, help="why (recorded in manifest and card)")
    back.add_argument(
        "--to", type=int, default=None, help="the release to serve again (default: the previous)"
    )
    prune = commands.add_parser("prune", help="remove old releases (dry run unless --apply)")
    prune.add_argument("--serving-dir", required=True, help="e.g. output/serving/mnist")
    prune.add_argument("--keep", type=int, required=True, help="how many newest releases stay")
    prune.add_argument("--apply", action="store_true", help="remove them (default: only say)")
    prune.add_argument(
        "--output-dir", default=None, help="whose run lock to hold (default: from --serving-dir)"
    )
    verify = commands.add_parser("verify", help="re-hash releases against their manifests")
    verify.add_argument("--serving-dir", required=True, help="e.g. output/serving/mnist")
    which = verify.add_mutually_exclusive_group()
    which.add_argument("version", nargs="?", type=int, help="a release version (default: newest)")
    which.add_argument("--all", action="store_true", help="every release, oldest first")
    return parser.parse_args(argv)


LIST_COLUMNS = ("version", "released_at", "test_accuracy", "spans", "baseline", "run", "served")
"""The table's columns; a note follows where there is one (rollbacks, withdrawn, no manifest)."""


def release_rows(serving_dir: str) -> list[dict]:
    """One row per release, oldest first (the columns of `list`); None where unknown."""
    from contract import releases  # TensorFlow: imported after __main__ quietened it

    found = releases.list_releases(serving_dir)
    newest_manifest = _manifest_or_none(releases, found[-1]) if found else None
    withdrawn = {entry.get("version") for entry in (newest_manifest or {}).get("withdrawn") or []}
    rows = []
    for released in found:
        try:
            manifest = releases.read_manifest(released.path)
        except (json.JSONDecodeError, UnicodeDecodeError):
            manifest = None
            note = "manifest unreadable"
        else:
            note = None if manifest is not None else "no manifest"
        manifest = manifest or {}
        rolled = manifest.get("rollback")
        if rolled:
            note = f"rollback to {rolled.get('to_version')}: {rolled.get('reason')}"
        if released.version in withdrawn:
            note = "withdrawn (rolled back)"
        spans = (manifest.get("data") or {}).get("spans") or {}
        baseline = manifest.get("baseline") or {}
        rows.append(
            {
                "version": released.version,
                "released_at": manifest.get("released_at"),
                "test_accuracy": manifest.get("test_accuracy"),
                # A manifest with data but no spans: trained on MNIST alone.
                "spans": spans.get("window") if spans else ([] if "data" in manifest else None),
                "baseline": baseline.get("version"),
                "run": manifest.get("pipeline_run_id"),
                "served": released is found[-1],
                "note": note,
            }
        )
    return rows


def _manifest_or_none(releases, released):
    try:
        return releases.read_manifest(released.path)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _cell(name: str, value) -> str:
    if name == "served":
        return "served" if value else ""
    if value is None:
        return "-"
    if name == "test_accuracy":
        return f"{value:.4f}"
    if name == "spans":
        return ",".join(str(number) for number in value) if value else "MNIST only"
    return str(value)


def list_command(serving_dir: str, as_json: bool) -> int:
    """Prints the releases as a table (or JSON); returns the exit code."""
    rows = release_rows(serving_dir)
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"{serving_dir} holds no release")
        return 0
    table = [list(LIST_COLUMNS)] + [
        [_cell(name, row[name]) for name in LIST_COLUMNS] + ([row["note"]] if row["note"] else [])
        for row in rows
    ]
    widths = [
        max(len(line[i]) for line in table if i < len(line)) for i in range(len(LIST_COLUMNS))
    ]
    for line in table:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(line[: len(LIST_COLUMNS)])]
        print("  ".join(cells + line[len(LIST_COLUMNS) :]).rstrip())
    return 0


def rollback_command(serving_dir: str, reason: str, to_version: int | None) -> int:
    """Rolls back; prints what it released (or why not); returns the exit code."""
    from contract import rollback  # TensorFlow: imported after __main__ quietened it

    try:
        released = rollback.rollback(serving_dir, reason, to_version)
    except rollback.RollbackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    from contract import releases

    record = releases.read_manifest(released.path)[rollback.ROLLBACK_KEY]
    print(
        f"rolled back: version {released.version} serves version {record['to_version']}'s "
        f"model; version {record['from_version']}'s model is withdrawn"
    )
    return 0


def prune_command(serving_dir: str, keep: int, apply: bool, output_dir: str | None) -> int:
    """Prints what the prune keeps and removes (or would); returns the exit code."""
    from contract import prune  # TensorFlow: imported after __main__ quietened it

    try:
        done = (
            prune.prune(serving_dir, keep, output_dir) if apply else prune.plan(serving_dir, keep)
        )
    except prune.PruneRefusedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except prune.PruneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for released, why in done.kept:
        print(f"{released.version}: kept ({why})")
    verb = "removed" if apply else "would remove"
    for released in done.removed:
        print(f"{released.version}: {verb}")
    if not done.removed:
        print("nothing to remove")
    elif not apply:
        print(f"dry run: pass --apply to remove {len(done.removed)} release(s)")
    return 0


def verify(serving_dir: str, version: int | None, every: bool) -> int:
    """Prints one verdict per checked release; returns the exit code."""
    from contract import releases  # TensorFlow: imported after __main__ quietened it

    found = releases.list_releases(serving_dir)
    if not found:
        print(f"error: {serving_dir} holds no release", file=sys.stderr)
        return 2
    if every:
        checked = found
    elif version is None:
        checked = found[-1:]
    else:
        checked = [release for release in found if release.version == version]
        if not checked:
            versions = ", ".join(str(release.version) for release in found)
            print(
                f"error: no release {version} in {serving_dir}; there are: {versions}",
                file=sys.stderr,
            )
            return 2
    failed = 0
    for released in checked:
        verdict = releases.verify_release(released)
        if verdict.ok:
            print(f"{verdict.version}: ok")
        else:
            failed += 1
            print(f"{verdict.version}: FAILED: {verdict.problem}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "list":
        return list_command(args.serving_dir, args.json)
    if args.command == "rollback":
        return rollback_command(args.serving_dir, args.reason, args.to)
    if args.command == "prune":
        return prune_command(args.serving_dir, args.keep, args.apply, args.output_dir)
    return verify(args.serving_dir, args.version, args.all)


if __name__ == "__main__":
    # Before TensorFlow loads: its C++ start-up lines and library notices are noise here.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=FutureWarning)
    sys.exit(main())
