"""The embedded degraded-photo data set "embedded_haze": real photographs, synthetic haze.

Clean crops come from the photographs of ``photos.py`` (train, val and test use different
photographs); each crop is degraded by a function of ``degradations.DEGRADATIONS``. Item i
of a split is a pure function of (data_seed, split, i): the same on every machine, every
epoch and every run seed, so runs with different seeds are compared on the same test set.
Nothing is held in memory but the photographs; items are made on demand (about 1 ms each).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from kdvision.config_checks import ImageSide, PositiveInt
from kdvision.data.restoration.degradations import DEGRADATIONS
from kdvision.data.restoration.paired_transforms import paired_flips
from kdvision.data.restoration.photos import DEFAULT_SPLITS, PHOTOS, random_crop, smallest_side
from kdvision.errors import UserError
from kdvision.registry import DATASETS

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


class EmbeddedDegradedDataset(Dataset):
    """Items {"input": degraded, "target": clean, "name", "domain"} made from photo crops.

    Photographs are used in turn (item i comes from photo i mod P) and degradations in turn
    within each round, so every split is balanced. ``augment`` adds random flips and
    transposes (drawn from torch's generator, so they change every epoch).
    """

    def __init__(self, split: str, photos: list[str], size: int, crop: int, degradations: list[str],
                 data_seed: int = 0, augment: bool = False, autoencoder: bool = False,
                 quantize: bool = True):
        self.split, self.photos, self.size, self.crop = split, list(photos), size, crop
        self.degradations = list(degradations)
        self.data_seed, self.augment, self.autoencoder, self.quantize = data_seed, augment, autoencoder, quantize
        self.domains: list[str] = []
        self._domain_of: dict[str, int] = {}
        probe = np.zeros((8, 8, 3), np.float32)
        for name in self.degradations:  # the domain each degradation produces, in order
            domain = DEGRADATIONS[name](probe, np.random.default_rng(0))[1]["domain"]
            if domain not in self.domains:
                self.domains.append(domain)
            self._domain_of[name] = self.domains.index(domain)

    def __len__(self) -> int:
        return self.size

    def make(self, index: int) -> tuple[np.ndarray, np.ndarray, str, dict]:
        """(degraded, clean, name, info) of item ``index``, deterministically."""
        rng = np.random.default_rng([self.data_seed, SPLIT_CODES[self.split], index])
        photo = self.photos[index % len(self.photos)]
        degradation = self.degradations[(index // len(self.photos)) % len(self.degradations)]
        clean = random_crop(photo, self.crop, rng)
        degraded, info = DEGRADATIONS[degradation](clean, rng)
        if self.quantize:  # real degraded photographs are 8-bit files
            degraded = np.round(degraded * 255.0) / 255.0
        info["degradation"], info["photo"] = degradation, photo
        return degraded.astype(np.float32), clean, f"{self.split}_{index:05d}_{photo}_{degradation}", info

    def __getitem__(self, index: int) -> dict:
        degraded, clean, name, info = self.make(index)
        target = torch.from_numpy(np.ascontiguousarray(clean.transpose(2, 0, 1)))
        inp = target if self.autoencoder else torch.from_numpy(np.ascontiguousarray(degraded.transpose(2, 0, 1)))
        if self.augment:
            inp, target = paired_flips([inp, target])
        return {"input": inp, "target": target, "name": name,
                "domain": torch.tensor(self._domain_of[info["degradation"]])}


def check_photo_splits(splits: dict[str, list[str]]) -> None:
    scenes: dict[str, str] = {}
    for split, names in splits.items():
        if not names:
            raise UserError(f"data.{split}_photos: the list is empty")
        for name in names:
            if name not in PHOTOS:
                raise UserError(f"data.{split}_photos: unknown photograph '{name}'; known: "
                                f"{', '.join(sorted(PHOTOS))}")
            scene = PHOTOS[name][1]
            if scenes.get(scene, split) != split:
                raise UserError(f"data.{split}_photos: '{name}' shows the scene of a "
                                f"{scenes[scene]} photograph; splits must not share scenes")
            scenes[scene] = split


@DATASETS.register("embedded_haze")
def embedded_haze(seed: int, crop: ImageSide = 64, train_size: PositiveInt = 1024, val_size: PositiveInt = 64,
                  test_size: PositiveInt = 128, degradations: Optional[list[str]] = None, data_seed: int = 0,
                  augment: bool = True, autoencoder: bool = False, quantize: bool = True,
                  train_photos: Optional[list[str]] = None, val_photos: Optional[list[str]] = None,
                  test_photos: Optional[list[str]] = None) -> dict:
    """Crops of real photographs (scikit-image, scikit-learn, matplotlib) with synthetic haze.

    ``degradations``: names from DEGRADATIONS (default: homogeneous "haze" and "nh_haze").
    ``data_seed`` fixes the crops and the haze (the run seed does not change the data).
    ``autoencoder``: input = clean image (to train the KTDN teacher).
    """
    degradations = list(degradations or ["haze", "nh_haze"])
    for name in degradations:
        if name not in DEGRADATIONS:
            raise UserError(f"data.degradations: unknown degradation '{name}'; known: "
                            f"{', '.join(sorted(DEGRADATIONS))}")
    splits = {"train": list(train_photos or DEFAULT_SPLITS["train"]),
              "val": list(val_photos or DEFAULT_SPLITS["val"]),
              "test": list(test_photos or DEFAULT_SPLITS["test"])}
    check_photo_splits(splits)
    limit = smallest_side([n for names in splits.values() for n in names])
    if not 16 <= crop <= limit:
        raise UserError(f"data.crop: {crop} must lie in [16, {limit}] (the smallest scaled photograph)")
    sizes = {"train": train_size, "val": val_size, "test": test_size}
    for split, size in sizes.items():
        if size < 1:
            raise UserError(f"data.{split}_size: must be at least 1 (got {size})")
    return {split: EmbeddedDegradedDataset(split, splits[split], sizes[split], crop, degradations,
                                           data_seed, augment and split == "train", autoencoder, quantize)
            for split in ("train", "val", "test")}
