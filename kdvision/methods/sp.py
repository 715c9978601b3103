"""Similarity-preserving knowledge distillation (Tung & Mori, ICCV 2019).

For each tapped layer pair (l, l'), the b x b similarity matrices of the student's and the
teacher's activations on the same batch should agree (paper Sec. 3):
    L = weights.ce * CE(z_s, y) + weights.sp * sum_{(l, l')} L_SP(G_S^(l'), G_T^(l))
with L_SP = ||G_T - G_S||_F^2 / b^2 (``kdvision.losses.sp_loss``). The community default
(RepDistiller / CRD benchmark) is one pair, the output of the last conv stage (post-ReLU,
before pooling), weight 3000 and no KL term; teacher features are computed without grad.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kdvision.errors import UserError
from kdvision.losses.similarity import sp_loss
from kdvision.methods.base import Method
from kdvision.methods.feature_pairs import resolve_layer_pairs
from kdvision.registry import METHODS
from kdvision.taps import FeatureTaps


@METHODS.register("sp")
class SimilarityPreserving(Method):
    """Similarity-preserving KD (Tung & Mori 2019): CE + 3000 * L_SP on the last conv stage."""

    @dataclass
    class Params:
        layers: list[list[str]] = field(default_factory=list)  # [[student_path, teacher_path], ...]

    teachers_required = "one"
    default_weights = {"sp": 3000.0}
    renamed_params = {"weight": "sp", "ce_weight": "ce"}

    def __init__(self, student, teachers=(), task_loss=None, params=None):
        super().__init__(student, teachers, task_loss, params)
        params = self.params
        self.pairs = resolve_layer_pairs(params.layers, student, self.teacher, "feature_tap")
        self.student_taps = FeatureTaps(student, [s for s, _ in self.pairs], owner="student")
        self.teacher_taps = FeatureTaps(self.teacher, [t for _, t in self.pairs], owner="teacher")

    def compute(self, batch):
        x = batch["input"]
        if not self.active("sp"):
            out = self.student(x)
            return out, self.task_loss(out, batch)
        out, fs = self.student_taps.run(self.student, x)
        losses = self.task_loss(out, batch)
        _, ft = self.teacher_taps.run(self.run_teacher, x)
        student_features = dict(zip(self.student_taps.paths, fs))
        teacher_features = dict(zip(self.teacher_taps.paths, ft))
        total = 0.0
        for s_path, t_path in self.pairs:
            try:
                total = total + sp_loss(student_features[s_path], teacher_features[t_path])
            except ValueError as e:
                raise UserError(f"sp: layer pair student '{s_path}' / teacher '{t_path}': {e}") from None
        losses["sp"] = total
        return out, losses
