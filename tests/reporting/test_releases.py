"""`python -m reporting.releases verify`: verdicts and exit codes on a serving directory."""

import os
import subprocess
import sys

from contract import releases
from reporting import releases as releases_command
from tests.components.fake_saved_model import write_fake_saved_model
from tests.conftest import PROJECT_ROOT


def _release(serving, version, variables=b"weights-1") -> str:
    path = write_fake_saved_model(serving / str(version), variables)
    releases.write_manifest(
        path, {"version": version, "model_fingerprint": releases.model_fingerprint(path)}
    )
    return path


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
