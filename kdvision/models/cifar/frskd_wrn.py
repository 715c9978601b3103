"""The WRN of FRSKD's official code (Ji et al., "Refine Myself by Teaching Myself: Feature
Refinement via Self-Knowledge Distillation", CVPR 2021; MingiJi/FRSKD classification/models/wrn.py):
``frskd_wrn_16_2``.

It differs from the community WRN (``wrn_16_2``, RepDistiller's definition) in where the
BatchNorms sit: no block has its first BN (bn1), and each of the three groups is followed by
a BN (block1bn, block2bn, block3bn) whose output feeds the next group. A block applies only a
ReLU to its input (the first block of a group feeds the activated input to both the residual
branch and the 1x1 shortcut conv, as in the community WRN). The logits read
relu(block3bn(.)); the self-teacher of FRSKD reads relu(block_i bn(.)), i = 1..3.

Parameter and buffer names are those of the official file (conv1, block1.layer.0.conv1,
block1.layer.0.bn2, ..., convShortcut, block1bn, ..., fc), so its checkpoints load. The official
model also builds a final ``bn1`` that its forward never uses; it is kept (same state dict, and
the official parameter count: 703,060 at WRN-16-2 against the community model's 703,284) but
frozen (requires_grad False), so no optimiser or DDP sees a parameter without gradient.
Adaptive average pooling replaces the official fixed 8x8 window (the same at 32x32 inputs).

Taps (``model.stages``): "block1bn", "block2bn", "block3bn", the BN outputs BEFORE the ReLU
(32, 16, 8 pixels at 32x32); FRSKD applies the ReLU itself, so it sees exactly the official
features. ``feature_tap`` = "block3bn".
"""
from __future__ import annotations

import math

from torch import Tensor, nn

from kdvision.registry import MODELS


class FRSKDWideBlock(nn.Module):
    """ReLU -> conv3x3 -> BN -> ReLU -> conv3x3, plus the input (or its 1x1 projection)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.convShortcut = None
        if in_channels != out_channels:
            self.convShortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        activated = self.relu1(x)
        out = self.conv2(self.relu2(self.bn2(self.conv1(activated))))
        if self.convShortcut is None:
            return x + out
        return self.convShortcut(activated) + out


class FRSKDWideGroup(nn.Module):
    def __init__(self, blocks: int, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.layer = nn.Sequential(*[
            FRSKDWideBlock(in_channels if i == 0 else out_channels, out_channels, stride if i == 0 else 1)
            for i in range(blocks)])

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


class FRSKDWideResNet(nn.Module):
    def __init__(self, depth: int, widen_factor: int, num_classes: int = 100):
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"WRN depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.block1 = FRSKDWideGroup(n, widths[0], widths[1], 1)
        self.block1bn = nn.BatchNorm2d(widths[1])
        self.block2 = FRSKDWideGroup(n, widths[1], widths[2], 2)
        self.block2bn = nn.BatchNorm2d(widths[2])
        self.block3 = FRSKDWideGroup(n, widths[2], widths[3], 2)
        self.block3bn = nn.BatchNorm2d(widths[3])
        self.bn1 = nn.BatchNorm2d(widths[3])  # built but unused by the official forward (see module doc)
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3], num_classes)
        self.stages = ["block1bn", "block2bn", "block3bn"]
        self.stage_channels = widths[1:]
        self.feature_tap = "block3bn"
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)
        self.bn1.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        f1 = self.block1bn(self.block1(self.conv1(x)))
        f2 = self.block2bn(self.block2(f1))
        f3 = self.block3bn(self.block3(f2))
        return self.fc(self.avgpool(self.relu(f3)).flatten(1))


@MODELS.register("frskd_wrn_16_2")
def frskd_wrn_16_2(num_classes: int = 100) -> nn.Module:
    """WRN-16-2 as FRSKD's official code builds it (a BN after each group, none at block input); stages block1bn..3."""
    return FRSKDWideResNet(16, 2, num_classes)
