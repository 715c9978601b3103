"""Contrastive representation distillation (Tian, Krishnan & Isola, ICLR 2020).

Student and teacher embeddings (linear + L2 norm, dimension 128) are contrasted against N
negatives drawn from a memory bank of every training sample's embedding (Sec. 3.4). Each anchor's
positive and negatives get the non-parametric score exp(v . u / tau) / Z (Eq. 19; Z estimated once
from the first batch as the mean score times the data-set size), and the NCE loss (Eq. 18) with
the uniform noise distribution P_n = 1 / n_data is applied symmetrically (teacher as anchor with
student-bank entries, and the reverse). After the step the bank rows of the batch's samples move
to momentum * old + (1 - momentum) * new, renormalised. Official code: HobbitLong/RepDistiller
``crd/criterion.py`` and ``crd/memory.py``; defaults tau = 0.07, momentum 0.5, N = 16384.
"""
from __future__ import annotations

import math

import torch
from torch import nn

EPS = 1e-7


def nce_loss(scores: torch.Tensor, n_data: int) -> torch.Tensor:
    """Eq. 18: scores [B, 1 + N] (column 0 the positive) -> -(1/B) sum [log D(pos) + sum log(1 - D(neg))]."""
    b, m = scores.shape[0], scores.shape[1] - 1
    pn = m / float(n_data)
    pos = scores[:, 0]
    neg = scores[:, 1:]
    log_d1 = torch.log(pos / (pos + pn + EPS))
    log_d0 = torch.log(pn / (neg + pn + EPS))
    return -(log_d1.sum() + log_d0.sum()) / b


class ContrastMemory(nn.Module):
    """The two memory banks (student and teacher embeddings of every training sample) and Z."""

    def __init__(self, dim: int, n_data: int, temperature: float = 0.07, momentum: float = 0.5,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.n_data, self.temperature, self.momentum = n_data, temperature, momentum
        stdv = 1.0 / math.sqrt(dim / 3)
        self.register_buffer("student_bank", torch.rand(n_data, dim, generator=generator) * 2 * stdv - stdv)
        self.register_buffer("teacher_bank", torch.rand(n_data, dim, generator=generator) * 2 * stdv - stdv)
        self.register_buffer("z", torch.tensor([-1.0, -1.0]))  # Z_student, Z_teacher (set on first use)

    def scores(self, student_emb: torch.Tensor, teacher_emb: torch.Tensor,
               sample_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(student-anchor scores against teacher-bank rows, teacher-anchor against student-bank rows).

        ``sample_idx``: [B, 1 + N] dataset indices, column 0 the sample itself.
        """
        b, k1 = sample_idx.shape
        w_s = self.student_bank.index_select(0, sample_idx.flatten()).view(b, k1, -1)
        w_t = self.teacher_bank.index_select(0, sample_idx.flatten()).view(b, k1, -1)
        out_t = torch.exp(torch.bmm(w_s, teacher_emb.unsqueeze(2)).squeeze(2) / self.temperature)
        out_s = torch.exp(torch.bmm(w_t, student_emb.unsqueeze(2)).squeeze(2) / self.temperature)
        with torch.no_grad():
            if self.z[0] < 0:
                self.z[0] = out_s.mean() * self.n_data
            if self.z[1] < 0:
                self.z[1] = out_t.mean() * self.n_data
        return out_s / self.z[0], out_t / self.z[1]

    @torch.no_grad()
    def update(self, student_emb: torch.Tensor, teacher_emb: torch.Tensor, idx: torch.Tensor) -> None:
        """Momentum update of the batch's rows in both banks, renormalised to unit length."""
        for bank, emb in ((self.student_bank, student_emb), (self.teacher_bank, teacher_emb)):
            rows = bank.index_select(0, idx) * self.momentum + emb.detach().float() * (1 - self.momentum)
            bank.index_copy_(0, idx, rows / rows.norm(dim=1, keepdim=True))
