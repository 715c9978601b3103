"""Probabilistic knowledge transfer (Passalis & Tefas, ECCV 2018).

    L = w_ce * CE + w_pkt * KL(P_teacher || P_student)                           (Eq. 10-11)

over the cosine-similarity conditional probabilities of the pooled features the classifier reads
(the input of the last linear layer), so the widths may differ. Defaults of the official benchmark
code (mdistiller ``distillers/PKT.py``, ``engine/cfg.py``): weight 30000, CE 1, eps 1e-7.
"""
from __future__ import annotations

from dataclasses import dataclass

from kdvision.losses.relational import pkt_loss
from kdvision.methods.base import Method
from kdvision.methods.pooled_feature import pooled_feature_taps
from kdvision.registry import METHODS


@METHODS.register("pkt")
class PKT(Method):
    """CE + 30000 * PKT on the pooled features."""

    @dataclass
    class Params:
        student_tap: str = ""  # default: the input of the student's last nn.Linear
        teacher_tap: str = ""

    teachers_required = "one"
    default_weights = {"ce": 1.0, "pkt": 30000.0}

    def __init__(self, student, teachers=(), task_loss=None, params=None):
        super().__init__(student, teachers, task_loss, params)
        params = self.params
        self.student_taps, self.teacher_taps = pooled_feature_taps(student, self.teacher, params)

    def compute(self, batch):
        out, (fs,) = self.student_taps.run(self.student, batch["input"])
        losses = self.task_loss(out, batch)
        if self.active("pkt"):
            _, (ft,) = self.teacher_taps.run(self.run_teacher, batch["input"])
            losses["pkt"] = pkt_loss(fs, ft)
        return out, losses
