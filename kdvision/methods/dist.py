"""DIST: knowledge distillation from a stronger teacher (Huang et al., NeurIPS 2022).

    L = w_ce * CE + w_inter * tau^2 (1 - rho_inter) + w_intra * tau^2 (1 - rho_intra)   (Eq. 9)

with the Pearson relations of ``kdvision.losses.dist``. Defaults of the official CIFAR-100 recipe
(hunto/image_classification_sota ``configs/strategies/distill/dist_cifar.yaml``: ``kd: dist_t4``,
``kd_loss_weight: 2``, beta = gamma = 1): tau = 4, CE 1, both relations 2. The ImageNet recipe
uses tau = 1 and weight 1 (``method.temperature=1 method.weights.inter=1 method.weights.intra=1``).
Dense [B, C, H, W] logits work too (pixels as samples). Teacher-output cache: yes.
"""
from __future__ import annotations

from dataclasses import dataclass

from kdvision.config_checks import PositiveFloat
from kdvision.losses.dist import dist_terms
from kdvision.methods.base import Method
from kdvision.registry import METHODS
from kdvision.outputs import main_output


@METHODS.register("dist")
class DIST(Method):
    """CE + 2 * inter-class + 2 * intra-class relation loss at tau = 4 (official CIFAR recipe)."""

    @dataclass
    class Params:
        temperature: PositiveFloat = 4.0

    teachers_required = "one"
    uses_teacher_logits_only = True
    default_weights = {"ce": 1.0, "inter": 2.0, "intra": 2.0}

    def compute(self, batch):
        out = self.student(batch["input"])
        losses = self.task_loss(out, batch)
        if self.active("inter") or self.active("intra"):
            losses["inter"], losses["intra"] = dist_terms(main_output(out), self.teacher_logits(batch),
                                                          self.params.temperature)
        return out, losses
