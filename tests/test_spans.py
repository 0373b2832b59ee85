"""Continuous training through the real pipeline: spans arrive, the gates judge them.

One output dir and one spans folder on a small slice of MNIST (the spans are
TFDS train digits beyond the slice the base trains on):

1. span-1 (clean TFRecords) and span-2 (clean PNG digit folders): every
   component executes, one release records the window [1, 2] and its
   new-data test accuracy; the Examples carry TFX's `span` property;
2. nothing new: the whole run is cached, nothing is released;
3. span-3 with inverted digits and span-4 with 30% of its labels shuffled:
   the run stops at AnomalyGate before Transform (drift named with its
   distance and threshold, span-4 suspect), nothing is released, and the
   report shows the distances and span-4's worst examples;
4. those two retired to `_quarantine/`, span-5 with a truncated TFRecord:
   the run stops naming the file.

Each step is a module fixture that records what its tests check right after
it, so the tests pass alone and in any order.
"""

import contextlib
import dataclasses
import io
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

import local_runner
from components import example_export
from contract import features, files, releases
from reporting import metadata
from reporting import releases as releases_command
from tests import expected

pytestmark = pytest.mark.e2e

SPAN_SIZE = 1000
FLAGS = ("--span-accuracy-threshold=0.5",)


@dataclasses.dataclass(frozen=True)
class Step:
    """One run, as it looked right after it."""

    exit_code: int
    output: str
    versions: list[int]
    states: dict[str, str]
    report: str


def _digits(tfds_data_dir: str, number: int) -> example_export.DigitArrays:
    start = 10_000 + number * SPAN_SIZE
    builder = tfds.builder("mnist", data_dir=tfds_data_dir)
    data = tfds.as_numpy(
        builder.as_dataset(split=f"train[{start}:{start + SPAN_SIZE}]", batch_size=-1)
    )
    return example_export.DigitArrays(
        data["image"].reshape(SPAN_SIZE, -1).astype(np.int64), data["label"].astype(np.int64)
    )


def _write_tfrecords(span_dir, digits) -> str:
    os.makedirs(span_dir)
    path = os.path.join(span_dir, "part-0.tfrecord.gz")
    with tf.io.TFRecordWriter(path, options=files.TFRECORD_COMPRESSION) as writer:
        for record in example_export.encode_examples(
            digits, features.IMAGE_KEY, features.LABEL_KEY
        ):
            writer.write(record)
    return path


def _write_pngs(span_dir, digits) -> None:
    for index, (pixels, label) in enumerate(zip(digits.images, digits.labels, strict=True)):
        folder = os.path.join(span_dir, str(int(label)))
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(pixels.reshape(28, 28).astype(np.uint8)).save(f"{folder}/{index}.png")


def run_and_read(run_small_pipeline, output_dir, *flags: str) -> Step:
    """Runs the small pipeline with `flags`; returns how the run and the output dir look after."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        exit_code = run_small_pipeline(output_dir, *flags)
    layout = local_runner.OutputLayout(output_dir)
    store = metadata.connect(layout.metadata_path)
    context = metadata.run_context(store)
    states = {run.node_id: run.state for run in metadata.component_runs(store, context.id, "mnist")}
    report_path = os.path.join(output_dir, "reports", "latest", "index.html")
    report = open(report_path).read() if os.path.exists(report_path) else ""
    versions = [release.version for release in releases.list_releases(layout.serving_model_dir)]
    return Step(exit_code, out.getvalue(), versions, states, report)


def _run(run_small_pipeline, output_dir, spans_dir) -> Step:
    return run_and_read(run_small_pipeline, output_dir, f"--spans-dir={spans_dir}", *FLAGS)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("spans_e2e")
    return str(root / "out"), str(root / "spans")


@pytest.fixture(scope="module")
def first(folders, tfds_data_dir, run_small_pipeline):
    output_dir, spans_dir = folders
    _write_tfrecords(os.path.join(spans_dir, "span-1"), _digits(tfds_data_dir, 1))
    _write_pngs(os.path.join(spans_dir, "span-2"), _digits(tfds_data_dir, 2))
    return _run(run_small_pipeline, output_dir, spans_dir)


@pytest.fixture(scope="module")
def unchanged(first, folders, run_small_pipeline):
    return _run(run_small_pipeline, *folders)


@pytest.fixture(scope="module")
def bad_spans(unchanged, folders, tfds_data_dir, run_small_pipeline):
    _, spans_dir = folders
    inverted = _digits(tfds_data_dir, 3)
    inverted = example_export.DigitArrays(
        features.MAX_PIXEL_VALUE - inverted.images, inverted.labels
    )
    _write_tfrecords(os.path.join(spans_dir, "span-3"), inverted)
    shuffled = _digits(tfds_data_dir, 4)
    rng = np.random.RandomState(4)
    chosen = rng.choice(SPAN_SIZE, size=SPAN_SIZE * 3 // 10, replace=False)
    labels = shuffled.labels.copy()
    labels[chosen] = rng.permutation(labels[chosen])
    _write_tfrecords(
        os.path.join(spans_dir, "span-4"), example_export.DigitArrays(shuffled.images, labels)
    )
    return _run(run_small_pipeline, *folders)


@pytest.fixture(scope="module")
def corrupt(bad_spans, folders, tfds_data_dir, run_small_pipeline):
    _, spans_dir = folders
    for number in (3, 4):
        shutil.move(
            os.path.join(spans_dir, f"span-{number}"),
            os.path.join(spans_dir, "_quarantine", f"span-{number}"),
        )
    path = _write_tfrecords(os.path.join(spans_dir, "span-5"), _digits(tfds_data_dir, 5))
    data = open(path, "rb").read()
    with open(path, "wb") as out:
        out.write(data[: len(data) * 2 // 3])
    return _run(run_small_pipeline, *folders), path


def test_new_spans_run_every_component_and_one_release_records_them(first, folders):
    assert first.exit_code == 0, first.output[-3000:]
    assert first.states == {name: "executed" for name in expected.SPAN_COMPONENTS}
    (version,) = first.versions
    manifest = releases.read_manifest(os.path.join(folders[0], "serving", "mnist", str(version)))
    assert manifest["data"]["spans"]["window"] == [1, 2]
    assert manifest["data"]["spans"]["present"] == [1, 2]
    counts = manifest["data"]["spans"]["counts"]
    assert counts["1"] == {"train": 700, "eval": 100, "test": 200}
    assert manifest["data"]["split_counts"]["span_test"] == 400
    assert 0.5 <= manifest["span_test"]["test_accuracy"] <= 1.0
    assert manifest["drift"]["verdict"] == "no release yet: nothing to compare with"
    assert manifest["data"]["statistics_uri"]


def test_the_releases_list_shows_the_span_release_as_served(first, folders):
    serving = os.path.join(folders[0], "serving", "mnist")
    (row,) = releases_command.release_rows(serving)
    manifest = releases.read_manifest(os.path.join(serving, str(row["version"])))
    assert row["version"] == first.versions[0] and row["served"] is True
    assert row["spans"] == [1, 2] and row["baseline"] is None
    assert row["test_accuracy"] == manifest["test_accuracy"] > 0.5
    assert row["run"] == manifest["pipeline_run_id"] and row["run"]


def test_the_examples_carry_tfx_span_property(first, folders):
    assert first.exit_code == 0
    store = metadata.connect(local_runner.OutputLayout(folders[0]).metadata_path)
    (examples,) = [
        artifact
        for artifact in store.get_artifacts_by_type("Examples")
        if artifact.properties["span"].int_value
    ]
    assert examples.properties["span"].int_value == 2
    assert examples.custom_properties["span_window"].string_value == "[1, 2]"


def test_no_new_span_is_a_fully_cached_run_that_releases_nothing(first, unchanged):
    assert unchanged.exit_code == 0, unchanged.output[-3000:]
    assert unchanged.states == {name: "cached" for name in expected.SPAN_COMPONENTS}
    assert unchanged.versions == first.versions


def test_drift_and_suspect_labels_stop_the_run_before_transform(unchanged, bad_spans):
    assert bad_spans.exit_code == 1
    assert "Pipeline stopped: The new spans [1, 2, 3, 4] drifted" in bad_spans.output
    assert "span-3, image: Jensen-Shannon divergence" in bad_spans.output
    assert "> threshold 0.1000" in bad_spans.output
    assert "span-4:" in bad_spans.output and "Suspect labels" in bad_spans.output
    assert bad_spans.states["AnomalyGate"] == "failed"
    assert bad_spans.states["DriftCheck"] == bad_spans.states["LabelCheck"] == "executed"
    assert "Transform" not in bad_spans.states
    assert bad_spans.versions == unchanged.versions


def test_the_report_shows_the_distances_and_the_suspect_spans_worst_examples(bad_spans):
    assert bad_spans.exit_code == 1
    assert "Jensen-Shannon divergence" in bad_spans.report
    assert "span-4: the disagreements the served model is surest of" in bad_spans.report
    assert bad_spans.report.count('class="suspect"') >= 8  # span-3 (inverted) and span-4
    assert "Release history" in bad_spans.report


def test_a_truncated_span_file_stops_the_run_naming_the_file(bad_spans, corrupt):
    step, path = corrupt
    assert step.exit_code == 1
    assert f"{path}: not a readable TFRecord file" in step.output
    assert step.states["MnistExampleGen"] == "failed"
    assert step.versions == bad_spans.versions
