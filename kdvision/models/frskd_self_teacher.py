"""The FRSKD self-teacher (Ji et al., "Refine Myself by Teaching Myself: Feature Refinement via
Self-Knowledge Distillation", CVPR 2021, Sec. 3.1 and Fig. 2): a BiFPN-style network on the
classifier's own stage features that outputs refined feature maps and its own logits.

Built as the official code builds it (MingiJi/FRSKD, classification/models/bifpnc.py, one
BiFPN layer): with R = ReLU and d_i = width * c_i,
  L_i  = lateral_i(R(C_i))                 1x1 block c_i -> d_i
  L'_i = lateral_bottom_up_i(R(C_i))       a second, separate 1x1 block (levels 2..n)
  P_n  = L_n;  P_i = Fuse_i(w1 R(L_i) + w2 Up(R(P_{i+1})))                   top-down
  T_1  = P_1;  T_i = Fuse_i(w1 R(L'_i) + w2 R(P_i) + w3 Down(R(T_{i-1})))    bottom-up
       T_n = Fuse_n(w1 R(L'_n) + w2 Down(R(T_{n-1})))
  outputs R(T_1..T_n); logits = linear(global-average-pool(R(T_n))).
For dense prediction (``dense=True``, FRSKD on segmentation networks) the head is per pixel
instead: logits = conv1x1(R(T_n)) at T_n's resolution, [B, classes, h_n, w_n] (the linear
classifier applied at every position, no pooling).
1x1 block = conv1x1 (no bias) -> BN -> ReLU. Fuse = depthwise-separable 3x3 block of depth 2
(dw3x3 -> pw1x1 -> BN, then ReLU -> dw3x3 -> pw1x1 -> BN). Up = nearest resize then a 1x1 block
d_{i+1} -> d_i; Down = 3x3 max-pool with TF-"same" padding then a 1x1 block d_{i-1} -> d_i.
Fusion weights w are "fast normalised": relu(w_raw) / (sum relu(w_raw) + 1e-6), w_raw = 1 at init.

Difference from the official code (it only widens what runs): the official code upsamples by
exactly x2 and max-pools with stride 2, so each stage must halve the previous one. Here the
up-sampling resizes to the next level's size and the max-pool stride is the size ratio, which
gives the same result for x2 pyramids and also accepts odd sizes (7 -> 4) and equal-size stages.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def conv1x1_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())


def separable_fusion_block(channels: int, depth: int = 2) -> nn.Sequential:
    """depth x [dw3x3 -> pw1x1 -> BN], with a ReLU before every repeat after the first; no final ReLU."""
    parts = []
    for k in range(depth):
        layers = [nn.ReLU()] if k > 0 else []
        layers += [nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
                   nn.Conv2d(channels, channels, 1, bias=False),
                   nn.BatchNorm2d(channels)]
        parts.append(nn.Sequential(*layers))
    return nn.Sequential(*parts)


class FastNormalizedFusion(nn.Module):
    """sum_j w_j x_j with w = relu(w_raw) / (sum relu(w_raw) + eps) (EfficientDet's fast fusion)."""

    def __init__(self, num_inputs: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_inputs))
        self.eps = eps

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        w = F.relu(self.weight)
        w = w / (w.sum() + self.eps)
        return sum(w[j] * x for j, x in enumerate(inputs))


def same_max_pool_to(x: torch.Tensor, size: tuple[int, int], kernel: int = 3) -> torch.Tensor:
    """3x3 max-pool with TF-"same" zero padding and stride = the size ratio, landing on ``size``.

    Zero padding as in the official code (its inputs are ReLU outputs, so it equals -inf padding).
    """
    h, w = x.shape[-2:]
    strides = [max(1, round(h / size[0])), max(1, round(w / size[1]))]
    pads = []
    for length, s in ((w, strides[1]), (h, strides[0])):
        extra = max((math.ceil(length / s) - 1) * s - length + kernel, 0)
        pads += [extra // 2, extra - extra // 2]
    out = F.max_pool2d(F.pad(x, pads), kernel, stride=strides)
    if tuple(out.shape[-2:]) != tuple(size):
        raise ValueError(f"cannot max-pool a {h}x{w} feature map down to {size[0]}x{size[1]} "
                         f"(stages must shrink by an integer factor)")
    return out


class FRSKDSelfTeacher(nn.Module):
    """Self-teacher over stage features C_1..C_n (highest resolution first)."""

    def __init__(self, channels: list[int], num_classes: int, width: int = 2, fusion_depth: int = 2,
                 dense: bool = False):
        super().__init__()
        if not channels:
            raise ValueError("the FRSKD self-teacher needs at least one stage")
        n = len(channels)
        d = [width * c for c in channels]
        self.channels = list(channels)
        self.lateral = nn.ModuleList(conv1x1_bn_relu(c, di) for c, di in zip(channels, d))
        self.lateral_bottom_up = nn.ModuleList(conv1x1_bn_relu(channels[i], d[i]) for i in range(1, n))
        # top-down nodes for levels 0..n-2 (index i), bottom-up nodes for levels 1..n-1 (index i-1)
        self.upsample_proj = nn.ModuleList(conv1x1_bn_relu(d[i + 1], d[i]) for i in range(n - 1))
        self.top_down_weights = nn.ModuleList(FastNormalizedFusion(2) for _ in range(n - 1))
        self.top_down_fuse = nn.ModuleList(separable_fusion_block(d[i], fusion_depth) for i in range(n - 1))
        self.downsample_proj = nn.ModuleList(conv1x1_bn_relu(d[i - 1], d[i]) for i in range(1, n))
        self.bottom_up_weights = nn.ModuleList(FastNormalizedFusion(3 if i < n - 1 else 2) for i in range(1, n))
        self.bottom_up_fuse = nn.ModuleList(separable_fusion_block(d[i], fusion_depth) for i in range(1, n))
        self.dense = dense
        self.fc = nn.Conv2d(d[-1], num_classes, 1) if dense else nn.Linear(d[-1], num_classes)

    def forward(self, features: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        if len(features) != len(self.channels):
            raise ValueError(f"the self-teacher was built for {len(self.channels)} stages, got {len(features)}")
        n = len(features)
        lat = [m(F.relu(c)) for m, c in zip(self.lateral, features)]
        lat_bu = [m(F.relu(c)) for m, c in zip(self.lateral_bottom_up, features[1:])]

        p = [None] * n
        p[-1] = lat[-1]
        for i in range(n - 2, -1, -1):
            up = F.interpolate(F.relu(p[i + 1]), size=lat[i].shape[-2:], mode="nearest")
            up = self.upsample_proj[i](up)
            p[i] = self.top_down_fuse[i](self.top_down_weights[i]([F.relu(lat[i]), up]))

        t = [p[0]]
        for i in range(1, n):
            down = self.downsample_proj[i - 1](same_max_pool_to(F.relu(t[-1]), lat_bu[i - 1].shape[-2:]))
            inputs = [F.relu(lat_bu[i - 1]), F.relu(p[i]), down] if i < n - 1 else [F.relu(lat_bu[i - 1]), down]
            t.append(self.bottom_up_fuse[i - 1](self.bottom_up_weights[i - 1](inputs)))

        refined = [F.relu(x) for x in t]
        if self.dense:
            return refined, self.fc(refined[-1])
        logits = self.fc(F.adaptive_avg_pool2d(refined[-1], 1).flatten(1))
        return refined, logits


def frskd_self_teacher(channels: list[int], num_classes: int, width: int = 2, dense: bool = False) -> FRSKDSelfTeacher:
    """The FRSKD self-teacher for stage channels ``channels`` (e.g. [64, 128, 256, 512]), d_i = width * c_i;
    ``dense=True``: per-pixel logits (a 1x1 conv on R(T_n)) for segmentation networks."""
    return FRSKDSelfTeacher(list(channels), num_classes, width, dense=dense)
