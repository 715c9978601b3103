"""Logit standardisation (Sun et al., "Logit Standardization in Knowledge Distillation", CVPR 2024).

Before the temperature softmax of KD-style losses, each sample's logits are z-scored:
Z(z) = (z - mean(z)) / (std(z) + eps) (Algorithm 1), so the student need not match the
teacher's logit range, only its relations. As in the official code
(sunshangquan/logit-standardization-KD ``mdistiller/distillers/KD.py``), the standard deviation
is the unbiased one (``torch.std``) and eps = 1e-7; the temperature is then applied as usual.
"""
from __future__ import annotations

import torch


def standardize_logits(logits: torch.Tensor, eps: float = 1e-7, dim: int = 1) -> torch.Tensor:
    """(z - mean_c z) / (eps + std_c z) over the class dimension ``dim``."""
    z = logits.float()
    return (z - z.mean(dim=dim, keepdim=True)) / (eps + z.std(dim=dim, keepdim=True))
