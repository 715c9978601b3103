"""The embedded weather set: haze, rain and snow on crops of real photographs, built in memory.

For demos, tests and CPU benchmarks of multi-weather restoration. The clean crops come from
the photographs that scikit-image, scikit-learn and matplotlib ship
(``kdvision.data.restoration.photos``: different photographs for train, val and test, so no
test content is seen in training); haze is the restoration package's scattering model
(``add_haze``), rain and snow are ``kdvision.data.weather.synthesis``. Every sample is
deterministic from (seed, split, weather name, index): a teacher trained on ``domains: [haze]``
sees exactly the haze samples of the three-weather mix. Images are stored as 8-bit, like
files on disk.
"""
from __future__ import annotations

from typing import Annotated, Literal

import functools
import zlib
from typing import Callable

import numpy as np
import torch

from kdvision.config_checks import MAX_IMAGE_SIDE, PositiveInt, Range
from kdvision.data.restoration import photos
from kdvision.data.restoration.degradations import DEGRADATIONS
from kdvision.data.restoration.paired_transforms import PairedTransform
from kdvision.data.weather.mixed import DomainDataset, Sampling
from kdvision.data.weather.synthesis import add_rain, add_snow
from kdvision.errors import UserError
from kdvision.registry import DATASETS

SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


def weather_functions(severity: str = "light") -> dict[str, Callable]:
    """Weather name -> fn(clean, rng) -> (degraded, info): the restoration package's
    degradations (haze, ...) plus rain and snow of the given ``severity`` (synthesis.py)."""
    return {**DEGRADATIONS, "rain": functools.partial(add_rain, severity=severity),
            "snow": functools.partial(add_snow, severity=severity)}


def sample_rng(seed: int, split: str, domain: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLIT_IDS[split], zlib.crc32(domain.encode()), index])


def make_sample(seed: int, split: str, domain: str, index: int, size: int, photo_names: list[str],
                degrade: Callable) -> tuple[np.ndarray, np.ndarray, str]:
    """(degraded uint8, clean uint8, photo name) of one sample."""
    rng = sample_rng(seed, split, domain, index)
    name = photo_names[int(rng.integers(len(photo_names)))]
    clean = photos.random_crop(name, size, rng)
    clean = np.round(clean * 255) / 255  # the 8-bit clean image is the target
    degraded, _ = degrade(clean, rng)
    to8 = lambda a: np.clip(np.round(a * 255), 0, 255).astype(np.uint8)  # noqa: E731
    return to8(degraded), to8(clean), name


class EmbeddedWeatherDataset(DomainDataset):
    """``count`` samples of each weather in ``domains`` for one split; items
    {"input", "target", "domain", "name"}; train items get random flips and transposes."""

    def __init__(self, seed: int, split: str, domains: list[str], count: int, size: int,
                 photo_names: list[str], augment: bool, severity: str = "light"):
        table = weather_functions(severity)
        unknown = [d for d in domains if d not in table]
        if unknown:
            raise UserError(f"data.domains: unknown weather '{unknown[0]}' (known: {', '.join(sorted(table))})")
        self.domains = list(domains)
        self.transform = PairedTransform(0, True, True) if augment else None
        inputs, targets, self.sample_domains, self.names = [], [], [], []
        for d_index, domain in enumerate(self.domains):
            for i in range(count):
                degraded, clean, photo = make_sample(seed, split, domain, i, size, photo_names, table[domain])
                inputs.append(degraded)
                targets.append(clean)
                self.sample_domains.append(d_index)
                self.names.append(f"{domain}_{split}_{i:04d}_{photo}")
        self.inputs = torch.from_numpy(np.stack(inputs)).permute(0, 3, 1, 2).contiguous()
        self.targets = torch.from_numpy(np.stack(targets)).permute(0, 3, 1, 2).contiguous()

    def __len__(self) -> int:
        return len(self.sample_domains)

    def __getitem__(self, index: int) -> dict:
        inp = self.inputs[index].float() / 255
        target = self.targets[index].float() / 255
        if self.transform is not None:
            inp, target = self.transform(inp, target)
        return {"input": inp, "target": target, "domain": torch.tensor(self.sample_domains[index]),
                "name": self.names[index]}


Size = Annotated[int, Range(ge=16, le=MAX_IMAGE_SIDE)]


@DATASETS.register("embedded_weather")
def embedded_weather(seed: int, domains: list[str] = ["haze", "rain", "snow"], size: Size = 64,  # noqa: B006
                     train_per_domain: PositiveInt = 256, val_per_domain: PositiveInt = 32,
                     test_per_domain: PositiveInt = 64, data_seed: int = -1,
                     sampling: Sampling = "official_uniform", severity: Literal["light", "heavy"] = "light") -> dict:
    """Haze/rain/snow on real photo crops (different photos per split), deterministic from a seed.

    ``data_seed`` (default: the run's seed) fixes the samples independently of the training seed.
    ``sampling``: the training epoch, "official_uniform" or "all" (``kdvision.data.weather.mixed``).
    ``severity``: "light" (Rain100L/Snow100K-S-like) or "heavy" (Rain100H/Snow100K-L-like) rain and snow.
    """
    smallest = photos.smallest_side(sum(photos.DEFAULT_SPLITS.values(), []))
    if size > smallest:
        raise UserError(f"data.size {size} is larger than the smallest photograph ({smallest} px)")
    s = seed if data_seed < 0 else data_seed
    counts = {"train": train_per_domain, "val": val_per_domain, "test": test_per_domain}
    sets = {split: EmbeddedWeatherDataset(s, split, list(domains), counts[split], size,
                                          photos.DEFAULT_SPLITS[split], augment=split == "train", severity=severity)
            for split in ("train", "val", "test")}
    sets["train"].sampling = sampling
    return sets
