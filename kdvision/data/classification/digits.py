"""The embedded digits set: scikit-learn's real handwritten digits (UCI optdigits test set).

1,797 grey 8x8 images of the digits 0-9 (16 grey levels), shipped inside scikit-learn, so it
needs no download. kdvision upsamples them (bilinear) to ``resolution`` x ``resolution`` with 3
identical channels, so the CIFAR networks run on them unchanged.

Fixed split, stratified by class, from a permutation seeded with 0 (independent of the run
seed): 1,077 train / 360 val / 360 test. ``train_size`` keeps only the first N training
images per the same permutation (stratified) to make a regime where distillation matters.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np
import torch
import torch.nn.functional as F

from kdvision.config_checks import NonNegativeInt, Range
from kdvision.data.classification.tensor_dataset import ImageArrayDataset
from kdvision.data.classification.transforms import RandomCropFlip
from kdvision.errors import UserError
from kdvision.registry import DATASETS

SPLIT_SEED = 0
#: the whole set is upsampled in memory: 256 px is already ~350 MB of uint8 pixels
Resolution = Annotated[int, Range(ge=8, le=256, why="the 8x8 digits are upsampled in memory")]
VAL_SIZE = 360
TEST_SIZE = 360


def digits_arrays(resolution: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as uint8 [N, R, R, 3] and their labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]
    if resolution != 8:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8).repeat(1, 3, 1, 1).permute(0, 2, 3, 1).numpy()
    return x, d.target.astype(np.int64)


def stratified_split(labels: np.ndarray, sizes: list[int], seed: int) -> list[np.ndarray]:
    """Split indices into consecutive parts of the given sizes, each roughly class-balanced."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    # interleave classes so every prefix of `order` is close to class-balanced
    by_class = [order[labels[order] == c] for c in np.unique(labels)]
    interleaved = []
    for i in range(max(len(b) for b in by_class)):
        interleaved.extend(int(b[i]) for b in by_class if i < len(b))
    interleaved = np.array(interleaved)
    parts, start = [], 0
    for size in sizes:
        parts.append(interleaved[start:start + size])
        start += size
    parts.append(interleaved[start:])
    return parts


@DATASETS.register("digits")
def build_digits(seed: int = 0, resolution: Resolution = 16, train_size: int | None = None, augment: bool = True,
                 padding: NonNegativeInt = 2) -> dict:
    """Embedded scikit-learn digits: 10 classes, ``resolution`` px, fixed 1077/360/360 split."""
    images, labels = digits_arrays(resolution)
    test_idx, val_idx, train_idx = stratified_split(labels, [TEST_SIZE, VAL_SIZE], SPLIT_SEED)
    if train_size is not None:
        if not 10 <= train_size <= len(train_idx):
            raise UserError(f"data.train_size must be between 10 and {len(train_idx)}, got {train_size}")
        train_idx = train_idx[:train_size]
    if padding > resolution:  # the crop pads every image in memory: a huge padding would exhaust it
        raise UserError(f"data.padding must be at most data.resolution ({resolution}), got {padding}")
    mean, std = (0.5,) * 3, (0.5,) * 3
    aug = RandomCropFlip(resolution, padding=padding, flip=False) if augment else None

    def make(idx, a):
        return ImageArrayDataset(images[idx], labels[idx], 10, mean, std, augment=a)

    return {"train": make(train_idx, aug), "val": make(val_idx, None), "test": make(test_idx, None)}
