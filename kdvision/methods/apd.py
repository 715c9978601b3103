"""Adaptive Perspective Distillation (Tian, Chen, Liu, Zhao & Jia, "Adaptive Perspective
Distillation for Semantic Segmentation", TPAMI 2023).

The classifier is one "perspective" shared by all images. APD builds an adaptive perspective
from class prototypes of the features before the classifier, for the teacher and for the
student, and distils through it:

1. s = normalise(StuProj(f_s)), t = normalise(TeaProj(f_t)) per pixel; the projectors are
   conv1x1 -> ReLU -> conv1x1 (512 -> 512 -> 512 at full width).
2. Prototypes p_k = normalise(mean of the features of the pixels labelled k) for every class k
   present (labels downsampled by nearest neighbour, 255 ignored), with the same masks for
   student and teacher (``kdvision.losses.class_prototypes``), pooled over the mini-batch (the
   official code, the default; ``pooling: batch``, where ``pool_images: 2`` pools pairs of
   images as the code's per-GPU batches of 2 did, and 0 the whole batch of this process) or per
   image (the paper's per-image perspective; ``pooling: image``).
3. Perspective logits l_k(x) = 10 cos(feature(x), p_k) (``perspective_logits``).
4. Teacher regulariser: CE of the teacher's perspective logits, scattered into the class
   channels (absent classes 0) and upsampled to the labels, ignore 255. It trains only the
   teacher projector, with its own Adam (lr 1e-5, betas 0.9/0.99; ``extra_optimizers``).
5. Student: CE + 0.4 CE_aux + 10 L_kd(T=1) + 10 KL(softmax(l^T) || softmax(l^S)) (feature
   resolution, over the present prototypes) + 10 * 0.5 mean_k (1 - cos(p_k^S, p_k^T)); every
   teacher-side quantity is detached.

KL reductions (pixel KD and perspective KL): ``kl_reduction: element`` (default) divides the
per-pixel KL by the number of channels (classes, or present prototypes), as
``nn.KLDivLoss(reduction="mean")`` in the official code does; ``pixel`` averages the per-pixel
KL over pixels (the paper's formula; with C = 19 classes the pixel KD is 19x larger).

Upsampling (``align_corners``): logits and the teacher regulariser's perspective logits are
upsampled to the labels bilinearly with the student network's convention (True for pspnet_*,
as the official code, which trains on 8k+1 crops); ``align_corners`` overrides it.

Defaults are the official code's (dvlab-research/APD tool/train.py, checked against it in
tests/test_official_apd.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from kdvision.config_checks import Betas, NonNegativeInt, PositiveFloat
from kdvision.errors import UserError
from kdvision.losses.pixel_kd import Reduction, pixel_kd_loss
from kdvision.losses.prototypes import grouped_class_prototypes, perspective_logits
from kdvision.methods.base import Method
from kdvision.methods.feature_pairs import feature_tap
from kdvision.methods.pixel_kd import student_align_corners
from kdvision.outputs import main_output, per_pixel_ce, to_label_size
from kdvision.registry import METHODS
from kdvision.taps import FeatureTaps


Pooling = Literal["image", "batch"]


@dataclass
class APDParams:
    temperature: PositiveFloat = 1.0  # pixel KD temperature
    scale: PositiveFloat = 10.0  # perspective logits: 1 / temperature 0.1
    kl_reduction: Reduction = "element"  # official KLDivLoss mean (per-pixel KL / channels); "pixel": the paper's
    pooling: Pooling = "batch"  # "batch": per mini-batch (official code); "image": per-image perspective (paper)
    #: with pooling "batch": images per pool (0 = the whole batch; 2 = the code's per-GPU batch)
    pool_images: NonNegativeInt = 0
    align_corners: bool | None = None  # None: the student network's upsampling (pspnet: True, as the code)
    proj_dim: NonNegativeInt = 0  # projector width; 0 = the teacher feature's channels (512 at full width)
    teacher_lr: PositiveFloat = 1e-5
    teacher_betas: Betas = field(default_factory=lambda: [0.9, 0.99])
    student_tap: str = ""  # default: the student's ``feature_tap`` (the feature before the classifier)
    teacher_tap: str = ""
    ignore_index: int = 255

#: logit given to absent classes in the perspective KL (cosine logits lie in [-scale, scale])
ABSENT = -1.0e4


def projector(cin: int, hidden: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, cout, 1))


@METHODS.register("apd")
class APD(Method):
    """Adaptive perspective distillation; connectors built from the first batch in ``setup``."""

    Params = APDParams
    teachers_required = "one"
    # 10 L_kd + 10 perspective KL + 10 alignment; the teacher regulariser trains only the teacher projector
    default_weights = {"kd": 10.0, "pkl": 10.0, "align": 10.0, "teacher_reg": 1.0}
    renamed_params = {"kd_weight": "kd", "pkl_weight": "pkl", "align_weight": "align"}

    def __init__(self, student, teachers=(), task_loss=None, params=None):
        super().__init__(student, teachers, task_loss, params)
        params = self.params
        self.student_taps = FeatureTaps(student, [feature_tap(student, params.student_tap, "student")], "student")
        self.teacher_taps = FeatureTaps(self.teacher, [feature_tap(self.teacher, params.teacher_tap, "teacher")],
                                        "teacher")
        self.student_proj: nn.Module | None = None
        self.teacher_proj: nn.Module | None = None
        self._teacher_optimizer: torch.optim.Optimizer | None = None

    # -- connectors --------------------------------------------------------------
    @torch.no_grad()
    def setup(self, batch, info=None):
        device = next(self.student.parameters()).device
        x = batch["input"].to(device)
        was_training = self.student.training
        self.student.eval()
        _, (fs,) = self.student_taps.run(self.student, x)
        self.student.train(was_training)
        _, (ft,) = self.teacher_taps.run(self.run_teacher, x)
        if fs.dim() != 4 or ft.dim() != 4:
            raise UserError(f"method: APD needs [B, C, h, w] features at the taps, got student {tuple(fs.shape)} "
                            f"and teacher {tuple(ft.shape)}")
        dim = self.params.proj_dim or ft.shape[1]
        self.student_proj = projector(fs.shape[1], dim, dim).to(device)
        self.teacher_proj = projector(ft.shape[1], dim, dim).to(device)
        self._teacher_optimizer = torch.optim.Adam(self.teacher_proj.parameters(), lr=self.params.teacher_lr,
                                                   betas=tuple(self.params.teacher_betas))

    @property
    def align_corners(self) -> bool:
        """How logits reach the label size: ``method.align_corners``, else the student's convention."""
        return student_align_corners(self.params.align_corners, self.student)

    def extra_optimizers(self):
        return [] if self._teacher_optimizer is None else [self._teacher_optimizer]

    # -- the step ----------------------------------------------------------------
    def compute(self, batch):
        if self.student_proj is None:
            raise RuntimeError("APD.setup(batch) must run before the first forward (it builds the projectors)")
        p = self.params
        x, y = batch["input"], batch["target"]
        out, (fs,) = self.student_taps.run(self.student, x)
        teacher_out, (ft,) = self.teacher_taps.run(self.run_teacher, x)
        teacher_logits = main_output(teacher_out)
        losses = self.task_loss(out, batch)
        size = y.shape[-2:]
        align = self.align_corners
        if self.active("kd"):
            losses["kd"] = pixel_kd_loss(to_label_size(main_output(out), size, align),
                                         to_label_size(teacher_logits, size, align), p.temperature, p.kl_reduction)
        s = self.student_proj(fs)
        t = self.teacher_proj(ft.detach())
        pkl, align, reg = self.perspective_losses(s, t, y, teacher_logits.shape[1])
        losses["pkl"] = pkl
        losses["align"] = align
        losses["teacher_reg"] = reg  # reaches only the teacher projector (its own optimiser)
        return out, losses

    def perspective_losses(self, s: torch.Tensor, t: torch.Tensor, labels: torch.Tensor, num_classes: int):
        """(perspective KL, prototype alignment, teacher regulariser) for projected features s, t.

        Vectorised over perspectives: every image reads the prototypes of its pool; classes
        absent from the pool get logit ABSENT in the KL (softmax weight 0, i.e. the KL runs over
        the present prototypes only) and logit 0 in the regulariser (as in the code).
        """
        p = self.params
        b = s.shape[0]
        size = 1 if p.pooling == "image" else (p.pool_images or b)
        ps, present = grouped_class_prototypes(s, labels, num_classes, size, p.ignore_index)  # [G, C, D], [G, C]
        pt, _ = grouped_class_prototypes(t, labels, num_classes, size, p.ignore_index)
        if not bool(present.any()):
            zero = s.sum() * 0.0
            return zero, zero, t.sum() * 0.0
        pool = torch.arange(b, device=s.device) // size
        mask = present[pool][:, :, None, None]  # [B, C, 1, 1]
        ls = perspective_logits(s, ps[pool], p.scale)  # [B, C, h, w]
        lt = perspective_logits(t, pt[pool], p.scale)
        # student: KL(softmax(l^T) || softmax(l^S)) over the present prototypes, teacher detached
        log_ps = torch.log_softmax(ls.masked_fill(~mask, ABSENT), dim=1)
        log_pt = torch.log_softmax(lt.detach().masked_fill(~mask, ABSENT), dim=1)
        kl = (log_pt.exp() * (log_pt - log_ps)).sum(1)  # [B, h, w]
        if p.kl_reduction == "element":  # KLDivLoss "mean": divide by the number of prototypes
            kl = kl / mask.sum(1).clamp(min=1)
        has_any = present[pool].any(1)
        pkl = kl[has_any].mean()
        align = (0.5 * (1 - (ps * pt.detach()).sum(-1)))[present].mean()
        # teacher regulariser: perspective logits scattered into the classes (absent ones 0), CE
        reg_logits = to_label_size(lt.masked_fill(~mask, 0.0), labels.shape[-2:], self.align_corners)
        reg = per_pixel_ce(reg_logits, labels, p.ignore_index)
        return pkl, align, reg
