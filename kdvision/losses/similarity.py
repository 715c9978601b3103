"""Similarity-preserving KD (Tung & Mori, "Similarity-Preserving Knowledge Distillation", ICCV 2019)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def similarity_matrix(feature: torch.Tensor) -> torch.Tensor:
    """G = row-wise L2-normalised Q Q^T with Q = F.view(b, -1), a b x b matrix (paper Sec. 3)."""
    q = feature.float().flatten(1)
    return F.normalize(q @ q.t(), p=2, dim=1, eps=1e-12)


def sp_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor) -> torch.Tensor:
    """L_SP = (1/b^2) * ||G_t - G_s||_F^2 for ONE layer pair (paper Sec. 3; the method sums pairs).

    Channel counts and spatial sizes may differ between student and teacher (each sample is
    flattened); only the batch sizes must match. The teacher side is detached.
    Raises ValueError when the batch sizes differ or a feature has no per-sample dimension.
    """
    for side, f in (("student", student_feature), ("teacher", teacher_feature)):
        if f.dim() < 2:
            raise ValueError(f"sp_loss: the {side} feature must be [batch, ...], got shape {tuple(f.shape)}")
    b = student_feature.shape[0]
    if teacher_feature.shape[0] != b:
        raise ValueError(f"sp_loss: batch sizes differ (student {b}, teacher {teacher_feature.shape[0]}); "
                         f"similarity matrices compare the same samples, so both must see the same batch")
    g_s = similarity_matrix(student_feature)
    g_t = similarity_matrix(teacher_feature.detach())
    return (g_t - g_s).pow(2).sum() / (b * b)
