"""Collaborative knowledge transfer losses (Chen et al., CVPR 2022, two-stage knowledge learning).

Per tap q, with progressive feature projectors PFP (one per teacher k, one shared by the
student) and inverse projectors IPFP_k:

    L_PFE = sum_q L1( PFP_S(F_S^q), PFP_k(F_Tk^q) )           (feature embedding)
    L_PFV = sum_q L1( IPFP_k(PFP_k(F_Tk^q)), F_Tk^q )           (bidirectional matching)

each sample compared with its own teacher k. The L1 is the mean over the whole batch, as in
the official code (the per-teacher pieces concatenated). Nothing is detached except the frozen
teachers' features themselves: L_PFE trains the student, its projector and the teacher
projectors (official code).
"""
from __future__ import annotations

from typing import Sequence

import torch


def pfe_loss(student_projected: Sequence[torch.Tensor], teacher_projected: Sequence[torch.Tensor]) -> torch.Tensor:
    """sum over taps of mean |PFP_S(F_S) - PFP_k(F_Tk)|; tensors paired tap by tap, same shapes."""
    return sum((s.float() - t.float()).abs().mean() for s, t in zip(student_projected, teacher_projected, strict=True))


def pfv_loss(reconstructed: Sequence[Sequence[torch.Tensor]], features: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
    """sum over taps q of the L1 between IPFP_k(PFP_k(F_Tk^q)) and F_Tk^q over all teachers' samples.

    ``reconstructed[q][k]`` and ``features[q][k]``: teacher k's part of the batch at tap q
    (teachers may differ in width); the mean runs over all their elements together, which is
    the official code's L1 of the concatenation.
    """
    total = 0.0
    for rec_q, feat_q in zip(reconstructed, features, strict=True):
        abs_sum = sum((r.float() - f.float()).abs().sum() for r, f in zip(rec_q, feat_q, strict=True))
        count = sum(f.numel() for f in feat_q)
        total = total + abs_sum / count
    return total
