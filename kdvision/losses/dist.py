"""DIST: knowledge distillation from a stronger teacher (Huang et al., NeurIPS 2022).

The exact KL match is relaxed to correlation: with Y = softmax(Z / tau) (rows: samples, columns:
classes), the inter-class relation d(Y_s[i,:], Y_t[i,:]) and the intra-class relation
d(Y_s[:,j], Y_t[:,j]) are 1 - Pearson correlation (Eq. 6-8), averaged over rows / columns.
Official form (hunto/image_classification_sota ``lib/models/losses/dist_kd.py``): eps = 1e-8 in
the cosine of the centred vectors, both terms multiplied by tau^2. Dense [B, C, H, W] logits are
treated as B*H*W samples (the official segmentation variant).
"""
from __future__ import annotations

import torch


def _pearson_rows(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


def _as_rows(logits: torch.Tensor) -> torch.Tensor:
    if logits.dim() == 4:
        return logits.movedim(1, -1).reshape(-1, logits.shape[1])
    if logits.dim() != 2:
        raise ValueError(f"DIST takes [B, C] or [B, C, H, W] logits, got shape {tuple(logits.shape)}")
    return logits


def dist_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
               tau: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(inter-class, intra-class) relation losses, each tau^2 * (1 - mean Pearson); teacher detached."""
    ys = (_as_rows(student_logits.float()) / tau).softmax(dim=1)
    yt = (_as_rows(teacher_logits.detach().float()) / tau).softmax(dim=1)
    inter = 1 - _pearson_rows(ys, yt).mean()
    intra = 1 - _pearson_rows(ys.t(), yt.t()).mean()
    return inter * tau ** 2, intra * tau ** 2
