"""FRSKD: feature refinement via self-knowledge distillation (Ji et al., CVPR 2021).

No external teacher. A self-teacher (``kdvision.models.frskd_self_teacher``) reads the
classifier's stage features F_1..F_n (not detached), refines them into T_1..T_n and predicts
its own logits z_t. The loss (paper Sec. 3.2, as the official code MingiJi/FRSKD,
classification/utils.py and distill_loss/AT.py, computes it):
    L = CE(z_c, y) + CE(z_t, y) + alpha * L_KD(z_c, z_t.detach(); T)
          + beta * sum_i mean_{b,hw} (phi(F_i) - phi(T_i.detach()))^2
logged as ce, ce_self_teacher, kd and feature; alpha and beta are ``method.weights.kd`` and
``method.weights.feature`` (numbers or schedules of the training progress).
with phi the attention map of attention transfer (p = 2) and L_KD the temperature-scaled
batch-mean KL (``kd_loss``). The KD and feature terms reach only the classifier (backbone and
head); the self-teacher learns from its own CE, which also flows into the shared backbone.
Everything trains with one optimiser. Defaults: CIFAR-100 alpha = 2, beta = 100, T = 4, width 2.

Segmentation networks (dense prediction: the student's main output is a logit map
[B, C, H, W]; detected from the first batch in ``setup``), as the official segmentation code
(MingiJi/FRSKD segmentation/, EfficientDet-style) builds it, ``dense_self_teacher: official``:
the self-teacher is a second BiFPN (two layers) stacked on the network's pyramid, here its
stages (``student.stages``, strides 4/8/8/8, mapped to ``seg_channels`` = 64 channels), with a
conv3x3-BN-ReLU-conv3x3 head on the finest level (``kdvision.models.frskd_seg_self_teacher``).
Its CE is the task's per-pixel CE (logits upsampled to the labels, ignore 255); the soft-label
term is pixel KD on both logit maps upsampled bilinearly to the label size,
    alpha * T^2 * sum KL(softmax(z_t/T) || softmax(z_c/T)) / (B * H * W)   (z_t detached)
which is the official ``DistillKL`` (KL summed, divided by B·H·W) and ``pixel_kd_loss``'s
"pixel" reduction; the feature term compares each stage with its refined level.
``dense_self_teacher: stage_bifpn`` is kdvision's earlier variant (the classification BiFPN
over the stages, a 1x1 head at stride 8), kept for comparison with existing runs.
Segmentation defaults: alpha = 1, beta = 50 (the official README's command), T = 1 (``--temp``).
The official script keeps alpha = beta = 0 for its first 40 of 60 epochs, then ramps both
with ``sigmoid_rampup(epoch + 1 - 40, 20)``; express that with a schedule, e.g.
``weights: {kd: {schedule: sigmoid_ramp, start_epoch: 40, epochs: 20, to: 1}, feature: {..., to: 50}}``
(packaged recipe ``digit_scenes/frskd_warmup``); its SGD lr 0.01 (x0.1 at 40), momentum 0.9,
wd 5e-4, gradient accumulation to 32 images and ``clip_grad_value_(2.0)``
(``train.grad_clip_value: 2.0``).

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

from kdvision.config_checks import PositiveFloat, PositiveInt
from kdvision.errors import UserError
from kdvision.losses import at_loss, fitnet_loss, kd_loss
from kdvision.losses.pixel_kd import pixel_kd_loss
from kdvision.methods.base import Method
from kdvision.methods.loss_weights import Weight
from kdvision.outputs import main_output, to_label_size
from kdvision.models.frskd_seg_self_teacher import FRSKDSegSelfTeacher
from kdvision.models.frskd_self_teacher import conv1x1_bn_relu, frskd_self_teacher
from kdvision.registry import METHODS
from kdvision.taps import FeatureTaps

FeatureLoss = Literal["attention", "l2"]
DenseSelfTeacher = Literal["official", "stage_bifpn"]
#: parameters that shape the modules built in setup; stages may not change them later
BUILD_PARAMS = ("width", "feature_loss", "stages", "dense_self_teacher", "seg_channels", "seg_head_channels")
#: (weights.kd = alpha, weights.feature = beta, temperature) when unset: classification (CIFAR-100)
#: and dense prediction (segmentation: the official README's alpha 1, beta 50, --temp 1)
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
        temperature: PositiveFloat | None = None  # None: 4 (classification) / 1 (segmentation)
        width: PositiveInt = 2
        feature_loss: FeatureLoss = "attention"
        stages: list[str] = field(default_factory=list)  # student module paths; default student.stages
        dense_self_teacher: DenseSelfTeacher = "official"  # segmentation: official (BiFPN x2 + 3x3 head)
        seg_channels: PositiveInt = 64  # official: the pyramid width (64 for EfficientDet-b0)
        seg_head_channels: PositiveInt = 256  # official head's hidden width

    teachers_required = "none"
    # kd = alpha, feature = beta; classification defaults (segmentation: 1 / 50, set in setup)
    default_weights = {"kd": 2.0, "feature": 100.0, "ce_self_teacher": 1.0}
    renamed_params = {"alpha": "kd", "beta": "feature"}

    def __init__(self, student, teachers=(), task_loss=None, params=None):
        super().__init__(student, teachers, task_loss, params)
        params = self.params
        stages = list(params.stages) or list(getattr(student, "stages", None) or [])
        if not stages:
            raise UserError(f"frskd: the student ({type(student).__name__}) has no 'stages' attribute; "
                            f"set method.stages to the module paths of its stage outputs")
        self.stage_paths = stages
        self.taps = FeatureTaps(student, stages, owner="student")
        self.self_teacher = None  # built in setup, from the stage shapes of a first batch
        self.feature_regressors = None  # only for feature_loss "l2"
        self.dense = False  # set in setup: the student predicts per-pixel logit maps

    def temperature(self) -> float:
        """The KD temperature: the given one, else 4 (classification) or 1 (segmentation)."""
        t = self.params.temperature
        return float(DEFAULT_WEIGHTS["dense" if self.dense else "classification"][2] if t is None else t)

    def setup(self, batch, info=None):
        if self.self_teacher is not None:
            return
        was_training = self.student.training
        self.student.eval()  # the shape probe must not move the BN running statistics
        with torch.no_grad():
            out, features = self.taps.run(self.student, batch["input"])
        logits = main_output(out)
        self.student.train(was_training)
        for path, f in zip(self.taps.paths, features):
            if f.dim() != 4:
                raise UserError(f"frskd: stage '{path}' of the student gives shape {tuple(f.shape)}; "
                                f"the self-teacher needs [batch, channels, height, width] maps")
        if logits.dim() not in (2, 4):
            raise UserError(f"frskd: the student's output has shape {tuple(logits.shape)}; expected class "
                            f"logits [batch, classes] or per-pixel logits [batch, classes, height, width]")
        self.dense = logits.dim() == 4
        if self.dense:
            alpha, beta, _ = DEFAULT_WEIGHTS["dense"]
            self.weight_defaults.update(kd=Weight(alpha), feature=Weight(beta))
        device = features[0].device
        p = self.params
        if self.dense and p.dense_self_teacher == "official":
            self_teacher = FRSKDSegSelfTeacher([f.shape[1] for f in features], logits.shape[1], p.seg_channels,
                                               p.seg_head_channels).to(device)
        else:
            self_teacher = frskd_self_teacher([f.shape[1] for f in features], logits.shape[1],
                                              p.width, dense=self.dense).to(device)
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
            with torch.no_grad():
                refined_channels = [r.shape[1] for r in self_teacher.eval()(features)[0]]
            self.self_teacher.train(self.training)
            self.feature_regressors = nn.ModuleList(
                feature_regressor(f.shape[1], c) for f, c in zip(features, refined_channels)
            ).to(device).train(self.training)

    def set_params(self, overrides: dict) -> None:
        changed = [k for k in BUILD_PARAMS if k in overrides and overrides[k] != getattr(self.params, k)]
        if changed and self.self_teacher is not None:
            raise UserError(f"frskd: method.{changed[0]} shapes the self-teacher and cannot change between stages")
        super().set_params(overrides)

    def compute(self, batch):
        if self.self_teacher is None:
            raise RuntimeError("frskd: setup(batch) must run before forward (it builds the self-teacher)")
        p = self.params
        temperature = self.temperature()
        out, features = self.taps.run(self.student, batch["input"])
        refined, self_teacher_logits = self.self_teacher(features)

        losses = self.task_loss(out, batch)
        losses.update({f"{k}_self_teacher": v for k, v in self.task_loss(self_teacher_logits, batch).items()})
        if self.active("kd"):
            if self.dense:  # per-pixel KD at the label size (self-teacher side detached)
                size = batch["target"].shape[-2:]
                losses["kd"] = pixel_kd_loss(to_label_size(main_output(out), size),
                                             to_label_size(self_teacher_logits.detach(), size), temperature, "pixel")
            else:
                losses["kd"] = kd_loss(main_output(out), self_teacher_logits.detach(), temperature)
        if not self.active("feature"):
            return out, losses
        activated = [F.relu(f) for f in features]  # identity for post-ReLU stages
        if p.feature_loss == "attention":
            feature = sum(at_loss(f, t.detach()) for f, t in zip(activated, refined))
        else:
            if self.feature_regressors is None:
                raise UserError("frskd: method.feature_loss 'l2' must be set from the start (setup builds its regressors)")
            feature = sum(fitnet_loss(r(f), t.detach())
                          for r, f, t in zip(self.feature_regressors, activated, refined))
        losses["feature"] = feature
        return out, losses
