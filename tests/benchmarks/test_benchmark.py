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


def test_benchmark_smoke_run_reports_every_figure(tmp_path):
    report = tmp_path / "bench.json"
    completed = subprocess.run(
        [sys.executable, "benchmarks/benchmark.py", "--smoke", f"--json={report}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(report.read_text())
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
    assert set(results["growth_wall_s"]) == {"10%", "50%", "100%"}
    assert "Trainer" in results["components_s"]
    assert "ratios: pipeline_over_seed" in completed.stdout
