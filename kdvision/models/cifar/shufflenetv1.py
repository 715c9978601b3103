"""ShuffleNet (v1) for CIFAR (Zhang et al., "ShuffleNet: An Extremely Efficient Convolutional
Neural Network for Mobile Devices", CVPR 2018): the "ShuffleV1" student of the CIFAR-100
distillation tables.

Follows HobbitLong/RepDistiller models/ShuffleNetv1.py (identical in mdistiller): 3 groups,
stage widths 240/480/960 with 4/8/4 units, a 1x1 stem to 24 channels (stride 1, no max-pool),
global average pooling and one linear layer. A unit is grouped 1x1 conv (ungrouped when its
input is the 24-channel stem) - BN - ReLU - channel shuffle - 3x3 depthwise - BN - ReLU -
grouped 1x1 conv - BN; the first unit of a stage has stride 2 and concatenates a 3x3
average-pooled shortcut, the others add the identity; a ReLU follows either. As in the
reference, the bottleneck width is a quarter of the unit's output width and the depthwise
conv is followed by a ReLU. Parameter and buffer names are the same as there.

Taps (``model.stages``): "layer1", "layer2", "layer3", the post-ReLU stage outputs (240, 480,
960 channels; 16, 8, 4 pixels at a 32x32 input), RepDistiller's f1..f3. ``feature_tap`` =
"layer3" (its feat[-2]). The stem output is "relu" (f0). No in-place operations; adaptive
average pooling instead of a fixed 4x4 window (same result at 32x32).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from kdvision.registry import MODELS


class ChannelShuffle(nn.Module):
    """Interleave the channels of ``groups`` groups: (N, g*c, H, W) -> channel order c-major."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        return x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int):
        super().__init__()
        self.stride = stride
        mid = out_channels // 4
        first_groups = 1 if in_channels == 24 else groups
        self.conv1 = nn.Conv2d(in_channels, mid, 1, groups=first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.shuffle1 = ChannelShuffle(first_groups)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.shortcut = nn.Sequential()
        if stride == 2:
            self.shortcut = nn.Sequential(nn.AvgPool2d(3, stride=2, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        out = self.shuffle1(self.relu(self.bn1(self.conv1(x))))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = self.shortcut(x)
        merged = torch.cat([out, shortcut], 1) if self.stride == 2 else out + shortcut
        return self.relu(merged)


class CifarShuffleNetV1(nn.Module):
    def __init__(self, widths=(240, 480, 960), units=(4, 8, 4), groups: int = 3,
                 num_classes: int = 100):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        self.relu = nn.ReLU()
        in_channels = 24
        for i, (width, n) in enumerate(zip(widths, units)):
            # the first unit concatenates its input, so its branch makes width - in_channels
            layers = [ShuffleUnit(in_channels, width - in_channels, 2, groups)]
            layers += [ShuffleUnit(width, width, 1, groups) for _ in range(n - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layers))
            in_channels = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(widths[-1], num_classes)
        self.stages = ["layer1", "layer2", "layer3"]
        self.stage_channels = list(widths)
        self.feature_tap = "layer3"

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(self.avgpool(x).flatten(1))


@MODELS.register("shufflev1")
def shufflev1(num_classes: int = 100) -> nn.Module:
    """ShuffleNet v1, g=3, for CIFAR (Zhang et al. 2018; RepDistiller ShuffleV1); stages layer1..3."""
    return CifarShuffleNetV1(num_classes=num_classes)
