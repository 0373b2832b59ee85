"""The report's on-disk memo: computes once per input, never serves a stale or broken entry."""

import json
import os
import shutil

import numpy as np
import pytest

from reporting import report, report_cache
from reporting.report_cache import ReportCache


class Counter:
    def __init__(self, value):
        self.value, self.calls = value, 0

    def __call__(self):
        self.calls += 1
        return self.value


def test_a_value_is_computed_once_per_input_then_read_back(tmp_path):
    cache = ReportCache(str(tmp_path))
    compute = Counter({"figure": "data:image/png;base64,AAAA"})
    first = cache.get("figure-x", [1, 2.5, "uri"], compute)
    again = ReportCache(str(tmp_path)).get("figure-x", [1, 2.5, "uri"], compute)
    assert first == again == compute.value and compute.calls == 1
    ReportCache(str(tmp_path)).get("figure-x", [1, 2.5, "other uri"], compute)
    ReportCache(str(tmp_path)).get("figure-y", [1, 2.5, "uri"], compute)
    assert compute.calls == 3, "another input or another kind is another entry"


def test_numpy_inputs_and_values_round_trip_exactly(tmp_path):
    means = np.random.default_rng(0).random((10, 784))
    means[3] = np.nan
    stored = ReportCache(str(tmp_path)).get("means", means, lambda: (means, [1, 2]))
    assert stored[1] == [1, 2]
    loaded = ReportCache(str(tmp_path)).get(
        "means", means.copy(), Counter(None), load=lambda s: (np.asarray(s[0]), s[1])
    )
    np.testing.assert_array_equal(loaded[0], means)  # NaN rows included, bit for bit


def test_changed_reporting_code_is_a_miss(tmp_path, monkeypatch):
    compute = Counter("value")
    ReportCache(str(tmp_path)).get("kind", [1], compute)
    monkeypatch.setattr(report_cache, "_code_fingerprint", lambda: "another version of plots.py")
    ReportCache(str(tmp_path)).get("kind", [1], compute)
    assert compute.calls == 2


def test_a_corrupt_entry_is_recomputed_and_replaced(tmp_path, caplog):
    cache = ReportCache(str(tmp_path))
    cache.get("kind", [1], Counter("good"))
    (entry,) = tmp_path.iterdir()
    entry.write_text('{"truncated')
    compute = Counter("good")
    assert ReportCache(str(tmp_path)).get("kind", [1], compute) == "good"
    assert compute.calls == 1 and "unreadable" in caplog.text
    assert json.loads(entry.read_text()) == "good"


def test_without_a_directory_everything_is_computed(tmp_path):
    compute = Counter("value")
    cache = ReportCache(None)
    cache.get("kind", [1], compute)
    cache.get("kind", [1], compute)
    assert compute.calls == 2 and cache.hits == 0


def test_the_oldest_entries_go_beyond_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(report_cache, "MAX_ENTRIES", 3)
    cache = ReportCache(str(tmp_path))
    for index in range(5):
        cache.get("kind", [index], Counter(index))
        os.utime(tmp_path / f"{cache.key('kind', [index])}.json", (index, index))
    kept = {entry.name for entry in tmp_path.iterdir()}
    assert kept == {f"{cache.key('kind', [index])}.json" for index in (2, 3, 4)}


def test_a_report_from_the_cache_is_the_report_computed_afresh(released_run, caplog):
    shutil.rmtree(os.path.join(released_run, report.REPORTS_DIR, report_cache.CACHE_DIR), True)
    caplog.set_level("INFO")
    fresh_path = report.write_report(released_run)
    with open(fresh_path, encoding="utf-8") as page:
        fresh = page.read()
    again_path = report.write_report(released_run)
    with open(again_path, encoding="utf-8") as page:
        assert page.read() == fresh
    written = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Run report")]
    # Three data passes (the predictions; the train and eval profiles) and six figures;
    # the component timings are drawn every time.
    parts = 1 + 2 + 6
    assert written[0].endswith(f"(0 parts reused, {parts} computed)"), written[0]
    assert written[1].endswith(f"({parts} parts reused, 0 computed)"), written[1]


@pytest.mark.parametrize("kind", ["predictions", "split_profile"])
def test_data_passes_are_keyed_by_artifact_id_and_creation_time_not_uri_alone(kind):
    from reporting import report_data

    class Artifact:
        id, uri, create_time_since_epoch = 7, "output/pipeline/Trainer/model/7", 1000

    recreated = type("Recreated", (Artifact,), {"create_time_since_epoch": 2000})
    cache = ReportCache("unused")
    assert cache.key(kind, [report_data._identity(Artifact)]) != cache.key(
        kind, [report_data._identity(recreated)]
    )
