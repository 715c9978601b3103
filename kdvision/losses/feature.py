"""Feature regression (Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def fitnet_loss(regressed_student_feature: torch.Tensor, teacher_feature: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the regressed student hint and the teacher's guided layer."""
    return F.mse_loss(regressed_student_feature.float(), teacher_feature.detach().float())
