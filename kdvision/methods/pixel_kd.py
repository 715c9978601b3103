"""Pixel-wise logit distillation for semantic segmentation (the baseline of structured KD,
Liu et al. CVPR 2019, and of APD, Tian et al. TPAMI 2023)."""
from __future__ import annotations

from dataclasses import dataclass

from kdvision.config_checks import PositiveFloat
from kdvision.losses.pixel_kd import Reduction, pixel_kd_loss
from kdvision.methods.base import Method
from kdvision.registry import METHODS
from kdvision.outputs import main_output, to_label_size  # noqa: F401  (to_label_size: re-exported)


def student_align_corners(given: bool | None, student) -> bool:
    """``method.align_corners`` when set, else the student network's own upsampling convention
    (``model.align_corners``: True for the pspnet_* models, False for deeplabv3_*; False if absent)."""
    return bool(getattr(student, "align_corners", False)) if given is None else bool(given)


@dataclass
class PixelKDParams:
    temperature: PositiveFloat = 1.0
    reduction: Reduction = "pixel"  # "pixel": KL per pixel averaged over pixels; "element": / C (APD code)
    align_corners: bool | None = None  # upsampling of logits to the labels; None: the student's (pspnet: True)


@METHODS.register("pixel_kd")
class PixelKD(Method):
    """total = CE + 0.4 CE_aux (the task's terms) + weights.pixel_kd * T^2 * mean_pixels KL(p_t || p_s).

    Both logit maps are upsampled bilinearly to the label size before the KL (``align_corners``
    as the student network upsamples: True for pspnet_*, as the official PSPNet/APD code); the
    teacher is frozen. The teacher's logits may come from the teacher-output cache
    (``batch["teacher_logits"]``).
    """

    Params = PixelKDParams
    teachers_required = "one"
    uses_teacher_logits_only = True
    default_weights = {"pixel_kd": 1.0}
    renamed_params = {"weight": "pixel_kd"}

    def compute(self, batch):
        p = self.params
        out = self.student(batch["input"])
        losses = self.task_loss(out, batch)
        if not self.active("pixel_kd"):
            return out, losses
        teacher_logits = self.teacher_logits(batch)
        size = batch["target"].shape[-2:]
        align = student_align_corners(p.align_corners, self.student)
        losses["pixel_kd"] = pixel_kd_loss(to_label_size(main_output(out), size, align),
                                           to_label_size(teacher_logits, size, align), p.temperature, p.reduction)
        return out, losses

