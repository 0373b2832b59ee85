"""The model card: rendered from a release manifest (or its draft), written into every release."""

import json
import os
import re

import pytest

from components import model_card
from contract import files, releases
from pipeline.config import TrainerConfig

SECTIONS = (
    "Model details",
    "Hyper-parameters",
    "Lineage",
    "Intended use",
    "Out-of-scope uses",
    "Factors",
    "Metrics",
    "Evaluation data",
    "Training data",
    "Quantitative analyses",
    "Ethical considerations",
    "Caveats and recommendations",
    "How it was validated",
)


def full_manifest() -> dict:
    """A manifest as the Pusher writes it for a second release (every part present)."""
    per_digit = {str(d): 0.985 - 0.002 * d for d in range(10)}
    per_digit["8"] = 0.9651
    return {
        "version": 1795672589,
        "model_fingerprint": "9e4cfe55" * 8,
        "released_at": "2026-11-26T05:56:36+00:00",
        "pipeline_run_id": "2026-11-26T05:52:30.310166",
        "test_accuracy": 0.98,
        "per_digit_accuracy": per_digit,
        "confusions": {"8": [0, 7], "9": [7, 9], "3": [7, 10]},
        "thresholds": [
            "SparseCategoricalAccuracy >= 0.97",
            "SparseCategoricalAccuracy change vs baseline >= -1e-10",
        ],
        "baseline": {
            "version": 1795671432,
            "model_fingerprint": "abc123",
            "test_accuracy": 0.979,
            "per_digit_accuracy": {str(d): 0.97 for d in range(10)},
        },
        "training": {
            "hyperparameters": {
                "hidden_units": [50, 50],
                "dropout_rate": 0.1,
                "learning_rate": 0.001,
                "batch_size": 128,
                "max_epochs": 60,
            },
            "epochs_run": 23,
            "best_epoch": 13,
            "final_eval_accuracy": 0.9812,
        },
        "tflite": {
            "test_accuracy": 0.9799,
            "thresholds": ["SparseCategoricalAccuracy >= 0.97"],
            "bytes": {"model.tflite": 171748, "model_dynamic_range.tflite": 46784},
        },
        "serving_check": {
            "canary_accuracy": 0.985,
            "latency_batch_1_p50_ms": 0.373428,
            "latency_batch_1_p99_ms": 0.772641,
            "latency_batch_256_p50_ms": 1.851382,
            "latency_batch_256_p99_ms": 2.193737,
        },
        "data": {
            "archive_sha256": {"train-images-idx3-ubyte.gz": "440fcabf" * 8},
            "split_counts": {"train": 55000, "eval": 5000, "test": 10000, "extra_in_train": 12},
            "tfds_name": "mnist",
            "tfds_version": "3.0.1",
        },
        "lineage": {
            "model": {"id": 8, "uri": "/out/pipeline/Trainer/model/7"},
            "blessing": {"id": 12, "uri": "/out/pipeline/Evaluator/blessing/10"},
            "evaluation": {"id": 13, "uri": "/out/pipeline/Evaluator/evaluation/10"},
            "examples": {"id": 2, "uri": "/out/pipeline/MnistExampleGen/examples/2"},
        },
    }


def first_release_manifest() -> dict:
    """A first release whose run had no TFLite model, serving check or training.json."""
    manifest = full_manifest()
    for key in ("tflite", "serving_check", "training", "confusions"):
        del manifest[key]
    manifest["baseline"] = None
    return manifest


def text_of(html: str) -> str:
    """The page's text, tags dropped and entities for quotes and <> undone."""
    text = re.sub(r"<[^>]+>", " ", html)
    for entity, char in (("&#39;", "'"), ("&#34;", '"'), ("&lt;", "<"), ("&gt;", ">")):
        text = text.replace(entity, char)
    return re.sub(r"\s+", " ", text.replace("&amp;", "&"))


@pytest.fixture(params=[model_card.MARKDOWN_FILE, model_card.HTML_FILE])
def card_file(request):
    return request.param


def rendered(manifest: dict, card_file: str) -> str:
    """One card file as plain text: tags and bold marks dropped, single spaces."""
    card = model_card.render_model_card(manifest)[card_file]
    if card_file == model_card.HTML_FILE:
        return text_of(card)
    return re.sub(r"\s+", " ", card.replace("**", ""))


def not_found(text: str, wanted: tuple[str, ...]) -> list[str]:
    """The wanted pieces of text that `text` lacks."""
    return [piece for piece in wanted if piece not in text]


def test_a_full_manifest_renders_every_section_with_its_figures(card_file):
    text = rendered(full_manifest(), card_file)
    figures = (
        "release 1795672589",
        "9e4cfe55" * 8,
        "2026-11-26T05:52:30.310166",  # pipeline run id
        "Test accuracy: 0.9800",
        "SparseCategoricalAccuracy >= 0.97",
        "change vs baseline >= -1e-10",
        "release 1795671432",
        "0.9790",  # the baseline's accuracy
        "change +0.0010",
        "| 8 | 0.9651 | 0.9700 | -0.0049 | 0 (7x) |" if card_file.endswith("md") else "0 (7x)",
        "digit 8: accuracy 0.9651, most often read as 0 (7x)",
        "Dense(50, relu) -> Dropout(0.1) -> Dense(50, relu) -> Dropout(0.1) -> Dense(10, softmax)",
        "learning_rate | 0.001" if card_file.endswith("md") else "learning_rate 0.001",
        "23 (best epoch 13, eval accuracy there 0.9812)",
        "55,000",
        "12 extra labelled examples",
        "CC BY-SA 3.0",
        "TFLite gate (the same test split and bar): test accuracy 0.9799",
        "model.tflite 171,748 bytes",
        "canary accuracy 0.9850",
        "0.37 ms",
        "2.19 ms",
    )
    assert not_found(text, SECTIONS + figures) == []
    for model_id in (2, 8, 12, 13):
        assert re.search(rf"\b{model_id}\b", text)


def test_the_weakest_digits_come_worst_first(card_file):
    text = rendered(full_manifest(), card_file)
    weakest = re.findall(r"digit (\d): accuracy", text)
    assert weakest == ["8", "9", "7"]


def test_a_first_release_without_tflite_serving_check_or_training_says_so(card_file):
    text = rendered(first_release_manifest(), card_file)
    wordings = (
        "Baseline: none (first release",
        "Baseline comparison: none (first release",
        "TFLite gate: none",
        "Serving check: none recorded",
        "Hyper-parameters None recorded" if card_file.endswith("html") else "None recorded (",
        "Epochs run | not recorded" if card_file.endswith("md") else "Epochs run not recorded",
        "Test accuracy: 0.9800",
    )
    assert not_found(text, SECTIONS + wordings) == []
    assert "never confused" not in text  # confusions not recorded is not "never confused"


def test_a_manifest_with_only_a_version_still_renders(card_file):
    text = rendered({"version": 5}, card_file)
    assert "release 5" in text
    assert "not evaluated" in text.lower()
    assert "first release" in text


def test_the_html_is_self_contained_and_escapes_what_it_shows():
    manifest = full_manifest()
    manifest["lineage"]["model"]["uri"] = "gs://bucket/<script>alert(1)</script>"
    html = model_card.render_model_card(manifest)[model_card.HTML_FILE]
    assert "<script" not in html.lower()
    assert not re.search(r"""\b(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "<link" not in html.lower() and "@import" not in html
    assert "<style>" in html
    assert "&lt;script&gt;" in html


def test_write_model_card_writes_both_files_into_assets_extra(tmp_path):
    written = model_card.write_model_card(str(tmp_path), full_manifest())
    directory = tmp_path / files.EXTRA_DIR
    assert written == [
        str(directory / model_card.MARKDOWN_FILE),
        str(directory / model_card.HTML_FILE),
    ]
    rendered_now = model_card.render_model_card(full_manifest())
    for path in written:
        with open(path) as card:
            assert card.read() == rendered_now[os.path.basename(path)]


def test_the_command_rerenders_a_release_card_from_its_manifest(tmp_path, capsys):
    releases.write_manifest(str(tmp_path), full_manifest())
    assert model_card.main(["--release", str(tmp_path)]) == 0
    assert capsys.readouterr().out == model_card.render_model_card(full_manifest())["model_card.md"]
    assert model_card.main(["--release", str(tmp_path), "--html"]) == 0
    assert capsys.readouterr().out.startswith("<!DOCTYPE html>")


def test_the_command_fails_clearly_without_a_manifest(tmp_path, capsys):
    assert model_card.main(["--release", str(tmp_path)]) == 1
    assert "no release manifest" in capsys.readouterr().err


def test_a_real_release_carries_a_card_with_its_accuracy_and_hyperparameters(released_run):
    (only,) = releases.list_releases(os.path.join(released_run, "serving", "mnist"))
    manifest = releases.read_manifest(only.path)
    with open(os.path.join(only.path, files.TRAINING_INFO_FILE)) as info:
        hyperparameters = json.load(info)["hyperparameters"]
    assert manifest["training"]["hyperparameters"] == hyperparameters
    for name in (model_card.MARKDOWN_FILE, model_card.HTML_FILE):
        with open(os.path.join(only.path, files.EXTRA_DIR, name)) as card:
            text = text_of(card.read()) if name.endswith("html") else card.read()
        assert f"Test accuracy: {manifest['test_accuracy']:.4f}" in re.sub(r"[*\s]+", " ", text)
        assert manifest["model_fingerprint"] in text
        assert "candidate for release" in text  # rendered before the Pusher chose the version
        assert f"batches of {hyperparameters['batch_size']}" in text
        for parameter in ("learning_rate", "batch_size", "max_epochs"):
            assert parameter in text
        assert f"{hyperparameters['learning_rate']:g}" in text
        assert "SparseCategoricalAccuracy >= 0.5" in text  # the small run's threshold


def test_the_command_renders_a_released_card_with_its_version(released_run, capsys):
    (only,) = releases.list_releases(os.path.join(released_run, "serving", "mnist"))
    assert model_card.main(["--release", only.path]) == 0
    assert f"release {only.version}" in capsys.readouterr().out


def test_the_training_method_is_generated_from_the_trainer_config():
    default = model_card.training_method(TrainerConfig().to_custom_config())
    assert "batches of 1024" in default and "at most 40 epochs" in default
    assert "warmed up linearly to 0.006 over 2 epochs, then cosine decay" in default
    assert "shifted at random by up to 8% of its width (about 2 px)" in default
    assert "patience 8" in default and "dropout" not in default

    plateau = TrainerConfig(
        lr_schedule="plateau", dropout_rate=0.2, augment_max_shift=0.0, batch_size=128
    )
    text = model_card.training_method(plateau.to_custom_config())
    assert "batches of 128" in text and "cosine" not in text and "shifted" not in text
    assert "multiplied by 0.5 after 3 epochs without a lower eval loss" in text
    assert "dropout 0.2" in text
    assert model_card.training_method({}) == "not recorded (the model has no training.json)"


def test_the_card_shows_the_training_method_of_its_manifest(card_file):
    manifest = full_manifest()
    manifest["training"]["hyperparameters"]["batch_size"] = 77
    assert "batches of 77" in rendered(manifest, card_file)


def test_the_training_method_says_where_a_warm_start_began():
    warm = TrainerConfig().for_warm_start().to_custom_config()
    text = model_card.training_method(
        warm, {"from_version": 1796295804, "model_fingerprint": "0123456789abcdef" * 4}
    )
    assert text.startswith("Warm-started from release 1796295804's weights (model 0123456789ab)")
    assert "at most 5 epochs" in text and "learning rate 0.0003, cosine decay" in text
    assert "warmed up" not in text
    scratch = model_card.training_method(warm, {"from_version": None})
    assert scratch.startswith("Warm start asked for, but there was no release yet")
    assert model_card.training_method(warm).startswith("Adam"), "no warm start: not mentioned"
