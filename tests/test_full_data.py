"""End to end on all 70,000 digits (minutes): select with `pytest -m full_data`."""

import json

import pytest

import local_runner
from reporting import run_summary

pytestmark = pytest.mark.full_data


def test_full_pipeline_releases_a_model_above_097(tmp_path, tfds_data_dir, mnist_dir):
    exit_code = local_runner.main(
        [f"--output-dir={tmp_path}", f"--tfds-data-dir={tfds_data_dir}", f"--mnist-dir={mnist_dir}"]
    )
    summary = run_summary.latest_run_summary(
        local_runner.OutputLayout(str(tmp_path)).metadata_path, "mnist"
    )
    print(summary.render())
    assert exit_code == 0
    assert summary.test_accuracy >= 0.97
    assert summary.blessed and summary.pushed
    examples = summary.component("MnistExampleGen").outputs["examples"]
    counts = json.loads(examples.custom_properties["split_counts"].string_value)
    assert counts == {"train": 55_000, "eval": 5_000, "test": 10_000, "extra_in_train": 0}
