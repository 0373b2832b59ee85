"""The HTML run report: one self-contained page per pipeline run.

    python -m reporting.report --output-dir DIR [--run RUN_ID]

Writes `<output-dir>/reports/<run id>/index.html` (default: the newest run in
ML Metadata) and points `<output-dir>/reports/latest` at it. The page has no
JavaScript and loads nothing: its CSS is inline and its figures are PNG data
URIs, so it opens from disk, offline, and can be mailed or archived as one
file. The local runner writes it at the end of every run (`write_report`).
"""

import os

if __name__ == "__main__":  # a command: silence library start-up noise before TensorFlow loads
    from reporting import console

    console.quiet_library_startup()

import argparse
import json
import logging
import sys
import time
import urllib.parse
from typing import Any

import jinja2
import numpy as np

from contract.layout import OutputLayout
from reporting import plots, report_data

REPORT_SECTIONS: tuple[str, ...] = report_data.SECTION_IDS
"""The HTML ids of the page's sections, in page order; every one is always present."""

SECTION_TITLES = {
    "outcome": "Outcome",
    "gates": "Release gates",
    "training": "Training",
    "confusion": "Confusion matrix (test split)",
    "per-digit": "Accuracy per digit (test split)",
    "errors": "Most confident mistakes (test split)",
    "data": "Data",
    "new-data": "New data and release history",
    "timings": "Component timings",
    "lineage": "Lineage (ML Metadata)",
}
REPORTS_DIR = "reports"
LATEST_LINK = "latest"
INDEX_FILE = "index.html"
TEMPLATE = "report.html.j2"
TEMPLATES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


def run_report_dir(output_dir: str, run_id: str) -> str:
    """Where the report of run_id goes: `<output_dir>/reports/<run_id>/`."""
    return os.path.join(output_dir, REPORTS_DIR, run_id.replace(os.sep, "_"))


def _digit_images(pixels: list[np.ndarray]) -> list[str]:
    return [plots.digit_image(digit) for digit in pixels]


def _figures(data: report_data.ReportData) -> dict[str, Any]:
    """Every figure of the page as a PNG data URI (absent when its data is)."""
    figures: dict[str, Any] = {}
    if data.training is not None:
        figures["training"] = plots.training_curves(data.training.metrics, data.training.best_epoch)
    quality = data.quality
    if quality is not None:
        matrices = {"candidate": quality.confusion}
        accuracies = {"candidate": quality.digit_accuracy}
        if quality.has_baseline:
            matrices[f"baseline ({quality.baseline_name})"] = quality.baseline_confusion
            accuracies[f"baseline ({quality.baseline_name})"] = quality.baseline_digit_accuracy
        if quality.confusion:
            figures["confusion"] = plots.confusion_heatmaps(matrices)
        if quality.digit_accuracy:
            figures["per_digit"] = plots.digit_accuracy_bars(accuracies)
    if data.predictions is not None:
        figures["mistakes"] = _digit_images([m.pixels for m in data.predictions.mistakes])
    if data.data is not None:
        shares = {
            split: [count / max(1, sum(counts)) for count in counts]
            for split, counts in data.data.label_counts.items()
        }
        if shares:
            figures["labels"] = plots.grouped_bars(
                shares, "label distribution per split", "share of the split"
            )
        if data.data.mean_images is not None:
            figures["means"] = plots.mean_digits(data.data.mean_images)
    if data.releases:
        figures["releases"] = plots.release_history(
            [record.version for record in data.releases],
            [record.test_accuracy for record in data.releases],
            [record.span_test_accuracy for record in data.releases],
        )
    if data.new_data is not None and data.new_data.labels:
        figures["suspect"] = {
            span["span"]: _digit_images(
                [np.asarray(worst["pixels"]) for worst in span["worst"] if "pixels" in worst]
            )
            for span in data.new_data.labels.get("spans", [])
            if span["suspect"]
        }
    if data.components:
        figures["timings"] = plots.component_timings(
            {c.node_id: c.seconds for c in data.components},
            {c.node_id: c.state for c in data.components},
        )
    return figures


def _detail(value: Any) -> str:
    """A lineage detail as one line of text."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else str(value)


def _figure(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["figure"] = _figure
    environment.filters["detail"] = _detail
    return environment


def render(data: report_data.ReportData, report_dir: str) -> str:
    """The report page of one run, as HTML.

    Args:
      data: The run, from report_data.gather.
      report_dir: The folder the page will be written to (links are relative to it).
    """
    card = data.outcome.model_card
    card_href = None
    if card and "://" not in card:
        card_href = urllib.parse.quote(os.path.relpath(card, report_dir))
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            data=data,
            outcome=data.outcome,
            figures=_figures(data),
            sections=[(section, SECTION_TITLES[section]) for section in REPORT_SECTIONS],
            model_card_href=card_href,
        )
    )


def _point_latest(reports_dir: str, run_folder: str) -> None:
    """Makes `reports/latest` a relative symlink to run_folder, replacing the old one at once."""
    latest = os.path.join(reports_dir, LATEST_LINK)
    temporary = f"{latest}.{os.getpid()}.tmp"
    if os.path.lexists(temporary):
        os.remove(temporary)
    os.symlink(run_folder, temporary)
    os.replace(temporary, latest)


def write_report(
    output_dir: str,
    run_id: str | None = None,
    failure: str | None = None,
    metadata_url: str | None = None,
) -> str:
    """Writes the HTML report of one run and points `reports/latest` at it.

    Args:
      output_dir: The runner's --output-dir (holds metadata.db).
      run_id: The run to report; None for the newest run in ML Metadata
        (with a shared `metadata_url`: the newest run of this output dir,
        whose log is in `<output_dir>/logs/`).
      failure: The runner's error message when the run stopped; shown in
        the outcome banner.
      metadata_url: The runner's --metadata, if it had one (a shared store).

    Returns:
      The path of the written `<output_dir>/reports/<run_id>/index.html`.

    Raises:
      report_data.NoMetadataError: no ML Metadata in output_dir, or no such run.
    """
    started = time.monotonic()
    if run_id is None and metadata_url:
        run_id = newest_local_run(output_dir)
    data = report_data.gather(output_dir, run_id, failure, metadata_url)
    report_dir = run_report_dir(output_dir, data.run_id)
    os.makedirs(report_dir, exist_ok=True)
    index = os.path.join(report_dir, INDEX_FILE)
    temporary = f"{index}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as out:
        out.write(render(data, report_dir))
    os.replace(temporary, index)
    _point_latest(os.path.dirname(report_dir), os.path.basename(report_dir))
    logging.info(
        "Run report of %s written to %s in %.1f s", data.run_id, index, time.monotonic() - started
    )
    return index


def newest_local_run(output_dir: str) -> str | None:
    """The newest run id whose log is in `<output_dir>/logs/` (run ids sort by time)."""
    logs = OutputLayout(output_dir).logs_dir
    names = [name[: -len(".log")] for name in os.listdir(logs)] if os.path.isdir(logs) else []
    return max(names, default=None)


def main(argv: list[str] | None = None) -> int:
    """Writes the report; prints its path. Exit status 1 with a one-line reason on failure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output-dir", default="output", help="the runner's --output-dir")
    parser.add_argument("--run", metavar="RUN_ID", help="a run id (default: the newest run)")
    parser.add_argument(
        "--metadata",
        metavar="URL",
        help="the runner's --metadata store, if it had one (default: <output-dir>/metadata.db)",
    )
    args = parser.parse_args(argv)
    try:
        print(write_report(args.output_dir, args.run, metadata_url=args.metadata))
    except report_data.NoMetadataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger().setLevel(logging.INFO)
    sys.exit(main())
