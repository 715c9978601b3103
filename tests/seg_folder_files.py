"""Writes tiny trees in the ``seg_folder`` layout: images of mixed extensions, index or colour masks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

H, W = 40, 48
CLASSES = ("background", "cat", "dog")
COLOURS = ((0, 0, 0), (200, 30, 30), (30, 200, 30))
EXTENSIONS = {"train": (".jpg", ".png", ".bmp", ".webp"), "val": (".tif", ".jpeg")}


def label_map(i: int) -> np.ndarray:
    """Background, a "cat" box, a "dog" box (placed by ``i``) and an ignored top row (255)."""
    labels = np.zeros((H, W), np.uint8)
    labels[4 + i:20 + i, 4:24] = 1
    labels[22:36, 20 + i:44] = 2
    labels[0] = 255
    return labels


def write_split(folder: Path, extensions, palette: bool = False, offset: int = 0) -> list[np.ndarray]:
    """``folder/images/s<k><ext>`` and ``folder/masks/s<k>.png``; returns the label maps."""
    rng = np.random.default_rng(offset)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    maps = []
    for k, ext in enumerate(extensions):
        labels = label_map(k + offset)
        image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        image[labels == 1] //= 3  # something a network can learn
        Image.fromarray(image).save(folder / "images" / f"s{k}{ext}")
        if palette:
            colours = np.array(COLOURS + ((255, 255, 255),) * 253, np.uint8)
            Image.fromarray(colours[labels]).save(folder / "masks" / f"s{k}.png")
        else:
            Image.fromarray(labels, mode="L").save(folder / "masks" / f"s{k}.png")
        maps.append(labels)
    return maps


def write_seg_folder(root: Path, palette: bool = False, class_file: bool = True) -> dict[str, list[np.ndarray]]:
    """``root/{train,val}/{images,masks}`` with 3 classes (and ``root/classes.txt``)."""
    maps = {split: write_split(root / split, exts, palette, offset=3 * i)
            for i, (split, exts) in enumerate(EXTENSIONS.items())}
    if class_file:
        (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return maps


def seg_config(root: Path, **data) -> dict:
    """A one-epoch PSPNet-R18 (base width 4) config on the tree at ``root``."""
    return {"task": "segmentation", "seed": 0,
            "data": {"name": "seg_folder", "root": str(root), "crop_size": 32, "batch_size": 2,
                     "eval_batch_size": 1, "blur": False, **data},
            "student": {"name": "pspnet_r18", "base_width": 4},
            "method": {"name": "student"},
            "train": {"epochs": 1, "tensorboard": False, "optimizer": {"name": "sgd", "lr": 0.01},
                      "schedule": {"name": "poly", "by": "step"}}}
