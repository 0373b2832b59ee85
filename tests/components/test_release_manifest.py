"""ReleaseManifest: the draft a release will record, built from the gates' and data's artifacts."""

import json
import os

from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components import release_manifest
from contract import evaluation as evaluation_results
from contract import files, releases
from tests.components.fake_saved_model import write_fake_saved_model


def trained_model(tmp_path) -> standard_artifacts.Model:
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "trainer" / "model")
    write_fake_saved_model(path_utils.serving_model_path(model.uri))
    return model


def released_baseline(version="5", fingerprint="abc") -> standard_artifacts.Model:
    baseline = standard_artifacts.Model()
    baseline.set_int_custom_property("has_release", 1)
    baseline.set_string_custom_property("release_version", version)
    baseline.set_string_custom_property("model_fingerprint", fingerprint)
    return baseline


def test_the_draft_names_the_model_and_leaves_the_version_to_the_pusher(tmp_path):
    model = trained_model(tmp_path)
    draft = release_manifest.build_manifest(model)
    assert draft["model_fingerprint"] == releases.model_fingerprint(
        path_utils.serving_model_path(model.uri)
    )
    assert draft["lineage"]["model"]["uri"] == model.uri
    assert draft["baseline"] is None
    assert not {"version", "released_at", "pipeline_run_id", "training"} & set(draft)


def test_the_draft_records_the_baseline_release(tmp_path):
    draft = release_manifest.build_manifest(
        trained_model(tmp_path), baseline_model=released_baseline()
    )
    assert draft["baseline"] == {"version": 5, "model_fingerprint": "abc"}


def test_the_draft_has_no_baseline_when_latest_release_found_none(tmp_path):
    none_found = standard_artifacts.Model()
    none_found.set_int_custom_property("has_release", 0)
    draft = release_manifest.build_manifest(trained_model(tmp_path), baseline_model=none_found)
    assert draft["baseline"] is None


def test_the_draft_records_the_trainers_training_info(tmp_path):
    model = trained_model(tmp_path)
    info = {
        "hyperparameters": {"hidden_units": [50, 50], "learning_rate": 0.001},
        "epochs_run": 3,
        "best_epoch": 2,
        "final_eval_accuracy": 0.9,
    }
    info_path = os.path.join(path_utils.serving_model_path(model.uri), files.TRAINING_INFO_FILE)
    os.makedirs(os.path.dirname(info_path))
    with open(info_path, "w") as out:
        json.dump(info, out)
    assert release_manifest.build_manifest(model)["training"] == info


def test_the_serving_checks_figures_are_read_with_typed_getters(tmp_path):
    infra = standard_artifacts.InfraBlessing()
    infra.set_float_custom_property("canary_accuracy", 0.98)
    infra.set_float_custom_property("latency_batch_1_p50_ms", 1.5)
    infra.set_string_custom_property("reason", "not a figure")
    draft = release_manifest.build_manifest(trained_model(tmp_path), infra_blessing=infra)
    assert draft["serving_check"] == {"canary_accuracy": 0.98, "latency_batch_1_p50_ms": 1.5}


def test_the_draft_records_confusions_and_the_baselines_accuracies(tmp_path, monkeypatch):
    """TFMA's readers are faked: what matters here is where their figures land."""

    def fake_overall_accuracy(uri, baseline=False):
        return 0.97 if baseline else 0.98

    def fake_digit_accuracy(uri, baseline=False):
        return {8: 0.95 if baseline else 0.96}

    monkeypatch.setattr(evaluation_results, "overall_accuracy", fake_overall_accuracy)
    monkeypatch.setattr(evaluation_results, "digit_accuracy", fake_digit_accuracy)
    monkeypatch.setattr(evaluation_results, "top_confusions", lambda uri: {8: (0, 7)})
    monkeypatch.setattr(evaluation_results, "gates_of_evaluation", lambda uri: ["gate"])
    evaluation = standard_artifacts.ModelEvaluation()
    evaluation.uri = str(tmp_path / "evaluation")

    draft = release_manifest.build_manifest(
        trained_model(tmp_path), evaluation=evaluation, baseline_model=released_baseline()
    )

    assert draft["test_accuracy"] == 0.98
    assert draft["per_digit_accuracy"] == {"8": 0.96}
    assert draft["confusions"] == {"8": [0, 7]}
    assert draft["thresholds"] == ["gate"]
    assert draft["baseline"] == {
        "version": 5,
        "model_fingerprint": "abc",
        "test_accuracy": 0.97,
        "per_digit_accuracy": {"8": 0.95},
    }
    assert json.loads(json.dumps(draft)) == draft  # JSON as written, lists not tuples
