"""Contrastive regularisation in a perceptual feature space.

AECR-Net (Wu et al., CVPR 2021, Eq. 4) and its multi-negative form, the multi-contrastive
regularisation of two-stage knowledge learning (Chen et al., CVPR 2022, soft / hard CR):

    CR = sum_j w_j * D(phi_j(a), phi_j(p)) / (sum_r c_r * D(phi_j(a), phi_j(n_r)) + 1e-7)

with D the mean absolute difference over the whole batch, phi_j the j-th feature map of a
frozen extractor (VGG-19 relu1_1 .. relu5_1, weights 1/32, 1/16, 1/8, 1/4, 1), a the
restored image (the anchor), p the positive and n_r the negatives. c_r = 1 by default (the
sheet's sum); the official code's hard CR averages over every input of the batch, i.e.
c_r = 1/R with one single-image negative per input (``negative_weights``).

As in the official code, the positive and negative features are detached: only the anchor
receives gradients.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

VGG_LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
EPS = 1e-7


def mean_abs_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """D: mean |a - b|; ``b`` may have batch size 1 (broadcast over a's batch)."""
    return (a.float() - b.float()).abs().mean()


def contrastive_regularization(anchor: torch.Tensor, positive: torch.Tensor,
                               negatives: Sequence[torch.Tensor],
                               extractor: Callable[[torch.Tensor], Sequence[torch.Tensor]],
                               weights: Sequence[float] = VGG_LAYER_WEIGHTS,
                               negative_weights: Sequence[float] | None = None) -> torch.Tensor:
    """sum_j w_j D(phi_j(anchor), phi_j(positive)) / (sum_r c_r D(phi_j(anchor), phi_j(negatives[r])) + 1e-7).

    ``anchor`` and ``positive``: (B, C, H, W) image batches. ``negatives``: a list of image
    batches of batch size B (paired with the anchors) or 1 (one image compared with every
    anchor). ``extractor(x)`` returns the list of feature maps phi_j; ``weights`` one weight per
    map; ``negative_weights`` one c_r per negative (default 1: a plain sum).
    """
    if len(negatives) == 0:
        raise ValueError("contrastive_regularization needs at least one negative")
    c = [1.0] * len(negatives) if negative_weights is None else list(negative_weights)
    if len(c) != len(negatives):
        raise ValueError(f"{len(c)} negative weights for {len(negatives)} negatives")
    feats_a = extractor(anchor)
    if len(feats_a) != len(weights):
        raise ValueError(f"the extractor returns {len(feats_a)} feature maps but {len(weights)} weights were given")
    with torch.no_grad():
        feats_p = extractor(positive)
        sizes = [n.shape[0] for n in negatives]
        feats_n = [f.split(sizes) for f in extractor(torch.cat(list(negatives)))]
    loss = anchor.new_zeros((), dtype=torch.float32)
    for j, w in enumerate(weights):
        d_ap = mean_abs_distance(feats_a[j], feats_p[j])
        d_an = sum(c_r * mean_abs_distance(feats_a[j], feats_n[j][r]) for r, c_r in enumerate(c))
        loss = loss + w * d_ap / (d_an + EPS)
    return loss
