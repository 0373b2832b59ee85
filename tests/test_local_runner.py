"""End to end, small: the real pipeline on a real slice of MNIST, checked in ML Metadata.

No mocks: TFDS prepares MNIST from the archives, Beam runs StatisticsGen,
Transform and the Evaluator, Keras trains, TFMA blesses, the Pusher releases.
"""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

import local_runner
from components import example_export, tfds_mnist
from contract import features
from reporting import metadata, run_summary
from tests import expected

COMPONENTS = sorted(expected.COMPONENTS)


def _executions_by_node(store, run_context_id: int) -> dict[str, list]:
    """The executions of one pipeline run, by node id."""
    by_node = {}
    for execution in store.get_executions_by_context(run_context_id):
        node = metadata._node_id(store, execution.id, "mnist")
        by_node.setdefault(node, []).append(execution)
    return by_node


def _versions(serving_dir):
    return sorted(os.listdir(serving_dir)) if os.path.isdir(serving_dir) else []


@dataclasses.dataclass(frozen=True)
class FirstRun:
    """A first run on a fresh output dir, and what it left, read right after it."""

    exit_code: int
    layout: local_runner.OutputLayout
    store: metadata_store.MetadataStore
    run_context_id: int
    artifact_count: int
    versions: list[str]
    summary: run_summary.RunSummary


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, run_small_pipeline) -> FirstRun:
    output_dir = tmp_path_factory.mktemp("pipeline_run")
    exit_code = run_small_pipeline(output_dir)
    layout = local_runner.OutputLayout(str(output_dir))
    store = metadata.connect(layout.metadata_path)
    (run_context,) = store.get_contexts_by_type("pipeline_run")
    return FirstRun(
        exit_code=exit_code,
        layout=layout,
        store=store,
        run_context_id=run_context.id,
        artifact_count=len(store.get_artifacts()),
        versions=_versions(layout.serving_model_dir),
        summary=run_summary.latest_run_summary(layout.metadata_path, "mnist"),
    )


def test_every_component_executes_once(first_run):
    assert first_run.exit_code == 0
    by_node = _executions_by_node(first_run.store, first_run.run_context_id)
    assert set(by_node) == set(COMPONENTS)
    for node in COMPONENTS:
        assert len(by_node[node]) == 1, node
        assert by_node[node][0].last_known_state == metadata_store_pb2.Execution.COMPLETE, node


def test_examples_record_their_tfds_source_and_splits(first_run):
    examples = first_run.summary.component("MnistExampleGen").outputs["examples"]
    properties = examples.custom_properties
    assert properties["tfds_name"].string_value == "mnist"
    assert properties["tfds_version"].string_value == "3.0.1"
    assert '"train-images-idx3-ubyte.gz": "440fcabf' in properties["archive_sha256"].string_value
    assert json.loads(properties["split_counts"].string_value) == {
        "train": 2500,
        "eval": 500,
        "test": 1000,
        "extra_in_train": 0,
    }
    for split in ("train", "eval", "test"):
        assert tf.io.gfile.glob(os.path.join(examples.uri, f"Split-{split}", "*.gz"))


def test_one_blessed_model_is_pushed_and_serves_raw_examples(first_run, tfds_data_dir, mnist_dir):
    versions = first_run.versions
    assert len(versions) == 1
    model = tf.saved_model.load(os.path.join(first_run.layout.serving_model_dir, versions[0]))
    assert {"serving_default", "transform_features"} <= set(model.signatures)

    builder = tfds_mnist.prepare_mnist(mnist_dir, tfds_data_dir)
    digits = example_export.load_tfds_split(builder, "test", limit=200)
    serialized = example_export.encode_examples(digits, features.IMAGE_KEY, None)
    assert b"label" not in serialized[0]
    outputs = model.signatures["serving_default"](examples=tf.constant(serialized))
    (probabilities,) = outputs.values()
    probabilities = probabilities.numpy()
    assert probabilities.shape == (200, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)
    assert (probabilities.argmax(axis=1) == digits.labels).mean() > 0.7


def test_summary_reports_accuracy_blessing_and_release(first_run):
    summary = first_run.summary
    assert summary.blessed and summary.pushed and summary.released_now
    assert summary.pushed_destination.endswith(first_run.versions[0])
    assert 0.7 < summary.test_accuracy <= 1.0
    assert "Test accuracy: " in summary.render()


def test_second_run_is_fully_cached_and_releases_nothing(first_run, run_small_pipeline):
    layout = first_run.layout
    assert run_small_pipeline(layout.output_dir) == 0
    assert len(first_run.store.get_artifacts()) == first_run.artifact_count
    assert _versions(layout.serving_model_dir) == first_run.versions
    summary = run_summary.latest_run_summary(layout.metadata_path, "mnist")
    assert summary.run_id != first_run.summary.run_id
    states = {c.node_id: c.state for c in summary.components}
    assert all(states[node] == "cached" for node in COMPONENTS), states
    assert not summary.released_now


@pytest.mark.parametrize("tfds_state", ["no_tfds_yet", "mnist_prepared"])
def test_corrupt_archive_fails_the_run_and_names_the_file(
    tfds_state, tmp_path, mnist_dir, tfds_data_dir, capsys
):
    output_dir = tmp_path / "out"
    if tfds_state == "mnist_prepared":
        # What an earlier run leaves in <output-dir>/tfds: TFDS would reuse it
        # without looking at the archives again.
        shutil.copytree(os.path.join(tfds_data_dir, "mnist"), output_dir / "tfds" / "mnist")
    archives = tmp_path / "archives"
    shutil.copytree(mnist_dir, archives)
    corrupt = archives / "t10k-images-idx3-ubyte.gz"
    corrupt.write_bytes(corrupt.read_bytes()[:1000])

    exit_code = local_runner.main(
        [
            f"--output-dir={output_dir}",
            f"--mnist-dir={archives}",
            "--train-limit=100",
            "--eval-holdout=10",
            "--test-limit=10",
        ]
    )

    assert exit_code == 1
    message = capsys.readouterr().err
    assert "Pipeline stopped" in message and str(corrupt) in message
    assert "sha256sum -c SHA256SUMS" in message and "--mnist-dir" in message
    assert not os.path.exists(output_dir / "serving")
    summary = run_summary.latest_run_summary(str(output_dir / "metadata.db"), "mnist")
    assert summary.component("MnistExampleGen").state == "failed"
    assert summary.component("StatisticsGen") is None
