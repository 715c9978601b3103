"""Channel-wise distillation for dense prediction (Shu et al., "Channel-wise Knowledge
Distillation for Dense Prediction", ICCV 2021).

Each channel's map is turned into a distribution over positions by a spatial softmax at
temperature tau, and the student's matches the teacher's by KL (Eq. 2-3):
L = tau^2 / C * sum_c KL(phi(y_t,c) || phi(y_s,c)). As in open-mmlab/mmrazor
``models/losses/cwd.py`` (ChannelWiseDivergence), the sum also runs over the batch and is
divided by C * N.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def cwd_loss(student_map: torch.Tensor, teacher_map: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """tau^2 / (N C) * sum_{n,c} KL(softmax_hw(t/tau) || softmax_hw(s/tau)); teacher detached."""
    if student_map.shape != teacher_map.shape:
        raise ValueError(f"cwd_loss needs maps of one shape (student {tuple(student_map.shape)}, "
                         f"teacher {tuple(teacher_map.shape)}); add a connector or resize first")
    n, c = student_map.shape[:2]
    s = student_map.float().flatten(2) / tau
    t = teacher_map.detach().float().flatten(2) / tau
    log_pt = F.log_softmax(t, dim=2)
    kl = (log_pt.exp() * (log_pt - F.log_softmax(s, dim=2))).sum()
    return kl * tau ** 2 / (n * c)
