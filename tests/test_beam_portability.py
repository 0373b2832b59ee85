"""Beam portability: the Beam components compute on PortableRunner what they do here.

StatisticsGen, Transform and the Evaluator run through TFX's own executors on
a small slice of real MNIST twice: with the pipeline's default Beam args (the
in-memory DirectRunner) and on Beam's PortableRunner against Beam's local job
service, whose bundles run in SDK worker processes started by an external
worker pool (tests/beam_portable.py): the path a Flink or Spark job server
takes. Statistics, transformed examples and evaluation metrics must agree.
"""

import logging
import os
import shutil
import tempfile
import time
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
import tensorflow_transform as tft
from tfx.components.evaluator import executor as evaluator_executor
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.statistics_gen import executor as statistics_executor
from tfx.components.transform import executor as transform_executor
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import transform_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.utils import json_utils, path_utils, proto_utils

from components import example_export, tfds_mnist
from contract import features
from pipeline import config
from pipeline.modules.trainer import mnist_trainer
from pipeline.pipeline import make_eval_config
from tests import beam_portable
from tests.test_beam_modes import _summary

pytestmark = pytest.mark.slow

TRAIN_EXAMPLES = 1000
TEST_EXAMPLES = 500
SPLIT_TRAIN = "train"
SPLIT_TEST = "test"
RUNNERS = ("direct", "portable")
IMAGE_XF = features.transformed_name(features.IMAGE_KEY)
LABEL_XF = features.transformed_name(features.LABEL_KEY)
OVERALL = ()


def _new_artifact(artifact_class, uri: str):
    """An artifact of `artifact_class` at `uri`, as the orchestrator would create it."""
    artifact = artifact_class()
    artifact.uri = uri
    os.makedirs(uri, exist_ok=True)
    return artifact


def _run_executor(executor_class, beam_args, work_dir, input_dict, output_dict, exec_properties):
    """Runs a TFX Beam executor as its component would; returns the seconds it took.

    TFX adds an ephemeral TFX sdist to the Beam args of every executor run (it
    copies the installed package to a temp dir); temp files go under work_dir.
    """
    temp_dir = os.path.join(work_dir, "tmp")
    os.makedirs(temp_dir, exist_ok=True)
    started = time.monotonic()
    with mock.patch.object(tempfile, "tempdir", temp_dir):
        context = base_beam_executor.BaseBeamExecutor.Context(
            beam_pipeline_args=list(beam_args), tmp_dir=temp_dir, unique_id="1"
        )
        executor_class(context).Do(input_dict, output_dict, exec_properties)
    seconds = time.monotonic() - started
    shutil.rmtree(temp_dir, ignore_errors=True)
    logging.info("%s took %.1f s with %s", executor_class.__module__, seconds, beam_args)
    return seconds


@pytest.fixture(scope="module")
def portable_beam(tmp_path_factory):
    """Beam's local job service and an external worker pool, for this module."""
    with beam_portable.local_portable_runner(str(tmp_path_factory.mktemp("beam_services"))) as beam:
        yield beam


@pytest.fixture(scope="module")
def beam_args(portable_beam):
    """Beam args per runner: the pipeline's default, and the local portable runner."""
    return {"direct": list(config.DEFAULT_BEAM_ARGS), "portable": portable_beam.beam_args}


@pytest.fixture(scope="module")
def examples(tmp_path_factory, mnist_dir, tfds_data_dir):
    """An Examples artifact as MnistExampleGen writes it: train and test splits."""
    builder = tfds_mnist.prepare_mnist(mnist_dir, tfds_data_dir)
    artifact = _new_artifact(standard_artifacts.Examples, str(tmp_path_factory.mktemp("examples")))
    artifact.split_names = artifact_utils.encode_split_names([SPLIT_TRAIN, SPLIT_TEST])
    for split, limit in ((SPLIT_TRAIN, TRAIN_EXAMPLES), (SPLIT_TEST, TEST_EXAMPLES)):
        digits = example_export.load_tfds_split(builder, split, limit=limit)
        example_export.write_tfrecords(
            example_export.encode_examples(digits, features.IMAGE_KEY, features.LABEL_KEY),
            artifact_utils.get_split_uri([artifact], split),
        )
    artifact.set_string_custom_property(
        example_gen_utils.PAYLOAD_FORMAT_PROPERTY_NAME, "FORMAT_TF_EXAMPLE"
    )
    artifact.set_string_custom_property(
        example_gen_utils.FILE_FORMAT_PROPERTY_NAME, "tfrecords_gzip"
    )
    return artifact


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    """The curated schema as ImportSchemaGen outputs it (one file in the artifact)."""
    artifact = _new_artifact(standard_artifacts.Schema, str(tmp_path_factory.mktemp("schema")))
    shutil.copy(config.SCHEMA_FILE, artifact.uri)
    return artifact


@pytest.fixture(scope="module")
def statistics_runs(tmp_path_factory, beam_args, examples):
    """StatisticsGen's executor under each runner: {runner: (stats per split, seconds)}."""
    runs = {}
    for runner in RUNNERS:
        work_dir = str(tmp_path_factory.mktemp(f"statistics_{runner}"))
        statistics = _new_artifact(standard_artifacts.ExampleStatistics, work_dir + "/out")
        seconds = _run_executor(
            statistics_executor.Executor,
            beam_args[runner],
            work_dir,
            {specs.EXAMPLES_KEY: [examples]},
            {specs.STATISTICS_KEY: [statistics]},
            {specs.EXCLUDE_SPLITS_KEY: json_utils.dumps([])},
        )
        per_split = {
            split: tfdv.load_stats_binary(
                os.path.join(
                    artifact_utils.get_split_uri([statistics], split),
                    statistics_executor.DEFAULT_FILE_NAME,
                )
            )
            for split in (SPLIT_TRAIN, SPLIT_TEST)
        }
        runs[runner] = (per_split, seconds)
    return runs


@pytest.fixture(scope="module")
def transform_runs(tmp_path_factory, beam_args, examples, schema):
    """Transform's executor under each runner: {runner: (graph uri, examples, seconds)}."""
    runs = {}
    for runner in RUNNERS:
        work_dir = str(tmp_path_factory.mktemp(f"transform_{runner}"))
        graph = _new_artifact(standard_artifacts.TransformGraph, work_dir + "/graph")
        transformed = _new_artifact(standard_artifacts.Examples, work_dir + "/examples")
        seconds = _run_executor(
            transform_executor.Executor,
            beam_args[runner],
            work_dir,
            {specs.EXAMPLES_KEY: [examples], specs.SCHEMA_KEY: [schema]},
            {specs.TRANSFORM_GRAPH_KEY: [graph], specs.TRANSFORMED_EXAMPLES_KEY: [transformed]},
            {
                # The import path, as in the pipeline image (Kubeflow, Dataflow).
                specs.PREPROCESSING_FN_KEY: config.UserCode.import_paths().preprocessing_fn,
                specs.SPLITS_CONFIG_KEY: proto_utils.proto_to_json(
                    transform_pb2.SplitsConfig(
                        analyze=[SPLIT_TRAIN], transform=[SPLIT_TRAIN, SPLIT_TEST]
                    )
                ),
                specs.DISABLE_STATISTICS_KEY: 1,
            },
        )
        runs[runner] = (graph.uri, transformed, seconds)
    return runs


@pytest.fixture(scope="module")
def model(tmp_path_factory, examples, transform_runs):
    """A tiny model trained briefly on the slice, exported as run_fn exports it."""
    tf.keras.utils.set_random_seed(0)
    images, labels = _read_digits(examples, SPLIT_TRAIN)
    keras_model = mnist_trainer.build_keras_model((16,), learning_rate=1e-2)
    # 30 eager steps take ~2 s; tracing the train step first would take ~10 s.
    keras_model.run_eagerly = True
    keras_model.fit({IMAGE_XF: images / 255.0}, labels, epochs=3, batch_size=100, verbose=0)
    artifact = _new_artifact(standard_artifacts.Model, str(tmp_path_factory.mktemp("model")))
    graph_uri = transform_runs["direct"][0]
    keras_model.save(
        path_utils.serving_model_dir(artifact.uri, path_utils.is_old_model_artifact(artifact)),
        save_format="tf",
        signatures=mnist_trainer.make_serving_signatures(
            keras_model, tft.TFTransformOutput(graph_uri)
        ),
    )
    return artifact


@pytest.fixture(scope="module")
def evaluator_runs(tmp_path_factory, beam_args, examples, model):
    """The Evaluator's executor under each runner: {runner: (metrics, blessed, seconds)}."""
    runs = {}
    eval_config = make_eval_config(accuracy_threshold=0.5, baseline_tolerance=1e-6)
    for runner in RUNNERS:
        work_dir = str(tmp_path_factory.mktemp(f"evaluator_{runner}"))
        evaluation = _new_artifact(standard_artifacts.ModelEvaluation, work_dir + "/evaluation")
        blessing = _new_artifact(standard_artifacts.ModelBlessing, work_dir + "/blessing")
        seconds = _run_executor(
            evaluator_executor.Executor,
            beam_args[runner],
            work_dir,
            {specs.EXAMPLES_KEY: [examples], specs.MODEL_KEY: [model]},
            {specs.EVALUATION_KEY: [evaluation], specs.BLESSING_KEY: [blessing]},
            {
                specs.EVAL_CONFIG_KEY: proto_utils.proto_to_json(eval_config),
                specs.EXAMPLE_SPLITS_KEY: json_utils.dumps([SPLIT_TEST]),
            },
        )
        blessed = os.path.exists(os.path.join(blessing.uri, "BLESSED"))
        runs[runner] = (_metrics(evaluation.uri), blessed, seconds)
    return runs


def _read_digits(examples, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 784) and labels (N,) of one split of a raw Examples artifact."""
    records = example_export.read_examples_artifact(examples.uri, [split])
    parsed = [tf.train.Example.FromString(record).features.feature for record in records]
    images = np.array([feature[features.IMAGE_KEY].int64_list.value for feature in parsed])
    labels = np.array([feature[features.LABEL_KEY].int64_list.value[0] for feature in parsed])
    return images, labels


def _transformed_rows(transformed, split: str) -> list[tuple[int, bytes]]:
    """(label_xf, image_xf as float32 bytes) per transformed example, sorted."""
    records = example_export.read_examples_artifact(transformed.uri, [split])
    rows = []
    for record in records:
        feature = tf.train.Example.FromString(record).features.feature
        image = np.array(feature[IMAGE_XF].float_list.value, np.float32)
        rows.append((int(feature[LABEL_XF].int64_list.value[0]), image.tobytes()))
    return sorted(rows)


def _metrics(evaluation_uri: str) -> dict[tuple, dict[str, float]]:
    """{slice key: {metric name: value}} for the scalar metrics TFMA wrote."""
    metrics = {}
    for slice_metrics in tfma.load_metrics(evaluation_uri):
        slice_key = tuple(
            (single.column, getattr(single, single.WhichOneof("kind")))
            for single in slice_metrics.slice_key.single_slice_keys
        )
        metrics[slice_key] = {
            item.key.name: item.value.double_value.value
            for item in slice_metrics.metric_keys_and_values
            if item.value.HasField("double_value")
        }
    return metrics


def _report(component: str, seconds: dict[str, float]) -> None:
    print(
        f"{component}: DirectRunner in-memory {seconds['direct']:.1f} s, "
        f"PortableRunner (job service + external worker pool) {seconds['portable']:.1f} s"
    )


def test_statistics_gen_matches_direct_runner(statistics_runs):
    direct, _ = statistics_runs["direct"]
    portable, _ = statistics_runs["portable"]
    for split in (SPLIT_TRAIN, SPLIT_TEST):
        assert _summary(portable[split]) == _summary(direct[split]), split
    assert _summary(portable[SPLIT_TRAIN])["num_examples"] == TRAIN_EXAMPLES
    assert _summary(portable[SPLIT_TEST])["num_examples"] == TEST_EXAMPLES
    assert _summary(portable[SPLIT_TRAIN])[features.IMAGE_KEY][1:5] == (784, 784, 0, 255)
    _report("StatisticsGen", {runner: statistics_runs[runner][1] for runner in RUNNERS})


def test_transform_matches_direct_runner(transform_runs):
    direct_graph, direct_examples, _ = transform_runs["direct"]
    portable_graph, portable_examples, _ = transform_runs["portable"]
    assert (
        tft.TFTransformOutput(portable_graph).transformed_feature_spec()
        == tft.TFTransformOutput(direct_graph).transformed_feature_spec()
    )
    for split, count in ((SPLIT_TRAIN, TRAIN_EXAMPLES), (SPLIT_TEST, TEST_EXAMPLES)):
        portable_rows = _transformed_rows(portable_examples, split)
        assert len(portable_rows) == count
        assert portable_rows == _transformed_rows(direct_examples, split), split
    pixels = np.frombuffer(b"".join(image for _, image in portable_rows), np.float32)
    assert pixels.min() == 0.0 and pixels.max() == 1.0
    _report("Transform", {runner: transform_runs[runner][2] for runner in RUNNERS})


def test_evaluator_matches_direct_runner(evaluator_runs):
    direct_metrics, direct_blessed, _ = evaluator_runs["direct"]
    portable_metrics, portable_blessed, _ = evaluator_runs["portable"]
    assert set(portable_metrics) == set(direct_metrics)
    assert len(portable_metrics) == 1 + features.NUM_CLASSES  # overall + per digit
    for slice_key, values in direct_metrics.items():
        assert portable_metrics[slice_key] == pytest.approx(values, rel=1e-6), slice_key
    overall = portable_metrics[OVERALL]
    assert overall["example_count"] == TEST_EXAMPLES
    assert 0.5 < overall["sparse_categorical_accuracy"] <= 1.0
    assert portable_blessed and direct_blessed
    _report("Evaluator", {runner: evaluator_runs[runner][2] for runner in RUNNERS})


def test_portable_bundles_ran_in_the_worker_pools_processes(
    portable_beam, statistics_runs, transform_runs, evaluator_runs
):
    # One SDK worker process per portable job: StatisticsGen, Transform, Evaluator.
    assert portable_beam.workers_started() == 3
