"""Rollback on releases the Pusher's executor made (small fake SavedModels, real copies).

What is checked: the new version serves the earlier model (same fingerprint,
verify passes), its manifest and model card say what, to what, when and why;
the model rolled back from is withdrawn, so pushing it again releases nothing
and says why, while a new model is released and carries the withdrawal
forward; refusals (nothing to roll back to, a target failing verify, a
withdrawn target, no reason, another rollback holding the lock); a SIGKILL
mid-copy leaves no half release and the same command then completes it.
"""

import fcntl
import os
import signal
import subprocess
import sys

import pytest

from contract import faults, files, releases, rollback
from reporting import releases as releases_command
from tests.components.test_release_pusher import push, trained_model
from tests.conftest import PROJECT_ROOT


@pytest.fixture(autouse=True)
def no_fault_injection(monkeypatch):
    monkeypatch.delenv(faults.FAULT_ENV, raising=False)


@pytest.fixture
def two_releases(tmp_path):
    """A serving dir with release A (good) then release B (the bad one, served)."""
    serving = str(tmp_path / "serving")
    good = trained_model(tmp_path, "good", b"weights-good")
    bad = trained_model(tmp_path, "bad", b"weights-bad")
    push(tmp_path, serving, good)
    push(tmp_path, serving, bad)
    first, second = releases.list_releases(serving)
    return serving, first, second, good, bad


def test_rollback_serves_the_earlier_model_as_a_new_version_and_says_so(two_releases):
    serving, good_release, bad_release, _, _ = two_releases

    released = rollback.rollback(serving, "canary errors on 7s", now=None)

    assert releases.newest_release(serving) == released
    assert released.version > bad_release.version
    assert releases.model_fingerprint(released.path) == releases.model_fingerprint(
        good_release.path
    )
    assert releases.verify_release(released).ok
    manifest = releases.read_manifest(released.path)
    record = manifest[rollback.ROLLBACK_KEY]
    assert (record["from_version"], record["to_version"]) == (
        bad_release.version,
        good_release.version,
    )
    assert record["reason"] == "canary errors on 7s" and record["at"]
    assert manifest["lineage"] == releases.read_manifest(good_release.path)["lineage"]
    (withdrawn,) = manifest[rollback.WITHDRAWN_KEY]
    assert withdrawn["version"] == bad_release.version
    assert withdrawn["model_fingerprint"] == releases.release_fingerprint(bad_release)
    with open(os.path.join(released.path, files.MODEL_CARD_MARKDOWN_FILE)) as card:
        text = card.read()
    assert text.startswith(f"> **Rolled back: this release (version {released.version})")
    assert f"Version {bad_release.version} was withdrawn" in text
    with open(os.path.join(released.path, files.MODEL_CARD_HTML_FILE)) as card:
        assert '<p class="rollback">' in card.read()
    assert not os.path.exists(os.path.join(serving, files.STAGING_DIR))


def test_the_withdrawn_model_is_not_released_again_but_a_new_one_is(tmp_path, two_releases):
    serving, _, bad_release, _, bad = two_releases
    rolled = rollback.rollback(serving, "bad on 7s")

    again = push(tmp_path, serving, bad)  # e.g. a rerun with a cached Trainer

    assert again.get_int_custom_property("pushed") == 0
    reason = again.get_string_custom_property("reason")
    assert reason.startswith(f"withdrawn: this model was release {bad_release.version}")
    assert "bad on 7s" in reason
    assert releases.newest_release(serving) == rolled
    newer = push(tmp_path, serving, trained_model(tmp_path, "new", b"weights-new"))
    assert newer.get_int_custom_property("pushed") == 1
    newest = releases.newest_release(serving)
    carried = releases.read_manifest(newest.path)[rollback.WITHDRAWN_KEY]
    assert [entry["version"] for entry in carried] == [bad_release.version]
    assert push(tmp_path, serving, bad).get_int_custom_property("pushed") == 0


def test_list_marks_the_rollback_and_the_withdrawn_release(two_releases, capsys):
    serving, _, bad_release, _, _ = two_releases
    rolled = rollback.rollback(serving, "bad on 7s")
    rows = {row["version"]: row for row in releases_command.release_rows(serving)}
    assert rows[bad_release.version]["note"] == "withdrawn (rolled back)"
    assert rows[rolled.version]["served"] is True
    assert rows[rolled.version]["note"].startswith("rollback to ")


def test_refusals_name_the_reason(tmp_path, two_releases):
    serving, good_release, bad_release, _, _ = two_releases
    with pytest.raises(rollback.RollbackError, match="say why with --reason"):
        rollback.rollback(serving, " ")
    with pytest.raises(rollback.RollbackError, match="no release 99; there are"):
        rollback.rollback(serving, "r", to_version=99)
    with pytest.raises(rollback.RollbackError, match="holds the model served now"):
        rollback.rollback(serving, "r", to_version=bad_release.version)
    variables = os.path.join(good_release.path, "variables", "variables.data-00000-of-00001")
    original = open(variables, "rb").read()
    with open(variables, "wb") as out:
        out.write(b"tampered")
    with pytest.raises(
        rollback.RollbackError, match=f"release {good_release.version} fails verify"
    ):
        rollback.rollback(serving, "r")
    with open(variables, "wb") as out:
        out.write(original)
    rolled = rollback.rollback(serving, "r")
    with pytest.raises(rollback.RollbackError, match="was withdrawn by an earlier rollback"):
        rollback.rollback(serving, "r", to_version=bad_release.version)
    assert releases.newest_release(serving) == rolled
    single = str(tmp_path / "single")
    push(tmp_path, single, trained_model(tmp_path, "only", b"weights-only"))
    with pytest.raises(rollback.RollbackError, match="holds 1 release"):
        rollback.rollback(single, "r")


def test_a_second_rollback_while_one_holds_the_lock_says_why(two_releases):
    serving, _, bad_release, _, _ = two_releases
    with open(os.path.join(serving, rollback.LOCK_FILE), "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the other rollback, mid-copy
        with pytest.raises(
            rollback.RollbackError,
            match="rollback refused: another rollback or prune is in progress",
        ):
            rollback.rollback(serving, "r")
    assert releases.newest_release(serving) == bad_release


def _command(serving, *extra):
    return [
        sys.executable,
        "-m",
        "reporting.releases",
        "rollback",
        "--serving-dir",
        serving,
        "--reason",
        "bad on 7s",
        *extra,
    ]


def test_sigkill_mid_copy_leaves_no_half_release_and_a_rerun_completes_it(two_releases):
    serving, good_release, bad_release, _, _ = two_releases
    env = {**os.environ, faults.FAULT_ENV: rollback.ROLLBACK_MID_COPY}
    process = subprocess.Popen(
        _command(serving), cwd=PROJECT_ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    line = process.stderr.readline()
    while line and faults.PAUSED_MESSAGE not in line:
        line = process.stderr.readline()
    assert faults.PAUSED_MESSAGE in line, "the rollback never reached its copy"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stderr.close()

    assert releases.newest_release(serving) == bad_release  # nothing half-released
    staged = os.listdir(os.path.join(serving, files.STAGING_DIR))
    assert len(staged) == 1 and staged[0].startswith("rollback-")

    env.pop(faults.FAULT_ENV)
    done = subprocess.run(
        _command(serving), cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"serves version {good_release.version}'s model" in done.stdout
    versions = [release.version for release in releases.list_releases(serving)]
    assert len(versions) == 3 and not os.path.exists(os.path.join(serving, files.STAGING_DIR))
    assert releases.verify_release(releases.newest_release(serving)).ok
    refused = subprocess.run(
        _command(serving, f"--to={bad_release.version}"),
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1 and "was withdrawn" in refused.stderr
