"""Neuron selectivity transfer (Huang & Wang, arXiv 2017).

    L = w_ce * CE + w_nst * sum_stages MMD^2_poly(F_s, F_t)                       (Eq. 4, 8)

on every stage output (the models' ``stages``, post-ReLU: the official benchmark's feats[1:]),
with the squared MMD of ``kdvision.losses.nst`` (polynomial kernel of degree 2, c = 0). Defaults
of the official benchmark code (mdistiller ``distillers/NST.py``, ``engine/cfg.py``): weight 50, CE 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kdvision.losses.nst import nst_loss
from kdvision.methods.base import Method
from kdvision.methods.feature_pairs import resolve_layer_pairs
from kdvision.registry import METHODS
from kdvision.taps import FeatureTaps


@METHODS.register("nst")
class NST(Method):
    """CE + 50 * sum over stages of the polynomial-kernel MMD between channel maps."""

    @dataclass
    class Params:
        layers: list = field(default_factory=list)  # [[student_path, teacher_path]]; default: all stages

    teachers_required = "one"
    default_weights = {"ce": 1.0, "nst": 50.0}

    def __init__(self, student, teachers=(), task_loss=None, params=None):
        super().__init__(student, teachers, task_loss, params)
        params = self.params
        self.pairs = resolve_layer_pairs(params.layers, student, self.teacher, "stages")
        self.student_taps = FeatureTaps(student, [p[0] for p in self.pairs], owner="student")
        self.teacher_taps = FeatureTaps(self.teacher, [p[1] for p in self.pairs], owner="teacher")

    def compute(self, batch):
        if not self.active("nst"):
            out = self.student(batch["input"])
            return out, self.task_loss(out, batch)
        out, student_features = self.student_taps.run(self.student, batch["input"])
        losses = self.task_loss(out, batch)
        _, teacher_features = self.teacher_taps.run(self.run_teacher, batch["input"])
        losses["nst"] = sum(nst_loss(fs, ft) for fs, ft in zip(student_features, teacher_features))
        return out, losses
