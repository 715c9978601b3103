"""Joint transforms for paired restoration data: the same crop, flips and transposes on the
degraded input and its target, so that pixels stay aligned.

Random draws come from torch's generator (DataLoader seeds it per worker), or from an
explicit ``torch.Generator`` for reproducible tests.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def _randint(high: int, generator: torch.Generator | None) -> int:
    return int(torch.randint(high, (1,), generator=generator))


def _coin(generator: torch.Generator | None) -> bool:
    return bool(torch.rand((), generator=generator) < 0.5)


def paired_random_crop(images: list[torch.Tensor], size: int,
                       generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """The same ``size`` x ``size`` window of every CHW image (all of equal height and width)."""
    h, w = images[0].shape[-2:]
    if any(im.shape[-2:] != (h, w) for im in images):
        raise ValueError("paired images differ in size")
    if h < size or w < size:
        raise ValueError(f"image {h}x{w} is smaller than the crop {size}")
    top = _randint(h - size + 1, generator)
    left = _randint(w - size + 1, generator)
    return [im[..., top:top + size, left:left + size] for im in images]


def paired_flips(images: list[torch.Tensor], flips: bool = True, transposes: bool = True,
                 generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Random horizontal flip, vertical flip and H<->W transpose, the same for every image
    (the 8 symmetries of the square when all three are on)."""
    if flips and _coin(generator):
        images = [im.flip(-1) for im in images]
    if flips and _coin(generator):
        images = [im.flip(-2) for im in images]
    if transposes and _coin(generator):
        images = [im.transpose(-1, -2) for im in images]
    return [im.contiguous() for im in images]


@dataclass
class PairedTransform:
    """Random crop (0: none) then flips and transposes, applied jointly to input and target."""

    crop: int = 0
    flips: bool = True
    transposes: bool = True

    def __call__(self, input: torch.Tensor, target: torch.Tensor,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        images = [input, target]
        if self.crop:
            images = paired_random_crop(images, self.crop, generator)
        images = paired_flips(images, self.flips, self.transposes, generator)
        return images[0], images[1]
