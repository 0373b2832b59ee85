"""`python -m reporting.releases list / verify`: rows, verdicts and exit codes on a serving dir."""

import json
import os
import subprocess
import sys

from contract import releases
from reporting import releases as releases_command
from tests.components.fake_saved_model import write_fake_saved_model
from tests.conftest import PROJECT_ROOT


def _release(serving, version, variables=b"weights-1", **fields) -> str:
    path = write_fake_saved_model(serving / str(version), variables)
    releases.write_manifest(
        path,
        {"version": version, "model_fingerprint": releases.model_fingerprint(path), **fields},
    )
    return path


def test_list_shows_each_release_from_its_manifest_and_marks_the_served_one(tmp_path, capsys):
    _release(
        tmp_path,
        10,
        released_at="2026-12-01T10:00:00+00:00",
        test_accuracy=0.97291,
        pipeline_run_id="run-a",
        data={"spans": None},
    )
    _release(
        tmp_path,
        20,
        b"weights-2",
        released_at="2026-12-02T10:00:00+00:00",
        test_accuracy=0.9758,
        pipeline_run_id="run-b",
        baseline={"version": 10},
        data={"spans": {"window": [1, 2]}},
    )
    write_fake_saved_model(tmp_path / "30", b"weights-3")  # released by hand: no manifest
    (tmp_path / "7x").mkdir()  # not a version: TF Serving ignores it, so does list

    assert releases_command.main(["list", "--serving-dir", str(tmp_path)]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.split() == list(releases_command.LIST_COLUMNS)
    assert [line.split() for line in lines] == [
        ["10", "2026-12-01T10:00:00+00:00", "0.9729", "MNIST", "only", "-", "run-a"],
        ["20", "2026-12-02T10:00:00+00:00", "0.9758", "1,2", "10", "run-b"],
        ["30", "-", "-", "-", "-", "-", "served", "no", "manifest"],
    ]

    assert releases_command.main(["list", "--serving-dir", str(tmp_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["version"], row["served"], row["baseline"]) for row in rows] == [
        (10, False, None),
        (20, False, 10),
        (30, True, None),
    ]
    assert rows[1]["spans"] == [1, 2] and rows[2]["note"] == "no manifest"


def test_list_names_an_unreadable_manifest_and_an_empty_serving_dir(tmp_path, capsys):
    assert releases_command.main(["list", "--serving-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"{tmp_path} holds no release\n"
    path = _release(tmp_path, 5)
    with open(releases.manifest_path(path), "w") as out:
        out.write("{not json")
    assert releases_command.main(["list", "--serving-dir", str(tmp_path)]) == 0
    (line,) = capsys.readouterr().out.splitlines()[1:]
    assert line.split()[0] == "5" and line.endswith("served  manifest unreadable")


def test_verify_checks_the_newest_release_by_default(tmp_path, capsys):
    _release(tmp_path, 1)
    newest = _release(tmp_path, 2, b"weights-2")
    os.remove(releases.manifest_path(os.path.join(tmp_path, "1")))  # not checked by default
    assert releases_command.main(["verify", "--serving-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "2: ok\n"
    with open(os.path.join(newest, "variables", "variables.index"), "wb") as out:
        out.write(b"tampered")
    assert releases_command.main(["verify", "--serving-dir", str(tmp_path), "2"]) == 1
    assert "2: FAILED: the model files hash to" in capsys.readouterr().out


def test_verify_all_reports_every_release_and_fails_on_any(tmp_path, capsys):
    _release(tmp_path, 1)
    _release(tmp_path, 2, b"weights-2")
    os.remove(releases.manifest_path(os.path.join(tmp_path, "1")))
    assert releases_command.main(["verify", "--serving-dir", str(tmp_path), "--all"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("1: FAILED: no manifest at ") and out[1] == "2: ok"


def test_verify_says_when_there_is_nothing_to_check(tmp_path, capsys):
    assert releases_command.main(["verify", "--serving-dir", str(tmp_path)]) == 2
    assert "holds no release" in capsys.readouterr().err
    _release(tmp_path, 1)
    assert releases_command.main(["verify", "--serving-dir", str(tmp_path), "9"]) == 2
    assert "no release 9" in capsys.readouterr().err


def test_the_command_runs_as_a_module(tmp_path):
    _release(tmp_path, 3)
    done = subprocess.run(
        [sys.executable, "-m", "reporting.releases", "verify", "--serving-dir", str(tmp_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
    )
    assert (done.returncode, done.stdout) == (0, "3: ok\n"), done.stderr[-2000:]
    assert "cuda" not in done.stderr.lower()  # TensorFlow's start-up noise is kept out
