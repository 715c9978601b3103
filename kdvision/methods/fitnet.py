"""FitNets: hints for thin deep nets (Romero et al., ICLR 2015)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from kdvision.errors import UserError
from kdvision.losses import fitnet_loss
from kdvision.methods.base import Method
from kdvision.methods.feature_pairs import resolve_layer_pairs
from kdvision.registry import METHODS
from kdvision.taps import FeatureTaps


@dataclass
class FitNetParams:
    layers: list = field(default_factory=list)  # [[student_path, teacher_path]]; default: middle stage
    relu: bool = True  # official ConvReg(use_relu=True); false: conv + BN only


class ConvRegressor(nn.Module):
    """The FitNet regressor of the official code (RepDistiller models/util.py ConvReg, the same
    in mdistiller distillers/_common.py): conv (with bias) -> BN -> ReLU, the conv chosen from
    the student/teacher map heights s, t:

    * s = 2t: 3x3 conv, stride 2, padding 1;
    * 2s = t: 4x4 transposed conv, stride 2, padding 1;
    * s >= t otherwise (1x1 when equal): a "valid" conv of kernel (1 + s_h - t_h, 1 + s_w - t_w),
      the paper's convolutional regressor (Romero et al. 2015, Sec. 2.2);
    * smaller in any other ratio: an error.

    Sub-module names (conv, bn) are the official ones, so its state dicts load.
    """

    def __init__(self, student_shape, teacher_shape, relu: bool = True):
        super().__init__()
        (cs, hs, ws), (ct, ht, wt) = tuple(student_shape)[-3:], tuple(teacher_shape)[-3:]
        if hs == 2 * ht:
            self.conv = nn.Conv2d(cs, ct, 3, stride=2, padding=1)
        elif 2 * hs == ht:
            self.conv = nn.ConvTranspose2d(cs, ct, 4, stride=2, padding=1)
        elif hs >= ht and ws >= wt:
            self.conv = nn.Conv2d(cs, ct, (1 + hs - ht, 1 + ws - wt))
        else:
            raise ValueError(f"the student map ({hs}x{ws}) is smaller than the teacher's ({ht}x{wt}) "
                             f"and not half its size")
        self.bn = nn.BatchNorm2d(ct)
        self.relu = nn.ReLU() if relu else nn.Identity()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


@METHODS.register("fitnet")
class FitNet(Method):
    """total = weights.ce * CE + weights.hint * MSE(regressor(F_s^hint), F_t^guided).

    The hint/guided layers default to the middle stage of both networks (RepDistiller's
    hint_layer 2). The regressor (``ConvRegressor``, the official ConvReg) is built from the
    shapes seen on the first batch.
    """

    Params = FitNetParams
    teachers_required = "one"
    default_weights = {"hint": 100.0}  # community default (RepDistiller: beta = 100)
    renamed_params = {"weight": "hint", "ce_weight": "ce"}

    def __init__(self, student, teachers=(), task_loss=None, params=None):
        super().__init__(student, teachers, task_loss, params)
        params = self.params
        if params.layers:
            self.pairs = resolve_layer_pairs(params.layers, student, self.teacher, "stages")
        else:
            s, t = getattr(student, "stages", None), getattr(self.teacher, "stages", None)
            if not s or not t:
                raise UserError("method.layers: the student or teacher documents no 'stages'; "
                                "name the hint pair, e.g. method.layers=[[layer2, layer2]]")
            self.pairs = [(s[min(1, len(s) - 1)], t[min(1, len(t) - 1)])]
        self.student_taps = FeatureTaps(student, [p[0] for p in self.pairs], owner="student")
        self.teacher_taps = FeatureTaps(self.teacher, [p[1] for p in self.pairs], owner="teacher")
        self.regressors = nn.ModuleList()

    @torch.no_grad()
    def setup(self, batch, info=None):
        was_training = self.student.training
        self.student.eval()
        _, student_features = self.student_taps.run(self.student, batch["input"])
        _, teacher_features = self.teacher_taps.run(self.run_teacher, batch["input"])
        self.student.train(was_training)
        for (s_path, t_path), fs, ft in zip(self.pairs, student_features, teacher_features):
            try:
                reg = ConvRegressor(fs.shape[1:], ft.shape[1:], self.params.relu)
            except ValueError as e:
                raise UserError(f"fitnet: cannot bridge student layer '{s_path}' {tuple(fs.shape[1:])} to teacher "
                                f"layer '{t_path}' {tuple(ft.shape[1:])}: {e}") from None
            self.regressors.append(reg.to(fs.device))

    def compute(self, batch):
        if not self.active("hint"):
            out = self.student(batch["input"])
            return out, self.task_loss(out, batch)
        out, student_features = self.student_taps.run(self.student, batch["input"])
        losses = self.task_loss(out, batch)
        _, teacher_features = self.teacher_taps.run(self.run_teacher, batch["input"])
        pairs = zip(self.regressors, student_features, teacher_features)
        losses["hint"] = sum(fitnet_loss(reg(fs), ft) for reg, fs, ft in pairs)
        return out, losses
