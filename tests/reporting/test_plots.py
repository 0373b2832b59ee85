"""The report's figures: each is a real PNG inside a data URI, drawn from small arrays."""

import io

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from reporting import plots


def _image(uri: str) -> Image.Image:
    png = plots.png_of_data_uri(uri)
    assert png.startswith(plots.PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    image.load()  # decodes every pixel: a truncated PNG fails here
    return image


def test_png_data_uri_round_trips_and_refuses_what_is_not_png():
    png = plots.figure_png(Figure(figsize=(1, 1)))
    uri = plots.png_data_uri(png)
    assert uri.startswith("data:image/png;base64,")
    assert plots.png_of_data_uri(uri) == png
    with pytest.raises(ValueError, match="not a PNG"):
        plots.png_data_uri(b"GIF89a")
    with pytest.raises(ValueError, match="not a PNG data URI"):
        plots.png_of_data_uri("data:image/gif;base64,R0lG")


def test_digit_image_is_the_digit_enlarged_white_on_black():
    pixels = np.zeros(784, np.int64)
    pixels[14 * 28 + 14] = 255  # one white pixel in the middle
    image = _image(plots.digit_image(pixels, scale=3)).convert("L")
    assert image.size == (84, 84)
    assert image.getpixel((42, 42)) == 255
    assert image.getpixel((0, 0)) == 0


def test_training_curves_draw_whatever_metrics_the_history_has():
    metrics = {
        "loss": [2.0, 1.0, 0.8],
        "val_loss": [1.5, 0.9, 0.95],
        "accuracy": [0.5, 0.7, 0.8],
        "val_accuracy": [0.6, 0.75, 0.74],
        "learning_rate": [1e-3, 1e-3, 2e-4],
    }
    assert _image(plots.training_curves(metrics, best_epoch=2)).size[0] > 500
    assert _image(plots.training_curves({"loss": [1.0]}, best_epoch=None))


def test_confusion_heatmaps_one_or_two_models():
    matrix = np.diag(np.full(10, 90)) + 1
    one = _image(plots.confusion_heatmaps({"candidate": matrix.tolist()}))
    two = _image(plots.confusion_heatmaps({"candidate": matrix, "baseline": matrix}))
    assert two.size[0] > 1.5 * one.size[0]


def test_bars_means_and_timings():
    accuracy = {digit: 0.9 + digit / 100 for digit in range(10)}
    assert _image(plots.digit_accuracy_bars({"candidate": accuracy, "baseline": accuracy}))
    assert _image(plots.grouped_bars({"train": [0.1] * 10}, "labels", "share"))
    means = np.random.RandomState(0).uniform(0, 255, (10, 784))
    means[3] = np.nan  # no example of digit 3
    assert _image(plots.mean_digits(means))
    assert _image(
        plots.component_timings(
            {"Trainer": 30.0, "Pusher": 0.1, "AnomalyGate": 0.0},
            {"Trainer": "executed", "Pusher": "cached", "AnomalyGate": "failed"},
        )
    )
