"""ImageFolder trees: root/<split>/<class>/<image>, the layout of ImageNet and most user data.

``root`` holds ``train/`` and ``val/`` (and optionally ``test/``); class folders are sorted
by name to give label indices. Images are decoded with Pillow, resized/cropped and
augmented with random-resized-crop-like cropping and flips for training.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from kdvision.config_checks import ImageSide
from kdvision.data.classification.transforms import Normalize
from kdvision.data.image_files import read_rgb
from kdvision.errors import UserError
from kdvision.registry import DATASETS

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def list_image_folder(split_dir: Path, classes: list[str] | None = None):
    """(path, label) of every image under ``split_dir/<class>/`` and the class names. Without
    ``classes`` (the training split) the class folders define them; a later split may lack a class
    but may not add one. A class folder without images is refused, naming it."""
    if not split_dir.is_dir():
        raise UserError(f"data.root: folder not found: {split_dir} (expected <root>/<split>/<class>/<image>)")
    found = sorted(d.name for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    classes = classes or found
    if not classes:
        raise UserError(f"{split_dir}: no class folders (expected {split_dir}/<class>/<image>)")
    unknown = [c for c in found if c not in classes]
    if unknown:
        raise UserError(f"{split_dir / unknown[0]}: class '{unknown[0]}' has no folder in the training split "
                        f"(classes: {', '.join(classes[:5])}{' ...' if len(classes) > 5 else ''}); "
                        f"every class needs training images")
    samples = []
    for label, name in enumerate(classes):
        folder = split_dir / name
        if not folder.is_dir():
            continue
        images = [f for f in sorted(folder.rglob("*")) if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file()]
        if not images:
            raise UserError(f"{folder}: class folder has no images (extensions {', '.join(sorted(IMAGE_EXTENSIONS))});"
                            f" remove it or add images")
        samples.extend((f, label) for f in images)
    if not samples:
        raise UserError(f"{split_dir}: no class folder of the training split ({', '.join(classes[:5])}"
                        f"{' ...' if len(classes) > 5 else ''}) is here")
    return samples, classes


def load_rgb(path: Path) -> Image.Image:
    return Image.fromarray(read_rgb(path))


class ImageFolderDataset(Dataset):
    def __init__(self, samples, classes, size: int, train: bool, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 resize: int | None = None):
        self.samples, self.classes = samples, classes
        self.num_classes = len(classes)
        self.size, self.train = size, train
        self.resize = resize or int(round(size * 256 / 224))
        self.normalize = Normalize(mean, std)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        path, label = self.samples[i]
        image = load_rgb(path)
        if self.train:
            image = self._random_resized_crop(image)
            if torch.rand(()).item() < 0.5:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        else:
            image = self._center_crop(image)
        x = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255)
        return {"input": self.normalize(x), "target": torch.tensor(label), "index": i}

    def _random_resized_crop(self, image: Image.Image, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)) -> Image.Image:
        w, h = image.size
        area = w * h
        for _ in range(10):
            target = area * float(torch.empty(()).uniform_(*scale))
            log_r = torch.empty(()).uniform_(np.log(ratio[0]), np.log(ratio[1]))
            aspect = float(torch.exp(log_r))
            cw, ch = int(round((target * aspect) ** 0.5)), int(round((target / aspect) ** 0.5))
            if 0 < cw <= w and 0 < ch <= h:
                left = int(torch.randint(0, w - cw + 1, ()))
                top = int(torch.randint(0, h - ch + 1, ()))
                return image.resize((self.size, self.size), Image.BILINEAR, box=(left, top, left + cw, top + ch))
        return self._center_crop(image)

    def _center_crop(self, image: Image.Image) -> Image.Image:
        w, h = image.size
        s = self.resize / min(w, h)
        image = image.resize((max(self.size, round(w * s)), max(self.size, round(h * s))), Image.BILINEAR)
        w, h = image.size
        left, top = (w - self.size) // 2, (h - self.size) // 2
        return image.crop((left, top, left + self.size, top + self.size))


@DATASETS.register("imagefolder")
def build_image_folder(root: str, seed: int = 0, size: ImageSide = 224, train_split: str = "train",
                       val_split: str = "val", test_split: str | None = None) -> dict:
    """ImageFolder tree root/{train,val}/<class>/<image>; classes from the training split."""
    root_path = Path(root).expanduser()
    train_samples, classes = list_image_folder(root_path / train_split)
    val_samples, _ = list_image_folder(root_path / val_split, classes)
    test_samples = list_image_folder(root_path / test_split, classes)[0] if test_split else val_samples
    return {
        "train": ImageFolderDataset(train_samples, classes, size, train=True),
        "val": ImageFolderDataset(val_samples, classes, size, train=False),
        "test": ImageFolderDataset(test_samples, classes, size, train=False),
    }
