"""MNIST framing of arbitrary digit pictures, on small synthetic shapes."""

import numpy as np
import pytest
from PIL import Image

from contract import digit_image


def _ink_box(pixels: np.ndarray) -> tuple[int, int]:
    """(height, width) of the non-zero pixels of a 784-vector or 2-D image."""
    image = pixels.reshape(28, 28) if pixels.ndim == 1 else pixels
    rows = np.flatnonzero(image.any(axis=1))
    cols = np.flatnonzero(image.any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def _l_shape(size: int = 120, top: int = 10, left: int = 60) -> np.ndarray:
    """A white L on black, far from the centre: its mass centre is not its box centre."""
    grey = np.zeros((size, size), np.uint8)
    grey[top : top + 50, left : left + 8] = 255  # the upright
    grey[top + 42 : top + 50, left : left + 30] = 255  # the foot
    return grey


def test_output_is_784_uint8_pixels():
    pixels = digit_image.to_mnist_pixels(_l_shape())
    assert pixels.shape == (784,)
    assert pixels.dtype == np.uint8
    assert pixels.max() == 255


def test_an_off_centre_shape_ends_with_its_mass_centre_at_14_14():
    pixels = digit_image.to_mnist_pixels(_l_shape()).astype(np.float64).reshape(28, 28)
    row, col = digit_image.mass_centre(pixels)
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5, (row, col)
    # Centred by mass, not by its box: the L's box is not centred.
    rows = np.flatnonzero(pixels.any(axis=1))
    cols = np.flatnonzero(pixels.any(axis=0))
    box_centre_col = (cols[0] + cols[-1] + 1) / 2
    assert abs(box_centre_col - 14) >= 2, "the L's heavy upright pulls its box off-centre"
    assert rows[0] > 0 and rows[-1] < 27


def test_a_small_round_blob_in_a_corner_is_moved_to_the_centre():
    grey = np.zeros((90, 60), np.uint8)
    rows, cols = np.indices(grey.shape)
    grey[(rows - 12) ** 2 + (cols - 48) ** 2 <= 36] = 200
    row, col = digit_image.mass_centre(
        digit_image.to_mnist_pixels(grey).astype(np.float64).reshape(28, 28)
    )
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5, (row, col)


def test_centre_by_mass_places_the_mass_centre_within_half_a_pixel():
    digit = np.zeros((14, 12), np.float32)
    digit[:4, :] = 255  # top-heavy: mass centre at row 3.9, far above the box centre
    digit[:, 2:4] = 255  # and left of it
    row, col = digit_image.mass_centre(digit_image.centre_by_mass(digit))
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5, (row, col)


def test_centre_by_mass_keeps_an_extremely_lopsided_digit_whole():
    digit = np.zeros((20, 20), np.float32)
    digit[0, :] = 255  # all the mass on the top row
    digit[19, 10] = 1
    field = digit_image.centre_by_mass(digit)
    assert field.sum() == digit.sum(), "no ink was pushed out of the field"


@pytest.mark.parametrize(
    "height, width, expected",
    [(120, 40, (20, 7)), (30, 90, (7, 20)), (60, 60, (20, 20)), (5, 10, (10, 20))],
    ids=["tall", "wide", "square", "tiny-enlarged"],
)
def test_the_longer_side_becomes_20_px_keeping_the_aspect_ratio(height, width, expected):
    grey = np.zeros((200, 200), np.uint8)
    grey[37 : 37 + height, 81 : 81 + width] = 255
    assert _ink_box(digit_image.to_mnist_pixels(grey)) == expected


def test_a_dark_digit_on_light_paper_is_inverted():
    light_on_dark = _l_shape()
    dark_on_light = 255 - light_on_dark
    assert digit_image.has_light_background(dark_on_light)
    assert not digit_image.has_light_background(light_on_dark)
    np.testing.assert_array_equal(
        digit_image.to_mnist_pixels(dark_on_light), digit_image.to_mnist_pixels(light_on_dark)
    )


def test_grey_paper_and_faint_ink_give_the_same_digit_as_black_and_white():
    clean = _l_shape()
    pencil_on_grey_paper = np.where(clean > 0, 90, 200).astype(np.uint8)
    got = digit_image.to_mnist_pixels(pencil_on_grey_paper).astype(int)
    want = digit_image.to_mnist_pixels(clean).astype(int)
    assert np.abs(got - want).max() <= 1


def test_colour_files_are_read_as_grey(tmp_path):
    path = str(tmp_path / "red_on_white.png")
    rgb = np.full((64, 48, 3), 255, np.uint8)
    rgb[10:50, 20:26] = (200, 0, 0)
    Image.fromarray(rgb).save(path)
    grey = digit_image.read_grey(path)
    assert grey.shape == (64, 48)
    assert grey[30, 22] < 100 and grey[0, 0] > 240
    assert _ink_box(digit_image.load_digit(path)) == (20, 3)


def test_transparent_background_is_flattened_onto_white(tmp_path):
    path = str(tmp_path / "drawn.png")
    rgba = np.zeros((50, 50, 4), np.uint8)  # fully transparent black
    rgba[10:40, 22:28] = (0, 0, 0, 255)  # an opaque black stroke
    Image.fromarray(rgba).save(path)
    assert _ink_box(digit_image.load_digit(path)) == (20, 4)


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    path = str(tmp_path / "deep.png")
    grey16 = np.full((40, 40), 1000, np.uint16)  # dark grey, not black
    grey16[5:35, 18:22] = 60000
    Image.fromarray(grey16).save(path)
    grey = digit_image.read_grey(path)
    assert grey[0, 0] == 3 and grey[20, 20] == 233


@pytest.mark.parametrize("level", [0, 128, 255])
def test_a_blank_image_is_an_error(level):
    with pytest.raises(digit_image.DigitImageError, match="blank"):
        digit_image.to_mnist_pixels(np.full((40, 30), level, np.uint8))


def test_faint_noise_alone_is_blank_too():
    noise = np.random.RandomState(0).randint(120, 140, size=(64, 64)).astype(np.uint8)
    with pytest.raises(digit_image.DigitImageError, match="blank"):
        digit_image.to_mnist_pixels(noise)


def test_file_errors_name_the_file(tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("L", (20, 20), 255).save(blank)
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("not a picture")
    cases = {
        str(blank): "blank",
        str(not_an_image): "not an image",
        str(tmp_path / "missing.png"): "no such file",
        str(tmp_path): "is a directory",
    }
    for path, reason in cases.items():
        with pytest.raises(digit_image.DigitImageError) as caught:
            digit_image.load_digit(path)
        assert str(caught.value).startswith(f"{path}: "), str(caught.value)
        assert reason in str(caught.value)
