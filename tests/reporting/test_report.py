"""The HTML run report, read as a person (and a browser) would read it.

Real small runs: the shared released run, then one output dir with a run
refused at the gates followed by a run stopped at the anomaly gate.
"""

import dataclasses
import html.parser
import io
import os
import re
import subprocess
import sys
import types
import urllib.parse

import numpy as np
import pytest
from PIL import Image

from components import error_gallery, example_export
from contract import artifacts, features, releases
from pipeline.config import OutputLayout
from reporting import plots, report, report_data
from tests.conftest import PROJECT_ROOT


class _Page(html.parser.HTMLParser):
    """What a test needs from a report page: ids, images, links, the mistakes, the counts."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text
        self.ids: list[str] = []
        self.images: list[str] = []
        self.references: list[str] = []
        self.tags: set[str] = set()
        self.status: str | None = None
        self.mistakes: list[dict[str, str]] = []
        self.confusion_counts: list[int] = []
        self._in_confusion = self._in_cell = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        self.tags.add(tag)
        if "id" in attributes:
            self.ids.append(attributes["id"])
        if tag == "img":
            self.images.append(attributes.get("src") or "")
        self.references += [attributes[name] for name in ("src", "href") if name in attributes]
        if "data-status" in attributes:
            self.status = attributes["data-status"]
        if tag == "figure" and "mistake" in classes:
            self.mistakes.append(attributes)
        if tag == "table" and "confusion-counts" in classes:
            self._in_confusion = True
        self._in_cell = self._in_confusion and tag == "td"

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_confusion = False
        if tag == "td":
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell and data.strip():
            self.confusion_counts.append(int(data))

    def section(self, section_id: str) -> str:
        """The HTML of one section."""
        match = re.search(rf'<section id="{section_id}">(.*?)</section>', self.text, re.DOTALL)
        assert match, f"no section {section_id}"
        return match.group(1)


def _read(path: str) -> _Page:
    with open(path, encoding="utf-8") as source:
        return _Page(source.read())


def _assert_complete_and_offline(page: _Page) -> None:
    """Every section, in order; every image an embedded PNG; nothing fetched, no script."""
    positions = [page.ids.index(section) for section in report.REPORT_SECTIONS]
    assert positions == sorted(positions)
    assert page.images
    for source in page.images:
        image = Image.open(io.BytesIO(plots.png_of_data_uri(source)))
        image.load()
    assert not page.tags & {"script", "link", "iframe", "object", "embed"}
    assert not [ref for ref in page.references if re.match(r"(https?:)?//", ref)]
    assert "url(" not in page.text and "@import" not in page.text


@pytest.fixture(scope="module")
def released_report(released_run) -> str:
    return report.write_report(released_run)


def test_released_report_is_complete_and_loads_nothing(released_report, released_run):
    run_id = report_data.find_run(report_data.open_store(released_run)).name
    assert released_report == os.path.join(released_run, "reports", run_id, "index.html")
    page = _read(released_report)
    _assert_complete_and_offline(page)
    assert "not available" not in page.text


def test_banner_names_the_version_in_the_serving_dir(released_report, released_run):
    (only,) = releases.list_releases(OutputLayout(released_run).serving_model_dir)
    page = _read(released_report)
    assert page.status == "released"
    assert f"Released as version {only.version}" in page.section("outcome")
    assert only.path in page.section("outcome")
    card = os.path.join(only.path, report_data.MODEL_CARD_FILE)
    assert ("model-card" in page.section("outcome")) == os.path.exists(card)


def test_confusion_counts_sum_to_the_test_split(released_report):
    assert sum(_read(released_report).confusion_counts) == 1000


def test_mistake_grid_is_wrong_digits_most_confident_first(released_report):
    mistakes = _read(released_report).mistakes
    assert len(mistakes) == error_gallery.MISTAKES_SHOWN
    assert all(m["data-label"] != m["data-predicted"] for m in mistakes)
    probabilities = [float(m["data-probability"]) for m in mistakes]
    assert probabilities == sorted(probabilities, reverse=True)


def test_mistake_grid_is_the_dags_error_gallery(released_report, released_run):
    files_in_store = report_data.open_store(released_run).get_artifacts_by_type("File")
    (gallery,) = [artifact for artifact in files_in_store if "/ErrorGallery/" in artifact.uri]
    recorded = artifacts.read_gallery(gallery.uri).mistakes
    shown = [
        (int(m["data-label"]), int(m["data-predicted"]), m["data-probability"])
        for m in _read(released_report).mistakes
    ]
    assert shown == [(m.label, m.predicted, f"{m.probability:.6f}") for m in recorded]


def test_latest_is_a_relative_link_to_the_run_folder(released_report, released_run):
    latest = os.path.join(released_run, "reports", report.LATEST_LINK)
    assert not os.path.isabs(os.readlink(latest))
    assert os.path.realpath(latest) == os.path.realpath(os.path.dirname(released_report))


def test_model_card_is_linked_relative_to_the_report(released_run, tmp_path):
    card = tmp_path / "serving" / "7" / report_data.MODEL_CARD_FILE
    card.parent.mkdir(parents=True)
    card.write_text("<html>card</html>")
    data = report_data.gather(released_run)
    data = dataclasses.replace(
        data, outcome=dataclasses.replace(data.outcome, model_card=str(card))
    )
    report_dir = tmp_path / "reports" / "some-run"
    page = _Page(report.render(data, str(report_dir)))
    (href,) = [ref for ref in page.references if ref.endswith("model_card.html")]
    assert not os.path.isabs(href)
    assert os.path.normpath(report_dir / urllib.parse.unquote(href)) == str(card)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reporting.report", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def test_cli_writes_the_report_and_refuses_a_dir_without_metadata(
    released_report, released_run, tmp_path
):
    run_id = os.path.basename(os.path.dirname(released_report))
    written = _cli("--output-dir", released_run, "--run", run_id)
    assert written.returncode == 0, written.stderr
    assert written.stdout.strip() == released_report
    refused = _cli("--output-dir", str(tmp_path))
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    (message,) = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert f"no ML Metadata at {tmp_path / 'metadata.db'}" in message


def _write_bad_examples(folder: str) -> None:
    """Five digits of 783 pixels: ExampleValidator flags them, the anomaly gate stops the run."""
    images = np.zeros((5, features.NUM_PIXELS - 1), np.int64)
    digits = example_export.DigitArrays(images, np.arange(5, dtype=np.int64))
    records = example_export.encode_examples(digits, features.IMAGE_KEY, features.LABEL_KEY)
    example_export.write_tfrecords(records, folder)


@pytest.fixture(scope="module")
def refused_then_stopped(tmp_path_factory, run_small_pipeline) -> types.SimpleNamespace:
    """One output dir: a run refused at the gates, then a run stopped at the anomaly gate.

    The runner writes each run's report itself (local_runner.write_run_report),
    with its failure message when the run stopped.
    """
    output_dir = str(tmp_path_factory.mktemp("refused_then_stopped"))
    assert run_small_pipeline(output_dir, "--accuracy-threshold=0.999") == 2
    refused_run_id = report_data.find_run(report_data.open_store(output_dir)).name
    extra = str(tmp_path_factory.mktemp("bad_extra"))
    _write_bad_examples(extra)
    assert run_small_pipeline(output_dir, f"--extra-examples={extra}") == 1
    stopped_run_id = report_data.find_run(report_data.open_store(output_dir)).name
    return types.SimpleNamespace(
        output_dir=output_dir, refused_run_id=refused_run_id, stopped_run_id=stopped_run_id
    )


def test_refused_run_says_not_blessed_and_which_threshold(refused_then_stopped):
    runs = refused_then_stopped
    path = report.write_report(runs.output_dir, runs.refused_run_id)  # not the newest run
    assert os.path.basename(os.path.dirname(path)) == runs.refused_run_id
    latest = os.path.join(runs.output_dir, "reports", report.LATEST_LINK)
    assert os.path.realpath(latest) == os.path.realpath(os.path.dirname(path))
    page = _read(path)
    _assert_complete_and_offline(page)
    assert page.status == "not blessed"
    assert "Not blessed" in page.section("outcome")
    assert "violates threshold &gt;= 0.999" in page.section("outcome")
    gates = page.section("gates")
    assert "SparseCategoricalAccuracy &gt;= 0.999" in gates and "fail" in gates
    assert "No baseline" in page.section("per-digit")
    assert "not available" not in page.text


def test_run_stopped_at_the_anomaly_gate_still_has_every_section(refused_then_stopped):
    runs = refused_then_stopped
    written_by_the_runner = report.run_report_dir(runs.output_dir, runs.stopped_run_id)
    page = _read(os.path.join(written_by_the_runner, report.INDEX_FILE))
    _assert_complete_and_offline(page)
    assert page.status == "stopped"
    outcome = page.section("outcome")
    assert "Stopped at AnomalyGate" in outcome and "INVALID_FEATURE_SHAPE" in outcome
    assert "Pipeline stopped: 1 data anomaly found" in outcome, "the runner's message is shown"
    for section in ("gates", "training", "confusion", "per-digit", "errors", "lineage"):
        assert "not available: the run stopped at AnomalyGate" in page.section(section), section
    data = page.section("data")
    assert "not available" not in data
    assert "INVALID_FEATURE_SHAPE" in data and "5 train records" in data
    assert re.search(r"<td>AnomalyGate</td><td>failed</td>", page.section("timings"))
