"""Attention transfer (Zagoruyko & Komodakis, "Paying More Attention to Attention", ICLR 2017)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def attention_map(feature: torch.Tensor, p: int = 2, absolute: bool = False) -> torch.Tensor:
    """phi(F) = L2-normalise over positions of mean_c(F^p), flattened per sample -> [B, HW].

    ``absolute`` False: F^p, as the official code (szagoruyko/attention-transfer, RepDistiller
    distiller_zoo/AT.py, mdistiller AT.py) computes it; True: |F|^p, the paper's eq. 2
    (F^p_sum = sum_c |A_c|^p). They agree for even p and for non-negative (post-ReLU) maps.
    """
    f = feature.float()
    am = (f.abs() if absolute else f).pow(p).mean(dim=1)
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


def at_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor, p: int = 2,
            absolute: bool = False) -> torch.Tensor:
    """L_AT = mean over batch and positions of (phi(F_s) - phi(F_t))^2 for one layer pair.

    Channel counts may differ (phi averages over channels); when spatial sizes differ the
    larger map is adaptive-average-pooled to the smaller. The teacher side is detached.
    """
    s, t = match_spatial(student_feature, teacher_feature.detach())
    return (attention_map(s, p, absolute) - attention_map(t, p, absolute)).pow(2).mean()
