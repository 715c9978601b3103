"""Vanilla knowledge distillation (Hinton, Vinyals & Dean, 2015)."""
from __future__ import annotations

from dataclasses import dataclass

from kdvision.config_checks import PositiveFloat
from kdvision.losses import kd_loss
from kdvision.losses.logit_standardization import standardize_logits
from kdvision.methods.base import Method
from kdvision.registry import METHODS
from kdvision.outputs import main_output


@dataclass
class KDParams:
    temperature: PositiveFloat = 4.0
    standardize: bool = False  # logit standardisation (Sun et al., CVPR 2024): z-score both logits first


@METHODS.register("kd")
class KD(Method):
    """total = weights.ce * CE(z_s, y) + weights.kd * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)).

    Defaults follow the community CIFAR-100 benchmark (T = 4, weights ce 0.1 / kd 0.9); the
    ImageNet recipe uses T = 1, 0.5 / 0.5. The teacher's logits may come from the teacher-output cache
    (``batch["teacher_logits"]``) instead of a teacher forward. ``standardize: true`` z-scores
    both logits per sample before the temperature (logit standardisation, Sun et al., CVPR 2024,
    ``kdvision.losses.logit_standardization``); that paper's CIFAR-100 recipes pair it with a
    larger KD weight (e.g. ``weights: {ce: 0.1, kd: 9.0}``, sunshangquan/logit-standardization-KD).
    """

    Params = KDParams
    teachers_required = "one"
    uses_teacher_logits_only = True
    default_weights = {"ce": 0.1, "kd": 0.9}  # CIFAR-100 community benchmark
    renamed_params = {"ce_weight": "ce", "kd_weight": "kd"}

    def compute(self, batch):
        out = self.student(batch["input"])
        losses = self.task_loss(out, batch)
        if self.active("kd"):
            zs, zt = main_output(out), self.teacher_logits(batch)
            if self.params.standardize:
                zs, zt = standardize_logits(zs), standardize_logits(zt)
            losses["kd"] = kd_loss(zs, zt, self.params.temperature)
        return out, losses
