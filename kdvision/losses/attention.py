"""Attention transfer (Zagoruyko & Komodakis, "Paying More Attention to Attention", ICLR 2017)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def attention_map(feature: torch.Tensor, p: int = 2) -> torch.Tensor:
    """phi(F) = L2-normalise over positions of mean_c(|F|^p), flattened per sample -> [B, HW]."""
    am = feature.float().abs().pow(p).mean(dim=1)
    return F.normalize(am.flatten(1), dim=1)


def match_spatial(student_feature: torch.Tensor, teacher_feature: torch.Tensor):
    """Adaptive-average-pool the larger map down to the smaller map's size."""
    hs, ws = student_feature.shape[-2:]
    ht, wt = teacher_feature.shape[-2:]
    if hs * ws > ht * wt:
        student_feature = F.adaptive_avg_pool2d(student_feature, (ht, wt))
    elif ht * wt > hs * ws:
        teacher_feature = F.adaptive_avg_pool2d(teacher_feature, (hs, ws))
    return student_feature, teacher_feature


def at_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor, p: int = 2) -> torch.Tensor:
    """L_AT = mean over batch and positions of (phi(F_s) - phi(F_t))^2 for one layer pair.

    Channel counts may differ (phi averages over channels); when spatial sizes differ the
    larger map is adaptive-average-pooled to the smaller. The teacher side is detached.
    """
    s, t = match_spatial(student_feature, teacher_feature.detach())
    return (attention_map(s, p) - attention_map(t, p)).pow(2).mean()
