"""Class prototypes and prototype ("perspective") logits of Adaptive Perspective Distillation
(Tian et al., "Adaptive Perspective Distillation for Semantic Segmentation", TPAMI 2023, Sec. 3).

A prototype is the L2-normalised mean of the L2-normalised features of the pixels of one
class; the set of prototypes of an image (or mini-batch) is its "adaptive perspective", and a
pixel's perspective logits are its scaled cosine similarities to those prototypes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def labels_at(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Label maps [B, H, W] resampled to ``size`` by nearest neighbour (as in the APD code)."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    return F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()


def grouped_class_prototypes(features: torch.Tensor, labels: torch.Tensor, num_classes: int, group_size: int,
                             ignore_index: int = 255) -> tuple[torch.Tensor, torch.Tensor]:
    """Prototypes pooled over consecutive groups of ``group_size`` images.

    Returns (prototypes [G, C, D], present [G, C] bool) with G = ceil(B / group_size);
    ``group_size`` 1 gives one perspective per image (the paper), B one per batch.
    """
    b, d, h, w = features.shape
    y = labels_at(labels, (h, w)).reshape(b, h * w)
    f = F.normalize(features.float(), dim=1).permute(0, 2, 3, 1).reshape(b, h * w, d)
    groups = (b + group_size - 1) // group_size
    group = (torch.arange(b, device=y.device) // group_size)[:, None].expand(b, h * w)
    valid = y != ignore_index
    y, f, group = y[valid], f[valid], group[valid]
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"label {int(y.max())} is outside 0..{num_classes - 1} and is not {ignore_index}")
    key = group * num_classes + y
    sums = f.new_zeros(groups * num_classes, d).index_add(0, key, f)
    counts = torch.bincount(key, minlength=groups * num_classes)
    means = sums / counts.clamp(min=1)[:, None].to(sums.dtype)
    return F.normalize(means, dim=1).view(groups, num_classes, d), (counts > 0).view(groups, num_classes)


def class_prototypes(features: torch.Tensor, labels: torch.Tensor, num_classes: int,
                     ignore_index: int = 255) -> tuple[torch.Tensor, torch.Tensor]:
    """Prototypes p_k = normalise(mean_{x: y(x)=k} normalise(f(x))) pooled over all given images.

    features [B, D, h, w]; labels [B, H, W] (downsampled to h x w by nearest neighbour;
    ``ignore_index`` pixels skipped). Returns (prototypes [C, D], present [C] bool); rows of
    classes with no pixel are zero. Pass one image (``features[i:i+1]``) for a per-image
    perspective (the paper), or the whole batch for the official code's per-batch one.
    """
    protos, present = grouped_class_prototypes(features, labels, num_classes, features.shape[0], ignore_index)
    return protos[0], present[0]


def perspective_logits(features: torch.Tensor, prototypes: torch.Tensor, scale: float = 10.0) -> torch.Tensor:
    """l_k(x) = scale * cos(f(x), p_k) for features [B, D, h, w] -> [B, K, h, w].

    ``prototypes`` is [K, D] (shared by all images) or [B, K, D] (one set per image).
    ``scale`` = 10 is APD's 1/temperature (temperature 0.1).
    """
    f = F.normalize(features.float(), dim=1)
    p = F.normalize(prototypes.float(), dim=-1)
    if p.dim() == 3:
        return scale * torch.einsum("bdhw,bkd->bkhw", f, p)
    return scale * torch.einsum("bdhw,kd->bkhw", f, p)
