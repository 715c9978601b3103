"""Decoupled knowledge distillation (Zhao et al., "Decoupled Knowledge Distillation", CVPR 2022).

KD splits into target-class KD (TCKD, Eq. 6: a binary KL between the target / non-target
probabilities) and non-target-class KD (NCKD, Eq. 6: a KL between the distributions over the
non-target classes); DKD weights them independently: alpha * TCKD + beta * NCKD (Eq. 7).
As in the official code (megvii-research/mdistiller ``distillers/DKD.py``), both terms are
multiplied by T^2 and averaged over the batch, and NCKD's non-target softmax is taken by
shifting the target logit down by 1000 before the softmax.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_TARGET_SHIFT = 1000.0


def dkd_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, target: torch.Tensor,
              temperature: float = 4.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(TCKD, NCKD), unweighted, each T^2 * (1/B) * sum_b KL(teacher || student); teacher detached.

    ``student_logits`` / ``teacher_logits``: [B, C]; ``target``: [B] class indices.
    """
    t = temperature
    zs, zt = student_logits.float() / t, teacher_logits.detach().float() / t
    gt = F.one_hot(target.reshape(-1), zs.shape[1]).bool()
    b = zs.shape[0]
    p_s, p_t = zs.softmax(dim=1), zt.softmax(dim=1)
    # binary distributions [p_target, 1 - p_target]
    bs = torch.stack([(p_s * gt).sum(1), (p_s * ~gt).sum(1)], dim=1)
    bt = torch.stack([(p_t * gt).sum(1), (p_t * ~gt).sum(1)], dim=1)
    tckd = F.kl_div(bs.log(), bt, reduction="sum") * (t * t) / b
    shift = _TARGET_SHIFT * gt
    nckd = F.kl_div(F.log_softmax(zs - shift, dim=1), F.softmax(zt - shift, dim=1), reduction="sum") * (t * t) / b
    return tckd, nckd
