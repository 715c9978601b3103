"""Soft labels from several teachers, for classification.

Two ways of combining the teachers' predictions for a student:
- ``average``: the mean over teachers of the per-teacher KD loss (equivalent to matching each
  teacher equally; the "AVERAGE_LOSS" baseline of CA-MKD's code);
- ``confidence`` (CA-MKD, Zhang et al., "Confidence-Aware Multi-Teacher Knowledge Distillation",
  ICASSP 2022, Eq. 3-4): teacher k's weight on sample i is w_ki = (1 - softmax_k(CE_ki)) / (K - 1),
  where CE_ki is teacher k's cross-entropy against the label, so a teacher that is more right about
  a sample counts more. As in the official code (Rorozhl/CA-MKD ``helper/loops.py``), the loss is
  sum_{k,i} w_ki * T^2 * KL_i(teacher k || student) / (B * K).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def per_sample_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """[B] T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) per sample (teacher detached)."""
    t = temperature
    log_ps = F.log_softmax(student_logits.float() / t, dim=1)
    log_pt = F.log_softmax(teacher_logits.detach().float() / t, dim=1)
    return (log_pt.exp() * (log_pt - log_ps)).sum(dim=1) * (t * t)


def confidence_weights(teacher_logits: Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """[K, B] CA-MKD weights (1 - softmax over teachers of each teacher's CE) / (K - 1)."""
    k = len(teacher_logits)
    if k < 2:
        raise ValueError("confidence weighting needs at least two teachers")
    ce = torch.stack([F.cross_entropy(z.detach().float(), target, reduction="none") for z in teacher_logits])
    return (1.0 - ce.softmax(dim=0)) / (k - 1)


def multi_teacher_kd_loss(student_logits: torch.Tensor, teacher_logits: Sequence[torch.Tensor],
                          target: torch.Tensor | None = None, temperature: float = 4.0,
                          weighting: str = "average") -> torch.Tensor:
    """KD from K teachers: ``average`` (mean of the per-teacher KD losses) or ``confidence`` (CA-MKD)."""
    kl = torch.stack([per_sample_kd(student_logits, z, temperature) for z in teacher_logits])  # [K, B]
    if weighting == "average":
        return kl.mean()
    if weighting == "confidence":
        if target is None:
            raise ValueError("confidence weighting needs the labels")
        w = confidence_weights(teacher_logits, target)
        return (w * kl).sum() / kl.numel()
    raise ValueError(f"unknown weighting {weighting!r} (average | confidence)")
