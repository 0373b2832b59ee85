"""create_pipeline: the DAG and the gates, checked without running anything."""

import tensorflow_model_analysis as tfma
from tfx.proto import pusher_pb2
from tfx.types import channel_utils
from tfx.utils import proto_utils

from pipeline import config as pipeline_config
from pipeline.pipeline import create_pipeline, make_eval_config
from tests import expected


def _pipeline(tmp_path, extra_examples_dir=None, spans_dir=None, **config_overrides):
    config = pipeline_config.PipelineConfig(**config_overrides)
    return create_pipeline(
        pipeline_root=str(tmp_path / "root"),
        serving_model_dir=str(tmp_path / "serving"),
        mnist_dir=pipeline_config.DEFAULT_MNIST_DIR,
        tfds_data_dir=str(tmp_path / "tfds"),
        schema_file=pipeline_config.SCHEMA_FILE,
        user_code=pipeline_config.UserCode.module_files(),
        config=config,
        extra_examples_dir=extra_examples_dir,
        spans_dir=spans_dir,
    )


def test_pipeline_has_the_components_in_dependency_order(tmp_path):
    pipeline = _pipeline(tmp_path)
    ids = [component.id for component in pipeline.components]
    assert set(ids) == expected.COMPONENTS
    assert ids.index("Trainer") < ids.index("Evaluator") < ids.index("Pusher")
    assert ids.index("AnomalyGate") < ids.index("Transform")
    assert not (tmp_path / "root").exists(), "create_pipeline must not write anything"


def test_pusher_only_releases_what_the_evaluator_blessed(tmp_path):
    components = {c.id: c for c in _pipeline(tmp_path).components}
    pusher = components["Pusher"]
    assert pusher.inputs["model_blessing"].producer_component_id == "Evaluator"
    assert pusher.inputs["tflite_blessing"].producer_component_id == "TFLiteEvaluator"
    # As TFX's Pusher without a model input: it pushes the serving check's copy.
    assert "model" not in pusher.inputs
    assert pusher.inputs["infra_blessing"].producer_component_id == "ServingCheck"
    destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(pusher.exec_properties["push_destination"], destination)
    assert destination.filesystem.base_directory == str(tmp_path / "serving")
    # The release's documents: the manifest draft and the card rendered from it.
    assert pusher.inputs["manifest"].producer_component_id == "ReleaseManifest"
    assert pusher.inputs["model_card"].producer_component_id == "ModelCardGen"
    manifest = components["ReleaseManifest"]
    assert manifest.inputs["model"].producer_component_id == "Trainer"
    assert manifest.inputs["evaluation"].producer_component_id == "Evaluator"
    assert manifest.inputs["baseline_model"].producer_component_id == "LatestRelease"
    assert manifest.inputs["examples"].producer_component_id == "MnistExampleGen"
    assert manifest.inputs["infra_blessing"].producer_component_id == "ServingCheck"
    assert components["ModelCardGen"].inputs["manifest"].producer_component_id == (
        "ReleaseManifest"
    )


def test_baseline_is_the_latest_release_other_than_the_candidate(tmp_path):
    components = {c.id: c for c in _pipeline(tmp_path).components}
    latest_release = components["LatestRelease"]
    assert latest_release.inputs["model"].producer_component_id == "Trainer"
    assert latest_release.exec_properties["serving_model_dir"] == str(tmp_path / "serving")


def test_evaluator_is_gated_on_threshold_and_baseline(tmp_path):
    components = {c.id: c for c in _pipeline(tmp_path, accuracy_threshold=0.98).components}
    evaluator = components["Evaluator"]
    assert evaluator.inputs["baseline_model"].producer_component_id == "LatestRelease"
    assert evaluator.exec_properties["example_splits"] == '["test"]'
    assert "0.98" in evaluator.exec_properties["eval_config"]


def test_eval_config_thresholds():
    eval_config = make_eval_config(accuracy_threshold=0.97, baseline_tolerance=1e-10)
    (metric,) = [
        m
        for m in eval_config.metrics_specs[0].metrics
        if m.class_name == "SparseCategoricalAccuracy"
    ]
    (gate,) = metric.per_slice_thresholds
    assert list(gate.slicing_specs) == [tfma.SlicingSpec()], "gate the overall slice only"
    assert gate.threshold.value_threshold.lower_bound.value == 0.97
    change = gate.threshold.change_threshold
    assert change.direction == tfma.MetricDirection.HIGHER_IS_BETTER
    assert change.absolute.value == -1e-10
    assert eval_config.model_specs[0].signature_name == "serving_default"
    assert list(eval_config.model_specs[0].preprocessing_function_names) == ["transform_features"]
    assert tfma.SlicingSpec(feature_keys=["label"]) in eval_config.slicing_specs
    class_names = {m.class_name for m in eval_config.metrics_specs[0].metrics}
    assert "MultiClassConfusionMatrixPlot" in class_names


def test_trainer_gets_its_hyper_parameters_from_config(tmp_path):
    trainer_config = pipeline_config.TrainerConfig(hidden_units=(20,), max_epochs=2)
    components = {c.id: c for c in _pipeline(tmp_path, trainer=trainer_config).components}
    custom_config = components["Trainer"].exec_properties["custom_config"]
    assert '"hidden_units": [20]' in custom_config
    assert '"max_epochs": 2' in custom_config


def test_transform_waits_for_the_anomaly_gate(tmp_path):
    components = {c.id: c for c in _pipeline(tmp_path).components}
    assert components["AnomalyGate"] in components["Transform"].upstream_nodes
    gate_input = components["AnomalyGate"].inputs["anomalies"]
    assert gate_input.producer_component_id == "ExampleValidator"


def test_extra_examples_enter_through_import_example_gen(tmp_path):
    pipeline = _pipeline(tmp_path, extra_examples_dir=str(tmp_path / "extra"))
    components = {c.id: c for c in pipeline.components}
    assert components["ExtraExampleGen"].exec_properties["input_base"] == str(tmp_path / "extra")
    extra_input = components["MnistExampleGen"].inputs["extra_examples"]
    assert extra_input.producer_component_id == "ExtraExampleGen"


def test_spans_add_the_listing_the_checks_and_the_new_data_evaluator(tmp_path):
    pipeline = _pipeline(tmp_path, spans_dir=str(tmp_path / "spans"))
    components = {c.id: c for c in pipeline.components}
    assert set(components) == expected.SPAN_COMPONENTS
    # The listing reaches the span reader as a parameter (its value in KFP's cache key).
    listing = channel_utils.unwrap_simple_channel_placeholder(
        components["MnistExampleGen"].exec_properties["span_listing"]
    )
    assert (listing.producer_component_id, listing.output_key) == ("SpanListing", "listing")
    gate = components["AnomalyGate"]
    assert gate.inputs["drift"].producer_component_id == "DriftCheck"
    assert gate.inputs["label_check"].producer_component_id == "LabelCheck"
    assert gate in components["Transform"].upstream_nodes
    evaluator = components["SpanEvaluator"]
    assert evaluator.exec_properties["example_splits"] == '["span_test"]'
    assert components["Pusher"].inputs["span_blessing"].producer_component_id == "SpanEvaluator"
    manifest_inputs = components["ReleaseManifest"].inputs
    assert manifest_inputs["statistics"].producer_component_id == "StatisticsGen"


def test_without_spans_the_pipeline_has_no_span_components(tmp_path):
    components = {c.id for c in _pipeline(tmp_path).components}
    assert not components & (expected.SPAN_COMPONENTS - expected.COMPONENTS)


def test_a_warm_start_feeds_the_served_release_to_the_trainer_as_its_base_model(tmp_path):
    components = {c.id: c for c in _pipeline(tmp_path, warm_start=True).components}
    assert set(components) == expected.COMPONENTS | {"WarmStartModel"}
    warm = components["WarmStartModel"]
    assert "model" not in warm.inputs, "the newest release, whatever the candidate"
    assert warm.exec_properties["serving_model_dir"] == str(tmp_path / "serving")
    base_model = components["Trainer"].inputs["base_model"]
    assert (base_model.producer_component_id, base_model.output_key) == (
        "WarmStartModel",
        "baseline_model",
    )


def test_without_warm_start_the_trainer_has_no_base_model(tmp_path):
    components = {c.id: c for c in _pipeline(tmp_path).components}
    assert "base_model" not in components["Trainer"].inputs
