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
    kernel_size: int = 1  # 1x1 or 3x3 regressor


def regressor(in_channels: int, out_channels: int, stride: int, kernel_size: int) -> nn.Module:
    """The FitNet regressor: conv (1x1 or 3x3) + BN mapping student channels to the teacher's."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    )


@METHODS.register("fitnet")
class FitNet(Method):
    """total = weights.ce * CE + weights.hint * MSE(regressor(F_s^hint), F_t^guided).

    The hint/guided layers default to the middle stage of both networks (RepDistiller's
    hint_layer 2). The regressor is built from the shapes seen on the first batch; a student
    map larger than the teacher's by an integer factor is bridged with a strided conv.
    """

    Params = FitNetParams
    teachers_required = "one"
    default_weights = {"hint": 100.0}  # community default (RepDistiller: beta = 100)
    renamed_params = {"weight": "hint", "ce_weight": "ce"}

    def __init__(self, student, teachers, task, params, teacher_domains=None):
        super().__init__(student, teachers, task, params, teacher_domains)
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
    def setup(self, batch):
        was_training = self.student.training
        self.student.eval()
        self.student(batch["input"])
        self.run_teacher(batch["input"])
        self.student.train(was_training)
        for (s_path, t_path), fs, ft in zip(self.pairs, self.student_taps.take(), self.teacher_taps.take()):
            (hs, ws), (ht, wt) = fs.shape[-2:], ft.shape[-2:]
            if hs % ht or ws % wt or hs // ht != ws // wt:
                raise UserError(f"fitnet: cannot bridge student layer '{s_path}' ({hs}x{ws}) to teacher layer "
                                f"'{t_path}' ({ht}x{wt}): the student map must be the same size or an integer "
                                f"multiple")
            self.regressors.append(regressor(fs.shape[1], ft.shape[1], hs // ht, self.params.kernel_size)
                                   .to(fs.device))

    def compute(self, batch):
        out = self.student(batch["input"])
        losses = dict(self.task.loss(out, batch))
        if not self.active("hint"):
            self.student_taps.take()
            return out, losses
        self.run_teacher(batch["input"])
        pairs = zip(self.regressors, self.student_taps.take(), self.teacher_taps.take())
        losses["hint"] = sum(fitnet_loss(reg(fs), ft) for reg, fs, ft in pairs)
        return out, losses
