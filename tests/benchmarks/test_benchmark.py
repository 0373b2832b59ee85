"""Smoke test: the benchmark script runs end to end on tiny data (about 4 minutes).

It checks that every figure the issue asks for is produced and consistent,
not how fast anything is: timings are a benchmark's business, not a test's.
"""

import json
import pathlib
import subprocess
import sys

import pytest

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run of the benchmark, keeping its full pipeline run."""
    scratch = tmp_path_factory.mktemp("benchmark")
    report, full_run = scratch / "bench.json", scratch / "full"
    completed = subprocess.run(
        [
            sys.executable,
            "benchmarks/benchmark.py",
            "--smoke",
            f"--json={report}",
            f"--keep-full-run={full_run}",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed, json.loads(report.read_text()), full_run


def test_benchmark_smoke_run_reports_every_figure(smoke):
    completed, results, full_run = smoke
    console = (full_run / "console.txt").read_text()
    assert "Test accuracy:" in console and "Pushed to:" in console
    for key in (
        "pipeline_over_seed",
        "tenth_over_full",
        "pipeline_over_plain",
        "cached_over_full",
        "transform_over_tfdata",
        "serving_p50_over_direct",
    ):
        assert results["ratios"][key] > 0, key
    assert 0 < results["accuracy"]["pipeline_test"] <= 1
    assert 0 < results["accuracy"]["plain_test"] <= 1
    assert 0 < results["accuracy"]["seed_test"] <= 1
    assert results["epochs_run"]["seed"] == 1 and results["epochs_run"]["pipeline"] == 1
    assert results["wall_s"]["seed"] > 0
    # The per-component profile read from the full run's log.
    assert set(results["profile"]) == set(results["components_s"])
    assert results["profile"]["Trainer"]["epochs"] > 0
    assert 0 < results["memory"]["peak_gb"] < 24
    assert results["machine"]["cores"] >= 1 and results["machine"]["date"]
    assert results["wall_s"]["pipeline_cached"] < results["wall_s"]["pipeline"]
    assert set(results["growth_wall_s"]) == {"10%", "100%"}  # --smoke: one growth run
    assert "Trainer" in results["components_s"]
    assert "ratios: pipeline_over_seed" in completed.stdout


def test_trainer_phases_times_each_step_of_run_fn_on_the_kept_run(smoke):
    _, _, full_run = smoke
    completed = subprocess.run(
        [sys.executable, "benchmarks/trainer_phases.py", f"--output-dir={full_run}", "--epochs=2"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    laps = json.loads(completed.stdout.splitlines()[-1])
    assert list(laps) == [
        "import the trainer module",
        "read the Transform outputs",
        "train input pipeline",
        "eval input pipeline",
        "model",
        "first epoch",
        "other 1 epochs",
        "export: signatures + SavedModel",
        "TFLite (two conversions)",
    ]
    assert all(seconds >= 0 for seconds in laps.values())
    assert f"trainer module: {PROJECT_ROOT}" in completed.stdout
