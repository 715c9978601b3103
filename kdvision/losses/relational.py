"""Relation-based distillation of embeddings: RKD and PKT.

RKD: Park et al., "Relational Knowledge Distillation", CVPR 2019. Distance-wise loss (Eq. 4-5):
pairwise Euclidean distances, each normalised by their mean over distinct pairs, compared with
the Huber loss (smooth L1, delta 1); angle-wise loss (Eq. 6-7): cosines of the angles of every
triplet, compared with the Huber loss. Official-code details (mdistiller ``distillers/RKD.py``):
squared distances clamped at eps = 1e-12 before the square root, the diagonal set to zero, the
mean taken over the positive entries, the smooth L1 averaged over all entries.

PKT: Passalis & Tefas, "Learning Deep Representations with Probabilistic Knowledge Transfer",
ECCV 2018. Cosine-similarity kernels (Eq. 11) scaled to [0, 1], normalised row-wise into
conditional probabilities, compared by KL (Eq. 10) — the official code's form (mdistiller
``distillers/PKT.py``): eps = 1e-7 in the norms and the log, the KL averaged over all B^2 entries.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def pairwise_distances(e: torch.Tensor, squared: bool = False, eps: float = 1e-12) -> torch.Tensor:
    """[B, B] Euclidean distances of the rows of ``e`` (zero diagonal)."""
    sq = e.pow(2).sum(dim=1)
    d = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * e @ e.t()).clamp(min=eps)
    if not squared:
        d = d.sqrt()
    return d * (1 - torch.eye(len(e), device=e.device, dtype=d.dtype))


def rkd_distance_loss(student: torch.Tensor, teacher: torch.Tensor, squared: bool = False,
                      eps: float = 1e-12) -> torch.Tensor:
    """L_RKD-D: smooth L1 between mean-normalised pairwise distances (teacher detached)."""
    s, t = student.float().flatten(1), teacher.detach().float().flatten(1)
    with torch.no_grad():
        dt = pairwise_distances(t, squared, eps)
        dt = dt / dt[dt > 0].mean()
    ds = pairwise_distances(s, squared, eps)
    ds = ds / ds[ds > 0].mean()
    return F.smooth_l1_loss(ds, dt)


def _triplet_cosines(e: torch.Tensor) -> torch.Tensor:
    diff = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), p=2, dim=2)
    return torch.bmm(diff, diff.transpose(1, 2)).flatten()


def rkd_angle_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """L_RKD-A: smooth L1 between cos(angle e_i e_j e_k) of every triplet (teacher detached)."""
    s, t = student.float().flatten(1), teacher.detach().float().flatten(1)
    with torch.no_grad():
        at = _triplet_cosines(t)
    return F.smooth_l1_loss(_triplet_cosines(s), at)


def _pkt_conditional(f: torch.Tensor, eps: float) -> torch.Tensor:
    f = f / (f.norm(dim=1, keepdim=True) + eps)
    f = torch.nan_to_num(f, nan=0.0)
    k = (f @ f.t() + 1.0) / 2.0
    return k / k.sum(dim=1, keepdim=True)


def pkt_loss(student: torch.Tensor, teacher: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """L_PKT = mean_{i,j} p_ij log((p_ij + eps) / (q_ij + eps)), p of the teacher, q of the student."""
    q = _pkt_conditional(student.float().flatten(1), eps)
    p = _pkt_conditional(teacher.detach().float().flatten(1), eps)
    return (p * torch.log((p + eps) / (q + eps))).mean()
