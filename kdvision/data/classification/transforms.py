"""Tensor transforms for classification: random crop with padding and horizontal flip.

They draw from the global torch RNG, which the trainer seeds per epoch (and per worker), so
a resumed run sees exactly the same augmentations.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class RandomCropFlip:
    """Random crop of ``size`` after zero-padding by ``padding``, then a horizontal flip (p=0.5).

    The CIFAR community augmentation (random crop 32 pad 4 + flip).
    """

    def __init__(self, size: int, padding: int = 4, flip: bool = True):
        self.size, self.padding, self.flip = size, padding, flip

    def params(self, height: int, width: int) -> tuple[int, int, bool]:
        """Draw (top, left, flipped) for an image of the given (unpadded) size."""
        p = self.padding
        top = int(torch.randint(0, height + 2 * p - self.size + 1, ()).item())
        left = int(torch.randint(0, width + 2 * p - self.size + 1, ()).item())
        flipped = bool(self.flip and torch.rand(()).item() < 0.5)
        return top, left, flipped

    def apply(self, image: torch.Tensor, top: int, left: int, flipped: bool) -> torch.Tensor:
        p = self.padding
        if p:
            image = F.pad(image, (p, p, p, p))
        image = image[:, top:top + self.size, left:left + self.size]
        return image.flip(-1) if flipped else image

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.apply(image, *self.params(image.shape[-2], image.shape[-1]))


class Normalize:
    def __init__(self, mean, std):
        self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return (image - self.mean) / self.std
