"""prune on releases the Pusher's executor made (small fake SavedModels, real removals).

What is checked: a dry run removes nothing and says what it would; --apply
removes exactly that and every kept release still verifies; the served
release and the one it is a rollback to always stay; a bad --keep, a run
holding the output directory and a rollback holding the serving directory
are each refused with the reason and remove nothing; what a killed prune
left staged is cleared by the next one; on an object store (TF's ram://)
a pruned version stops being a release.
"""

import fcntl
import os

import pytest

from contract import faults, files, locks, prune, releases, rollback
from reporting import releases as releases_command
from tests.components.test_release_pusher import push, trained_model


@pytest.fixture(autouse=True)
def no_fault_injection(monkeypatch):
    monkeypatch.delenv(faults.FAULT_ENV, raising=False)


def _serving_with(tmp_path, count):
    """`<out>/serving/mnist` (a local run's layout) with `count` releases of distinct models."""
    serving = str(tmp_path / "out" / "serving" / "mnist")
    for number in range(count):
        push(tmp_path, serving, trained_model(tmp_path, f"m{number}", f"w{number}".encode()))
    found = releases.list_releases(serving)
    assert len(found) == count
    return serving, found


def _versions(serving):
    return [released.version for released in releases.list_releases(serving)]


def test_a_dry_run_removes_nothing_and_says_what_it_would(tmp_path, capsys):
    serving, found = _serving_with(tmp_path, 4)

    code = releases_command.main(["prune", "--serving-dir", serving, "--keep", "2"])

    assert code == 0
    assert _versions(serving) == [released.version for released in found]
    out = capsys.readouterr().out
    assert f"{found[0].version}: would remove" in out and f"{found[1].version}: would remove" in out
    assert f"{found[3].version}: kept (served)" in out
    assert f"{found[2].version}: kept (one of the 2 newest)" in out
    assert "dry run: pass --apply to remove 2 release(s)" in out


def test_apply_removes_what_the_plan_says_and_the_rest_still_verify(tmp_path, capsys):
    serving, found = _serving_with(tmp_path, 4)
    planned = prune.plan(serving, 2)

    code = releases_command.main(["prune", "--serving-dir", serving, "--keep", "2", "--apply"])

    assert code == 0
    assert [released.version for released in planned.removed] == [r.version for r in found[:2]]
    assert _versions(serving) == [released.version for released in found[2:]]
    assert all(releases.verify_release(released).ok for released in releases.list_releases(serving))
    assert not os.path.exists(os.path.join(serving, files.STAGING_DIR)), "nothing left staged"
    assert f"{found[0].version}: removed" in capsys.readouterr().out
    # A second prune has nothing left to do.
    assert prune.prune(serving, 2).removed == []


def test_the_served_release_and_its_rollback_target_always_stay(tmp_path):
    serving, found = _serving_with(tmp_path, 3)
    rolled = rollback.rollback(serving, "bad on 7s", to_version=found[0].version)

    applied = prune.prune(serving, 1)

    assert _versions(serving) == [found[0].version, rolled.version]
    assert [r.version for r in applied.removed] == [found[1].version, found[2].version]
    assert dict((r.version, why) for r, why in applied.kept) == {
        found[0].version: "the served release is a rollback to it",
        rolled.version: "served",
    }
    # The withdrawn model stays withdrawn although its release is gone.
    newest = releases.read_manifest(releases.newest_release(serving).path)
    assert found[2].version in [entry["version"] for entry in newest[rollback.WITHDRAWN_KEY]]


def test_keep_below_one_is_refused_with_the_reason(tmp_path, capsys):
    serving, found = _serving_with(tmp_path, 2)

    code = releases_command.main(["prune", "--serving-dir", serving, "--keep", "0", "--apply"])

    assert code == 2
    assert "keep at least 1 (the served release always stays)" in capsys.readouterr().err
    assert _versions(serving) == [released.version for released in found]


def test_a_run_holding_the_output_dir_refuses_the_prune_and_nothing_goes(tmp_path, holder, capsys):
    run, output_dir = holder  # another process holding `tmp_path / "out"`, a run's lock
    serving, found = _serving_with(tmp_path, 3)
    assert prune.default_output_dir(serving) == str(output_dir)

    code = releases_command.main(["prune", "--serving-dir", serving, "--keep", "1", "--apply"])

    assert code == 1
    assert f"prune refused: another run (pid {run.pid}, started " in capsys.readouterr().err
    assert _versions(serving) == [released.version for released in found]
    run.kill()
    run.wait()
    # Once the run is gone the same prune goes ahead.
    assert len(prune.prune(serving, 1).removed) == 2


def test_a_prune_holds_the_run_lock_so_a_run_would_be_refused(tmp_path, monkeypatch):
    serving, _ = _serving_with(tmp_path, 2)
    seen = []
    remove = prune._remove

    def remove_while_checking(released, staging_root):
        with pytest.raises(locks.OutputDirBusyError) as busy:
            with locks.hold_output_dir(str(tmp_path / "out")):
                pass
        seen.append(str(busy.value))
        remove(released, staging_root)

    monkeypatch.setattr(prune, "_remove", remove_while_checking)
    prune.prune(serving, 1)

    assert seen and seen[0].startswith(f"another prune (pid {os.getpid()}, started ")


def test_a_rollback_holding_the_serving_dir_refuses_the_prune(tmp_path):
    serving, found = _serving_with(tmp_path, 3)
    with open(os.path.join(serving, rollback.LOCK_FILE), "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the rollback, mid-copy
        with pytest.raises(
            prune.PruneRefusedError, match="prune refused: another rollback or prune is in progress"
        ):
            prune.prune(serving, 1)
    assert _versions(serving) == [released.version for released in found]


def test_what_a_killed_prune_left_staged_is_cleared_and_is_no_release(tmp_path):
    serving, found = _serving_with(tmp_path, 3)
    staging_root = os.path.join(serving, files.STAGING_DIR)
    os.makedirs(staging_root)
    # Killed after the rename, before the delete: the version is gone, its copy staged.
    left = os.path.join(staging_root, f"{prune.PRUNED_PREFIX}{found[0].version}-dead")
    os.rename(found[0].path, left)
    assert _versions(serving) == [found[1].version, found[2].version]

    prune.prune(serving, 2)

    assert not os.path.exists(staging_root)
    assert _versions(serving) == [found[1].version, found[2].version]


def test_on_an_object_store_a_pruned_version_is_no_release(tmp_path):
    serving = "ram://prune-test/serving/mnist"
    for number in range(3):
        push(tmp_path, serving, trained_model(tmp_path, f"m{number}", f"w{number}".encode()))
    found = releases.list_releases(serving)
    assert prune.default_output_dir(serving) is None

    applied = prune.prune(serving, 1)

    assert [r.version for r in applied.removed] == [found[0].version, found[1].version]
    assert _versions(serving) == [found[2].version]
    assert releases.verify_release(releases.newest_release(serving)).ok
