"""The predict command on real MNIST digits, with a small model trained here.

The module trains a small Keras model on 5,000 real training digits (two
epochs, seconds) and releases it into a fake serving dir the way the Pusher
lays releases out: `<serving dir>/1/` holding a SavedModel whose
`serving_default` parses serialized tf.Examples (`image`: 784 raw ints) and
returns {"probabilities": [N, 10]}, plus `assets.extra/model.tflite` converted
from the same Keras model. Real test-split digits are then written as image
files (as they are, inverted, enlarged, in colour, as JPEG) and read back
through `python -m serving.predict`; the command must agree with the model
called directly on the original pixels.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components import example_export, tfds_mnist
from contract import features
from serving import models, predict
from tests.conftest import PROJECT_ROOT

TRAIN_DIGITS = 5000
TEST_DIGITS = 30
MIN_AGREEMENT = 0.9
ENLARGED_SIDE = 200

# Each variant: how a 28x28 MNIST digit (white on black, uint8) becomes a file.
VARIANTS = {
    "as_is": (lambda digit: Image.fromarray(digit), "png"),
    "inverted": (lambda digit: Image.fromarray(255 - digit), "png"),
    "enlarged_rgb": (
        lambda digit: (
            Image.fromarray(digit)
            .resize((ENLARGED_SIDE, ENLARGED_SIDE), Image.Resampling.BICUBIC)
            .convert("RGB")
        ),
        "png",
    ),
    "enlarged_inverted_rgb_jpeg": (
        lambda digit: (
            Image.fromarray(255 - digit)
            .resize((ENLARGED_SIDE, ENLARGED_SIDE), Image.Resampling.BICUBIC)
            .convert("RGB")
        ),
        "jpg",
    ),
}


def build_model() -> tf.keras.Model:
    """Raw int64 pixels in (scaled inside, as the released model does), probabilities out."""
    image = tf.keras.Input(shape=(features.NUM_PIXELS,), dtype=tf.int64, name=features.IMAGE_KEY)
    scaled = tf.keras.layers.Rescaling(1.0 / features.MAX_PIXEL_VALUE)(image)
    hidden = tf.keras.layers.Dense(64, activation="relu")(scaled)
    probabilities = tf.keras.layers.Dense(features.NUM_CLASSES, activation="softmax")(hidden)
    model = tf.keras.Model(image, probabilities)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def save_release(model: tf.keras.Model, release_dir: str, output_name: str | None) -> None:
    """Saves a SavedModel with a tf.Example `serving_default` and the TFLite model beside it.

    Args:
      model: The Keras model (int64 [N, 784] -> [N, 10]).
      release_dir: The release directory to write.
      output_name: The signature's output key; None returns the bare tensor,
        which TF names `output_0` (what today's releases have).
    """
    feature_spec = {
        features.IMAGE_KEY: tf.io.FixedLenFeature([features.NUM_PIXELS], tf.int64),
    }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(examples):
        probabilities = model(tf.io.parse_example(examples, feature_spec)[features.IMAGE_KEY])
        return {output_name: probabilities} if output_name else probabilities

    tf.saved_model.save(model, release_dir, signatures={"serving_default": serve})
    tflite = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    os.makedirs(os.path.dirname(models.tflite_path(release_dir)), exist_ok=True)
    with open(models.tflite_path(release_dir), "wb") as out:
        out.write(tflite)


@pytest.fixture(scope="module")
def builder(tfds_data_dir, mnist_dir):
    return tfds_mnist.prepare_mnist(mnist_dir, tfds_data_dir)


@pytest.fixture(scope="module")
def trained_model(builder) -> tf.keras.Model:
    tf.keras.utils.set_random_seed(0)
    train = example_export.load_tfds_split(builder, "train", limit=TRAIN_DIGITS)
    model = build_model()
    model.fit(train.images, train.labels, epochs=2, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="module")
def serving_dir(tmp_path_factory, trained_model) -> str:
    """A fake serving dir with one release, 1: SavedModel (`probabilities`) + TFLite."""
    serving = tmp_path_factory.mktemp("release") / "serving" / "mnist"
    save_release(trained_model, str(serving / "1"), output_name=features.PROBABILITIES_OUTPUT)
    return str(serving)


@pytest.fixture(scope="module")
def test_digits(builder) -> example_export.DigitArrays:
    return example_export.load_tfds_split(builder, "test", limit=TEST_DIGITS)


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory, test_digits) -> dict[str, list[str]]:
    """{variant: one file per test digit, in order}."""
    folder = tmp_path_factory.mktemp("digits")
    files: dict[str, list[str]] = {}
    for variant, (make_image, extension) in VARIANTS.items():
        for index, pixels in enumerate(test_digits.images):
            path = str(folder / f"{index:02d}_{variant}.{extension}")
            make_image(pixels.reshape(28, 28).astype(np.uint8)).save(path)
            files.setdefault(variant, []).append(path)
    return files


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m serving.predict ARGS` from the repository root, as a user's shell runs it.

    The test session's TF_CPP_MIN_LOG_LEVEL is left out: the command picks
    its own, and stderr must then hold nothing but its error lines.
    """
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, "-m", "serving.predict", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def read_json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.fixture(scope="module")
def cli_predictions(serving_dir, digit_files) -> dict[str, list[dict]]:
    """{"saved_model" | "tflite": JSON records} for every file of every variant, one call each."""
    paths = [path for variant in VARIANTS for path in digit_files[variant]]
    records = {}
    for runtime, flags in {"saved_model": [], "tflite": ["--tflite"]}.items():
        process = run_cli("--serving-dir", serving_dir, "--json", *flags, *paths)
        assert process.returncode == 0, process.stderr[-3000:]
        records[runtime] = read_json_lines(process.stdout)
        assert [record["image"] for record in records[runtime]] == paths
    return records


def test_cli_agrees_with_the_model_on_real_digits_in_every_variant(
    trained_model, test_digits, digit_files, cli_predictions
):
    direct = trained_model.predict(test_digits.images, verbose=0).argmax(axis=1)
    records = iter(cli_predictions["saved_model"])
    agreement = {}
    for variant in VARIANTS:
        digits = np.array([next(records)["digit"] for _ in digit_files[variant]])
        agreement[variant] = float((digits == direct).mean())
    print(
        f"\nmodel accuracy on the {TEST_DIGITS} original digits: "
        f"{(direct == test_digits.labels).mean():.3f}; CLI agreement: {agreement}"
    )
    assert all(value >= MIN_AGREEMENT for value in agreement.values()), agreement
    assert agreement["as_is"] >= 0.95 and agreement["inverted"] == agreement["as_is"], agreement


def test_json_records_have_digit_top3_and_version(cli_predictions):
    for record in cli_predictions["saved_model"]:
        assert set(record) == {"image", "digit", "top3", "version", "runtime"}
        assert record["version"] == 1 and record["runtime"] == "saved_model"
        (first, _), *_ = record["top3"]
        assert record["digit"] == first
        probabilities = [probability for _, probability in record["top3"]]
        assert probabilities == sorted(probabilities, reverse=True)
        assert len({digit for digit, _ in record["top3"]}) == 3


def test_tflite_and_saved_model_agree(cli_predictions):
    saved_model, tflite = cli_predictions["saved_model"], cli_predictions["tflite"]
    assert all(record["runtime"] == "tflite" for record in tflite)
    assert [r["digit"] for r in tflite] == [r["digit"] for r in saved_model]
    for ours, theirs in zip(tflite, saved_model, strict=True):
        np.testing.assert_allclose(ours["top3"], theirs["top3"], atol=1e-4)


def test_tflite_matches_the_saved_model_on_raw_pixels(serving_dir, test_digits):
    release_dir = os.path.join(serving_dir, "1")
    from_saved_model = models.load_predictor(release_dir)(test_digits.images)
    from_tflite = models.load_predictor(release_dir, use_tflite=True)(test_digits.images)
    np.testing.assert_allclose(from_tflite, from_saved_model, atol=1e-5)
    np.testing.assert_allclose(from_saved_model.sum(axis=1), 1.0, atol=1e-5)


def test_today_s_unnamed_output_0_is_read_too(tmp_path, trained_model, serving_dir, digit_files):
    save_release(trained_model, str(tmp_path / "5"), output_name=None)
    signature = tf.saved_model.load(str(tmp_path / "5")).signatures["serving_default"]
    assert list(signature.structured_outputs) == ["output_0"]
    images = digit_files["as_is"][:5]
    unnamed = predict.predict_files(images, str(tmp_path))
    named = predict.predict_files(images, serving_dir)
    assert [p.digit for p in unnamed] == [p.digit for p in named]
    np.testing.assert_allclose([p.top3 for p in unnamed], [p.top3 for p in named], atol=1e-6)


def test_pick_probabilities_prefers_the_named_output_and_refuses_ambiguity():
    probabilities, other = tf.ones([1, 10]) / 10, tf.zeros([1, 3])
    assert models.pick_probabilities({"output_0": probabilities}) is probabilities
    picked = models.pick_probabilities({"probabilities": probabilities, "logits": other})
    assert picked is probabilities
    with pytest.raises(ValueError, match="none named 'probabilities'"):
        models.pick_probabilities({"a": probabilities, "b": other})


def test_text_output_names_the_release_and_the_top3(serving_dir, digit_files, capsys):
    images = digit_files["as_is"][:2]
    assert predict.main(["--serving-dir", serving_dir, *images]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header == f"release 1 in {serving_dir} (saved_model):"
    assert len(lines) == 2
    for image, line in zip(images, lines, strict=True):
        assert line.startswith(f"{image}: ")
        digit, top = line.removeprefix(f"{image}: ").split("  ")
        assert top.startswith(f"({digit} 0.") and top.count(",") == 2


@pytest.fixture(scope="module")
def two_releases(tmp_path_factory, serving_dir) -> str:
    """Releases 1 (with TFLite) and 2 (a copy without it): 2 is the newest."""
    serving = tmp_path_factory.mktemp("two") / "mnist"
    shutil.copytree(os.path.join(serving_dir, "1"), serving / "1")
    shutil.copytree(os.path.join(serving_dir, "1"), serving / "2")
    os.remove(models.tflite_path(str(serving / "2")))
    (serving / ".staging").mkdir()  # not a release
    return str(serving)


def test_the_newest_release_is_the_default_and_version_picks_another(
    two_releases, digit_files, capsys
):
    image = digit_files["as_is"][0]
    assert predict.main(["--serving-dir", two_releases, "--json", image]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 2
    assert predict.main(["--serving-dir", two_releases, "--json", "--version", "1", image]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 1
    assert predict.main(["--serving-dir", two_releases, "--version", "1", "--tflite", image]) == 0


def _error_cases(tmp_path, two_releases, image) -> dict[str, tuple[list[str], str]]:
    not_an_image = tmp_path / "digit.png"
    not_an_image.write_text("not a picture")
    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (64, 64), "white").save(blank)
    empty = tmp_path / "empty_serving"
    empty.mkdir()
    return {
        "missing file": (
            ["--serving-dir", two_releases, str(tmp_path / "nope.png")],
            f"{tmp_path / 'nope.png'}: no such file",
        ),
        "not an image": (
            ["--serving-dir", two_releases, str(not_an_image)],
            f"{not_an_image}: not an image",
        ),
        "blank image": (["--serving-dir", two_releases, str(blank)], f"{blank}: no digit found"),
        "empty serving dir": (["--serving-dir", str(empty), image], "holds no release"),
        "missing serving dir": (
            ["--serving-dir", str(tmp_path / "none"), image],
            "does not exist",
        ),
        "unknown version": (
            ["--serving-dir", two_releases, "--version", "7", image],
            f"no release 7 in {two_releases}; releases there: 1, 2",
        ),
        "no tflite model": (
            ["--serving-dir", two_releases, "--tflite", image],
            "has no TFLite model (assets.extra/model.tflite)",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "not an image",
        "blank image",
        "empty serving dir",
        "missing serving dir",
        "unknown version",
        "no tflite model",
    ],
)
def test_errors_are_one_clear_line_and_exit_1(case, tmp_path, two_releases, digit_files, capsys):
    argv, message = _error_cases(tmp_path, two_releases, digit_files["as_is"][0])[case]
    assert predict.main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and message in captured.err, captured.err


def test_every_bad_image_is_named_and_nothing_is_predicted(tmp_path, two_releases, digit_files):
    missing = str(tmp_path / "gone.png")
    not_an_image = tmp_path / "text.jpg"
    not_an_image.write_text("hello")
    process = run_cli(
        "--serving-dir", two_releases, digit_files["as_is"][0], missing, str(not_an_image)
    )
    assert process.returncode == 1
    assert process.stdout == ""
    assert "Traceback" not in process.stderr
    assert process.stderr.splitlines() == [
        f"error: {missing}: no such file",
        f"error: {not_an_image}: not an image that can be read "
        f"(cannot identify image file '{not_an_image}')",
    ]


def test_a_malformed_version_is_a_usage_error(two_releases, digit_files, capsys):
    with pytest.raises(SystemExit) as exited:
        predict.main(
            ["--serving-dir", two_releases, "--version", "latest", digit_files["as_is"][0]]
        )
    assert exited.value.code == 2
    assert "a release version is a whole number" in capsys.readouterr().err


def test_a_corrupt_model_is_a_clear_error(tmp_path, digit_files, capsys):
    release_dir = tmp_path / "3"
    (release_dir / "assets.extra").mkdir(parents=True)
    (release_dir / "saved_model.pb").write_bytes(b"not a graph")
    (release_dir / "assets.extra" / "model.tflite").write_bytes(b"")
    for flags, kind in (([], "SavedModel"), (["--tflite"], "TFLite model")):
        argv = ["--serving-dir", str(tmp_path), *flags, digit_files["as_is"][0]]
        assert predict.main(argv) == 1
        error = capsys.readouterr().err
        assert error.startswith(f"error: cannot load the {kind} of release {release_dir}: "), error
