"""A comprehensive overhaul of feature distillation (Heo et al., ICCV 2019).

    L = w_ce * CE + w_ofd * sum_i d_p(sigma_m(T_i), r_i(S_i)) / 2^(n - i - 1)       (Eq. 2-4)

on the pre-ReLU stage outputs (the models' ``preact_stages``): the teacher's through the margin
ReLU with per-channel margins from the BN before each ReLU (``bn_before_relu``), the student's
through a connector r_i (1x1 conv + BN, student to teacher channels), compared by the partial L2
of ``kdvision.losses.overhaul``; the teacher map is pooled to the student's size. Defaults of the
official code (clovaai/overhaul-distillation, mdistiller ``distillers/OFD.py``): weight 1e-3,
CE 1, and the teacher runs in training mode (its BN uses batch statistics; its weights stay
frozen) — ``teacher_mode: eval`` uses its running statistics instead.

Models without ``preact_stages`` / ``bn_before_relu`` name them: ``method.layers`` (pairs of tap
paths, ``path:input`` for a module's input) and ``method.teacher_bns`` (BN module paths).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from kdvision.errors import UserError
from kdvision.losses.overhaul import bn_margin, ofd_loss
from kdvision.methods.base import Method
from kdvision.methods.feature_pairs import resolve_layer_pairs
from kdvision.registry import METHODS
from kdvision.taps import FeatureTaps, find_module

TeacherMode = Literal["train", "eval"]
TEACHER_MODES = get_args(TeacherMode)


def connector(in_channels: int, out_channels: int) -> nn.Module:
    conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / out_channels))
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels))


@METHODS.register("ofd")
class OFD(Method):
    """CE + 1e-3 * partial L2 between connected student and margin-ReLU'd teacher pre-ReLU stages."""

    @dataclass
    class Params:
        layers: list = field(default_factory=list)  # [[student_path, teacher_path]]; default: preact_stages
        teacher_bns: list = field(default_factory=list)  # default: the teacher's bn_before_relu
        teacher_mode: TeacherMode = "train"

    teachers_required = "one"
    default_weights = {"ce": 1.0, "ofd": 1e-3}

    def __init__(self, student, teachers=(), task_loss=None, params=None):
        super().__init__(student, teachers, task_loss, params)
        params = self.params
        pairs = resolve_layer_pairs(params.layers, student, self.teacher, "preact_stages")
        bns = params.teacher_bns or getattr(self.teacher, "bn_before_relu", None)
        if not bns:
            raise UserError(f"method.teacher_bns: the teacher ({type(self.teacher).__name__}) documents no "
                            f"'bn_before_relu'; name the BN before each tapped ReLU")
        n = min(len(pairs), len(bns))  # the official code aligns both lists on their last entries
        self.pairs, bns = pairs[-n:], list(bns)[-n:]
        margins = []
        for path in bns:
            bn = find_module(self.teacher, path, "teacher")
            if not isinstance(bn, nn.modules.batchnorm._BatchNorm):
                raise UserError(f"method.teacher_bns: '{path}' is a {type(bn).__name__}, not a BatchNorm")
            margins.append(bn_margin(bn.weight, bn.bias))
        for i, m in enumerate(margins):
            self.register_buffer(f"margin{i}", m.view(1, -1, 1, 1))
        self.student_taps = FeatureTaps(student, [p[0] for p in self.pairs], owner="student")
        self.teacher_taps = FeatureTaps(self.teacher, [p[1] for p in self.pairs], owner="teacher")
        self.connectors = nn.ModuleList()

    def margins(self):
        return [getattr(self, f"margin{i}") for i in range(len(self.pairs))]

    def train(self, mode: bool = True):
        super().train(mode)
        if self.params.teacher_mode == "train":
            self.teacher.train(mode)  # official: batch statistics in the teacher's BN (weights stay frozen)
        return self

    @torch.no_grad()
    def setup(self, batch, info=None):
        was_training = self.training
        self.eval()
        _, student_features = self.student_taps.run(self.student, batch["input"])
        _, teacher_features = self.teacher_taps.run(self.run_teacher, batch["input"])
        self.train(was_training)
        for fs, ft, m in zip(student_features, teacher_features, self.margins()):
            if m.shape[1] != ft.shape[1]:
                raise UserError(f"method.teacher_bns: a BN has {m.shape[1]} channels but its teacher layer "
                                f"{ft.shape[1]}")
            self.connectors.append(connector(fs.shape[1], ft.shape[1]).to(fs.device))

    def compute(self, batch):
        out, student_features = self.student_taps.run(self.student, batch["input"])
        losses = self.task_loss(out, batch)
        if self.active("ofd"):
            _, teacher_features = self.teacher_taps.run(self.run_teacher, batch["input"])
            n = len(self.pairs)
            total = 0.0
            for i, (conn, fs, ft, m) in enumerate(zip(self.connectors, student_features, teacher_features,
                                                     self.margins())):
                s = conn(fs)
                t = F.adaptive_avg_pool2d(ft, s.shape[-2:])
                total = total + ofd_loss(s, t, m) / 2 ** (n - i - 1)
            losses["ofd"] = total
        return out, losses
