"""Vanilla knowledge distillation (Hinton, Vinyals & Dean, 2015)."""
from __future__ import annotations

from dataclasses import dataclass

from kdvision.losses import kd_loss
from kdvision.config_checks import NonNegativeFloat, PositiveFloat
from kdvision.methods.base import Method
from kdvision.registry import METHODS
from kdvision.tasks.base import main_output


@dataclass
class KDParams:
    temperature: PositiveFloat = 4.0
    ce_weight: NonNegativeFloat = 0.1  # CIFAR-100 community benchmark: 0.1 * CE + 0.9 * L_KD
    kd_weight: NonNegativeFloat = 0.9


@METHODS.register("kd")
class KD(Method):
    """total = ce_weight * CE(z_s, y) + kd_weight * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)).

    Defaults follow the community CIFAR-100 benchmark (T = 4, 0.1 / 0.9); the ImageNet recipe
    uses T = 1, 0.5 / 0.5. The teacher's logits may come from the teacher-output cache
    (``batch["teacher_logits"]``) instead of a teacher forward.
    """

    Params = KDParams
    teachers_required = "one"
    uses_teacher_logits_only = True

    def forward(self, batch):
        p = self.params
        out = self.student(batch["input"])
        teacher_logits = self.teacher_logits(batch)
        losses = {k: p.ce_weight * v for k, v in self.task.loss(out, batch).items()}
        losses["kd"] = p.kd_weight * kd_loss(main_output(out), teacher_logits, p.temperature)
        return out, losses
