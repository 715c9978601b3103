"""Relational knowledge distillation (Park et al., CVPR 2019).

    L = w_ce * CE + w_distance * L_RKD-D + w_angle * L_RKD-A                     (Eq. 4-7)

on the pooled feature the classifier reads (the input of the last linear layer), compared as
relations between the samples of a batch, so the widths may differ. Defaults of the official
benchmark code (mdistiller ``distillers/RKD.py`` and ``engine/cfg.py``): distance weight 25, angle
weight 50, CE 1, unsquared distances with eps 1e-12.
"""
from __future__ import annotations

from dataclasses import dataclass

from kdvision.losses.relational import rkd_angle_loss, rkd_distance_loss
from kdvision.methods.base import Method
from kdvision.methods.pooled_feature import pooled_feature_taps
from kdvision.registry import METHODS


@METHODS.register("rkd")
class RKD(Method):
    """CE + 25 * distance-wise + 50 * angle-wise relation loss on the pooled features."""

    @dataclass
    class Params:
        student_tap: str = ""  # default: the input of the student's last nn.Linear
        teacher_tap: str = ""
        squared: bool = False
        eps: float = 1e-12

    teachers_required = "one"
    default_weights = {"ce": 1.0, "rkd_distance": 25.0, "rkd_angle": 50.0}

    def __init__(self, student, teachers=(), task_loss=None, params=None):
        super().__init__(student, teachers, task_loss, params)
        params = self.params
        self.student_taps, self.teacher_taps = pooled_feature_taps(student, self.teacher, params)

    def compute(self, batch):
        out, (fs,) = self.student_taps.run(self.student, batch["input"])
        losses = self.task_loss(out, batch)
        if self.active("rkd_distance") or self.active("rkd_angle"):
            _, (ft,) = self.teacher_taps.run(self.run_teacher, batch["input"])
            losses["rkd_distance"] = rkd_distance_loss(fs, ft, self.params.squared, self.params.eps)
            losses["rkd_angle"] = rkd_angle_loss(fs, ft)
        return out, losses
