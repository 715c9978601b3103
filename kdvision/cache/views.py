"""Recording and replaying augmented views through a dataset's own ``__getitem__``.

A dataset is replayable when its ``augment`` attribute is None or has the two halves
``params(height, width) -> tuple`` (draw) and ``apply(image, *params)`` (apply), as
``RandomCropFlip`` does. The cache swaps that attribute on a shallow copy of the dataset for a
recorder (draws, applies, remembers) or a replayer (applies given parameters), so an item is
built by exactly the code that builds it in live training.
"""
from __future__ import annotations

import copy
import random

import torch
from torch.utils.data import Dataset


def replayable(dataset) -> bool:
    if not hasattr(dataset, "augment"):
        return False
    augment = dataset.augment
    return augment is None or (callable(getattr(augment, "params", None)) and callable(getattr(augment, "apply", None)))


def param_types(params: tuple) -> list[str]:
    out = []
    for p in params:
        if isinstance(p, bool):
            out.append("bool")
        elif isinstance(p, int):
            out.append("int")
        elif isinstance(p, float):
            out.append("float")
        else:
            raise TypeError(f"augmentation parameter {p!r} is not a bool, int or float")
    return out


class RecordingAugment:
    """Draws parameters with the wrapped augmentation, applies them and keeps them."""

    def __init__(self, augment):
        self.augment = augment
        self.last: tuple = ()

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        self.last = tuple(self.augment.params(image.shape[-2], image.shape[-1]))
        return self.augment.apply(image, *self.last)


class ReplayAugment:
    """Applies the parameters it is given instead of drawing new ones."""

    def __init__(self, augment):
        self.augment = augment
        self.params: tuple = ()

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.augment.apply(image, *self.params)


class RecordingViews(Dataset):
    """Items of ``dataset`` with freshly drawn augmentations; item["view_params"] says which."""

    def __init__(self, dataset):
        self.base = copy.copy(dataset)
        self.recorder = RecordingAugment(dataset.augment) if dataset.augment is not None else None
        self.base.augment = self.recorder

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        item = dict(self.base[i])
        params = self.recorder.last if self.recorder is not None else ()
        item["view_params"] = torch.tensor([float(p) for p in params], dtype=torch.float64)
        return item


class CachedViews(Dataset):
    """The training set as the cache replays it: each item is one recorded view of the sample
    (drawn with Python's ``random``, which the trainer seeds per epoch and per worker) with
    that view's stored teacher logits in item["teacher_logits"]. Given a list of caches (one per
    teacher, recorded on the same views), item["teacher_logits"] stacks them: [K, C]."""

    def __init__(self, dataset, cache):
        self.base = copy.copy(dataset)
        self.replayer = ReplayAugment(dataset.augment) if dataset.augment is not None else None
        self.base.augment = self.replayer
        self.caches = list(cache) if isinstance(cache, (list, tuple)) else None
        self.cache = self.caches[0] if self.caches else cache
        if self.caches and any(not torch.equal(c.tensors["params"], self.cache.tensors["params"])
                               for c in self.caches[1:]):
            raise ValueError("the teachers' caches were recorded on different views")

    def __len__(self) -> int:
        return len(self.base)

    def __getattr__(self, name):  # num_classes, classes, ... of the wrapped dataset
        if name in ("base", "cache", "caches", "replayer"):
            raise AttributeError(name)
        return getattr(self.base, name)

    def view(self, i: int, v: int) -> dict:
        if self.replayer is not None:
            self.replayer.params = self.cache.params_of(i, v)
        item = dict(self.base[i])
        if self.caches:
            item["teacher_logits"] = torch.stack([c.logits_of(i, v) for c in self.caches])
        else:
            item["teacher_logits"] = self.cache.logits_of(i, v)
        return item

    def __getitem__(self, i: int) -> dict:
        return self.view(i, random.randrange(self.cache.views))
