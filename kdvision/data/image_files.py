"""Decoding a user's image files as 8-bit RGB, the one place every loader and ``infer`` read through.

- Bit depths and modes: 8-bit RGB as stored; grey, 1-bit, palette (P/PA), LA, RGBA, CMYK and
  YCbCr converted by Pillow (alpha dropped); 16-bit and 32-bit integer grey (I;16*, I) scaled to
  8 bits by 1/257 and rounded, so 65535 is 255 and nothing is clipped. Pillow itself reduces
  16-bit RGB PNGs to their high byte. Float (F) and LAB images are refused: their range or
  colour space cannot be guessed.
- Decompression bombs: an image with more pixels than ``max_image_pixels()`` is refused from its
  header, before decoding, naming the file (default: Pillow's own error threshold,
  178,956,970 pixels; set ``KDVISION_MAX_IMAGE_PIXELS`` to change it).

Every problem is a one-line ``UserError`` that names the file.
"""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from kdvision.errors import UserError

MAX_PIXELS_ENV = "KDVISION_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 2 * 89_478_485  # Pillow raises DecompressionBombError above twice its MAX_IMAGE_PIXELS
CONVERTIBLE = {"1", "L", "P", "PA", "LA", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "HSV"}
SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


def max_image_pixels() -> int:
    """The largest image (width x height) kdvision decodes: ``$KDVISION_MAX_IMAGE_PIXELS`` or the default."""
    value = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(value.replace("_", ""))
    except ValueError:
        limit = 0
    if limit <= 0:
        raise UserError(f"{MAX_PIXELS_ENV}={value!r}: must be a positive number of pixels")
    return limit


@contextmanager
def open_image(path: str | Path):
    """``Image.open`` with the pixel limit checked from the header (nothing decoded yet)."""
    path = Path(path)
    limit = max_image_pixels()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is checked below
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                im = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except FileNotFoundError:
        raise UserError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise UserError(f"cannot read image {path}: not a readable image ({type(e).__name__})") from None
    with im:
        w, h = im.size
        if w * h > limit:
            raise UserError(f"image {path} is {w}x{h} = {w * h:,} pixels, more than the limit of {limit:,} "
                            f"(a decompression bomb?); set {MAX_PIXELS_ENV} to allow larger images")
        yield im


def rgb8(im: Image.Image, path: str | Path) -> np.ndarray:
    """HxWx3 uint8 RGB from an open Pillow image of any supported mode (see the module docstring)."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im)
    if mode in SIXTEEN_BIT:
        grey = np.asarray(im).astype(np.int64)
        if grey.size and (grey.min() < 0 or grey.max() > 65535):
            raise UserError(f"image {path}: {mode} pixel values {grey.min()}..{grey.max()} lie outside the "
                            f"16-bit range 0..65535; save it as an 8- or 16-bit image")
        scaled = ((grey * 255 + 32767) // 65535).astype(np.uint8)  # round(v / 257)
        return np.repeat(scaled[..., None], 3, axis=2)
    if mode in CONVERTIBLE:
        return np.asarray(im.convert("RGB"))
    raise UserError(f"image {path}: mode {mode} cannot be converted to 8-bit RGB safely "
                    f"(supported: RGB, {', '.join(sorted(CONVERTIBLE | SIXTEEN_BIT))})")


def read_rgb(path: str | Path, upright: bool = False) -> np.ndarray:
    """The image at ``path`` as HxWx3 uint8 RGB; ``upright`` applies the EXIF orientation."""
    with open_image(path) as im:
        try:
            if upright:
                im = ImageOps.exif_transpose(im)
            return np.ascontiguousarray(rgb8(im, path))
        except (OSError, ValueError, SyntaxError) as e:  # truncated or corrupt pixel data
            raise UserError(f"cannot read image {path}: not a readable image ({type(e).__name__})") from None


def check_pixel_array(images: np.ndarray, what: str) -> np.ndarray:
    """An integer pixel array as uint8, refusing values outside 0..255 (e.g. 16-bit data) and floats."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind not in "iu":
        raise UserError(f"{what}: pixels must be uint8 (0..255), got {images.dtype}")
    if images.size and (images.min() < 0 or images.max() > 255):
        raise UserError(f"{what}: pixel values {images.min()}..{images.max()} lie outside 0..255 "
                        f"(16-bit data must be scaled to 8 bits)")
    return images.astype(np.uint8)
