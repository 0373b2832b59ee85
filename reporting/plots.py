"""The run report's figures: matplotlib (Agg) figures as PNG data URIs.

Every function takes plain numbers and returns a `data:image/png;base64,...`
URI, so the HTML page embeds its images and opens from disk, offline. No
pyplot: each figure is a `matplotlib.figure.Figure` drawn on its own Agg
canvas, so nothing global (backend, open figures) changes in the caller.
"""

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import image as matplotlib_image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from contract import features

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URI_PREFIX = "data:image/png;base64,"
SERIES_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
"""Candidate, baseline (or train, eval, test, span_train, span_test), then spares: the
same order in every figure."""
_DPI = 100


def png_data_uri(png: bytes) -> str:
    """Wraps PNG bytes as a data URI an <img src> can hold.

    Raises:
      ValueError: the bytes are not a PNG.
    """
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG (wrong signature)")
    return DATA_URI_PREFIX + base64.b64encode(png).decode("ascii")


def png_of_data_uri(uri: str) -> bytes:
    """The PNG bytes inside a data URI made by png_data_uri."""
    if not uri.startswith(DATA_URI_PREFIX):
        raise ValueError(f"not a PNG data URI: {uri[:40]!r}")
    return base64.b64decode(uri[len(DATA_URI_PREFIX) :], validate=True)


def figure_png(figure: Figure) -> bytes:
    """Draws a figure with the Agg renderer and returns it as PNG bytes."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def _uri(figure: Figure) -> str:
    return png_data_uri(figure_png(figure))


def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def digit_image(pixels: np.ndarray, scale: int = 3) -> str:
    """One digit as a small grey PNG (white ink on black, as MNIST stores it).

    Args:
      pixels: 784 values (or 28x28) in 0..255.
      scale: Each pixel becomes scale x scale pixels in the PNG.
    """
    grid = np.asarray(pixels, np.float64).reshape(features.IMAGE_HEIGHT, features.IMAGE_WIDTH)
    enlarged = np.kron(grid, np.ones((scale, scale)))
    buffer = io.BytesIO()
    matplotlib_image.imsave(
        buffer, enlarged, cmap="gray", vmin=0, vmax=features.MAX_PIXEL_VALUE, format="png"
    )
    return png_data_uri(buffer.getvalue())


def training_curves(metrics: Mapping[str, Sequence[float]], best_epoch: int | None) -> str:
    """Loss, accuracy (train and eval) and learning rate per epoch.

    Args:
      metrics: Keras history names (`loss`, `val_loss`, `accuracy`,
        `val_accuracy`, `learning_rate`) to one value per epoch; missing
        names are left out.
      best_epoch: The 1-based epoch whose weights were kept, marked in
        every panel; None for no mark.
    """
    figure = _new_figure(11, 3.2)
    panels = figure.subplots(1, 3)
    for axes, (title, names) in zip(
        panels,
        (
            ("loss", ("loss", "val_loss")),
            ("accuracy", ("accuracy", "val_accuracy")),
            ("learning rate", ("learning_rate",)),
        ),
        strict=True,
    ):
        for colour, name in zip(SERIES_COLOURS, names, strict=False):
            values = metrics.get(name) or []
            if values:
                label = "eval" if name.startswith("val_") else "train"
                epochs = range(1, len(values) + 1)
                axes.plot(epochs, values, marker="o", color=colour, label=label)
        if best_epoch:
            axes.axvline(best_epoch, color="grey", linestyle="--", label=f"kept: {best_epoch}")
        axes.set_title(title)
        axes.set_xlabel("epoch")
        axes.xaxis.get_major_locator().set_params(integer=True)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="small")
    panels[2].set_yscale("log")
    return _uri(figure)


def confusion_heatmaps(matrices: Mapping[str, Sequence[Sequence[int]]]) -> str:
    """One 10x10 heatmap with counts per model (e.g. candidate, baseline), side by side.

    Args:
      matrices: Title to rows[true digit][predicted digit] counts.
    """
    figure = _new_figure(5.2 * len(matrices), 4.8)
    panels = np.atleast_1d(figure.subplots(1, len(matrices)))
    for axes, (title, matrix) in zip(panels, matrices.items(), strict=True):
        counts = np.asarray(matrix, np.int64)
        axes.imshow(np.log1p(counts), cmap="Blues")
        brightest = np.log1p(counts.max()) if counts.size else 0
        for (row, column), count in np.ndenumerate(counts):
            dark = np.log1p(count) > 0.6 * brightest
            axes.text(
                column,
                row,
                str(count),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if dark else "black",
            ).set_in_layout(False)  # inside the axes: the layout need not measure 100 texts
        axes.set_title(title)
        axes.set_xlabel("predicted digit")
        axes.set_ylabel("true digit")
        axes.set_xticks(range(len(counts)))
        axes.set_yticks(range(len(counts)))
    return _uri(figure)


def grouped_bars(
    series: Mapping[str, Sequence[float]],
    title: str,
    ylabel: str,
    ylim: tuple[float, float] | None = None,
) -> str:
    """Bars per digit 0..9, one colour per series (e.g. candidate vs baseline)."""
    figure = _new_figure(7, 3.2)
    axes = figure.subplots()
    width = 0.8 / max(1, len(series))
    digits = np.arange(features.NUM_CLASSES)
    for index, (name, values) in enumerate(series.items()):
        offset = (index - (len(series) - 1) / 2) * width
        axes.bar(digits + offset, values, width, label=name, color=SERIES_COLOURS[index])
    axes.set_xticks(digits)
    axes.set_xlabel("digit")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    if ylim:
        axes.set_ylim(*ylim)
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    return _uri(figure)


def release_history(
    versions: Sequence[int],
    test_accuracy: Sequence[float | None],
    span_test_accuracy: Sequence[float | None],
) -> str:
    """Each release's accuracy on MNIST's test split and on its spans' test slice, in order."""
    figure = _new_figure(7, 3.0)
    axes = figure.subplots()
    positions = np.arange(len(versions))
    for index, (name, values) in enumerate(
        (("MNIST test", test_accuracy), ("new-data test slice", span_test_accuracy))
    ):
        shown = [(x, y) for x, y in zip(positions, values, strict=True) if y is not None]
        if shown:
            xs, ys = zip(*shown, strict=True)
            axes.plot(xs, ys, marker="o", label=name, color=SERIES_COLOURS[index])
    axes.set_xticks(positions)
    axes.set_xticklabels([str(version) for version in versions], rotation=30, fontsize="small")
    axes.set_xlabel("release (version)")
    axes.set_ylabel("accuracy")
    axes.set_title("release history")
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    return _uri(figure)


def digit_accuracy_bars(per_model: Mapping[str, Mapping[int, float]]) -> str:
    """Test accuracy per true digit, one bar colour per model.

    The y axis starts a little below the lowest accuracy, so the gaps
    between digits (a few percent) are visible.
    """
    series = {
        name: [accuracies.get(digit, 0.0) for digit in range(features.NUM_CLASSES)]
        for name, accuracies in per_model.items()
    }
    lowest = min((min(values) for values in series.values()), default=0.0)
    return grouped_bars(series, "test accuracy per digit", "accuracy", (max(0.0, lowest - 0.05), 1))


def mean_digits(mean_images: np.ndarray) -> str:
    """The mean image of each digit, 0..9 in a row (one image, a 2-pixel gap between digits).

    Args:
      mean_images: [10, 784] mean pixel values (0..255); a row of NaN (no
        example of that digit) is drawn blank.
    """
    gap = 2
    side = features.IMAGE_HEIGHT
    strip = np.zeros((side, len(mean_images) * (side + gap) - gap))
    for digit, pixels in enumerate(mean_images):
        left = digit * (side + gap)
        strip[:, left : left + side] = np.nan_to_num(np.asarray(pixels, np.float64)).reshape(
            side, features.IMAGE_WIDTH
        )
    figure = _new_figure(9, 1.3)
    axes = figure.subplots()
    axes.imshow(strip, cmap="gray", vmin=0, vmax=features.MAX_PIXEL_VALUE)
    axes.set_xticks([digit * (side + gap) + side / 2 - 0.5 for digit in range(len(mean_images))])
    axes.set_xticklabels([str(digit) for digit in range(len(mean_images))])
    axes.tick_params(length=0)
    axes.set_yticks([])
    axes.set_frame_on(False)
    return _uri(figure)


def component_timings(seconds: Mapping[str, float], states: Mapping[str, str]) -> str:
    """Horizontal bars of each component's seconds, coloured by executed/cached/failed."""
    colours = {"executed": SERIES_COLOURS[0], "cached": "#bbbbbb", "failed": "#d62728"}
    names = list(seconds)
    figure = _new_figure(7, 0.3 * len(names) + 0.8)
    axes = figure.subplots()
    positions = np.arange(len(names))
    axes.barh(
        positions,
        [seconds[name] for name in names],
        color=[colours.get(states.get(name, ""), "#9467bd") for name in names],
    )
    axes.set_yticks(positions, names)
    axes.invert_yaxis()
    axes.set_xlabel("seconds")
    for state, colour in colours.items():
        if state in states.values():
            axes.barh([0], [0], color=colour, label=state)
    axes.legend(fontsize="small", loc="lower right")
    return _uri(figure)
