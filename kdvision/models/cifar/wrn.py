"""Wide residual networks WRN-d-k (Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016):
pre-activation BasicBlocks (BN-ReLU-conv3x3-BN-ReLU-conv3x3), depth d = 6n + 4, width factor k.

Follows the CIFAR definition of the distillation benchmark (HobbitLong/RepDistiller
models/wrn.py, identical in megvii-research/mdistiller), parameter and buffer names included
(block1.layer.0.bn1, ..., convShortcut, final bn1, fc), so its checkpoints load. As there, a
block whose input and output widths differ applies its BN-ReLU to the input and feeds the
activated input to both the residual branch and the 1x1 shortcut conv; otherwise the
shortcut is the raw input. Dropout is off (rate 0), as in the benchmark.
FRSKD's official code uses a different WRN (BNs after the groups instead of at block input):
that one is ``frskd_wrn_16_2`` (``kdvision.models.cifar.frskd_wrn``).

Taps (``model.stages``): "block1", "block2", "block3", the outputs of the three groups
(32, 16, 8 pixels at a 32x32 input). These are the features RepDistiller returns as f1..f3
and uses for AT / SP / FitNet: residual sums, BEFORE the next BN-ReLU (pre-activation
network), so they are not post-ReLU. ``feature_tap`` = "block3" (RepDistiller's feat[-2]).
The post-BN-ReLU map before pooling is "relu". The stem conv output is "conv1" (f0).
``model.preact_stages`` / ``model.bn_before_relu`` (OFD, ReviewKD): "block2.layer.0.bn1",
"block3.layer.0.bn1", "bn1", the BNs applied next to block1..3's outputs (mdistiller's preact_feats).
No in-place operations; adaptive average pooling instead of a fixed 8x8 window (same result
at 32x32).
"""
from __future__ import annotations

import math

from torch import Tensor, nn

from kdvision.registry import MODELS


class WideBasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.convShortcut = None
        if in_channels != out_channels:
            self.convShortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        activated = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(activated))))
        if self.convShortcut is None:
            return x + out
        return self.convShortcut(activated) + out


class WideGroup(nn.Module):
    """n blocks of one width; the first changes width and stride. (RepDistiller's NetworkBlock.)"""

    def __init__(self, blocks: int, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.layer = nn.Sequential(*[
            WideBasicBlock(in_channels if i == 0 else out_channels, out_channels, stride if i == 0 else 1)
            for i in range(blocks)])

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth: int, widen_factor: int, num_classes: int = 100):
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"WRN depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.block1 = WideGroup(n, widths[0], widths[1], 1)
        self.block2 = WideGroup(n, widths[1], widths[2], 2)
        self.block3 = WideGroup(n, widths[2], widths[3], 2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3], num_classes)
        self.stages = ["block1", "block2", "block3"]
        self.stage_channels = widths[1:]
        self.feature_tap = "block3"
        # pre-activation net: a group's output is BN-ed by the next group's first block (the last by
        # bn1); those BN outputs are the benchmark's preact_feats, the BNs its get_bn_before_relu
        self.preact_stages = ["block2.layer.0.bn1", "block3.layer.0.bn1", "bn1"]
        self.bn_before_relu = list(self.preact_stages)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        x = self.relu(self.bn1(x))
        return self.fc(self.avgpool(x).flatten(1))


@MODELS.register("wrn_16_1")
def wrn_16_1(num_classes: int = 100) -> nn.Module:
    """WRN-16-1 (Zagoruyko & Komodakis 2016; RepDistiller definition); stages block1..3."""
    return WideResNet(16, 1, num_classes)


@MODELS.register("wrn_16_2")
def wrn_16_2(num_classes: int = 100) -> nn.Module:
    """WRN-16-2 (Zagoruyko & Komodakis 2016; RepDistiller definition); stages block1..3."""
    return WideResNet(16, 2, num_classes)


@MODELS.register("wrn_40_1")
def wrn_40_1(num_classes: int = 100) -> nn.Module:
    """WRN-40-1 (Zagoruyko & Komodakis 2016; RepDistiller definition); stages block1..3."""
    return WideResNet(40, 1, num_classes)


@MODELS.register("wrn_40_2")
def wrn_40_2(num_classes: int = 100) -> nn.Module:
    """WRN-40-2 (Zagoruyko & Komodakis 2016; RepDistiller definition); stages block1..3."""
    return WideResNet(40, 2, num_classes)
