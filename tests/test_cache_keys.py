"""Cache keys that see content: edits rerun what they affect, and only that.

The project is copied to a temp dir once and run from there; each test edits a
file *in that copy* and reruns from the same copy on the same output dir, so
only content changes, never a path (a copy at a new path would change the
keys through its paths alone and prove nothing). Every test restores what it
edited, so each passes alone and in any order.
"""

import contextlib
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from reporting import metadata, run_summary
from tests import expected
from tests.conftest import PROJECT_ROOT, SMALL_RUN_FLAGS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def project(tmp_path_factory, mnist_dir):
    """A copy of the project (code, schema, archives) and a first, good run from it."""
    root = tmp_path_factory.mktemp("project_copy")
    for name in ("contract", "components", "pipeline", "reporting", "schemas"):
        shutil.copytree(
            PROJECT_ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(PROJECT_ROOT / "local_runner.py", root)
    shutil.copytree(mnist_dir, root / "archives")
    output_dir = tmp_path_factory.mktemp("cache_keys_output")
    return root, output_dir


def _run(project, tfds_data_dir) -> subprocess.CompletedProcess:
    root, output_dir = project
    command = [
        sys.executable,
        "local_runner.py",
        f"--output-dir={output_dir}",
        f"--tfds-data-dir={tfds_data_dir}",
        f"--mnist-dir={root / 'archives'}",
        *SMALL_RUN_FLAGS,
    ]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)


def _states(project) -> dict[str, str]:
    _, output_dir = project
    summary = run_summary.latest_run_summary(str(output_dir / "metadata.db"), "mnist")
    return {c.node_id: c.state for c in summary.components}


@pytest.fixture(scope="module")
def good_run(project, tfds_data_dir):
    first = _run(project, tfds_data_dir)
    assert first.returncode == 0, first.stderr[-3000:]
    return project


@contextlib.contextmanager
def _edited(path: pathlib.Path, new_text: str):
    original = path.read_bytes()
    path.write_text(new_text)
    try:
        yield
    finally:
        path.write_bytes(original)


@contextlib.contextmanager
def _releases_kept_as_they_are(project):
    """Removes releases made inside the block: the next test meets the same baseline."""
    serving = project[1] / "serving" / "mnist"
    before = set(os.listdir(serving))
    try:
        yield
    finally:
        for name in set(os.listdir(serving)) - before:
            shutil.rmtree(serving / name)


def test_the_copy_runs_its_own_code(good_run):
    root, output_dir = good_run
    store = metadata.connect(str(output_dir / "metadata.db"))
    executions = store.get_executions()
    (transform,) = [e for e in executions if "preprocessing_fn" in e.custom_properties][:1]
    # User code by import path: run from the copy's directory, it imports the
    # copy's modules, whose hash keys the cache (the edit tests below rely on it).
    assert (
        transform.custom_properties["preprocessing_fn"].string_value
        == "pipeline.modules.transform.mnist_transform.preprocessing_fn"
    )
    assert len(transform.custom_properties["source_sha256"].string_value) == 64
    assert str(root) in executions[0].custom_properties["schema_file"].string_value


def test_nothing_changed_is_fully_cached(good_run, tfds_data_dir):
    result = _run(good_run, tfds_data_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert set(_states(good_run).values()) == {"cached"}


def test_an_edited_component_reruns_alone(good_run, tfds_data_dir):
    root, _ = good_run
    gate = root / "components" / "anomaly_gate.py"
    with _edited(gate, gate.read_text() + "\n# An edit that changes no behaviour.\n"):
        result = _run(good_run, tfds_data_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    states = _states(good_run)
    assert states["AnomalyGate"] == "executed"
    assert {node for node, state in states.items() if state != "cached"} == {"AnomalyGate"}
    assert set(states) == expected.COMPONENTS


def test_an_edited_shared_module_reruns_what_imports_it(good_run, tfds_data_dir):
    root, _ = good_run
    features = root / "contract" / "features.py"
    with _edited(features, features.read_text() + "\n# An edit that changes no behaviour.\n"):
        with _releases_kept_as_they_are(good_run):
            result = _run(good_run, tfds_data_dir)
    # The retrained model meets the released one as its baseline: released (0) or,
    # if this retraining came out worse, refused (2); never a failed run.
    assert result.returncode in (0, 2), result.stderr[-3000:]
    states = _states(good_run)
    assert states["Pusher"] == "executed"
    # The feature and split names are the contract of the data side too: MnistExampleGen
    # and the user code import contract.features, so everything from the examples on
    # reruns; CuratedSchemaGen reads only the schema file and its own code.
    assert {node for node, state in states.items() if state == "cached"} == {"ImportSchemaGen"}
    assert states["MnistExampleGen"] == states["Trainer"] == "executed"


def test_a_tightened_schema_stops_the_rerun_at_the_anomaly_gate(good_run, tfds_data_dir):
    root, _ = good_run
    schema = root / "schemas" / "schema.pbtxt"
    text = schema.read_text()
    assert "max: 9" in text
    with _edited(schema, text.replace("max: 9", "max: 8")):
        result = _run(good_run, tfds_data_dir)
    assert result.returncode == 1
    assert "[train] label: INT_TYPE_BIG_INT" in result.stderr
    states = _states(good_run)
    assert states["ImportSchemaGen"] == "executed" and states["AnomalyGate"] == "failed"
    assert "Transform" not in states


def test_a_replaced_archive_fails_the_rerun_naming_it(good_run, tfds_data_dir):
    root, _ = good_run
    archive = root / "archives" / "t10k-labels-idx1-ubyte.gz"
    original = archive.read_bytes()
    data = bytearray(original)
    data[200:205] = b"xxxxx"
    archive.write_bytes(bytes(data))
    try:
        result = _run(good_run, tfds_data_dir)
    finally:
        archive.write_bytes(original)
    assert result.returncode == 1
    assert f"MNIST archive {archive} has SHA-256" in result.stderr
    assert "sha256sum -c SHA256SUMS" in result.stderr
    assert _states(good_run)["MnistExampleGen"] == "failed"
