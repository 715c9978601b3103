"""Digests that tie a teacher cache to what it was built from: teacher weights, data, augmentation."""
from __future__ import annotations

import hashlib
import json

import torch
from torch import nn


def _update(h, tensor: torch.Tensor) -> None:
    t = tensor.detach().cpu().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    h.update(t.numpy().tobytes())


def teacher_digest(teacher: nn.Module) -> str:
    """sha256 of every tensor of the teacher's state dict (names, dtypes, shapes and values)."""
    teacher = getattr(teacher, "_orig_mod", teacher)  # torch.compile wrapper
    h = hashlib.sha256(type(teacher).__name__.encode())
    for name, value in sorted(teacher.state_dict().items()):
        h.update(name.encode())
        _update(h, value)
    return h.hexdigest()[:32]


def data_digest(dataset, probe: int = 4) -> str:
    """sha256 of the training set: its length, its raw ``images``/``labels`` tensors when it has
    them (otherwise every item), and the first ``probe`` items without augmentation (which
    catches normalisation and resizing)."""
    h = hashlib.sha256(f"{type(dataset).__name__}:{len(dataset)}".encode())
    raw = [getattr(dataset, a, None) for a in ("images", "labels")]
    clean = _without_augment(dataset)
    if all(isinstance(t, torch.Tensor) for t in raw):
        for t in raw:
            _update(h, t)
        items = range(min(probe, len(dataset)))
    else:
        items = range(len(dataset))
    for i in items:
        for key, value in sorted(clean[i].items()):
            if isinstance(value, torch.Tensor):
                h.update(key.encode())
                _update(h, value)
    return h.hexdigest()[:32]


def _without_augment(dataset):
    import copy

    if not hasattr(dataset, "augment"):
        return dataset
    clean = copy.copy(dataset)
    clean.augment = None
    return clean


def augment_description(augment) -> dict:
    """The augmentation's class and settings (its public attributes)."""
    if augment is None:
        return {"class": None}
    settings = {k: v for k, v in sorted(vars(augment).items()) if not k.startswith("_")
                and isinstance(v, (int, float, str, bool, type(None), list, tuple))}
    return {"class": f"{type(augment).__module__}.{type(augment).__qualname__}", **settings}


def augment_digest(augment, seed: int) -> str:
    """The augmentation's settings and the seed its recorded views were drawn with."""
    text = json.dumps({"augment": augment_description(augment), "seed": seed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
