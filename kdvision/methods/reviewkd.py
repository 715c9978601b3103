"""Distilling knowledge via knowledge review (Chen et al., CVPR 2021).

Student features of every stage plus the pooled feature are fused from the deepest upwards by
attention-based fusion (ABF, Sec. 3.3: 1x1 conv + BN; a 2-channel sigmoid attention mixing it
with the upsampled residual of the deeper level; 3x3 conv + BN to the teacher's width), and each
fused map is compared with the teacher's map of the same level by the hierarchical context loss
(HCL, ``kdvision.losses.review``):

    L = w_ce * CE + w_reviewkd(epoch) * sum_levels HCL(ABF_i, T_i)

Teacher levels: the pre-ReLU stage outputs (``preact_stages``) and the pooled feature (the input of
the last linear layer, as a 1x1 map); student levels: the post-ReLU ``stages`` and its pooled
feature (``student_preact: true`` takes its pre-ReLU stages). Defaults of the official code
(dvlab-research/ReviewKD, mdistiller ``distillers/ReviewKD.py`` and ``configs/cifar100/reviewkd.yaml``):
weight 5 after a linear warm-up of 20 epochs (min(epoch / 20, 1), 1-based epochs), CE 1, mid
channels min(512, the student's pooled width), nearest-neighbour resizing.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kdvision.errors import UserError
from kdvision.losses.review import hcl_loss
from kdvision.methods.base import Method
from kdvision.methods.dkd import warmup
from kdvision.methods.pooled_feature import pooled_feature_tap
from kdvision.registry import METHODS
from kdvision.taps import FeatureTaps


class ABF(nn.Module):
    """Attention-based fusion of one level with the residual of the level below it."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, fuse: bool):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, mid_channels, 1, bias=False), nn.BatchNorm2d(mid_channels))
        self.conv2 = nn.Sequential(nn.Conv2d(mid_channels, out_channels, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(out_channels))
        self.att_conv = nn.Sequential(nn.Conv2d(mid_channels * 2, 2, 1), nn.Sigmoid()) if fuse else None
        nn.init.kaiming_uniform_(self.conv1[0].weight, a=1)
        nn.init.kaiming_uniform_(self.conv2[0].weight, a=1)

    def forward(self, x, residual=None, out_size=None):
        x = self.conv1(x)
        if self.att_conv is not None:
            residual = F.interpolate(residual, x.shape[-2:], mode="nearest")
            z = self.att_conv(torch.cat([x, residual], dim=1))
            x = x * z[:, :1] + residual * z[:, 1:2]
        if out_size is not None and tuple(x.shape[-2:]) != tuple(out_size):
            x = F.interpolate(x, out_size, mode="nearest")
        return self.conv2(x), x


def as_map(f: torch.Tensor) -> torch.Tensor:
    return f if f.dim() == 4 else f.flatten(1)[:, :, None, None]


def review_fuse(abfs, student_features: list[torch.Tensor], out_sizes: list[tuple]) -> list[torch.Tensor]:
    """The review path: ABF from the deepest level (``abfs[0]``) to the shallowest; results
    shallowest first, each at its teacher level's size (``out_sizes``, shallowest first)."""
    levels = [as_map(f) for f in student_features][::-1]
    sizes = list(out_sizes)[::-1]
    out, residual = abfs[0](levels[0], out_size=sizes[0])
    results = [out]
    for x, abf, size in zip(levels[1:], abfs[1:], sizes[1:]):
        out, residual = abf(x, residual, size)
        results.insert(0, out)
    return results


def build_abfs(in_channels: list[int], out_channels: list[int], max_mid: int = 512) -> nn.ModuleList:
    """One ABF per level, created shallowest first as the official code does (so a seed gives its
    initialisation), returned deepest first."""
    mid = min(max_mid, in_channels[-1])
    abfs = [ABF(c_in, mid, c_out, fuse=i < len(in_channels) - 1)
            for i, (c_in, c_out) in enumerate(zip(in_channels, out_channels))]
    return nn.ModuleList(abfs[::-1])


@METHODS.register("reviewkd")
class ReviewKD(Method):
    """CE + 5 * HCL between ABF-fused student levels and the teacher's, warmed up over 20 epochs."""

    @dataclass
    class Params:
        student_preact: bool = False
        max_mid_channels: int = 512

    teachers_required = "one"
    default_weights = {"ce": 1.0, "reviewkd": warmup(5.0)}

    def __init__(self, student, teachers=(), task_loss=None, params=None):
        super().__init__(student, teachers, task_loss, params)
        params = self.params
        s_attr = "preact_stages" if params.student_preact else "stages"
        s_stages, t_stages = getattr(student, s_attr, None), getattr(self.teacher, "preact_stages", None)
        if not s_stages or not t_stages:
            who, attr = ("student", s_attr) if not s_stages else ("teacher", "preact_stages")
            raise UserError(f"method reviewkd: the {who} documents no '{attr}' (its stage outputs"
                            f"{' before the ReLU' if attr == 'preact_stages' else ''})")
        if len(s_stages) != len(t_stages):
            raise UserError(f"method reviewkd: the student has {len(s_stages)} stages, the teacher {len(t_stages)}")
        self.student_taps = FeatureTaps(student, list(s_stages) + [pooled_feature_tap(student, "", "student")],
                                        owner="student")
        self.teacher_taps = FeatureTaps(self.teacher, list(t_stages) + [pooled_feature_tap(self.teacher, "", "teacher")],
                                        owner="teacher")
        self.abfs = nn.ModuleList()  # deepest level (the pooled feature) first

    @torch.no_grad()
    def setup(self, batch, info=None):
        was_training = self.student.training
        self.student.eval()
        _, fs = self.student_taps.run(self.student, batch["input"])
        self.student.train(was_training)
        _, ft = self.teacher_taps.run(self.run_teacher, batch["input"])
        fs, ft = [as_map(f) for f in fs], [as_map(f) for f in ft]
        self.abfs = build_abfs([f.shape[1] for f in fs], [f.shape[1] for f in ft],
                               self.params.max_mid_channels).to(fs[0].device)
        self.teacher_sizes = [tuple(f.shape[-2:]) for f in ft]

    def fuse(self, student_features: list[torch.Tensor]) -> list[torch.Tensor]:
        return review_fuse(self.abfs, student_features, self.teacher_sizes)

    def compute(self, batch):
        out, student_features = self.student_taps.run(self.student, batch["input"])
        losses = self.task_loss(out, batch)
        if self.active("reviewkd"):
            _, teacher_features = self.teacher_taps.run(self.run_teacher, batch["input"])
            teacher_features = [as_map(f) for f in teacher_features]
            losses["reviewkd"] = hcl_loss(self.fuse(student_features), teacher_features)
        return out, losses
