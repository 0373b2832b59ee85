"""Continuous training (spans, docs/spans.md) on the strict KFP launcher, OSS backend.

One scenario, four launches of one compiled spec (`--spans-dir` on S3), on
moto's S3 server: the `minio://` pipeline root (KFP's default store), the
serving directory and the spans folder on `s3://`. Each launch is timed and
its task states and the releases after it are kept (`Scenario`), so each test
reads one step. As on a cluster, nothing of a launch's pods outlives it (they
are moved away), so a later launch sees only what is in the store:

1. span-1 -> every task executes, one release whose manifest records the
   window [1] and the new-data test accuracy; SpanListing's String output
   parameter reaches MnistExampleGen's `span_listing` parameter
   (`taskOutputParameter`) unchanged; the release carries its training
   statistics (the next run's drift baseline) in the serving directory;
2. nothing new -> the listing runs again (never cached), its unchanged value
   is a cache hit from MnistExampleGen on, nothing new is released;
3. a clean span-2 -> MnistExampleGen and the Trainer execute, one new release
   trained on the window [1, 2];
4. an inverted span-3 (255 - pixels) -> AnomalyGate stops the launch on the
   drift of `image` (Jensen-Shannon), nothing is released.

The helpers (compile, launch, states, span upload, releases) are
test_local_launcher.py's.
"""

import dataclasses
import glob
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from contract import files
from tests import expected
from tests.kubeflow.conftest import new_bucket, s3_client
from tests.kubeflow.test_local_launcher import (
    SPAN_DIGITS,
    _compile,
    _launch,
    _states,
    _upload_span,
    releases,
)

pytestmark = pytest.mark.kfp

SPAN_TASKS = ("SpanListing", "DriftCheck", "LabelCheck", "SpanEvaluator")
# Span sizes are SPAN_DIGITS': span-1 and span-3 hold 1,500 digits, span-2 3,000.
# Launch 3's candidate must pass the "not worse than released" gate on MNIST's
# 1,000 test digits. With 1,500 new digits the window adds 1,050 training digits
# to ~3,050, which in 3 epochs is within the noise of the gate; span-2's 3,000
# digits add 2,100 (~70% more data), a margin the gate does not refuse by chance.


@dataclasses.dataclass
class Launched:
    """One launch: the launcher's process, its wall time, task states, releases after it."""

    process: subprocess.CompletedProcess
    seconds: float
    states: dict[str, str]
    releases: dict[int, dict]
    pods: str

    def summary(self) -> str:
        """Exit code, wall time, and the tasks in each state (named when few)."""
        by_state: dict[str, list[str]] = {}
        for name, state in sorted(self.states.items()):
            by_state.setdefault(state, []).append(name)
        parts = [
            f"{state} {len(names)}" + (f" ({', '.join(names)})" if len(names) < 8 else "")
            for state, names in sorted(by_state.items())
        ]
        return f"exit {self.process.returncode}, {self.seconds:.0f} s: " + "; ".join(parts)


class Scenario:
    """The four launches, run in order on demand (a test of step 3 runs 1 to 3 first)."""

    STEPS = (
        (1, False),  # the span uploaded before the launch (None: none), inverted?
        (None, False),
        (2, False),
        (3, True),
    )

    def __init__(self, work, spec, endpoint, serving, spans_dir, tfds_data_dir):
        self.work, self.spec, self.endpoint = work, spec, endpoint
        self.serving, self.spans_dir, self.tfds_data_dir = serving, spans_dir, tfds_data_dir
        self.done: list[Launched] = []

    def step(self, number: int) -> Launched:
        """The `number`-th launch (1-based), running the ones before it first."""
        while len(self.done) < number:
            span, inverted = self.STEPS[len(self.done)]
            if span is not None:
                _upload_span(self.endpoint, self.spans_dir, self.tfds_data_dir, span, inverted)
            run_id = f"spans-{len(self.done) + 1}"
            started = time.monotonic()
            process = _launch(self.spec, run_id, self.endpoint, self.work / "state")
            seconds = time.monotonic() - started
            # A cluster's pods, and the local copies of artifacts in them (`/minio/...`),
            # are gone once the run ends; the launcher keeps them under its state dir.
            # Moved out of reach here, so what a later launch reads must be in the store.
            finished = self.work / "finished_pods" / run_id
            pods = self.work / "state" / "pods" / run_id
            if pods.exists():
                shutil.move(pods, finished)
            self.done.append(
                Launched(
                    process,
                    seconds,
                    _states(process.stdout),
                    releases(self.endpoint, self.serving),
                    str(finished),
                )
            )
            print(f"launch {run_id}: {self.done[-1].summary()}")
        return self.done[number - 1]

    def before(self, number: int) -> dict[int, dict]:
        """The releases before the `number`-th launch."""
        return self.step(number - 1).releases if number > 1 else {}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, v2_runner, tfds_data_dir, s3_endpoint):
    work = tmp_path_factory.mktemp("kfp_spans")
    root = f"minio://{new_bucket(s3_endpoint)}/v2/artifacts"
    serving = f"s3://{new_bucket(s3_endpoint)}/mnist/serving"
    spans_dir = f"s3://{new_bucket(s3_endpoint)}/spans"
    flags = (f"--spans-dir={spans_dir}", "--span-accuracy-threshold=0.5")
    spec = _compile(v2_runner, work / "spans.json", root, serving, tfds_data_dir, *flags)
    return work, spec, serving, spans_dir


@pytest.fixture(scope="module")
def scenario(compiled, s3_endpoint, tfds_data_dir):
    work, spec, serving, spans_dir = compiled
    return Scenario(work, spec, s3_endpoint, serving, spans_dir, tfds_data_dir)


def _ok(launched: Launched) -> None:
    assert launched.process.returncode == 0, launched.process.stderr[-3000:]


def _pod_file(launched: Launched, task: str, name: str) -> str:
    (path,) = glob.glob(os.path.join(launched.pods, task, "**", name), recursive=True)
    return path


def test_the_listing_parameter_names_a_task_of_the_dag(compiled):
    _, spec, _, _ = compiled
    tasks = json.loads(spec.read_text())["pipelineSpec"]["root"]["dag"]["tasks"]
    binding = tasks["MnistExampleGen"]["inputs"]["parameters"]["span_listing"]
    producer = binding["taskOutputParameter"]["producerTask"]
    # A KFP driver resolves the parameter in the DAG's tasks by this name.
    assert producer in tasks, f"span_listing is read from {producer!r}, not a task of the DAG"
    assert binding["taskOutputParameter"]["outputParameterKey"] == "listing"


def test_span_1_runs_every_task_to_one_release(scenario):
    first = scenario.step(1)
    _ok(first)
    assert first.states == {name: "executed" for name in expected.SPAN_COMPONENTS}
    assert set(SPAN_TASKS) <= set(first.states)
    ((version, manifest),) = first.releases.items()
    assert manifest["version"] == version
    assert manifest["data"]["spans"]["window"] == [1]
    assert manifest["data"]["spans"]["present"] == [1]
    assert 0.5 <= manifest["span_test"]["test_accuracy"] <= 1.0
    assert 0.5 <= manifest["test_accuracy"] <= 1.0


def test_the_listing_reaches_the_span_reader_as_a_parameter(scenario):
    first = scenario.step(1)
    _ok(first)
    with open(_pod_file(first, "SpanListing", "output_metadata.json")) as source:
        listing = json.load(source)["parameterValues"]["listing"]
    assert json.loads(listing)["window"] == [1]
    with open(os.path.join(first.pods, "MnistExampleGen", "task.log")) as source:
        log = source.read()
    # TFX's executor logs its exec properties: the value KFP handed the task.
    assert f"'span_listing': {listing!r}" in log


def test_the_release_carries_its_training_statistics(scenario):
    first = scenario.step(1)
    _ok(first)
    (version,) = first.releases
    # Every later run's DriftCheck compares with these: a path inside the
    # ReleaseManifest task's pod (its local copy of a minio:// artifact) is gone by then.
    bucket, _, prefix = scenario.serving[len("s3://") :].partition("/")
    key = f"{prefix}/{version}/{files.TRAIN_STATISTICS_FILE}"
    found = s3_client(scenario.endpoint).list_objects_v2(Bucket=bucket, Prefix=key)
    assert [item["Key"] for item in found.get("Contents", [])] == [key]


def test_an_unchanged_spans_folder_is_listed_again_and_cached_from_the_reader_on(scenario):
    second = scenario.step(2)
    _ok(second)
    assert second.states["SpanListing"] == "executed", "never cached: it lists the folder"
    assert second.states["MnistExampleGen"] == "cached"
    assert second.states["DriftCheck"] == second.states["LabelCheck"] == "cached"
    assert second.states["Trainer"] == "cached"
    assert second.releases == scenario.before(2), "nothing new may be released"


def test_a_clean_new_span_trains_again_and_releases_once(scenario):
    assert SPAN_DIGITS[2][1] >= 2 * SPAN_DIGITS[1][1], "span-2 must outweigh the gate's noise"
    third = scenario.step(3)
    _ok(third)
    assert third.states["SpanListing"] == "executed"
    assert third.states["MnistExampleGen"] == third.states["Trainer"] == "executed"
    before = scenario.before(3)
    (new_version,) = set(third.releases) - set(before)
    assert set(before) <= set(third.releases)
    spans = third.releases[new_version]["data"]["spans"]
    assert spans["window"] == [1, 2]
    assert spans["present"] == [1, 2]
    assert 0.5 <= third.releases[new_version]["span_test"]["test_accuracy"] <= 1.0


def test_an_inverted_span_stops_at_the_anomaly_gate_and_releases_nothing(scenario):
    fourth = scenario.step(4)
    assert fourth.process.returncode != 0
    stderr = fourth.process.stderr
    assert "task AnomalyGate failed" in stderr, stderr[-3000:]
    # DriftCheck's gate message: "<span-3 or the window>, image: Jensen-Shannon divergence
    # 0.5011 > threshold 0.1000".
    assert re.search(r"\bimage: Jensen-Shannon divergence [\d.]+ > threshold", stderr), stderr
    assert fourth.states["MnistExampleGen"] == fourth.states["DriftCheck"] == "executed"
    assert "Transform" not in fourth.states and "Trainer" not in fourth.states
    assert fourth.releases == scenario.before(4)
