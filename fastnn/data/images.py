"""Reading images: one file (any format Pillow reads) as an array, shared by
:func:`fastnn.data.load_image_folder` and :func:`fastnn.data.read_image`, and the digits
``fastnn predict`` classifies (:func:`read_digits`: an image file or a .npy as 28x28
grayscale in [0, 1])."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import numpy as np

from fastnn.data.errors import DataError, MissingDependency

PathLike = Union[str, "os.PathLike[str]"]
Size = Union[int, tuple[int, int], None]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
COLORS = ("grayscale", "rgb")
DEFAULT_SIZE = (28, 28)
_MODES = {"L": "grayscale", "1": "black-and-white", "P": "palette", "LA": "grayscale+alpha",
          "RGBA": "RGBA", "RGB": "RGB", "CMYK": "CMYK", "I;16": "16-bit grayscale",
          "I": "32-bit grayscale", "F": "float grayscale"}


def require_pillow():
    try:
        from PIL import Image
    except ImportError:
        raise MissingDependency("reading images needs Pillow, which is not installed: "
                                "pip install 'fastnn[images]'") from None
    return Image


def check_size(size: Size) -> Optional[tuple[int, int]]:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    if (len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in size)):
        raise DataError(f"size must be None, an int or (height, width) >= 1, got {size!r}")
    return int(size[0]), int(size[1])


def check_color(color: str) -> str:
    if color not in COLORS:
        raise DataError(f"color must be one of {', '.join(COLORS)}, got {color!r}")
    return color


def open_image(path: Path, size: Optional[tuple[int, int]], color: str):
    """``(pixels HxWxC float32, original (width, height), original mode)``."""
    Image = require_pillow()
    try:
        with Image.open(path) as image:
            image.seek(0)  # the first frame of an animation
            original, mode = image.size, image.mode
            converted = image.convert("L" if color == "grayscale" else "RGB")
    except Exception as exc:  # noqa: BLE001 - unidentified, truncated, decompression bombs
        raise DataError(f"{path}: cannot read the image ({type(exc).__name__}: {exc})") \
            from None
    if size is not None and converted.size != (size[1], size[0]):
        resample = getattr(Image, "Resampling", Image).LANCZOS
        converted = converted.resize((size[1], size[0]), resample)
    pixels = np.asarray(converted, dtype=np.float32) / np.float32(255.0)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return pixels, original, mode


def describe_mode(mode: str) -> str:
    return _MODES.get(mode, mode)


def read_image(path: PathLike, *, size: Size = DEFAULT_SIZE,
               color: str = "grayscale") -> np.ndarray:
    """One image file (any format Pillow reads) as ``(height, width, channels)`` float32 in
    [0, 1]: resized to ``size`` (``(height, width)`` or an int; ``None`` keeps its size) and
    converted to ``color`` (``"grayscale"``: 1 channel, ``"rgb"``: 3).

    >>> import numpy as np, os, tempfile
    >>> from PIL import Image
    >>> path = os.path.join(tempfile.mkdtemp(), "photo.jpg")
    >>> Image.new("RGB", (64, 48), (255, 255, 255)).save(path)
    >>> read_image(path).shape, read_image(path, size=None, color="rgb").shape
    ((28, 28, 1), (48, 64, 3))
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: does not exist" if not path.exists() else
                                f"{path}: is a folder, not an image")
    return open_image(path, check_size(size), check_color(color))[0]


def is_image(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and \
        path.suffix.lower() in IMAGE_SUFFIXES


# --------------------------------------------------------------------------- digits

def _read_png_without_pillow(path: str) -> np.ndarray:
    try:
        import matplotlib.image as mpimg
    except ImportError:
        raise DataError("reading a PNG needs Pillow (pip install 'fastnn[images]') or "
                           "matplotlib; or save the digit as a 28x28 .npy") from None
    pixels = np.asarray(mpimg.imread(path), dtype=np.float32)
    if pixels.ndim == 3:  # RGB(A) floats in [0, 1]: luminance, ignoring alpha
        pixels = pixels[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    if pixels.ndim == 2 and pixels.shape != (28, 28):
        raise DataError(f"{path}: {pixels.shape[1]}x{pixels.shape[0]}; resizing it to "
                           "28x28 needs Pillow: pip install 'fastnn[images]'")
    return pixels


def _read_picture(path: str) -> tuple[np.ndarray, str]:
    """An image file as 28x28 grayscale pixels in [0, 1], and what was done to it (a line
    such as ``digit.jpg: 640x480 RGB, converted to grayscale and resized to 28x28``, or
    ``""`` when it was 28x28 grayscale already)."""
    suffix = Path(path).suffix.lower()
    try:
        from PIL import Image
    except ImportError:
        if suffix == ".png":
            return _read_png_without_pillow(path), ""
        raise DataError(f"{path}: reading {suffix or 'this'} images needs Pillow: pip "
                           "install 'fastnn[images]' (or give a 28x28 .png or .npy)") from None
    try:
        pixels, (width, height), mode = open_image(Path(path), (28, 28), "grayscale")
    except DataError as exc:
        if suffix not in Image.registered_extensions():
            raise DataError(f"{path}: expected a .png or .npy file, or another image "
                               "format Pillow reads (.jpg, .bmp, .gif, .tif, .webp, ...)") \
                from None
        why = str(exc).split(": cannot read the image ", 1)[-1]
        raise DataError(f"{path}: cannot read the {suffix[1:].upper()} image {why}") \
            from None
    done = []
    if mode != "L":
        done.append("converted to grayscale")
    if (width, height) != (28, 28):
        done.append("resized to 28x28")
    note = (f"{path}: {width}x{height} {describe_mode(mode)}, " + " and ".join(done)
            if done else "")
    return pixels[..., 0], note


def read_digits(path: str, *, invert: bool = False) -> np.ndarray:
    """Images for the network, ``(n, 28, 28, 1)`` float32 in [0, 1], from an image file or
    a .npy.

    An image (.png, .jpg or any other format Pillow reads) is converted to grayscale and
    resized to 28x28 when it is not so already. A .npy may hold one digit (28×28 or
    28×28×1) or several (n×28×28 or n×28×28×1); integer pixels (uint8 and the like) are
    scaled from 0-255, float pixels must already be in [0, 1]. Raises :class:`DataError`
    for anything else: no images, pixels that are NaN or infinite or out of range, an
    unreadable file.
    """
    return read_digits_noted(path, invert=invert)[0]


def read_digits_noted(path: str, *, invert: bool = False) -> tuple[np.ndarray, str]:
    """:func:`read_digits`, and the line saying what was done to an image (or ``""``)."""
    note = ""
    if not os.path.isfile(path):
        raise DataError(f"no such file: {path}" + (" (a folder)" if os.path.isdir(path)
                                                       else ""))
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        try:
            pixels = np.load(path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - EOF, format and pickle errors alike
            reason = "the file is empty" if os.path.getsize(path) == 0 else \
                f"{type(exc).__name__}: {exc}"
            raise DataError(f"{path}: not a readable .npy file ({reason}); save the digit "
                               "with numpy.save") from None
        if not isinstance(pixels, np.ndarray):  # an .npz archive renamed .npy
            pixels.close()
            raise DataError(f"{path}: an .npz archive, not a .npy array; save the digit "
                               "with numpy.save")
        if pixels.dtype.kind in "iu":
            low, high = (int(pixels.min()), int(pixels.max())) if pixels.size else (0, 0)
            if low < 0 or high > 255:
                raise DataError(f"{path}: integer pixels must be 0-255, got values in "
                                   f"[{low}, {high}]")
            pixels = pixels.astype(np.float32) / 255.0
        elif pixels.dtype.kind == "f":
            pixels = pixels.astype(np.float32)
            finite = np.isfinite(pixels)
            if not finite.all():
                raise DataError(f"{path}: {pixels.size - int(finite.sum())} pixel(s) are "
                                   "NaN or infinite; pixels must be finite (floats in [0, 1] "
                                   "or integers 0-255)")
            if pixels.size and (pixels.min() < 0 or pixels.max() > 1):
                raise DataError(f"{path}: float pixels must be in [0, 1], got values in "
                                   f"[{pixels.min():g}, {pixels.max():g}]; divide 0-255 "
                                   "values by 255 or save them as uint8")
        else:
            raise DataError(f"{path}: pixels must be numbers, got {pixels.dtype}")
    else:
        try:
            pixels, note = _read_picture(path)
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the image reader raises
            raise DataError(f"{path}: cannot read the image ({exc})") from None
    if pixels.ndim >= 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 2:
        pixels = pixels[None]
    if pixels.ndim != 3 or pixels.shape[1:] != (28, 28):
        raise DataError(f"{path}: expected a 28x28 image (or n of them), got shape "
                           f"{tuple(pixels.shape)}")
    if pixels.shape[0] == 0:
        raise DataError(f"{path}: holds no images (shape {tuple(pixels.shape)}); expected "
                           "a 28x28 image (or n of them)")
    if invert:
        pixels = 1.0 - pixels
    return np.ascontiguousarray(pixels[..., None], dtype=np.float32), note
