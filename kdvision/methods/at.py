"""Attention transfer (Zagoruyko & Komodakis, "Paying More Attention to Attention", ICLR 2017)."""
from __future__ import annotations

from dataclasses import dataclass, field

from kdvision.losses import at_loss
from kdvision.methods.base import Method
from kdvision.methods.feature_pairs import resolve_layer_pairs
from kdvision.registry import METHODS
from kdvision.taps import FeatureTaps


@dataclass
class ATParams:
    layers: list = field(default_factory=list)  # [[student_path, teacher_path]]; default: all stages
    p: int = 2
    absolute: bool = False  # false: F^p (official code); true: |F|^p (the paper's eq. 2); same for even p


@METHODS.register("at")
class AttentionTransfer(Method):
    """total = weights.ce * CE + weights.at * sum_stages mean_{b,hw} (phi(F_s) - phi(F_t))^2.

    phi is the L2-normalised spatial attention map mean_c(F^p) (eq. 2 of the paper, p = 2),
    taken on the post-ReLU outputs of every stage (the models' ``stages``) by default. For odd
    p on signed (pre-activation) maps the official code's F^p is the default; the paper's
    |F|^p is ``absolute: true``.
    """

    Params = ATParams
    teachers_required = "one"
    default_weights = {"at": 1000.0}  # CIFAR default: CE + 1000 * sum L_AT (beta = 1e3 in the paper's code)
    renamed_params = {"weight": "at", "ce_weight": "ce"}

    def __init__(self, student, teachers=(), task_loss=None, params=None):
        super().__init__(student, teachers, task_loss, params)
        params = self.params
        self.pairs = resolve_layer_pairs(params.layers, student, self.teacher, "stages")
        self.student_taps = FeatureTaps(student, [p[0] for p in self.pairs], owner="student")
        self.teacher_taps = FeatureTaps(self.teacher, [p[1] for p in self.pairs], owner="teacher")

    def compute(self, batch):
        p = self.params
        if not self.active("at"):
            out = self.student(batch["input"])
            return out, self.task_loss(out, batch)
        out, student_features = self.student_taps.run(self.student, batch["input"])
        losses = self.task_loss(out, batch)
        _, teacher_features = self.teacher_taps.run(self.run_teacher, batch["input"])
        losses["at"] = sum(at_loss(fs, ft, p.p, p.absolute) for fs, ft in zip(student_features, teacher_features))
        return out, losses
