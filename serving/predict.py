"""Reads digits from image files with a released model.

    python -m serving.predict --serving-dir output/serving/mnist [--version V]
        [--tflite] [--json] digit.png [more.png ...]

Each image (PNG, JPEG, ...; any size or colour, dark on light or light on
dark) is framed as MNIST digits are (`contract.digit_image`), then the newest
release (or `--version V`) reads them in one batch: its SavedModel's
`serving_default` signature, or with `--tflite` its `assets.extra/model.tflite`.

Text output: a line naming the release, then one line per image with the
digit and the top three probabilities. `--json`: JSON Lines (one object per
line, per image, in argument order; nothing else on stdout):
{"image": path as given, "digit": int, "top3": [[digit, probability], ...],
"version": release version, "runtime": "saved_model" | "tflite"}.

Exit status: 0 when every image was read; 1 with a one-line reason per
problem on stderr (a missing or unreadable file, a blank image, no release,
no such version, no TFLite model); 2 for a malformed command line. Every
image is checked before the model is loaded, so one bad file reads nothing.
"""

import argparse
import dataclasses
import json
import sys

import numpy as np

from contract import digit_image
from serving import models

TOP_K = 3


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The model's reading of one image."""

    image: str
    digit: int
    top3: list[tuple[int, float]]
    version: int
    runtime: str


class UnreadableImagesError(ValueError):
    """One or more images could not be read; `problems` holds one line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def top_classes(probabilities: np.ndarray, k: int = TOP_K) -> list[tuple[int, float]]:
    """The k most probable digits of one row, most probable first, as (digit, probability)."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(int(digit), float(probabilities[digit])) for digit in order]


def predict_files(
    image_paths: list[str], serving_dir: str, version: int | None = None, use_tflite: bool = False
) -> list[Prediction]:
    """Reads every image, then predicts them all with one release.

    Args:
      image_paths: Image files, in output order.
      serving_dir: The pipeline's serving directory (numbered releases).
      version: The release to use; None for the newest.
      use_tflite: Use the release's TFLite model instead of its SavedModel.

    Returns:
      One Prediction per image, in the order given.

    Raises:
      UnreadableImagesError: some images could not be read (all are named).
      models.ModelNotFoundError: no such release or no TFLite model in it.
      models.ModelLoadError: the model file is corrupt.
    """
    pixels, problems = [], []
    for path in image_paths:
        try:
            pixels.append(digit_image.load_digit(path))
        except digit_image.DigitImageError as error:
            problems.append(str(error))
    if problems:
        raise UnreadableImagesError(problems)
    chosen = models.find_release(serving_dir, version)
    predict = models.load_predictor(chosen.path, use_tflite=use_tflite)
    probabilities = predict(np.stack(pixels))
    runtime = "tflite" if use_tflite else "saved_model"
    return [
        Prediction(path, int(np.argmax(row)), top_classes(row), chosen.version, runtime)
        for path, row in zip(image_paths, probabilities, strict=True)
    ]


def format_header(prediction: Prediction, serving_dir: str) -> str:
    """The text output's first line: which release and runtime read the images."""
    return f"release {prediction.version} in {serving_dir} ({prediction.runtime}):"


def format_text(prediction: Prediction) -> str:
    """`PATH: DIGIT  (d p, d p, d p)`, probabilities to three decimals."""
    top = ", ".join(f"{digit} {probability:.3f}" for digit, probability in prediction.top3)
    return f"{prediction.image}: {prediction.digit}  ({top})"


def format_json(prediction: Prediction) -> str:
    """One JSON object on one line (probabilities rounded to 6 decimals)."""
    record = dataclasses.asdict(prediction)
    record["top3"] = [[digit, round(probability, 6)] for digit, probability in prediction.top3]
    return json.dumps(record)


def _version(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"a release version is a whole number, not {text!r}")
    return int(text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (argparse exits with status 2 on a malformed one)."""
    parser = argparse.ArgumentParser(
        prog="python -m serving.predict",
        description="Read digits from image files with a released MNIST model.",
    )
    parser.add_argument(
        "--serving-dir",
        default="output/serving/mnist",
        help="the pipeline's serving directory of numbered releases (default: %(default)s)",
    )
    parser.add_argument("--version", type=_version, help="the release to use (default: the newest)")
    parser.add_argument(
        "--tflite",
        action="store_true",
        help="use the release's TFLite model (assets.extra/model.tflite) instead of its SavedModel",
    )
    parser.add_argument("--json", action="store_true", help="JSON Lines: one object per image")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG/JPEG files, one digit each")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns its exit status (see the module docstring)."""
    args = parse_args(argv)
    try:
        predictions = predict_files(args.images, args.serving_dir, args.version, args.tflite)
    except UnreadableImagesError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    except (models.ModelNotFoundError, models.ModelLoadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print("\n".join(format_json(prediction) for prediction in predictions))
    else:
        print(format_header(predictions[0], args.serving_dir))
        print("\n".join(format_text(prediction) for prediction in predictions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
