"""Helpers on model outputs shared by methods and tasks (no data sets, no models imported).

Methods and tasks both read a model's main prediction and compare per-pixel logits with
label maps; these sit below both so that ``import kdvision.methods`` loads no data set.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def main_output(output: Any) -> torch.Tensor:
    """The main prediction of a model whose forward returns a tensor or a dict with "out"."""
    if isinstance(output, dict):
        return output["out"]
    if isinstance(output, (tuple, list)):
        return output[0]
    return output


def to_label_size(logits: torch.Tensor, size, align_corners: bool = False) -> torch.Tensor:
    """Bilinear upsampling of logits to the label size (no-op when they already match).

    ``align_corners`` True is the official PSPNet/APD code's upsampling (exact on 8k+1 crops)."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=align_corners)


def per_pixel_ce(logits: torch.Tensor, target: torch.Tensor, ignore_index: int,
                 align_corners: bool = False) -> torch.Tensor:
    """CE averaged over non-ignored pixels; 0 (with a graph) when every pixel is ignored.
    Logits smaller than the labels are upsampled bilinearly first (``align_corners``)."""
    logits = to_label_size(logits, target.shape[-2:], align_corners)
    if not bool((target != ignore_index).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), target, ignore_index=ignore_index)
