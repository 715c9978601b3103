"""Decoupled knowledge distillation (Zhao et al., CVPR 2022).

    L = w_ce * CE(z_s, y) + w_tckd(epoch) * TCKD + w_nckd(epoch) * NCKD          (Eq. 7)

with TCKD / NCKD of ``kdvision.losses.dkd`` (Eq. 6, both x T^2). Defaults of the official code
(megvii-research/mdistiller ``configs/cifar100/dkd/``, ``distillers/DKD.py``): T = 4, alpha = 1,
beta = 8, CE weight 1, and the KD terms warmed up linearly over the first 20 epochs as
min(epoch / 20, 1) with 1-based epochs (here: ``linear`` weight schedules from start_epoch -1);
the paper's tables vary beta per pair (e.g. 6 for wrn_40_2 -> wrn_16_2), which the recipes set.
``standardize: true`` z-scores both logits first (logit standardisation, Sun et al., CVPR 2024).
Only the teacher's logits are needed, so the teacher-output cache applies.
"""
from __future__ import annotations

from dataclasses import dataclass

from kdvision.config_checks import PositiveFloat
from kdvision.losses.dkd import dkd_terms
from kdvision.losses.logit_standardization import standardize_logits
from kdvision.methods.base import Method
from kdvision.registry import METHODS
from kdvision.outputs import main_output


def warmup(to: float, epochs: int = 20) -> dict:
    """mdistiller's min(epoch / epochs, 1) * to, with its 1-based epochs."""
    return {"schedule": "linear", "start_epoch": -1, "epochs": epochs, "to": to}


@METHODS.register("dkd")
class DKD(Method):
    """CE + TCKD + 8 * NCKD (T = 4), the KD terms warmed up over 20 epochs (official defaults)."""

    @dataclass
    class Params:
        temperature: PositiveFloat = 4.0
        standardize: bool = False

    teachers_required = "one"
    uses_teacher_logits_only = True
    default_weights = {"ce": 1.0, "tckd": warmup(1.0), "nckd": warmup(8.0)}

    def compute(self, batch):
        out = self.student(batch["input"])
        losses = self.task_loss(out, batch)
        if self.active("tckd") or self.active("nckd"):
            zs, zt = main_output(out), self.teacher_logits(batch)
            if self.params.standardize:
                zs, zt = standardize_logits(zs), standardize_logits(zt)
            losses["tckd"], losses["nckd"] = dkd_terms(zs, zt, batch["target"], self.params.temperature)
        return out, losses
