"""Two real pipeline runs at once into one PostgreSQL ML Metadata store (small slice).

The store is created once (init-store); then two `local_runner.py` processes
with their own output directories and pipeline names run side by side into
it. Both must finish and release, every component of each executed by its
own run (nothing cached from the other's); the store then holds both runs,
and each run's lineage and report are its own (the other's run id and
output directory appear in neither).
"""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from contract import releases
from contract.layout import OutputLayout
from reporting import lineage, run_summary
from reporting import metadata as metadata_command
from tests import expected
from tests.conftest import PROJECT_ROOT, SMALL_RUN_FLAGS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def two_runs(postgres, tmp_path_factory, tfds_data_dir, mnist_dir):
    url = postgres.database(f"team_{uuid.uuid4().hex[:8]}")
    assert metadata_command.main(["init-store", "--metadata", url]) == 0
    root = tmp_path_factory.mktemp("shared_metadata")
    started = time.monotonic()
    processes = {
        name: subprocess.Popen(
            [
                sys.executable,
                "local_runner.py",
                f"--output-dir={root / name}",
                f"--tfds-data-dir={tfds_data_dir}",
                f"--mnist-dir={mnist_dir}",
                f"--metadata={url}",
                f"--pipeline-name=team-{name}",
                *SMALL_RUN_FLAGS,
            ],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("alice", "bob")
    }
    outputs = {name: process.communicate(timeout=1500)[0] for name, process in processes.items()}
    seconds = round(time.monotonic() - started, 1)
    codes = {name: process.returncode for name, process in processes.items()}
    return url, root, outputs, codes, seconds


def _run_id(output: str) -> str:
    return output.split("MNIST pipeline run ", 1)[1].split()[0]


def test_both_runs_finish_and_each_releases_into_its_own_serving_dir(two_runs):
    _, root, outputs, codes, seconds = two_runs
    print(f"two small runs side by side into one PostgreSQL store: {seconds} s")
    for name in ("alice", "bob"):
        assert codes[name] == 0, outputs[name][-3000:]
        assert len(releases.list_releases(OutputLayout(str(root / name)).serving_model_dir)) == 1
        assert "mlmd-test" not in outputs[name], "the password is never printed"
        assert f"metadata     {two_runs[0].replace(':mlmd-test', '')}" in outputs[name]


def test_the_store_holds_both_runs_and_each_lineage_is_its_own(two_runs, capsys):
    url, root, outputs, _, _ = two_runs
    assert lineage.main(["--list", "--json", "--metadata", url]) == 0
    listed = {row["run_id"]: row for row in json.loads(capsys.readouterr().out)}
    ids = {name: _run_id(outputs[name]) for name in ("alice", "bob")}
    assert set(ids.values()) <= set(listed)
    for name in ("alice", "bob"):
        assert listed[ids[name]]["pipeline"] == f"team-{name}"
        assert (
            lineage.main(["--list", "--json", "--metadata", url, f"--pipeline-name=team-{name}"])
            == 0
        )
        assert [row["run_id"] for row in json.loads(capsys.readouterr().out)] == [ids[name]]
        summary = run_summary.latest_run_summary(url, f"team-{name}", ids[name])
        states = {component.node_id: component.state for component in summary.components}
        assert set(states) == expected.COMPONENTS
        assert set(states.values()) == {"executed"}, f"{name}: nothing cached from the other"
    for name, other in (("alice", "bob"), ("bob", "alice")):
        released = releases.newest_release(OutputLayout(str(root / name)).serving_model_dir)
        assert listed[ids[name]]["pushed"], listed[ids[name]]
        assert lineage.main(["--metadata", url, "--model", released.path, "--json"]) == 0
        chain = json.loads(capsys.readouterr().out)
        uris = [step["uri"] for step in chain if step["uri"]]
        assert uris and all(str(root / other) not in uri for uri in uris)
        assert any(uri.startswith(str(root / name)) for uri in uris)


def test_each_report_is_its_own_run(two_runs):
    _, root, outputs, _, _ = two_runs
    for name, other in (("alice", "bob"), ("bob", "alice")):
        report = open(os.path.join(root, name, "reports", "latest", "index.html")).read()
        assert _run_id(outputs[name]) in report
        assert _run_id(outputs[other]) not in report
