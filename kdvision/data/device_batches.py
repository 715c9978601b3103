"""Device-resident training batches for in-memory image sets (``data.device_resident``).

CIFAR, digits and any :class:`ImageArrayDataset` fit in device memory as uint8 (CIFAR-100
train: 150 MB). :class:`DeviceBatches` keeps the images there and builds each batch with a few
whole-batch tensor operations (gather, zero-pad, crop, flip, scale, normalise): no DataLoader
workers, no per-sample Python. It stands in for the trainer's training DataLoader:

* the order is the DataLoader's: ``torch.randperm`` from the same per-epoch generator (after
  the one seed draw the DataLoader makes), with the same ``drop_last`` rule, so a resumed run
  replays the same batches;
* the augmentation is :class:`RandomCropFlip`'s, its parameters (top, left, flipped) drawn for
  the whole batch from the global torch RNG that the trainer seeds per epoch: the same
  distribution as the per-sample draws, and for the same parameters exactly the same tensor
  (``augment_batch``); ``record=True`` adds them to the batch as ``view_params``, in the
  teacher cache's layout;
* over a teacher cache (:class:`CachedViews`) each sample's recorded view is drawn per batch
  and its parameters are replayed, with the stored logits as ``teacher_logits``.

``data.device_resident``: ``true``, ``false`` or ``auto`` (the default: on when training on
CUDA with one process and the training set supports it; off on CPU, where it is opt-in).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kdvision.data.classification.tensor_dataset import ImageArrayDataset
from kdvision.data.classification.transforms import RandomCropFlip
from kdvision.errors import UserError

CHOICES = (True, False, "auto")


def resident_parts(dataset):
    """(image set, its augmentation, teacher cache or None), or None when not supported."""
    from kdvision.cache.views import CachedViews  # here: kdvision.data is imported by the cache's imports

    cache = None
    if isinstance(dataset, CachedViews):
        cache = dataset.cache
        augment = dataset.replayer.augment if dataset.replayer is not None else None
        dataset = dataset.base
    elif isinstance(dataset, ImageArrayDataset):
        augment = dataset.augment
    else:
        return None
    if not isinstance(dataset, ImageArrayDataset) or not (augment is None or type(augment) is RandomCropFlip):
        return None
    return dataset, augment, cache


def use_device_resident(cfg, train, device: torch.device, world_size: int = 1) -> bool:
    """Whether this run's training batches come from :class:`DeviceBatches`."""
    value = cfg.data.get("device_resident", "auto")
    if value not in CHOICES or (value != "auto" and not isinstance(value, bool)):
        raise UserError(f"{cfg.source}: data.device_resident must be true, false or auto, got {value!r}")
    supported = resident_parts(train) is not None
    if value is True:
        if not supported:
            raise UserError(f"{cfg.source}: data.device_resident: the training set of data '{cfg.data['name']}' is "
                            f"not an in-memory image set with crop/flip augmentation (e.g. cifar100, digits)")
        if world_size > 1:
            raise UserError(f"{cfg.source}: data.device_resident is not supported under torchrun yet; "
                            f"set data.device_resident=false")
        return True
    return value == "auto" and supported and device.type == "cuda" and world_size == 1


def augment_batch(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, flipped: torch.Tensor,
                  size: int, padding: int) -> torch.Tensor:
    """RandomCropFlip on a uint8 batch [B, C, H, W] with per-image parameters -> float in [0, 1].

    Zero-padding in uint8 and scaling after the crop gives the same floats as the per-sample
    path (scale, pad, crop, flip).
    """
    if padding:
        images = F.pad(images, (padding, padding, padding, padding))
    steps = torch.arange(size, device=images.device)
    rows = top.to(images.device)[:, None] + steps
    cols = left.to(images.device)[:, None] + steps
    cols = torch.where(flipped.to(images.device, torch.bool)[:, None], cols.flip(1), cols)
    b = torch.arange(images.shape[0], device=images.device)
    out = images[b[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # [B, size, size, C]
    return out.permute(0, 3, 1, 2).contiguous().float().div_(255.0)  # NCHW, as the DataLoader collates


def draw_params(augment: RandomCropFlip, n: int, height: int, width: int) -> torch.Tensor:
    """[n, 3] int64 (top, left, flipped) from the global torch RNG, as RandomCropFlip.params draws."""
    p = augment.padding
    top = torch.randint(0, height + 2 * p - augment.size + 1, (n,))
    left = torch.randint(0, width + 2 * p - augment.size + 1, (n,))
    flipped = (torch.rand(n) < 0.5) if augment.flip else torch.zeros(n, dtype=torch.bool)
    return torch.stack([top, left, flipped.long()], dim=1)


class DeviceBatches:
    """Training batches of an in-memory image set, built on ``device`` (see the module docstring)."""

    def __init__(self, dataset, batch_size: int, device: torch.device, generator: torch.Generator,
                 record: bool = False):
        parts = resident_parts(dataset)
        if parts is None:
            raise UserError("data.device_resident: this training set is not an in-memory image set")
        self.source, self.augment, self.cache = parts
        self.batch_size, self.device, self.generator, self.record = batch_size, device, generator, record
        self.images, self.labels, self.mean, self.std = self._resident(dataset, device)
        n = len(self.labels)
        self.drop_last = n > batch_size

    def _resident(self, holder, device: torch.device):
        """The device copies, made once per data set and device (the trainer builds one loader per epoch)."""
        kept = holder.__dict__.get("_device_resident")
        if kept is None or kept[0] != device:
            src = self.source
            kept = (device, src.images.to(device), src.labels.to(device),
                    src.normalize.mean.to(device)[None], src.normalize.std.to(device)[None])
            holder.__dict__["_device_resident"] = kept
        return kept[1:]

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        n = len(self.labels)
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)  # the DataLoader's seed draw
        order = torch.randperm(n, generator=self.generator)
        for k in range(len(self)):
            yield self.batch(order[k * self.batch_size:(k + 1) * self.batch_size])

    def batch(self, index: torch.Tensor, params: torch.Tensor | None = None) -> dict:
        """The batch of samples ``index`` (CPU int64); ``params`` [B, 3] replays given augmentations."""
        out = {}
        if self.cache is not None and params is None:
            view = torch.randint(0, self.cache.views, (len(index),))
            params = self.cache.params[index, view].long() if self.augment is not None else None
            out["teacher_logits"] = self.cache.logits_at(index, view).to(self.device, non_blocking=True)
        images = self.images[index.to(self.device)]
        if self.augment is None:
            x = images.float().div_(255.0)
        else:
            if params is None:
                params = draw_params(self.augment, len(index), images.shape[-2], images.shape[-1])
            x = augment_batch(images, params[:, 0], params[:, 1], params[:, 2], self.augment.size,
                              self.augment.padding)
        out = {"input": (x - self.mean) / self.std, "target": self.labels[index.to(self.device)],
               "index": index, **out}
        if self.record:
            out["view_params"] = (params if params is not None else torch.zeros(len(index), 0)).double()
        return out
