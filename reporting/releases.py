"""Operator commands on a serving directory (local path or object store).

    python -m reporting.releases verify --serving-dir output/serving/mnist [VERSION | --all]

`verify` hashes a release again and compares it with the fingerprint its
manifest records (`contract.releases.verify_release`): the check the pipeline
does not repeat on every run, since it reads the whole model. Without a
version it checks the newest release (the one a model server serves).
Exit code 0 when every checked release holds what its manifest says, 1 when
one does not (each verdict is printed), 2 on a bad command line or no release.
"""

import argparse
import os
import sys
import warnings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="re-hash releases against their manifests")
    verify.add_argument("--serving-dir", required=True, help="e.g. output/serving/mnist")
    which = verify.add_mutually_exclusive_group()
    which.add_argument("version", nargs="?", type=int, help="a release version (default: newest)")
    which.add_argument("--all", action="store_true", help="every release, oldest first")
    return parser.parse_args(argv)


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
    return verify(args.serving_dir, args.version, args.all)


if __name__ == "__main__":
    # Before TensorFlow loads: its C++ start-up lines and library notices are noise here.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=FutureWarning)
    sys.exit(main())
