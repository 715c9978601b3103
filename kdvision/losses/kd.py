"""Logit distillation (Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", 2015)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 4.0) -> torch.Tensor:
    """L_KD = T^2 * (1/B) * sum_b KL(softmax(z_t/T) || softmax(z_s/T)).

    The teacher side is detached. Works for any logits whose class dimension is 1
    ([B, C] or [B, C, H, W]); for dense maps the KL is summed over classes and averaged
    over the batch and all positions (per-pixel KL, see ``pixel_kd_loss``).
    """
    t = temperature
    log_p_s = F.log_softmax(student_logits.float() / t, dim=1)
    log_p_t = F.log_softmax(teacher_logits.detach().float() / t, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)
    return kl.mean() * (t * t)
