"""ModelCardGen: renders the candidate's model card from its release manifest, and nothing else.

    python -m components.model_card --release DIR [--html]

Sections after Mitchell et al., "Model Cards for Model Reporting" (FAT* 2019):
model details, intended use, factors, metrics, evaluation and training data,
quantitative analyses, ethical considerations, caveats and recommendations,
plus how the release was validated (the gates it passed, with their figures).

The model-card-toolkit cannot be installed beside TFX 1.16, so two jinja2
templates (`components/templates/`) render the card: Markdown, and one
self-contained HTML page (inline CSS, no script, nothing fetched). The prose
both share lives here, once; the templates only lay it out.

In the pipeline, ModelCardGen renders the card from ReleaseManifest's draft
(everything a release records but its version and time, which the Pusher
assigns); the Pusher copies both files into the staged release's
`assets.extra/` before the rename, so a release never exists without its
card. The command renders a release's card from its `release.json`, version
included (e.g. after a template change), to stdout.
"""

import argparse
import dataclasses
import json
import os
import re
import sys
from typing import Any

import jinja2
import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types.experimental import simple_artifacts

from components.release_manifest import MANIFEST_FILE as DRAFT_FILE
from components.source_fingerprint import FingerprintDriver
from contract import files, releases, tfx_internals

MARKDOWN_FILE = os.path.basename(files.MODEL_CARD_MARKDOWN_FILE)
HTML_FILE = os.path.basename(files.MODEL_CARD_HTML_FILE)
TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
WEAKEST_DIGITS = 3
"""How many of the least accurate digits the limitations section names."""

INTENDED_USES = (
    "Reading one handwritten digit, 0 to 9, from a 28x28 grey-scale image prepared "
    "the way MNIST's are: the digit size-normalised and centred, light strokes on a "
    "dark background, pixel values 0 to 255.",
    "Showing and testing a production-style TFX pipeline end to end: validated data, "
    "a shared preprocessing graph, quality gates and audited releases.",
)
OUT_OF_SCOPE_USES = (
    "Other scripts and symbols (letters, non-Latin numerals, punctuation): the model "
    "always answers one of 0-9, even for an image that holds no digit.",
    "Photographs and document scans not cropped, size-normalised and centred as "
    "MNIST's digits are; dark ink on a light background without inversion.",
    "Uncentred, rotated or several digits in one image: training shifted digits by "
    "a few pixels at most.",
    "Decisions that affect people (amounts on cheques, forms, postal codes) without "
    "a human check of uncertain readings.",
)
FACTORS = (
    "The factor evaluated is the true digit: TFMA slices the test split by label, "
    "so every metric below is also reported per digit.",
    "MNIST records nothing about its writers, stroke width or pen, so accuracy "
    "across those was not measured.",
)
ETHICAL_CONSIDERATIONS = (
    "MNIST's digits were written by US Census Bureau employees and US high-school "
    "students (NIST Special Databases 3 and 1). Handwriting from other populations, "
    "ages or conventions (a crossed 7, an open 4) may be read less accurately; this "
    "was not measured.",
    "The data holds no personal information beyond the handwriting itself.",
)
CAVEATS = (
    "The test split comes from the same population of writers as the training "
    "data; expect lower accuracy on other handwriting.",
    "The output probabilities were not checked for calibration: treat them as a "
    "ranking of the digits, not as confidence.",
    "The per-digit figures rest on about a tenth of the test split each, so small "
    "differences between digits or releases can be sampling noise.",
)
DATA_SOURCE = (
    "MNIST, the database of handwritten digits by Yann LeCun, Corinna Cortes and "
    "Christopher J.C. Burges, prepared by TensorFlow Datasets from the original "
    "archives (checked against the SHA-256 sums below)."
)
DATA_LICENSE = (
    "Yann LeCun and Corinna Cortes hold the copyright of the MNIST dataset, which is "
    "a derivative work from the original NIST datasets. It is made available under "
    "the terms of the Creative Commons Attribution-Share Alike 3.0 license "
    "(CC BY-SA 3.0)."
)
"""TFDS's mnist metadata (3.0.1) has no license field; this is the wording of
the Keras `mnist.load_data` documentation, for the same files."""
DATA_CITATION = (
    "Y. LeCun, C. Cortes and C.J.C. Burges, MNIST handwritten digit database, "
    "http://yann.lecun.com/exdb/mnist/ (as cited by TensorFlow Datasets)."
)
_LATENCY_KEY = re.compile(r"latency_batch_(\d+)_(p\d+)_ms")
_LINEAGE_ORDER = ("examples", "model", "evaluation", "blessing")
_SPLIT_ORDER = ("train", "eval", "test")


@dataclasses.dataclass(frozen=True)
class DigitRow:
    """One digit's figures: accuracy (and the baseline's), and its top confusion."""

    digit: int
    accuracy: float
    baseline_accuracy: float | None = None
    confused_as: int | None = None
    confused_count: int | None = None


def _by_digit(figures: dict[str, Any] | None) -> dict[int, Any]:
    return {int(digit): value for digit, value in (figures or {}).items()}


def _architecture(hyperparameters: dict[str, Any]) -> str:
    """The layers, e.g. '784 pixels scaled to [0, 1] -> Dense(50, relu) -> Dropout(0.1) -> ...'."""
    layers = ["784 pixels scaled to [0, 1]"]
    for units in hyperparameters.get("hidden_units") or []:
        layers.append(f"Dense({units}, relu)")
        if hyperparameters.get("dropout_rate"):
            layers.append(f"Dropout({hyperparameters['dropout_rate']:g})")
    if len(layers) == 1:
        layers.append("dense hidden layers (sizes not recorded)")
    layers.append("Dense(10, softmax)")
    return " -> ".join(layers)


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(_value_text(item) for item in value)
    return str(value)


def _latency_table(serving_check: dict[str, float]) -> tuple[list[str], list[tuple]]:
    """(percentiles, [(batch size, [ms per percentile])]) from `latency_batch_N_pXX_ms` keys."""
    by_batch: dict[int, dict[str, float]] = {}
    for name, value in serving_check.items():
        match = _LATENCY_KEY.fullmatch(name)
        if match:
            by_batch.setdefault(int(match.group(1)), {})[match.group(2)] = value
    percentiles = sorted(
        {p for figures in by_batch.values() for p in figures}, key=lambda p: int(p[1:])
    )
    rows = [
        (batch, [by_batch[batch].get(percentile) for percentile in percentiles])
        for batch in sorted(by_batch)
    ]
    return percentiles, rows


def _lineage_rank(name: str) -> tuple[int, str]:
    """Data first, then model, evaluation, blessing; anything else after, by name."""
    known = name in _LINEAGE_ORDER
    return (_LINEAGE_ORDER.index(name) if known else len(_LINEAGE_ORDER), name)


def _with_keys(part: dict[str, Any] | None, *keys: str) -> dict[str, Any] | None:
    """A manifest part with every key the templates read (None where absent)."""
    return None if part is None else {key: part.get(key) for key in keys}


def card_context(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the templates show, derived from a release manifest (any key may be absent)."""
    training = manifest.get("training")
    hyperparameters = (training or {}).get("hyperparameters") or {}
    baseline = manifest.get("baseline")
    baseline_digits = _by_digit((baseline or {}).get("per_digit_accuracy"))
    confusions = _by_digit(manifest.get("confusions"))
    digits = [
        DigitRow(digit, accuracy, baseline_digits.get(digit), *confusions.get(digit, (None, None)))
        for digit, accuracy in sorted(_by_digit(manifest.get("per_digit_accuracy")).items())
    ]
    tflite = _with_keys(manifest.get("tflite"), "test_accuracy", "thresholds", "bytes")
    serving_check = manifest.get("serving_check")
    percentiles, latency_rows = _latency_table(serving_check or {})
    lineage = manifest.get("lineage") or {}
    data = _with_keys(manifest.get("data"), "tfds_name", "tfds_version", "split_counts")
    split_counts = (data or {}).get("split_counts") or {}
    return {
        "version": manifest.get("version"),
        "fingerprint": manifest.get("model_fingerprint"),
        "released_at": manifest.get("released_at"),
        "released_on": (manifest.get("released_at") or "")[:10] or None,
        "pipeline_run_id": manifest.get("pipeline_run_id"),
        "architecture": _architecture(hyperparameters),
        "training_method": training_method(hyperparameters, (training or {}).get("warm_start")),
        "training": _with_keys(training, "epochs_run", "best_epoch", "final_eval_accuracy"),
        "hyperparameters": [
            (name, _value_text(value)) for name, value in sorted(hyperparameters.items())
        ],
        "lineage": [
            (name, lineage[name].get("id"), lineage[name].get("uri"))
            for name in sorted(lineage, key=_lineage_rank)
        ],
        "test_accuracy": manifest.get("test_accuracy"),
        "thresholds": manifest.get("thresholds") or [],
        "baseline": _with_keys(baseline, "version", "model_fingerprint", "test_accuracy"),
        "digits": digits,
        "confusions_recorded": "confusions" in manifest,
        "weakest": sorted(digits, key=lambda row: row.accuracy)[:WEAKEST_DIGITS],
        "tflite": tflite,
        "tflite_thresholds": (tflite or {}).get("thresholds") or [],
        "tflite_sizes": sorted(((tflite or {}).get("bytes") or {}).items()),
        "canary_accuracy": (serving_check or {}).get("canary_accuracy"),
        "serving_check": serving_check,
        "latency_percentiles": percentiles,
        "latency_rows": latency_rows,
        "data": data,
        "split_counts": [
            (name, split_counts[name]) for name in _SPLIT_ORDER if name in split_counts
        ],
        "test_count": split_counts.get("test"),
        "extra_in_train": split_counts.get("extra_in_train") or 0,
        "archives": sorted(((manifest.get("data") or {}).get("archive_sha256") or {}).items()),
        "spans": _spans_context(manifest),
        "intended_uses": INTENDED_USES,
        "out_of_scope_uses": OUT_OF_SCOPE_USES,
        "factors": FACTORS,
        "ethical_considerations": ETHICAL_CONSIDERATIONS,
        "caveats": CAVEATS,
        "data_source": DATA_SOURCE,
        "data_license": DATA_LICENSE,
        "data_citation": DATA_CITATION,
    }


def _spans_context(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The spans the model saw and what the new-data gates said (None: trained without spans)."""
    spans = (manifest.get("data") or {}).get("spans")
    if not spans:
        return None
    drift = manifest.get("drift") or {}
    label_check = manifest.get("label_check") or {}
    judged = {span["span"]: span for span in label_check.get("spans", [])}
    counts = spans.get("counts") or {}
    return {
        "window": spans.get("window") or [],
        "present": spans.get("present") or [],
        "rows": [
            {
                "span": number,
                **(counts.get(str(number)) or {}),
                "disagreement_rate": (judged.get(number) or {}).get("disagreement_rate"),
            }
            for number in spans.get("window") or []
        ],
        "span_test_accuracy": (manifest.get("span_test") or {}).get("test_accuracy"),
        "drift_verdict": drift.get("verdict") or "not recorded",
        "drift_baseline": drift.get("baseline_version"),
        "drift": drift.get("measurements") or [],
        "label_verdict": label_check.get("verdict") or "not recorded",
        "expected_rate": label_check.get("test_error"),
    }


def _warm_start_text(warm_start: dict[str, Any] | None) -> str | None:
    if not warm_start:
        return None
    if warm_start.get("from_version") is None:
        return "warm start asked for, but there was no release yet: trained from scratch"
    fingerprint = (warm_start.get("model_fingerprint") or "")[:12]
    return (
        f"warm-started from release {warm_start['from_version']}'s weights (model "
        f"{fingerprint}), then a short schedule on this run's training data (MNIST plus any "
        "spans)"
    )


def training_method(
    hyperparameters: dict[str, Any], warm_start: dict[str, Any] | None = None
) -> str:
    """How the model was trained, in one paragraph, from the TrainerConfig it recorded.

    Args:
      hyperparameters: `TrainerConfig.to_custom_config()` as the Trainer wrote
        it into `training.json` (empty when the model has no record); for a
        warm start, the short schedule it trained.
      warm_start: training.json's `warm_start` (None: no warm start asked for).
    """
    if not hyperparameters:
        return "not recorded (the model has no training.json)"
    value = hyperparameters.get
    parts = [_warm_start_text(warm_start)] if warm_start else []
    parts.append(
        f"Adam on sparse categorical cross-entropy, batches of {value('batch_size')}, "
        f"at most {value('max_epochs')} epochs"
    )
    peak, floor = value("learning_rate"), value("min_learning_rate")
    if value("lr_schedule") == "cosine" and not value("warmup_epochs"):
        parts.append(
            f"learning rate {peak}, cosine decay to {floor} at epoch {value('max_epochs')}"
        )
    elif value("lr_schedule") == "cosine":
        parts.append(
            f"learning rate warmed up linearly to {peak} over {value('warmup_epochs')} "
            f"epochs, then cosine decay to {floor} at epoch {value('max_epochs')}"
        )
    else:
        parts.append(
            f"learning rate {peak}, multiplied by {value('lr_plateau_factor')} after "
            f"{value('lr_plateau_patience')} epochs without a lower eval loss (down to {floor})"
        )
    shift = value("augment_max_shift") or 0
    if shift:
        parts.append(
            f"each training digit shifted at random by up to {shift:.0%} of its width "
            f"(about {shift * 28:.0f} px)"
        )
    if value("dropout_rate"):
        parts.append(f"dropout {value('dropout_rate')} after each hidden layer")
    parts.append(
        f"early stopping on the eval loss (patience {value('early_stopping_patience')}) "
        "restores the best epoch's weights"
    )
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _accuracy_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _change_text(value: float | None, reference: float | None) -> str:
    return "n/a" if value is None or reference is None else f"{value - reference:+.4f}"


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(
        accuracy=_accuracy_text,
        change=_change_text,
        count=lambda value: f"{value:,}",
        ms=lambda value: "n/a" if value is None else f"{value:.2f} ms",
    )
    return environment


def render_model_card(manifest: dict[str, Any]) -> dict[str, str]:
    """Renders a release's model card from its manifest.

    Args:
      manifest: The release manifest (`assets.extra/release.json`, as the
        Pusher's `build_manifest` makes it); missing parts (no evaluation,
        baseline, TFLite model or training record) are reported as missing.

    Returns:
      {"model_card.md": Markdown, "model_card.html": a self-contained HTML page}.
    """
    return {name: _render(name, manifest) for name in (MARKDOWN_FILE, HTML_FILE)}


def _render(name: str, manifest: dict[str, Any]) -> str:
    """One card file (`MARKDOWN_FILE` or `HTML_FILE`), from its template `<name>.j2`."""
    return _environment().get_template(f"{name}.j2").render(card_context(manifest))


def write_model_card(release_dir: str, manifest: dict[str, Any]) -> list[str]:
    """Writes the model card into `<release_dir>/assets.extra/` (local or `gs://`).

    Args:
      release_dir: A (staged) release directory.
      manifest: Its manifest.

    Returns:
      The paths written, Markdown first.
    """
    directory = os.path.join(release_dir, files.EXTRA_DIR)
    tf.io.gfile.makedirs(directory)
    written = []
    for name, text in render_model_card(manifest).items():
        path = os.path.join(directory, name)
        with tf.io.gfile.GFile(path, "w") as out:
            out.write(text)
        written.append(path)
    return written


def read_draft(manifest_uri: str) -> dict[str, Any]:
    """The manifest draft in a ReleaseManifest output artifact."""
    with tf.io.gfile.GFile(os.path.join(manifest_uri, DRAFT_FILE)) as source:
        return json.load(source)


@component
def ModelCardGen(  # noqa: N802 (TFX components are named like classes)
    manifest: InputArtifact[simple_artifacts.File],
    model_card: OutputArtifact[simple_artifacts.File],
) -> None:
    """Renders the model card (Markdown and HTML) from ReleaseManifest's draft.

    Args:
      manifest: ReleaseManifest's output (`release.json`, without a version yet).
      model_card: Output; `model_card.md` and `model_card.html`.
    """
    rendered = render_model_card(read_draft(manifest.uri))
    tf.io.gfile.makedirs(model_card.uri)
    for name, text in rendered.items():
        with tf.io.gfile.GFile(os.path.join(model_card.uri, name), "w") as out:
            out.write(text)


tfx_internals.declare_driver(ModelCardGen, FingerprintDriver, (__name__,))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--release", required=True, help="a release's version directory")
    parser.add_argument("--html", action="store_true", help="print the HTML card, not Markdown")
    args = parser.parse_args(argv)
    manifest = releases.read_manifest(args.release)
    if manifest is None:
        print(f"no release manifest at {releases.manifest_path(args.release)}", file=sys.stderr)
        return 1
    sys.stdout.write(_render(HTML_FILE if args.html else MARKDOWN_FILE, manifest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
