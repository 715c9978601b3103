"""Pixel-wise logit distillation for dense prediction (Hinton et al. 2015 applied per pixel;
the baseline term of structured KD, Liu et al. CVPR 2019, and of APD, Tian et al. TPAMI 2023)."""
from __future__ import annotations

from typing import Literal, get_args

import torch

from kdvision.losses.kd import kd_loss

Reduction = Literal["pixel", "element"]
REDUCTIONS = get_args(Reduction)


def pixel_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0,
                  reduction: str = "pixel") -> torch.Tensor:
    """L = T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) per pixel, over logits [B, C, H, W].

    ``reduction="pixel"`` (default): the per-pixel KL (summed over classes) averaged over the
    B*H*W pixels. ``reduction="element"``: averaged over all B*C*H*W elements, i.e. the
    per-pixel value divided by C -- what ``nn.KLDivLoss(reduction="mean")`` in the APD code
    computes. Both maps must already have the same size (the method upsamples them to the
    label size, bilinearly). The teacher side is detached.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ in shape")
    loss = kd_loss(student_logits, teacher_logits, temperature)  # the per-pixel mean
    return loss / student_logits.shape[1] if reduction == "element" else loss
