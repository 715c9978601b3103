"""FRSKD: feature refinement via self-knowledge distillation (Ji et al., CVPR 2021).

No external teacher. A self-teacher (``kdvision.models.frskd_self_teacher``) reads the
classifier's stage features F_1..F_n (not detached), refines them into T_1..T_n and predicts
its own logits z_t. The loss (paper Sec. 3.2, as the official code MingiJi/FRSKD,
classification/utils.py and distill_loss/AT.py, computes it):
    L = CE(z_c, y) + CE(z_t, y) + alpha * L_KD(z_c, z_t.detach(); T)
          + beta * sum_i mean_{b,hw} (phi(F_i) - phi(T_i.detach()))^2
with phi the attention map of attention transfer (p = 2) and L_KD the temperature-scaled
batch-mean KL (``kd_loss``). The KD and feature terms reach only the classifier (backbone and
head); the self-teacher learns from its own CE, which also flows into the shared backbone.
Everything trains with one optimiser. Defaults: CIFAR-100 alpha = 2, beta = 100, T = 4, width 2.

Segmentation networks (dense prediction: the student's main output is a logit map
[B, C, H, W]; detected from the first batch in ``setup``): the self-teacher reads the backbone
stages (``student.stages``; strides 4/8/8/8 for the dilated backbones, equal sizes are fine)
and has a per-pixel head (a 1x1 conv on R(T_n), stride 8). Its CE is the task's per-pixel CE
(logits upsampled to the labels, ignore 255), and the soft-label term is pixel KD: both logit
maps upsampled bilinearly to the label size, then
    alpha * T^2 * mean over pixels of KL(softmax(z_t/T) || softmax(z_c/T))   (z_t detached)
(``kdvision.losses.pixel_kd_loss``, reduction "pixel"). The feature term is unchanged.
Segmentation defaults: alpha = 1, beta = 50 (the reference sheet) and T = 1 (the official
segmentation script's ``--temp`` default). Unset alpha/beta/temperature take the defaults of
the kind of output found in ``setup``.
Differences from the official segmentation script (MingiJi/FRSKD, an EfficientDet/BiFPN model
on VOC): it switches the distillation terms on after a warm-up (alpha = beta = 0 for 40
epochs, then a sigmoid ramp-up) and its KD sums the KL over pixels per image; here the terms
are on from the start and the KL is averaged over pixels, as the other segmentation methods here.

Notes on paper vs official code:
- The paper writes the feature loss as a distance between attention maps summed over stages;
  the official code uses attention transfer's mean of squared differences, summed over stages
  (not averaged), which is what beta = 100 is tuned for. We follow the code.
- ``feature_loss: l2`` is the code's FitNet-style variant (its ``--distill fit``): a 1x1 conv +
  BN + ReLU regressor maps F_i to T_i's channels and the term is the MSE to T_i.detach().
- The self-teacher's width (d_i = width * c_i) is a parameter, as in the paper's ablation.
- The official models hand post-ReLU stage features to both the self-teacher and the feature
  loss (its WRN returns relu(BN(block output))). Tapped stages may be pre-activation (our WRNs),
  so the feature loss reads ReLU(F_i), which is the identity for post-ReLU stages; the
  self-teacher applies ReLU to its inputs itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from kdvision.errors import UserError
from kdvision.losses import at_loss, fitnet_loss, kd_loss
from kdvision.losses.pixel_kd import pixel_kd_loss
from kdvision.config_checks import NonNegativeFloat, PositiveFloat, PositiveInt
from kdvision.methods.base import Method
from kdvision.methods.pixel_kd import to_label_size
from kdvision.models.frskd_self_teacher import conv1x1_bn_relu, frskd_self_teacher
from kdvision.registry import METHODS
from kdvision.taps import FeatureTaps
from kdvision.tasks.base import main_output

FeatureLoss = Literal["attention", "l2"]
#: parameters that shape the modules built in setup; stages may not change them later
BUILD_PARAMS = ("width", "feature_loss", "stages")
#: (alpha, beta, temperature) when unset: classification (CIFAR-100) and dense prediction (segmentation)
DEFAULT_WEIGHTS = {"classification": (2.0, 100.0, 4.0), "dense": (1.0, 50.0, 1.0)}


def feature_regressor(in_channels: int, out_channels: int) -> nn.Sequential:
    """The official code's FitNet connector: conv1x1 -> BN -> ReLU, conv init N(0, 2 / (k*k*out))."""
    block = conv1x1_bn_relu(in_channels, out_channels)
    nn.init.kaiming_normal_(block[0].weight, mode="fan_out", nonlinearity="relu")
    return block


@METHODS.register("frskd")
class FRSKD(Method):
    """FRSKD (Ji et al. 2021): a BiFPN self-teacher on the student's stages distils refined features and soft labels."""

    @dataclass
    class Params:
        alpha: NonNegativeFloat | None = None  # None: 2 (classification) / 1 (segmentation)
        beta: NonNegativeFloat | None = None  # None: 100 / 50
        temperature: PositiveFloat | None = None  # None: 4 / 1
        width: PositiveInt = 2
        feature_loss: FeatureLoss = "attention"
        stages: list[str] = field(default_factory=list)  # student module paths; default student.stages

    teachers_required = "none"

    def __init__(self, student, teachers, task, params, teacher_domains=None):
        super().__init__(student, teachers, task, params, teacher_domains)
        stages = list(params.stages) or list(getattr(student, "stages", None) or [])
        if not stages:
            raise UserError(f"frskd: the student ({type(student).__name__}) has no 'stages' attribute; "
                            f"set method.stages to the module paths of its stage outputs")
        self.stage_paths = stages
        self.taps = FeatureTaps(student, stages, owner="student")
        self.self_teacher = None  # built in setup, from the stage shapes of a first batch
        self.feature_regressors = None  # only for feature_loss "l2"
        self.dense = False  # set in setup: the student predicts per-pixel logit maps

    def weights(self) -> tuple[float, float, float]:
        """(alpha, beta, temperature), unset ones from DEFAULT_WEIGHTS for the student's output kind."""
        defaults = DEFAULT_WEIGHTS["dense" if self.dense else "classification"]
        given = (self.params.alpha, self.params.beta, self.params.temperature)
        return tuple(float(d if g is None else g) for g, d in zip(given, defaults))

    def setup(self, batch):
        if self.self_teacher is not None:
            return
        was_training = self.student.training
        self.student.eval()  # the shape probe must not move the BN running statistics
        with torch.no_grad():
            logits = main_output(self.student(batch["input"]))
        features = self.taps.take()
        self.student.train(was_training)
        for path, f in zip(self.taps.paths, features):
            if f.dim() != 4:
                raise UserError(f"frskd: stage '{path}' of the student gives shape {tuple(f.shape)}; "
                                f"the self-teacher needs [batch, channels, height, width] maps")
        if logits.dim() not in (2, 4):
            raise UserError(f"frskd: the student's output has shape {tuple(logits.shape)}; expected class "
                            f"logits [batch, classes] or per-pixel logits [batch, classes, height, width]")
        self.dense = logits.dim() == 4
        device = features[0].device
        self_teacher = frskd_self_teacher([f.shape[1] for f in features], logits.shape[1],
                                          self.params.width, dense=self.dense).to(device)
        self_teacher.eval()
        try:
            with torch.no_grad():
                self_teacher(features)
        except ValueError as e:
            shapes = ", ".join(f"{p} {tuple(f.shape[1:])}" for p, f in zip(self.taps.paths, features))
            raise UserError(f"frskd: the student's stages do not form a pyramid ({shapes}): {e}") from None
        if not features[0].is_contiguous() \
                and features[0].is_contiguous(memory_format=torch.channels_last):
            self_teacher = self_teacher.to(memory_format=torch.channels_last)  # train.channels_last
        self.self_teacher = self_teacher.train(self.training)
        if self.params.feature_loss == "l2":
            self.feature_regressors = nn.ModuleList(
                feature_regressor(f.shape[1], self.params.width * f.shape[1]) for f in features
            ).to(device).train(self.training)

    def set_params(self, overrides: dict) -> None:
        changed = [k for k in BUILD_PARAMS if k in overrides and overrides[k] != getattr(self.params, k)]
        if changed and self.self_teacher is not None:
            raise UserError(f"frskd: method.{changed[0]} shapes the self-teacher and cannot change between stages")
        super().set_params(overrides)

    def forward(self, batch):
        if self.self_teacher is None:
            raise RuntimeError("frskd: setup(batch) must run before forward (it builds the self-teacher)")
        p = self.params
        alpha, beta, temperature = self.weights()
        out = self.student(batch["input"])
        features = self.taps.take()
        refined, self_teacher_logits = self.self_teacher(features)

        losses = dict(self.task.loss(out, batch))
        losses.update({f"{k}_self_teacher": v for k, v in self.task.loss(self_teacher_logits, batch).items()})
        if self.dense:  # per-pixel KD at the label size (self-teacher side detached)
            size = batch["target"].shape[-2:]
            kd = pixel_kd_loss(to_label_size(main_output(out), size),
                               to_label_size(self_teacher_logits.detach(), size), temperature, "pixel")
        else:
            kd = kd_loss(main_output(out), self_teacher_logits.detach(), temperature)
        losses["kd"] = alpha * kd
        activated = [F.relu(f) for f in features]  # identity for post-ReLU stages
        if p.feature_loss == "attention":
            feature = sum(at_loss(f, t.detach()) for f, t in zip(activated, refined))
        else:
            if self.feature_regressors is None:
                raise UserError("frskd: method.feature_loss 'l2' must be set from the start (setup builds its regressors)")
            feature = sum(fitnet_loss(r(f), t.detach())
                          for r, f, t in zip(self.feature_regressors, activated, refined))
        losses["feature"] = beta * feature
        return out, losses
