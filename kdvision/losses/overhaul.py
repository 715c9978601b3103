"""Overhaul of feature distillation (Heo et al., "A Comprehensive Overhaul of Feature
Distillation", ICCV 2019).

Features are taken before the ReLU. The teacher side goes through the margin ReLU
sigma_m(x) = max(x, m) (Eq. 2) with a per-channel margin m = E[x | x < 0] computed from the
preceding BN's statistics (Eq. 3), and the student's transformed feature s is compared by the
partial L2 distance (Eq. 4): (t - s)^2, except that positions where both s <= t and t <= 0 cost
nothing. Official form (mdistiller ``distillers/OFD.py``): the loss is summed over C, H, W and
averaged over the batch; the teacher map is adaptive-average-pooled to the student's size; layer i
of n is divided by 2^(n - i - 1).
"""
from __future__ import annotations

import math

import torch
from scipy.stats import norm


def bn_margin(bn_weight: torch.Tensor, bn_bias: torch.Tensor) -> torch.Tensor:
    """Per-channel m = E[x | x < 0] for x ~ N(beta, gamma^2) (Eq. 3); -3|gamma| when P(x < 0) <= 0.001."""
    margins = []
    for s, m in zip(bn_weight.detach().abs().tolist(), bn_bias.detach().tolist()):
        cdf = norm.cdf(-m / s)
        if cdf > 0.001:
            margins.append(-s * math.exp(-((m / s) ** 2) / 2) / math.sqrt(2 * math.pi) / cdf + m)
        else:
            margins.append(-3 * s)
    return torch.tensor(margins, dtype=torch.float32)


def ofd_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
    """Partial L2 between the student map and margin-ReLU'd teacher target, sum over C,H,W, mean over B."""
    s = student_feature.float()
    t = teacher_feature.detach().float()
    m = margin.to(s).view(1, -1, 1, 1)
    loss = ((s - m) ** 2 * ((s > m) & (t <= m)).float()
            + (s - t) ** 2 * ((s > t) & (t > m) & (t <= 0)).float()
            + (s - t) ** 2 * (t > 0).float())
    return loss.mean(dim=0).sum()
