"""Variational information distillation (Ahn et al., CVPR 2019).

    L = w_ce * CE + w_vid * sum_stages NLL(t | N(mu(s), sigma^2))                 (Eq. 2, 6)

on every stage output (the models' ``stages``: the official benchmark's feats[1:]). Per stage, a
regressor mu (1x1 conv - ReLU - 1x1 conv - ReLU - 1x1 conv, student to teacher channels) and a
per-channel variance softplus(alpha) + 1e-5, alpha initialised for sigma^2 = 5; both train with the
student. The larger of the two maps is pooled to the smaller first. Defaults of the official
benchmark code (mdistiller ``distillers/VID.py``, ``engine/cfg.py``): weight 1, CE 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from kdvision.losses.variational import vid_log_scale_init, vid_loss
from kdvision.methods.base import Method
from kdvision.methods.feature_pairs import resolve_layer_pairs
from kdvision.registry import METHODS
from kdvision.taps import FeatureTaps


def vid_regressor(in_channels: int, out_channels: int) -> nn.Module:
    def conv(i, o):
        return nn.Conv2d(i, o, 1, bias=False)

    return nn.Sequential(conv(in_channels, out_channels), nn.ReLU(), conv(out_channels, out_channels), nn.ReLU(),
                         conv(out_channels, out_channels))


@METHODS.register("vid")
class VID(Method):
    """CE + sum over stages of the Gaussian NLL of the teacher feature given the student's."""

    @dataclass
    class Params:
        layers: list = field(default_factory=list)  # [[student_path, teacher_path]]; default: all stages
        init_variance: float = 5.0
        eps: float = 1e-5

    teachers_required = "one"
    default_weights = {"ce": 1.0, "vid": 1.0}

    def __init__(self, student, teachers=(), task_loss=None, params=None):
        super().__init__(student, teachers, task_loss, params)
        params = self.params
        self.pairs = resolve_layer_pairs(params.layers, student, self.teacher, "stages")
        self.student_taps = FeatureTaps(student, [p[0] for p in self.pairs], owner="student")
        self.teacher_taps = FeatureTaps(self.teacher, [p[1] for p in self.pairs], owner="teacher")
        self.regressors = nn.ModuleList()
        self.log_scales = nn.ParameterList()

    @torch.no_grad()
    def setup(self, batch, info=None):
        was_training = self.student.training
        self.student.eval()
        _, student_features = self.student_taps.run(self.student, batch["input"])
        self.student.train(was_training)
        _, teacher_features = self.teacher_taps.run(self.run_teacher, batch["input"])
        init = vid_log_scale_init(self.params.init_variance, self.params.eps)
        for fs, ft in zip(student_features, teacher_features):
            self.regressors.append(vid_regressor(fs.shape[1], ft.shape[1]).to(fs.device))
            self.log_scales.append(nn.Parameter(torch.full((ft.shape[1],), init, device=fs.device)))

    def compute(self, batch):
        out, student_features = self.student_taps.run(self.student, batch["input"])
        losses = self.task_loss(out, batch)
        if self.active("vid"):
            _, teacher_features = self.teacher_taps.run(self.run_teacher, batch["input"])
            total = 0.0
            for reg, alpha, fs, ft in zip(self.regressors, self.log_scales, student_features, teacher_features):
                hs, ht = fs.shape[-1], ft.shape[-1]
                if hs > ht:
                    fs = F.adaptive_avg_pool2d(fs, ft.shape[-2:])
                elif ht > hs:
                    ft = F.adaptive_avg_pool2d(ft, fs.shape[-2:])
                total = total + vid_loss(reg(fs), ft, alpha, self.params.eps)
            losses["vid"] = total
        return out, losses
