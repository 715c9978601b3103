"""Variational information distillation (Ahn et al., "Variational Information Distillation for
Knowledge Transfer", CVPR 2019).

Maximising a variational lower bound of the mutual information between teacher and student
features amounts to minimising the negative log-likelihood of the teacher feature t under a
Gaussian whose mean mu(s) is regressed from the student feature and whose per-channel variance
sigma_c^2 = softplus(alpha_c) + eps is learned (Eq. 2 and 6):
    L_VID = mean over b, c, h, w of 0.5 * ((t - mu(s))^2 / sigma_c^2 + log sigma_c^2)
(the constant log 2*pi dropped). Official form (mdistiller ``distillers/VID.py``): the larger map is
adaptive-average-pooled to the smaller one's size before the regressor, eps = 1e-5, alpha
initialised so that sigma^2 starts at 5.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def vid_log_scale_init(init_variance: float = 5.0, eps: float = 1e-5) -> float:
    """alpha with softplus(alpha) + eps = init_variance."""
    return math.log(math.exp(init_variance - eps) - 1.0)


def vid_loss(predicted_mean: torch.Tensor, teacher_feature: torch.Tensor, log_scale: torch.Tensor,
             eps: float = 1e-5) -> torch.Tensor:
    """Gaussian NLL of the teacher feature [B, C, H, W] given mu(s) (same shape) and alpha [C]."""
    var = (F.softplus(log_scale.float()) + eps).view(1, -1, 1, 1)
    t = teacher_feature.detach().float()
    return (0.5 * ((predicted_mean.float() - t) ** 2 / var + var.log())).mean()
