"""ShuffleNet V2 (1x) for CIFAR (Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient
CNN Architecture Design", ECCV 2018): the "ShuffleV2" student of the CIFAR-100 distillation
tables.

Follows HobbitLong/RepDistiller models/ShuffleNetv2.py, net_size 1 (identical in mdistiller):
a 1x1 stem to 24 channels (stride 1, no max-pool), three stages of 116/232/464 channels, each
one down-sampling unit followed by 3/7/3 basic units, then a 1x1 conv-BN-ReLU to 1024
channels, global average pooling and one linear layer. Basic unit: split the channels in
half, keep the first half, pass the second through 1x1-BN-ReLU, 3x3 depthwise-BN,
1x1-BN-ReLU, concatenate, shuffle (2 groups). Down-sampling unit: both branches see the whole
input (left: 3x3 depthwise stride 2-BN, 1x1-BN-ReLU; right: 1x1-BN-ReLU, 3x3 depthwise
stride 2-BN, 1x1-BN-ReLU), concatenate, shuffle. Note that a stage has 1 + n units (the
reference builds n basic units after the down-sampling one). Parameter and buffer names are
the same as there.

Taps (``model.stages``): "layer1", "layer2", "layer3", the stage outputs (116, 232, 464
channels; 16, 8, 4 pixels at a 32x32 input), RepDistiller's f1..f3; every channel of them
comes out of a ReLU, so they are post-ReLU features (shuffled). ``feature_tap`` = "layer3"
(its feat[-2], the SP layer; the 1024-channel post-ReLU map is "relu2"). The stem output is
"relu" (f0). No in-place operations; adaptive average pooling instead of a fixed 4x4 window
(same result at 32x32).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from kdvision.models.cifar.shufflenetv1 import ChannelShuffle
from kdvision.registry import MODELS


class SplitChannels(nn.Module):
    def __init__(self, ratio: float = 0.5):
        super().__init__()
        self.ratio = ratio

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        c = int(x.shape[1] * self.ratio)
        return x[:, :c], x[:, c:]


class BasicUnit(nn.Module):
    def __init__(self, channels: int, split_ratio: float = 0.5):
        super().__init__()
        self.split = SplitChannels(split_ratio)
        c = int(channels * split_ratio)
        self.conv1 = nn.Conv2d(c, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3 = nn.Conv2d(c, c, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU()
        self.shuffle = ChannelShuffle(2)

    def forward(self, x: Tensor) -> Tensor:
        kept, branch = self.split(x)
        out = self.relu(self.bn1(self.conv1(branch)))
        out = self.bn2(self.conv2(out))
        out = self.relu(self.bn3(self.conv3(out)))
        return self.shuffle(torch.cat([kept, out], 1))


class DownUnit(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        mid = out_channels // 2
        # left branch
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, stride=2, padding=1,
                               groups=in_channels, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        # right branch
        self.conv3 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = nn.Conv2d(mid, mid, 3, stride=2, padding=1, groups=mid, bias=False)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = nn.Conv2d(mid, mid, 1, bias=False)
        self.bn5 = nn.BatchNorm2d(mid)
        self.relu = nn.ReLU()
        self.shuffle = ChannelShuffle(2)

    def forward(self, x: Tensor) -> Tensor:
        left = self.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = self.relu(self.bn3(self.conv3(x)))
        right = self.relu(self.bn5(self.conv5(self.bn4(self.conv4(right)))))
        return self.shuffle(torch.cat([left, right], 1))


class CifarShuffleNetV2(nn.Module):
    def __init__(self, widths=(116, 232, 464), units=(3, 7, 3), last_channels: int = 1024,
                 num_classes: int = 100):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        self.relu = nn.ReLU()
        in_channels = 24
        for i, (width, n) in enumerate(zip(widths, units)):
            layers = [DownUnit(in_channels, width)] + [BasicUnit(width) for _ in range(n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layers))
            in_channels = width
        self.conv2 = nn.Conv2d(in_channels, last_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(last_channels)
        self.relu2 = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(last_channels, num_classes)
        self.stages = ["layer1", "layer2", "layer3"]
        self.stage_channels = list(widths)
        self.feature_tap = "layer3"

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        return self.linear(self.avgpool(x).flatten(1))


@MODELS.register("shufflev2")
def shufflev2(num_classes: int = 100) -> nn.Module:
    """ShuffleNet V2 1x for CIFAR (Ma et al. 2018; RepDistiller ShuffleV2); stages layer1..3."""
    return CifarShuffleNetV2(num_classes=num_classes)
