"""Knowledge review (Chen et al., "Distilling Knowledge via Knowledge Review", CVPR 2021).

The hierarchical context loss (HCL, Sec. 3.4): the fused student feature and the teacher feature
are compared by MSE at the full resolution and after adaptive average pooling to 4x4, 2x2 and
1x1 (levels below the map's size only), with weights 1, 1/2, 1/4, 1/8 normalised to sum to 1
(official code: dvlab-research/ReviewKD, mdistiller ``distillers/ReviewKD.py`` hcl_loss).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def hcl_loss(student_features: Sequence[torch.Tensor], teacher_features: Sequence[torch.Tensor]) -> torch.Tensor:
    """sum over layers of the pyramid-weighted MSE between student and teacher maps (teacher detached)."""
    total = 0.0
    for fs, ft in zip(student_features, teacher_features, strict=True):
        fs, ft = fs.float(), ft.detach().float()
        h = fs.shape[2]
        loss = F.mse_loss(fs, ft)
        weight, weight_sum = 1.0, 1.0
        for level in (4, 2, 1):
            if level >= h:
                continue
            weight /= 2.0
            loss = loss + weight * F.mse_loss(F.adaptive_avg_pool2d(fs, level), F.adaptive_avg_pool2d(ft, level))
            weight_sum += weight
        total = total + loss / weight_sum
    return total
