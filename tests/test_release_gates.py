"""Release gates and audit, through the real pipeline on a small slice of MNIST.

Bad data enters by --extra-examples and must stop the run before training; a
model below the bar or worse than the released one must not be pushed; the
lineage command must trace the release back to the TFDS data.

All runs share one output dir, whose first run releases the baseline. Each
run is made by a module fixture that records what the tests check right
after it (exit code, output, summary, releases), so every test passes alone
and in any order: a test that reads a run depends on the fixture that makes
it, and a later run cannot change what an earlier one recorded.
"""

import contextlib
import dataclasses
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import local_runner
from components import example_export, tfds_mnist
from contract import features, releases
from reporting import lineage, metadata, run_summary

pytestmark = pytest.mark.e2e


def _versions(layout):
    path = layout.serving_model_dir
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def _count(store, type_name):
    return len(store.get_artifacts_by_type(type_name))


@dataclasses.dataclass(frozen=True)
class Released:
    """The first run, which releases the baseline, as it looked right after it."""

    layout: local_runner.OutputLayout
    versions: list[str]
    first_release: releases.Release
    summary: run_summary.RunSummary
    lineage_json: str
    """`lineage.py --json` of the release, before any later run."""
    example_gen_examples_id: int

    @property
    def output_dir(self) -> str:
        return self.layout.output_dir

    @property
    def metadata_path(self) -> str:
        return self.layout.metadata_path


@pytest.fixture(scope="module")
def released(tmp_path_factory, run_small_pipeline) -> Released:
    """A first run that releases a model: the baseline every later run meets."""
    output_dir = tmp_path_factory.mktemp("gates")
    assert run_small_pipeline(output_dir) == 0
    layout = local_runner.OutputLayout(str(output_dir))
    (first_release,) = releases.list_releases(layout.serving_model_dir)
    lineage_out = io.StringIO()
    with contextlib.redirect_stdout(lineage_out):
        assert lineage.main([f"--output-dir={output_dir}", "--json"]) == 0
    summary = run_summary.latest_run_summary(layout.metadata_path, "mnist")
    return Released(
        layout=layout,
        versions=_versions(layout),
        first_release=first_release,
        summary=summary,
        lineage_json=lineage_out.getvalue(),
        example_gen_examples_id=summary.component("MnistExampleGen").outputs["examples"].id,
    )


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """One more run on the released output dir, read right after it."""

    exit_code: int
    stdout: str
    stderr: str
    summary: run_summary.RunSummary
    models_before: int
    models_after: int
    versions_before: list[str]
    versions_after: list[str]


def _run_on(released: Released, run_small_pipeline, *flags: str) -> RunOutcome:
    store = metadata.connect(released.metadata_path)
    models_before, versions_before = _count(store, "Model"), _versions(released.layout)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        exit_code = run_small_pipeline(released.output_dir, *flags)
    store = metadata.connect(released.metadata_path)
    return RunOutcome(
        exit_code=exit_code,
        stdout=stdout.getvalue(),
        stderr=stderr.getvalue(),
        summary=run_summary.latest_run_summary(released.metadata_path, "mnist"),
        models_before=models_before,
        models_after=_count(store, "Model"),
        versions_before=versions_before,
        versions_after=_versions(released.layout),
    )


def _bad_digits(kind: str):
    images = np.zeros((5, 784), np.int64)
    images[:, 300:310] = 200
    labels = np.array([1, 2, 3, 4, 5])
    if kind == "pixel_300":
        images[:, 400] = 300
    elif kind == "783_pixels":
        images = images[:, :783]
    elif kind == "label_10":
        labels[2] = 10
    return example_export.DigitArrays(images, labels)


BAD_DATA = {
    # kind: (feature named in the error, anomaly kind named in the error)
    "pixel_300": ("image", "INT_TYPE_BIG_INT"),
    "783_pixels": ("image", "INVALID_FEATURE_SHAPE"),
    "no_label": ("label", "FEATURE_TYPE_LOW_FRACTION_PRESENT"),
    "label_10": ("label", "INT_TYPE_BIG_INT"),
}


def _write_bad_extra_examples(kind: str, extra_dir) -> None:
    records = example_export.encode_examples(
        _bad_digits(kind), features.IMAGE_KEY, None if kind == "no_label" else features.LABEL_KEY
    )
    if kind == "label_10":  # also exercises plain (uncompressed) TFRecord input
        extra_dir.mkdir()
        with tf.io.TFRecordWriter(str(extra_dir / "digits.tfrecord")) as writer:
            for record in records:
                writer.write(record)
    else:
        example_export.write_tfrecords(records, str(extra_dir))


@pytest.fixture(scope="module")
def bad_data_run(released, run_small_pipeline, tmp_path_factory):
    """Returns run(kind): the outcome of a run with that bad data, made once per kind."""
    outcomes: dict[str, RunOutcome] = {}

    def run(kind: str) -> RunOutcome:
        if kind not in outcomes:
            extra_dir = tmp_path_factory.mktemp(f"bad_{kind}") / "extra"
            _write_bad_extra_examples(kind, extra_dir)
            outcomes[kind] = _run_on(released, run_small_pipeline, f"--extra-examples={extra_dir}")
        return outcomes[kind]

    return run


@pytest.fixture(scope="module")
def unreachable_threshold_run(released, run_small_pipeline) -> RunOutcome:
    return _run_on(released, run_small_pipeline, "--accuracy-threshold=0.999")


@pytest.fixture(scope="module")
def worse_model_run(released, run_small_pipeline) -> RunOutcome:
    return _run_on(released, run_small_pipeline, "--epochs=1", "--accuracy-threshold=0.1")


@pytest.mark.parametrize("kind", sorted(BAD_DATA))
def test_bad_extra_examples_stop_the_run_before_training(kind, bad_data_run):
    outcome = bad_data_run(kind)
    assert outcome.exit_code == 1
    feature, anomaly_kind = BAD_DATA[kind]
    assert "data anomal" in outcome.stderr
    (line,) = [
        line for line in outcome.stderr.splitlines() if line.startswith(f"  [train] {feature}: ")
    ]
    assert anomaly_kind in line
    assert "Full report" in outcome.stderr and "ExampleValidator/anomalies" in outcome.stderr
    assert outcome.models_after == outcome.models_before, "nothing may be trained"
    assert outcome.versions_after == outcome.versions_before, "the release must stay untouched"
    assert outcome.summary.component("AnomalyGate").state == "failed"
    assert outcome.summary.component("Transform") is None


def test_unreachable_threshold_is_not_blessed_and_says_why(unreachable_threshold_run):
    outcome = unreachable_threshold_run
    assert outcome.exit_code == 2
    assert "Blessed: no" in outcome.stdout
    assert "sparse_categorical_accuracy value" in outcome.stdout
    assert "violates threshold >= 0.999" in outcome.stdout
    assert "Pushed: no" in outcome.stdout
    assert outcome.versions_after == outcome.versions_before


def test_worse_model_is_refused_by_the_baseline_comparison(worse_model_run):
    outcome = worse_model_run
    summary = outcome.summary
    assert outcome.exit_code == 2
    assert summary.test_accuracy > 0.1, "only the baseline comparison may refuse it"
    assert not summary.blessed and not summary.pushed
    assert "change vs. baseline" in outcome.stdout
    assert outcome.versions_after == outcome.versions_before


def test_summary_shows_the_three_weakest_digits(released):
    summary = released.summary
    assert len(summary.digit_accuracy) == 10
    weakest = summary.worst_digits()
    assert len(weakest) == 3
    others = set(summary.digit_accuracy) - set(weakest)
    assert max(summary.digit_accuracy[d] for d in weakest) <= min(
        summary.digit_accuracy[d] for d in others
    )
    assert summary.digit_accuracy[weakest[0]] == min(summary.digit_accuracy.values())
    assert f"weak digit {weakest[0]}:" in summary.render()


def test_lineage_traces_the_release_back_to_the_tfds_examples(released):
    chain = json.loads(released.lineage_json)
    stages = [step["stage"] for step in chain]
    assert stages == ["release", "blessing", "model", "transform_graph", "examples", "tfds_dataset"]
    assert chain[-1]["artifact_id"] == released.example_gen_examples_id
    assert chain[-1]["details"]["tfds_name"] == "mnist"
    assert chain[-1]["details"]["archive_sha256"] == tfds_mnist.registered_checksums()
    assert chain[0]["details"]["pushed_destination"].endswith(released.versions[0])
    assert chain[1]["details"]["blessed"] is True
    assert "SparseCategoricalAccuracy >= 0.5" in chain[1]["details"]["thresholds"]
    assert chain[2]["details"]["hyper_parameters"]["hidden_units"] == [50, 50]
    assert chain[2]["details"]["epochs_run"] == 3
    assert chain[4]["details"]["split_counts"]["train"] == 2500


def test_lineage_list_shows_refused_models_as_not_pushed_with_the_reason(
    released, unreachable_threshold_run, worse_model_run, bad_data_run, capsys
):
    for kind in BAD_DATA:
        bad_data_run(kind)
    assert lineage.main([f"--output-dir={released.output_dir}", "--list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["run_id"] == released.summary.run_id
    assert rows[0]["pushed"] and rows[0]["blessed"]
    refused = [row for row in rows if row["blessed"] is False]
    assert any("violates threshold >= 0.999" in row["reason"] for row in refused)
    assert any("change vs. baseline" in row["reason"] for row in refused)
    assert all(row["pushed"] is None for row in refused)
    stopped = [row for row in rows if "AnomalyGate failed" in row["reason"]]
    assert len(stopped) == len(BAD_DATA)


def test_new_data_trains_a_candidate_compared_with_the_release(
    released, run_small_pipeline, tmp_path, tfds_data_dir, mnist_dir
):
    builder = tfds_mnist.prepare_mnist(mnist_dir, tfds_data_dir)
    new_digits = example_export.load_tfds_split(builder, "train[3000:3200]")
    example_export.write_tfrecords(
        example_export.encode_examples(new_digits, features.IMAGE_KEY, features.LABEL_KEY),
        str(tmp_path),
    )
    store = metadata.connect(released.metadata_path)
    first_release = released.first_release

    run_small_pipeline(released.output_dir, f"--extra-examples={tmp_path}")

    summary = run_summary.latest_run_summary(released.metadata_path, "mnist")
    examples = summary.component("MnistExampleGen").outputs["examples"]
    counts = json.loads(examples.custom_properties["split_counts"].string_value)
    assert counts["extra_in_train"] == 200 and counts["train"] == 2700
    evaluator = summary.component("Evaluator")
    assert evaluator.state == "executed"
    (baseline,) = metadata.Lineage(store).inputs(_evaluator_execution_id(store))["baseline_model"]
    properties = baseline.custom_properties
    assert properties["has_release"].int_value == 1
    assert properties["release_version"].string_value == str(first_release.version)
    fingerprint = releases.model_fingerprint(first_release.path)
    assert properties["model_fingerprint"].string_value == fingerprint


def _evaluator_execution_id(store) -> int:
    run = max(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.id)
    return max(
        e.id
        for e in store.get_executions_by_context(run.id)
        if metadata._node_id(store, e.id, "mnist") == "Evaluator"
    )
