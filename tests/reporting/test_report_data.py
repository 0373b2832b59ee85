"""report_data.gather on a real small run: it shows what ML Metadata and the artifacts hold."""

import numpy as np
import pytest
import tensorflow as tf

from components import error_gallery
from contract import artifacts, features, releases
from pipeline.config import OutputLayout
from reporting import report_data
from tests.expected import COMPONENTS


@pytest.fixture(scope="module")
def released(released_run) -> report_data.ReportData:
    return report_data.gather(released_run)


def test_a_released_run_has_data_for_every_section(released):
    assert released.unavailable == {}
    assert {component.node_id for component in released.components} == COMPONENTS
    assert {component.state for component in released.components} == {"executed"}


def test_the_outcome_is_the_release_in_the_serving_dir(released, released_run):
    serving_dir = OutputLayout(released_run).serving_model_dir
    (only,) = releases.list_releases(serving_dir)
    outcome = released.outcome
    assert outcome.status == report_data.RELEASED
    assert outcome.release_version == str(only.version)
    assert outcome.release_dir == only.path
    assert str(only.version) in outcome.headline


def test_confusion_counts_every_test_digit_and_agrees_with_the_predict_pass(released):
    confusion = np.array(released.quality.confusion)
    assert confusion.shape == (features.NUM_CLASSES, features.NUM_CLASSES)
    assert confusion.sum() == released.data.split_counts["test"] == 1000
    assert released.predictions.examples == 1000
    # TFMA (serving graph via transform_features) and the predict signature agree exactly.
    assert released.predictions.wrong == confusion.sum() - np.trace(confusion)
    assert set(released.quality.digit_accuracy) == set(range(features.NUM_CLASSES))
    assert not released.quality.has_baseline, "a first release has no baseline"


def test_the_mistakes_are_wrong_and_most_confident_first(released):
    mistakes = released.predictions.mistakes
    assert len(mistakes) == min(error_gallery.MISTAKES_SHOWN, released.predictions.wrong) > 0
    assert all(mistake.label != mistake.predicted for mistake in mistakes)
    probabilities = [mistake.probability for mistake in mistakes]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0 < p <= 1 for p in probabilities)
    assert all(mistake.pixels.shape == (features.NUM_PIXELS,) for mistake in mistakes)


def test_training_history_has_every_epoch_and_the_kept_one(released):
    training = released.training
    assert training.epochs_run == 3
    assert 1 <= training.best_epoch <= training.epochs_run
    assert {"loss", "val_loss", "accuracy", "val_accuracy", "learning_rate"} <= set(
        training.metrics
    )
    assert all(len(values) == training.epochs_run for values in training.metrics.values())


def test_data_profile_counts_each_split_and_averages_the_train_digits(released):
    data = released.data
    assert set(data.label_counts) == {"train", "eval", "test"}
    for split, counts in data.label_counts.items():
        assert sum(counts) == data.split_counts[split]
    means = data.mean_images
    assert means.shape == (features.NUM_CLASSES, features.NUM_PIXELS)
    assert 0 <= means.min() and means.max() <= features.MAX_PIXEL_VALUE
    assert means[1].sum() < means[0].sum(), "a mean 1 has less ink than a mean 0"
    assert data.anomalies == [] and data.skipped == {}
    assert data.label_counts["test"] == released.predictions.test_label_counts


def _dag_output(released, node_id: str, key: str):
    """The artifact the DAG recorded in ML Metadata for node_id's output `key`."""
    return released.component(node_id).outputs[key]


def _plain(mistakes: list[artifacts.Mistake]) -> list[tuple]:
    return [(m.pixels.tolist(), m.label, m.predicted, m.probability) for m in mistakes]


def test_the_report_shows_the_dags_error_gallery_not_a_pass_of_its_own(released):
    gallery = _dag_output(released, "ErrorGallery", "gallery")
    recorded = artifacts.read_gallery(gallery.uri)
    shown = released.predictions
    assert _plain(shown.mistakes) == _plain(recorded.mistakes)
    assert (shown.examples, shown.wrong) == (recorded.examples, recorded.wrong)
    assert gallery.custom_properties["examples"].int_value == recorded.examples == 1000
    assert gallery.custom_properties["wrong"].int_value == recorded.wrong


def test_the_report_shows_the_dags_data_profile(released):
    recorded = artifacts.read_profile(_dag_output(released, "DataProfile", "profile").uri)
    assert released.data.label_counts == recorded.label_counts
    np.testing.assert_array_equal(released.data.mean_images, recorded.mean_images)


def test_gathering_loads_no_model_and_reads_no_examples(released_run, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the report computed from the data itself")

    monkeypatch.setattr(tf.saved_model, "load", refuse)
    monkeypatch.setattr(tf.data, "TFRecordDataset", refuse)
    monkeypatch.setattr(artifacts, "split_batches", refuse)
    data = report_data.gather(released_run)
    assert data.predictions.mistakes and data.data.mean_images is not None


def test_gates_show_each_threshold_with_its_figures(released):
    checks = released.gates.checks
    assert {check.evaluator for check in checks} == {"Evaluator", "TFLiteEvaluator"}
    assert all(check.passed and check.baseline is None for check in checks)
    assert all(check.threshold == "SparseCategoricalAccuracy >= 0.5" for check in checks)
    evaluator = next(check for check in checks if check.evaluator == "Evaluator")
    assert evaluator.candidate == released.quality.accuracy
    serving = released.gates.serving
    assert serving.blessed and not serving.reason
    assert "canary_accuracy" in serving.figures
    assert any(name.startswith("latency_") for name in serving.figures)


def test_lineage_runs_from_the_release_to_the_tfds_data(released):
    stages = [step.stage for step in released.lineage_steps]
    assert stages[0] == "release" and stages[-1] == "tfds_dataset"
    model_step = next(step for step in released.lineage_steps if step.stage == "model")
    assert model_step.artifact_id == released.component("Trainer").outputs["model"].id


def test_a_dir_without_metadata_or_an_unknown_run_is_refused_clearly(tmp_path, released_run):
    with pytest.raises(report_data.NoMetadataError, match="no ML Metadata at .*metadata.db"):
        report_data.gather(str(tmp_path))
    with pytest.raises(report_data.NoMetadataError, match="no pipeline run 'not-a-run'"):
        report_data.gather(released_run, "not-a-run")
