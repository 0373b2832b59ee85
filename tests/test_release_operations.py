"""Warm starts and the release commands on releases the real pipeline made (small slice).

One output dir, one chain of runs and commands, each a module fixture that
records what its tests check right after it:

1. `--warm-start` with no release yet: the Trainer trains from scratch and
   says so (training.json, model card); release A;
2. `--warm-start` again: WarmStartModel hands release A to the Trainer's
   `base_model`, which trains the short schedule from A's weights; release B;
3. `list` and `verify` on A and B (a tampered copy fails verify);
4. `rollback`: a new version C serves A's model, B is withdrawn;
5. the same run as 2 again: WarmStartModel is cached (the served model is
   still A's), so is the Trainer, whose model is B's: the Evaluator blesses it
   against C, and the Pusher refuses it as withdrawn;
6. `prune --keep 1`: B goes; A stays (C is a rollback to it), C is served.
"""

import os
import shutil

import pytest

import local_runner
from contract import releases, rollback
from reporting import releases as releases_command
from tests.test_spans import run_and_read

pytestmark = pytest.mark.e2e

WARM = ("--warm-start", "--warm-start-epochs=2")


def _training(serving, version):
    return releases.read_manifest(os.path.join(serving, str(version)))["training"]


def _card(serving, version):
    with open(os.path.join(serving, str(version), "assets.extra", "model_card.md")) as source:
        return source.read()


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("release_operations") / "out")


@pytest.fixture(scope="module")
def serving(output_dir):
    return local_runner.OutputLayout(output_dir).serving_model_dir


@pytest.fixture(scope="module")
def scratch(output_dir, run_small_pipeline):
    return run_and_read(run_small_pipeline, output_dir, "--warm-start")


@pytest.fixture(scope="module")
def warm(scratch, output_dir, run_small_pipeline):
    return run_and_read(run_small_pipeline, output_dir, *WARM)


@pytest.fixture(scope="module")
def rolled(warm, serving):
    return rollback.rollback(serving, "e2e: B misreads 7s")


@pytest.fixture(scope="module")
def again(rolled, output_dir, run_small_pipeline):
    return run_and_read(run_small_pipeline, output_dir, *WARM)


def test_a_warm_start_without_a_release_trains_from_scratch_and_says_so(scratch, serving):
    assert scratch.exit_code == 0, scratch.output[-3000:]
    (version,) = scratch.versions
    training = _training(serving, version)
    assert training["warm_start"]["from_version"] is None
    assert training["hyperparameters"]["max_epochs"] == 3, "the full schedule (--epochs=3)"
    assert "Warm start asked for, but there was no release yet" in _card(serving, version)


def test_a_warm_start_trains_the_short_schedule_from_the_served_release(scratch, warm, serving):
    assert warm.exit_code == 0, warm.output[-3000:]
    assert warm.states["WarmStartModel"] == "executed" and warm.states["Trainer"] == "executed"
    first, second = warm.versions
    training = _training(serving, second)
    first_manifest = releases.read_manifest(os.path.join(serving, str(first)))
    assert training["warm_start"] == {
        "from_version": first,
        "model_fingerprint": first_manifest["model_fingerprint"],
    }
    assert training["hyperparameters"]["max_epochs"] == 2 and training["epochs_run"] <= 2
    assert training["hyperparameters"]["warmup_epochs"] == 0
    assert f"Warm-started from release {first}'s weights" in _card(serving, second)
    manifest = releases.read_manifest(os.path.join(serving, str(second)))
    assert manifest["baseline"]["version"] == first, "the gates apply unchanged"


def test_list_and_verify_read_the_pipelines_releases(warm, serving, capsys, tmp_path):
    first, second = warm.versions
    rows = releases_command.release_rows(serving)
    assert [(row["version"], row["served"], row["baseline"]) for row in rows] == [
        (first, False, None),
        (second, True, first),
    ]
    assert all(row["spans"] == [] and row["test_accuracy"] > 0.5 for row in rows)
    assert releases_command.main(["verify", "--serving-dir", serving, "--all"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{first}: ok", f"{second}: ok"]
    # A tampered variable file, on a copy: verify says so with exit code 1.
    copy = str(tmp_path / "copy")
    shutil.copytree(serving, copy)
    variables = os.path.join(copy, str(second), "variables", "variables.data-00000-of-00001")
    with open(variables, "r+b") as out:
        out.write(b"\0\0\0\0")
    assert releases_command.main(["verify", "--serving-dir", copy]) == 1
    assert f"{second}: FAILED: the model files hash to" in capsys.readouterr().out


def test_a_rollback_serves_the_first_model_again_and_withdraws_the_second(warm, rolled, serving):
    first, second = warm.versions
    assert releases.newest_release(serving) == rolled
    assert releases.release_fingerprint(rolled) == releases.release_fingerprint(
        releases.Release(first, os.path.join(serving, str(first)))
    )
    rows = {row["version"]: row for row in releases_command.release_rows(serving)}
    assert rows[second]["note"] == "withdrawn (rolled back)"
    assert rows[rolled.version]["note"] == f"rollback to {first}: e2e: B misreads 7s"
    assert rows[rolled.version]["served"]


def test_the_withdrawn_model_is_not_released_again_by_a_cached_trainer(warm, rolled, again):
    _, second = warm.versions
    assert again.states["WarmStartModel"] == "cached", "the served model is still the first"
    assert again.states["Trainer"] == "cached", "so the Trainer's model is the withdrawn one"
    assert again.states["LatestRelease"] == "executed", "the baseline is the rollback"
    assert again.versions == [*warm.versions, rolled.version], "nothing new released"
    assert f"withdrawn: this model was release {second}" in again.output, again.output[-3000:]


def test_prune_keeps_the_served_release_and_its_rollback_target(warm, rolled, again, serving):
    first, second = warm.versions
    plan = releases_command.main(["prune", "--serving-dir", serving, "--keep", "1"])
    assert plan == 0 and len(releases.list_releases(serving)) == 3, "a dry run removes nothing"
    assert releases_command.main(["prune", "--serving-dir", serving, "--keep", "1", "--apply"]) == 0
    assert [released.version for released in releases.list_releases(serving)] == [
        first,
        rolled.version,
    ]
    assert releases_command.main(["verify", "--serving-dir", serving, "--all"]) == 0
    newest = releases.read_manifest(rolled.path)
    assert [entry["version"] for entry in newest[rollback.WITHDRAWN_KEY]] == [second]
