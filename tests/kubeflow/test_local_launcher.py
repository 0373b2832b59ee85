"""The compiled spec with continuous training on the strict launcher, OSS backend, S3 store.

kubeflow/local_launcher.py runs each task's own container command as the
open-source backend (`--backend oss`) would, with the image's environment and
the artifacts on moto's S3 server: the OSS default pipeline root `minio://...`
(the launcher copies artifacts in and out), the serving directory and the
spans folder (`--spans-dir`, docs/spans.md) on `s3://` (the components write
through tf.io.gfile and tensorflow-io). On a small real slice of MNIST, three
launches of one spec, one after the other:
- the first runs to one release; its manifest records the serving check's
  figures and the spans;
- a second lists the spans again and is cached from the span reader on,
  releasing nothing new;
- a new clean span makes the next launch execute from the span reader on and
  release once, its drift measured against the first release's statistics
  (read from the s3:// serving dir).
A drifting span stopping the run at AnomalyGate is tested on the local
runner (tests/test_spans.py); a failing task stopping a launch, on this
launcher in test_local_launcher_backends.py (TFX's own task command) and
test_local_launcher_units.py.
The Vertex run, TFX's own task command and the resolver check are in
test_local_launcher_backends.py (another module, so pytest-xdist runs them
beside this chain). The launcher runs in a shell without TF_USE_LEGACY_KERAS
(the docs' command in a fresh shell): the `contract` package sets it in each task.
"""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from components import example_export
from contract import features, files
from tests import expected
from tests.kubeflow.conftest import new_bucket, s3_client
from tests.kubeflow.strict_launch import compile_spec, launch, releases, task_states

pytestmark = pytest.mark.kfp


SPAN_DIGITS = {1: (20_000, 1500), 2: (22_000, 3000)}
"""span number -> (first TFDS train index, count): digits the 2,500-digit slice never sees.
The spans are large next to the slice, so a model trained with the next span reliably
beats the released one on MNIST's test split (the "not worse" gate) in 3 epochs."""


def _upload_span(endpoint, spans_dir, tfds_data_dir, number):
    """Writes span-<number>/part-0.tfrecord.gz to the s3:// spans folder."""
    start, count = SPAN_DIGITS[number]
    data = tfds.as_numpy(
        tfds.builder("mnist", data_dir=tfds_data_dir).as_dataset(
            split=f"train[{start}:{start + count}]", batch_size=-1
        )
    )
    images = data["image"].reshape(count, -1).astype(np.int64)
    digits = example_export.DigitArrays(images, data["label"].astype(np.int64))
    local = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"span-{number}-{os.getpid()}.gz")
    with tf.io.TFRecordWriter(local, options=files.TFRECORD_COMPRESSION) as writer:
        for record in example_export.encode_examples(
            digits, features.IMAGE_KEY, features.LABEL_KEY
        ):
            writer.write(record)
    bucket, _, prefix = spans_dir[len("s3://") :].partition("/")
    s3_client(endpoint).upload_file(local, bucket, f"{prefix}/span-{number}/part-0.tfrecord.gz")
    os.remove(local)


def _blessing_facts(stdout: str, task: str) -> dict[str, str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [task])
    blessing = next(line for line in lines[start + 1 :] if line.strip().startswith("blessing:"))
    facts = blessing.split("[", 1)[1].rstrip("]").split(", ")
    return dict(fact.split("=", 1) for fact in facts)


@pytest.fixture(scope="module")
def store(s3_endpoint):
    return {"root": f"minio://{new_bucket(s3_endpoint)}/v2/artifacts"}


@pytest.fixture(scope="module")
def spans_dir(s3_endpoint):
    return f"s3://{new_bucket(s3_endpoint)}/spans"


@pytest.fixture(scope="module")
def oss_launch(tmp_path_factory, v2_runner, tfds_data_dir, s3_endpoint, store, spans_dir):
    work = tmp_path_factory.mktemp("kfp_oss")
    serving = f"s3://{new_bucket(s3_endpoint)}/mnist/serving"
    _upload_span(s3_endpoint, spans_dir, tfds_data_dir, 1)
    spec = compile_spec(
        v2_runner,
        work / "mnist.json",
        store["root"],
        serving,
        tfds_data_dir,
        f"--spans-dir={spans_dir}",
        "--span-accuracy-threshold=0.5",
    )
    first = launch(spec, "run-1", s3_endpoint, work / "state")
    return work, spec, serving, first


@pytest.fixture(scope="module")
def second_launch(oss_launch, s3_endpoint):
    work, spec, serving, _ = oss_launch
    return launch(spec, "run-2", s3_endpoint, work / "state"), releases(s3_endpoint, serving)


@pytest.fixture(scope="module")
def new_span_launch(second_launch, oss_launch, s3_endpoint, spans_dir, tfds_data_dir):
    work, spec, serving, _ = oss_launch
    _upload_span(s3_endpoint, spans_dir, tfds_data_dir, 2)
    return launch(spec, "run-3", s3_endpoint, work / "state"), releases(s3_endpoint, serving)


def test_the_compiled_spec_runs_to_one_release_on_the_oss_backend(oss_launch, s3_endpoint, store):
    _, _, serving, first = oss_launch
    assert first.returncode == 0, first.stderr[-3000:]
    assert task_states(first.stdout) == {name: "executed" for name in expected.SPAN_COMPONENTS}
    bucket = store["root"].split("/")[2]
    client = s3_client(s3_endpoint)
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
    trainer_log = next(key for key in keys if "/Trainer/" in key and key.endswith("executor-logs"))
    log = client.get_object(Bucket=bucket, Key=trainer_log)["Body"].read().decode()
    assert "outputs left to the KFP launcher: executor-logs" in log  # the launcher writes it
    assert "Starting executor" in log
    ((version, manifest),) = releases(s3_endpoint, serving).items()
    assert manifest["version"] == version
    assert 0.5 <= manifest["test_accuracy"] <= 1.0
    assert manifest["data"]["split_counts"]["train"] == 2000 + 1050  # the slice + span-1's 70%
    assert manifest["data"]["spans"]["window"] == [1]
    assert 0.5 <= manifest["span_test"]["test_accuracy"] <= 1.0
    assert "pushed=1" in first.stdout


def test_the_release_records_the_serving_checks_figures(oss_launch, s3_endpoint):
    _, _, serving, first = oss_launch
    assert first.returncode == 0, first.stderr[-3000:]
    (manifest,) = releases(s3_endpoint, serving).values()
    check = _blessing_facts(first.stdout, "ServingCheck")
    recorded = manifest["serving_check"]
    assert recorded["canary_accuracy"] == pytest.approx(float(check["canary_accuracy"]), abs=1e-4)
    assert recorded["canary_accuracy"] > 0.3
    latencies = [value for name, value in recorded.items() if name.startswith("latency_")]
    assert len(latencies) == 4 and all(value > 0 for value in latencies)


def test_a_second_oss_launch_is_cached_and_releases_nothing_new(oss_launch, second_launch):
    _, _, _, first = oss_launch
    assert first.returncode == 0
    second, released = second_launch
    assert second.returncode == 0, second.stderr[-3000:]
    states = task_states(second.stdout)
    # The listing runs every time; its unchanged output parameter is a cache hit downstream.
    assert states["SpanListing"] == "executed", "never cached: it lists the spans folder"
    assert states["MnistExampleGen"] == "cached"
    assert states["DriftCheck"] == states["LabelCheck"] == states["Trainer"] == "cached"
    assert states["LatestRelease"] == "executed", "never cached: it reads the serving dir"
    assert "already_released=1" in second.stdout
    assert len(released) == 1


def test_a_new_span_runs_from_the_span_reader_on_and_releases_once(second_launch, new_span_launch):
    _, before = second_launch
    third, released = new_span_launch
    assert third.returncode == 0, third.stderr[-3000:]
    states = task_states(third.stdout)
    assert states["ImportSchemaGen"] == "cached"
    assert states["MnistExampleGen"] == states["Trainer"] == states["Pusher"] == "executed"
    (new_version,) = set(released) - set(before)
    manifest = released[new_version]
    assert manifest["data"]["spans"]["window"] == [1, 2]
    assert manifest["label_check"]["verdict"] == "labels as expected"
    assert manifest["drift"]["verdict"] == "within thresholds"
    # Measured against the first release's training statistics, read from s3://.
    assert manifest["drift"]["baseline_version"] == min(before)
    assert manifest["drift"]["measurements"], "the window was compared with the baseline"
