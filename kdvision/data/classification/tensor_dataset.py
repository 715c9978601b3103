"""An in-memory classification dataset of uint8 images with optional augmentation."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from kdvision.data.classification.transforms import Normalize, RandomCropFlip
from kdvision.data.image_files import check_pixel_array


class ImageArrayDataset(Dataset):
    """Images as a uint8 array [N, H, W, C] (integers above 255 refused) with integer labels;
    items {"input", "target", "index"}."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, num_classes: int, mean, std,
                 augment: RandomCropFlip | None = None, classes: list[str] | None = None):
        images = check_pixel_array(images, "images")
        self.images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        self.num_classes = num_classes
        self.classes = classes or [str(i) for i in range(num_classes)]
        self.normalize = Normalize(mean, std)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        image = self.images[i].float().div_(255.0)
        if self.augment is not None:
            image = self.augment(image)
        return {"input": self.normalize(image), "target": self.labels[i], "index": i}
