"""Turns a picture of one digit into MNIST's 784 pixels, as MNIST itself was made.

MNIST's preprocessing (LeCun et al.): each NIST digit was scaled to fit a
20x20 box keeping its aspect ratio (anti-aliased, hence the grey levels),
then placed in a 28x28 field with its centre of mass at the field's centre.
Measured on the TFDS test split: the ink's bounding box has a longer side of
exactly 20 px, and the mass centre sits at (14.0, 14.0) in pixel indices
(row, column; standard deviation 0.3 px). A model trained on MNIST expects
digits framed exactly so; a digit that is larger, off-centre or dark on light
is read much worse.

`read_grey` reads a file; the steps after it are pure functions on arrays,
so tests can check each one.
"""

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from contract import features

DIGIT_BOX = 20
"""The longer side of the digit after scaling, in pixels (MNIST: 20)."""

LIGHT_BACKGROUND = 127
"""A median border grey above this means a light background: the image is inverted."""

MIN_INK_CONTRAST = 32
"""Grey levels the ink must stand out from the background by; less is a blank image."""

INK_THRESHOLD = 26
"""Ink level (0..255, after stretching) above which a pixel counts for the bounding box.

About 10% of full ink: low enough to keep MNIST's anti-aliased edges, high
enough that JPEG ringing and paper grain around the digit do not widen the box.
"""


class DigitImageError(ValueError):
    """The file is not a readable image, or the image holds no digit."""


def read_grey(path: str) -> np.ndarray:
    """Reads a PNG, JPEG (or any format Pillow reads) as 8-bit grey.

    Colour is reduced to luminance; transparency is flattened onto white, as
    an image viewer shows it on a page; EXIF rotation (phone photos) is applied.

    Args:
      path: The image file.

    Returns:
      uint8 array [height, width], 0 = black.

    Raises:
      DigitImageError: the file is missing or is not an image Pillow can read.
    """
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            if image.mode in ("I", "I;16", "I;16B", "I;16L"):
                # 16-bit grey: convert("L") would clip, not scale.
                return (np.asarray(image, np.float64) / 257.0).clip(0, 255).astype(np.uint8)
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                image = image.convert("RGBA")
                image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image)
            return np.asarray(image.convert("L"), dtype=np.uint8)
    except FileNotFoundError as error:
        raise DigitImageError(f"{path}: no such file") from error
    except IsADirectoryError as error:
        raise DigitImageError(f"{path}: is a directory, not an image file") from error
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise DigitImageError(f"{path}: not an image that can be read ({error})") from error


def border_pixels(grey: np.ndarray) -> np.ndarray:
    """The outermost rows and columns of an image, flattened."""
    return np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])


def has_light_background(grey: np.ndarray) -> bool:
    """True for a dark digit on a light background (judged by the border's median)."""
    return bool(np.median(border_pixels(grey)) > LIGHT_BACKGROUND)


def ink_levels(grey: np.ndarray) -> np.ndarray:
    """Grey levels -> ink: white digit on black, background 0, strongest ink 255.

    Inverts a light-background image, subtracts the background level (the
    border's median; grey paper or a dark-grey canvas becomes 0) and stretches
    the strongest ink to 255, as MNIST's strokes are.

    Args:
      grey: uint8 or float array [height, width], 0 = black.

    Returns:
      float32 array of the same shape, 0..255.

    Raises:
      DigitImageError: nothing stands out from the background (a blank image).
    """
    ink = grey.astype(np.float32)
    if has_light_background(grey):
        ink = features.MAX_PIXEL_VALUE - ink
    ink = np.clip(ink - np.median(border_pixels(ink)), 0, None)
    peak = float(ink.max())
    if peak < MIN_INK_CONTRAST:
        raise DigitImageError(
            "no digit found: the image is blank (nothing differs from the background "
            f"by {MIN_INK_CONTRAST} grey levels or more)"
        )
    return ink * (features.MAX_PIXEL_VALUE / peak)


def crop_to_ink(ink: np.ndarray, threshold: float = INK_THRESHOLD) -> np.ndarray:
    """Crops to the bounding box of the pixels whose ink exceeds `threshold`.

    Raises:
      DigitImageError: no pixel exceeds the threshold.
    """
    rows = np.flatnonzero((ink > threshold).any(axis=1))
    cols = np.flatnonzero((ink > threshold).any(axis=0))
    if not rows.size:
        raise DigitImageError(f"no digit found: no pixel has ink above {threshold}")
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def scale_longer_side(ink: np.ndarray, side: int = DIGIT_BOX) -> np.ndarray:
    """Resizes so the longer side is `side` px, keeping the aspect ratio (Lanczos, antialiased).

    Returns:
      float32 array whose longer side is `side`, values clipped to 0..255.
    """
    height, width = ink.shape
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0, features.MAX_PIXEL_VALUE)


def mass_centre(ink: np.ndarray) -> tuple[float, float]:
    """The ink's centre of mass as (row, column) in pixel indices."""
    rows, cols = np.indices(ink.shape)
    mass = float(ink.sum())
    return float((ink * rows).sum()) / mass, float((ink * cols).sum()) / mass


def centre_by_mass(digit: np.ndarray, side: int = features.IMAGE_SIDE) -> np.ndarray:
    """Places `digit` in a side x side field with its mass centre at (side/2, side/2).

    The shift is a whole number of pixels (so the centre lands within half a
    pixel), and never pushes ink out of the field: an extremely lopsided
    digit stays whole and ends slightly off-centre.

    Returns:
      float32 array [side, side].
    """
    height, width = digit.shape
    centre_row, centre_col = mass_centre(digit)
    top = int(np.clip(round(side / 2 - centre_row), 0, side - height))
    left = int(np.clip(round(side / 2 - centre_col), 0, side - width))
    field = np.zeros((side, side), np.float32)
    field[top : top + height, left : left + width] = digit
    return field


def to_mnist_pixels(grey: np.ndarray) -> np.ndarray:
    """Any grey picture of one digit -> MNIST's 784 pixels.

    Args:
      grey: Array [height, width] of grey levels, 0 = black; any size, dark
        on light or light on dark.

    Returns:
      uint8 array [784]: row-major 28x28, white digit on black, as MNIST.

    Raises:
      DigitImageError: the image is blank.
    """
    digit = scale_longer_side(crop_to_ink(ink_levels(grey)))
    field = centre_by_mass(digit)
    return np.rint(field).clip(0, features.MAX_PIXEL_VALUE).astype(np.uint8).reshape(-1)


def load_digit(path: str) -> np.ndarray:
    """Reads an image file and returns its MNIST pixels (see `to_mnist_pixels`).

    Raises:
      DigitImageError: the file is missing, unreadable or blank (the message
        names the file).
    """
    grey = read_grey(path)
    try:
        return to_mnist_pixels(grey)
    except DigitImageError as error:
        raise DigitImageError(f"{path}: {error}") from error
