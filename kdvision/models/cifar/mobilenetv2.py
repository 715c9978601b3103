"""MobileNetV2 for CIFAR, half width (Sandler et al., "MobileNetV2: Inverted Residuals and
Linear Bottlenecks", CVPR 2018): the "MobileNetV2" student of the CIFAR-100 distillation tables.

Follows HobbitLong/RepDistiller models/mobilenetv2.py, ``mobile_half`` = expansion T = 6,
width 0.5 (identical in megvii-research/mdistiller): a stride-2 3x3 stem (16 channels), the
seven inverted-residual groups of the paper's table 2 with widths halved (8, 12, 16, 32, 48,
80, 160) and strides 1, 1, 2, 2, 1, 2, 1, a 1x1 conv to 1280 channels, global average
pooling and one linear layer. As there, every inverted residual keeps its 1x1 expansion conv,
even at expansion 1, and the 1280-channel width is not scaled. Parameter and buffer names are
the same (conv1.0, blocks.G.B.conv.K, conv2.0, classifier.0), so its checkpoints load.

Taps (``model.stages``): "blocks.1", "blocks.2", "blocks.4", "blocks.6", the outputs of
groups 1, 2, 4 and 6 (12, 16, 48, 160 channels; 16, 8, 4, 2 pixels at a 32x32 input), which
are RepDistiller's f1..f4. They are linear-bottleneck outputs: the network has no ReLU there,
so these features are NOT post-ReLU (the community taps them as they are).
``feature_tap`` = "blocks.6" (RepDistiller's feat[-2], its SP layer). The post-ReLU
1280-channel map before pooling is "conv2"; the stem output is "conv1" (f0).
No in-place operations; adaptive average pooling instead of a fixed 2x2 window (same result
at 32x32).
"""
from __future__ import annotations

import math

from torch import Tensor, nn

from kdvision.registry import MODELS

# expansion t (None = the model's T), output channels c, repeats n, first stride s
INVERTED_RESIDUAL_SETTING = [
    (1, 16, 1, 1),
    (None, 24, 2, 1),
    (None, 32, 3, 2),
    (None, 64, 4, 2),
    (None, 96, 3, 1),
    (None, 160, 3, 2),
    (None, 320, 1, 1),
]


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU())


class InvertedResidual(nn.Module):
    """1x1 expand-BN-ReLU, 3x3 depthwise-BN-ReLU, 1x1 project-BN (linear); identity shortcut
    when stride is 1 and widths match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_channels * expansion
        self.use_residual = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class CifarMobileNetV2(nn.Module):
    def __init__(self, expansion: int = 6, width_mult: float = 0.5, num_classes: int = 100):
        super().__init__()
        channels = int(32 * width_mult)
        self.conv1 = conv_bn_relu(3, channels, 3, 2)
        self.blocks = nn.ModuleList()
        group_channels = []
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            out_channels = int(c * width_mult)
            group = []
            for i in range(n):
                group.append(InvertedResidual(channels, out_channels, s if i == 0 else 1,
                                              expansion if t is None else t))
                channels = out_channels
            self.blocks.append(nn.Sequential(*group))
            group_channels.append(out_channels)
        last_channels = int(1280 * width_mult) if width_mult > 1.0 else 1280
        self.conv2 = conv_bn_relu(channels, last_channels, 1, 1)
        self.classifier = nn.Sequential(nn.Linear(last_channels, num_classes))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.stages = ["blocks.1", "blocks.2", "blocks.4", "blocks.6"]
        self.stage_channels = [group_channels[i] for i in (1, 2, 4, 6)]
        self.feature_tap = "blocks.6"
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        for group in self.blocks:
            x = group(x)
        x = self.conv2(x)
        return self.classifier(self.avgpool(x).flatten(1))


@MODELS.register("mobilenetv2")
def mobilenetv2(num_classes: int = 100) -> nn.Module:
    """MobileNetV2 x0.5 for CIFAR (Sandler et al. 2018; RepDistiller mobile_half); stages blocks.1/2/4/6."""
    return CifarMobileNetV2(6, 0.5, num_classes)
