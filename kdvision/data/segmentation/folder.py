"""A segmentation data set read from (image file, label-map file) pairs on disk.

Raw label values are mapped through a lookup table (e.g. Cityscapes labelIds -> trainIds);
any raw value the table does not know is an error that names the file. Colour masks are
mapped through a palette instead (colour i -> class i). Items are
``{"input": float CHW (ImageNet-normalised), "target": LongTensor HxW}``; 255 is ignored.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from kdvision.data.image_files import open_image, read_rgb
from kdvision.data.segmentation.transforms import IMAGENET_MEAN, IMAGENET_STD
from kdvision.errors import UserError

IGNORE = 255


def label_table(mapping: dict[int, int], size: int = 256) -> np.ndarray:
    """Raw value -> label; -1 marks raw values that must not occur."""
    table = np.full(size, -1, dtype=np.int64)
    for raw, label in mapping.items():
        table[raw] = label
    return table


def read_image(path: Path) -> np.ndarray:
    return read_rgb(path)


def read_label_map(path: Path) -> np.ndarray:
    """A single-channel label map: palette ("P", indices are the labels) or greyscale PNG."""
    try:
        with open_image(path) as im:
            if im.mode not in ("P", "L", "I", "I;16"):
                raise UserError(f"label map {path} is a {im.mode} image; expected one label id per pixel "
                                f"(a palette or greyscale PNG)")
            return np.asarray(im).astype(np.int64)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read label map {path}: {e}") from None


def colour_labels(rgb: np.ndarray, colours: np.ndarray, path: Path, unknown_ignored: bool) -> np.ndarray:
    """HxWx3 uint8 colour mask -> HxW labels: the pixel's index in ``colours`` ([K, 3] uint8).

    A colour not in ``colours`` is an error naming the file and the colour, or becomes
    IGNORE when ``unknown_ignored``."""
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    keys = (colours[:, 0].astype(np.int64) << 16) | (colours[:, 1].astype(np.int64) << 8) | colours[:, 2]
    order = np.argsort(keys)
    at = np.clip(np.searchsorted(keys[order], codes), 0, len(keys) - 1)
    labels = order[at]
    known = keys[labels] == codes
    if not known.all():
        if not unknown_ignored:
            unknown = np.unique(codes[~known])
            shown = ", ".join(f"({c >> 16}, {(c >> 8) & 255}, {c & 255})" for c in unknown[:3])
            more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
            raise UserError(f"mask {path} has colour {shown}{more} that is not in data.palette (set "
                            f"data.unknown_colour: ignore to ignore such pixels)")
        labels = np.where(known, labels, IGNORE)
    return labels.astype(np.int64)


class SegmentationFolder(Dataset):
    """Pairs of image and label-map files with a raw-value -> label table.

    ``num_classes`` is the number of real classes (labels 0..num_classes-1; 255 = ignore).
    ``transform(image, mask)`` is a joint transform (``transforms.train_transform``) or None.
    ``colours`` ([K, 3] uint8): the masks are colour images and colour i is class i (the table
    is then not used); ``unknown_ignored``: a colour outside ``colours`` is ignored, not an error.
    ``class_names``: one name per class, or None.
    """

    mean, std = IMAGENET_MEAN, IMAGENET_STD

    def __init__(self, pairs: Sequence[tuple[Path, Path]], table: np.ndarray, num_classes: int,
                 transform: Callable | None = None, raw_labels: str = "", raw_ignore: int = IGNORE,
                 colours: np.ndarray | None = None, unknown_ignored: bool = False,
                 class_names: Sequence[str] | None = None):
        self.pairs = list(pairs)
        self.table = table
        self.num_classes = num_classes
        self.transform = transform
        self.raw_labels = raw_labels  # what raw values are valid, for error messages
        self.raw_ignore = raw_ignore
        self.colours = colours
        self.unknown_ignored = unknown_ignored
        if class_names is not None:
            self.class_names = tuple(class_names)
        self._mean = torch.tensor(self.mean)[:, None, None]
        self._std = torch.tensor(self.std)[:, None, None]

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(HxWx3 uint8 image, HxW int64 labels after mapping) with every check applied."""
        image_path, mask_path = self.pairs[index]
        image = read_image(image_path)
        raw = read_label_map(mask_path) if self.colours is None else read_image(mask_path)
        if image.shape[:2] != raw.shape[:2]:
            raise UserError(f"size mismatch: image {image_path} is {image.shape[1]}x{image.shape[0]} but its "
                            f"label map {mask_path} is {raw.shape[1]}x{raw.shape[0]}")
        if self.colours is not None:
            return image, colour_labels(raw, self.colours, mask_path, self.unknown_ignored)
        bad = raw[(raw < 0) | (raw >= len(self.table))]
        if bad.size == 0:
            labels = self.table[raw]
            bad = raw[labels < 0]
        if bad.size:
            values = ", ".join(str(v) for v in np.unique(bad)[:5])
            raise UserError(f"label map {mask_path} has label values {values} outside the class range "
                            f"({self.raw_labels or f'0..{self.num_classes - 1}'} or {self.raw_ignore})")
        return image, labels

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image, labels = self.load(index)
        x = torch.from_numpy(image.copy()).permute(2, 0, 1).float().div_(255)
        x = (x - self._mean) / self._std
        y = torch.from_numpy(labels)
        if self.transform is not None:
            x, y = self.transform(x, y)
        return {"input": x.contiguous(), "target": y.contiguous()}


def require_dir(path: Path, dataset: str, layout: str) -> None:
    if not path.is_dir():
        raise UserError(f"{dataset}: folder {path} not found; expected the layout {layout}")


def pair_or_error(image: Path, mask: Path) -> tuple[Path, Path]:
    if not mask.is_file():
        raise UserError(f"image {image} has no label map: expected {mask}")
    return image, mask
