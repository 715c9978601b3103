"""The FRSKD self-teacher for segmentation networks, built as the official segmentation code
builds it (MingiJi/FRSKD, segmentation/utils/efficientdet.py and BiFPN.py; Ji et al., CVPR 2021).

In the official EfficientDet-style network the segmentation network's own pyramid (P2..P7 after
its BiFPN) feeds its classifier at the finest level; the self-teacher is a second BiFPN stacked
on that pyramid (two layers, the last one without its bottom-up path) with its own head on the
finest level:

  one BiFPN layer on levels P_0 (finest) .. P_{n-1}, all C channels, N(x) = ReLU(BN(dw-conv1x1(x))):
    U_{n-1} = N(P_{n-1});  U_i = N(P_i + Up(U_{i+1}))                      top-down, i = n-2 .. 0
    O_0 = U_0;  O_i = N(P_i + U_i + Down(O_{i-1}))                         bottom-up, i = 1 .. n-1
    the last layer returns (U_0, U_1, .., U_{n-1}) (no bottom-up path)
  Up = bilinear resize (align_corners False), Down = nearest resize, to the level's size;
  head = conv3x3(C -> 256) -> BN(eps 1e-4, momentum 0.997) -> ReLU -> conv3x3(256 -> classes) on the
  finest output (stride 4 on kdvision's networks), upsampled by the method to the labels.

kdvision's segmentation networks (dilated ResNet / MobileNetV2 + PPM / ASPP) have no FPN, so
their pyramid is the backbone's stages (strides 4/8/8/8) and the self-teacher first maps each
stage to C channels with the official network's lateral block (conv1x1 with bias -> BN(eps 1e-4,
momentum 0.997) -> ReLU; the official laterals belong to its network). ``bifpn`` and ``head``
match the official BiFPN2 and classifier2 module for module (the tests count their parameters
against the official modules). The official BN momentum 0.997 is PyTorch's momentum, i.e. the
running statistics are almost replaced by each batch's; kept as the official code has it.
Differences (they only widen what runs): the official code resizes by a scale factor
(``nn.Upsample(scale_factor=size ratio)``), here by the target size, which is the same for the
integer ratios of its pyramid and also accepts equal-size levels (stride 8, 8, 8).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: the official head's BatchNorm (efficientdet.py classifier1/2, Conv): eps 1e-4, momentum 0.997
HEAD_BN = {"eps": 1e-4, "momentum": 0.997}


def node(channels: int) -> nn.Sequential:
    """A BiFPN node: depthwise 1x1 conv (with bias) -> BN -> ReLU (official BiFPNSeg convXup/dw)."""
    return nn.Sequential(nn.Conv2d(channels, channels, 1, groups=channels), nn.BatchNorm2d(channels), nn.ReLU())


class BiFPNLayer(nn.Module):
    """One official BiFPNSeg layer over ``levels`` maps of ``channels`` channels, finest first."""

    def __init__(self, channels: int, levels: int, last: bool = False):
        super().__init__()
        self.last = last
        self.up = nn.ModuleList(node(channels) for _ in range(levels))
        self.down = nn.ModuleList() if last else nn.ModuleList(node(channels) for _ in range(levels - 1))

    def forward(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        n = len(inputs)
        up = [None] * n
        up[-1] = self.up[-1](inputs[-1])
        for i in range(n - 2, -1, -1):
            coarse = F.interpolate(up[i + 1], size=inputs[i].shape[-2:], mode="bilinear", align_corners=False)
            up[i] = self.up[i](inputs[i] + coarse)
        if self.last:
            return up
        out = [up[0]]
        for i in range(1, n):
            finer = F.interpolate(out[-1], size=up[i].shape[-2:], mode="nearest")
            out.append(self.down[i - 1](inputs[i] + up[i] + finer))
        return out


def seg_head(channels: int, hidden: int, num_classes: int) -> nn.Sequential:
    """conv3x3 -> BN -> ReLU -> conv3x3 (official classifier2)."""
    return nn.Sequential(nn.Conv2d(channels, hidden, 3, padding=1), nn.BatchNorm2d(hidden, **HEAD_BN),
                         nn.ReLU(inplace=True), nn.Conv2d(hidden, num_classes, 3, padding=1))


class FRSKDSegSelfTeacher(nn.Module):
    """Laterals (stage c_i -> C) -> BiFPN x ``layers`` (the last top-down only) -> head on the finest level."""

    def __init__(self, in_channels: list[int], num_classes: int, channels: int = 64, head_channels: int = 256,
                 layers: int = 2):
        super().__init__()
        if not in_channels:
            raise ValueError("the FRSKD self-teacher needs at least one pyramid level")
        if layers < 1:
            raise ValueError(f"the self-teacher needs at least one BiFPN layer, got {layers}")
        n = len(in_channels)
        self.channels = list(in_channels)
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, channels, 1), nn.BatchNorm2d(channels, **HEAD_BN), nn.ReLU(inplace=True))
            for c in in_channels)
        self.bifpn = nn.Sequential(*[BiFPNLayer(channels, n, last=k == layers - 1) for k in range(layers)])
        self.head = seg_head(channels, head_channels, num_classes)
        self.dense = True

    def forward(self, features: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        if len(features) != len(self.channels):
            raise ValueError(f"the self-teacher was built for {len(self.channels)} levels, got {len(features)}")
        for k in range(1, len(features)):
            if any(a < b for a, b in zip(features[k - 1].shape[-2:], features[k].shape[-2:])):
                raise ValueError("the levels must go from the finest to the coarsest")
        refined = self.bifpn([m(f) for m, f in zip(self.lateral, features)])
        return list(refined), self.head(refined[0])
