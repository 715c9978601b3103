"""Channel-wise knowledge distillation for dense prediction (Shu et al., ICCV 2021).

    L = task terms + w_cwd * tau^2 / C * sum_c KL(softmax_hw(y_t,c / tau) || softmax_hw(y_s,c / tau))   (Eq. 2-3)

on the logit maps the classifiers produce before upsampling (``classifier`` of kdvision's
segmentation networks, as open-mmlab/mmrazor taps ``decode_head.conv_seg``). Defaults of mmrazor's
``configs/distill/mmseg/cwd/cwd_logits_pspnet_r101-d8_pspnet_r18-d8_...`` (ChannelWiseDivergence):
tau = 1, weight 5; the paper's Cityscapes setting is tau = 4, weight 3
(``method.temperature=4 method.weights.cwd=3``). A teacher map of another size is resized
bilinearly to the student's.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from kdvision.config_checks import PositiveFloat
from kdvision.errors import UserError
from kdvision.losses.channel_wise import cwd_loss
from kdvision.methods.base import Method
from kdvision.registry import METHODS
from kdvision.taps import FeatureTaps


@METHODS.register("cwd")
class CWD(Method):
    """Task loss + 5 * channel-wise KL of the pre-upsampling logit maps (tau = 1, mmrazor's defaults)."""

    @dataclass
    class Params:
        temperature: PositiveFloat = 1.0
        student_tap: str = "classifier"
        teacher_tap: str = "classifier"

    teachers_required = "one"
    default_weights = {"cwd": 5.0}

    def __init__(self, student, teachers=(), task_loss=None, params=None):
        super().__init__(student, teachers, task_loss, params)
        params = self.params
        self.student_taps = FeatureTaps(student, [params.student_tap], owner="student")
        self.teacher_taps = FeatureTaps(self.teacher, [params.teacher_tap], owner="teacher")

    def compute(self, batch):
        out, (s,) = self.student_taps.run(self.student, batch["input"])
        losses = self.task_loss(out, batch)
        if self.active("cwd"):
            _, (t,) = self.teacher_taps.run(self.run_teacher, batch["input"])
            if s.shape[1] != t.shape[1]:
                raise UserError(f"method cwd: the student tap '{self.params.student_tap}' has {s.shape[1]} channels, "
                                f"the teacher tap '{self.params.teacher_tap}' {t.shape[1]}; tap the logit maps")
            if s.shape[-2:] != t.shape[-2:]:
                t = F.interpolate(t, s.shape[-2:], mode="bilinear", align_corners=False)
            losses["cwd"] = cwd_loss(s, t, self.params.temperature)
        return out, losses
