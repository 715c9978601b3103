"""Neuron selectivity transfer (Huang & Wang, "Like What You Like: Knowledge Distill via Neuron
Selectivity Transfer", arXiv 2017).

Each channel's activation map is a sample of a distribution over positions; NST matches the
student's and teacher's distributions by the squared maximum mean discrepancy (Eq. 4) with the
second-order polynomial kernel k(x, y) = (x^T y)^2 (Eq. 8), on L2-normalised flattened maps.
Official form (mdistiller ``distillers/NST.py``): the larger map is adaptive-average-pooled to
the smaller, the MMD terms are means over channel pairs and batch, the teacher-teacher term is
detached.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from kdvision.losses.attention import match_spatial


def _poly_kernel_mean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """mean over batch and channel pairs (i, j) of (a_i . b_j)^2; a, b: [B, C, N]."""
    return torch.bmm(a, b.transpose(1, 2)).pow(2).mean()


def nst_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor) -> torch.Tensor:
    """MMD^2 with k = (x^T y)^2 between channel maps of one layer pair (channel counts may differ)."""
    s, t = match_spatial(student_feature.float(), teacher_feature.detach().float())
    s = F.normalize(s.flatten(2), dim=2)
    t = F.normalize(t.flatten(2), dim=2)
    return _poly_kernel_mean(t, t) + _poly_kernel_mean(s, s) - 2 * _poly_kernel_mean(s, t)
