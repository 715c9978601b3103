"""Reading image files for restoration data: listing, checking and decoding.

Every problem with a user's file is a one-line ``UserError`` that names the file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kdvision.data.image_files import check_pixel_array, open_image, read_rgb
from kdvision.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: str | Path, what: str = "image folder") -> list[Path]:
    """The image files of ``folder`` (not recursive), sorted by name.

    Hidden files (".DS_Store") and sub-folders are ignored; any other file without an image
    suffix is an error, so that a stray file is noticed rather than silently dropped.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{what} not found: {folder}")
    files = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.is_dir():
            continue
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            raise UserError(f"{p}: not an image file (expected one of {', '.join(IMAGE_SUFFIXES)})")
        files.append(p)
    return files


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the file header, without decoding the pixels."""
    with open_image(path) as im:
        w, h = im.size
    return h, w


def read_image(path: Path, upright: bool = False) -> np.ndarray:
    """HxWx3 uint8 RGB (other modes and bit depths converted, see ``kdvision.data.image_files``);
    ``upright`` applies the EXIF orientation of camera photographs (for restoring a user's
    pictures; paired data sets read the stored pixels so that input and target stay aligned)."""
    return read_rgb(path, upright)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 (integers above 255 refused) or float in [0, 1] -> float32 CHW tensor in [0, 1]."""
    if image.dtype.kind in "iu":
        arr = check_pixel_array(image, "image array").astype(np.float32) / 255.0
    elif image.dtype.kind == "f" and (image.size == 0 or (image.min() >= 0 and image.max() <= 1)):
        arr = image.astype(np.float32)
    else:
        raise UserError(f"image array: expected uint8 pixels or floats in [0, 1], got {image.dtype}"
                        + (f" values {image.min():g}..{image.max():g}" if image.dtype.kind == "f" else ""))
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """Float CHW tensor in [0, 1] (clamped) -> HxWx3 uint8, rounded to the nearest level."""
    arr = image.detach().float().clamp(0, 1).mul(255).round().byte().cpu().numpy()
    return arr.transpose(1, 2, 0)
