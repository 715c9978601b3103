"""Knowledge distillation from several teachers, for classification.

    L = w_ce * CE(z_s, y) + w_kd * L_MT

``weighting: average``: L_MT = (1/K) sum_k KD(z_s, z_tk), each teacher counted equally (the
AVERAGE_LOSS baseline); ``weighting: confidence`` (CA-MKD, Zhang et al., ICASSP 2022, Eq. 3-4, the
official Rorozhl/CA-MKD ``helper/loops.py``): each teacher's KL on a sample is weighted by
(1 - softmax over teachers of the teacher's cross-entropy on it) / (K - 1), so teachers that are
right about a sample count more. T = 4 and weights CE 1, KD 1 as in CA-MKD's code (gamma = alpha = 1;
its feature term, beta, is not part of this method). The teachers' logits may come from the
teacher-output cache, one cached set per teacher (``batch["teacher_logits"]`` [B, K, C]).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from kdvision.config_checks import PositiveFloat
from kdvision.losses.multi_teacher import multi_teacher_kd_loss
from kdvision.methods.base import Method
from kdvision.registry import METHODS
from kdvision.outputs import main_output

Weighting = Literal["average", "confidence"]
WEIGHTINGS = get_args(Weighting)


@METHODS.register("multi_teacher_kd")
class MultiTeacherKD(Method):
    """CE + KD from K teachers, averaged or weighted by each teacher's confidence on the sample."""

    @dataclass
    class Params:
        temperature: PositiveFloat = 4.0
        weighting: Weighting = "average"

    teachers_required = "many"
    uses_teacher_logits_only = True
    default_weights = {"ce": 1.0, "kd": 1.0}

    def all_teacher_logits(self, batch) -> list:
        cached = batch.get("teacher_logits")
        if cached is not None:
            return list(cached.unbind(1)) if cached.dim() == 3 else [cached]  # [B, K, C] from the cache
        return [main_output(self.run_teacher(batch["input"], k)) for k in range(len(self.teachers))]

    def compute(self, batch):
        out = self.student(batch["input"])
        losses = self.task_loss(out, batch)
        if self.active("kd"):
            p = self.params
            losses["kd"] = multi_teacher_kd_loss(main_output(out), self.all_teacher_logits(batch), batch["target"],
                                                 p.temperature, p.weighting)
        return out, losses
