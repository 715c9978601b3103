"""Dilated ResNet backbones (He et al., CVPR 2016) at output stride 8 for segmentation.

Layer3 and layer4 keep the stride-8 resolution and use dilation 2 and 4 instead of striding
(Chen et al., DeepLab; Zhao et al., PSPNet). Parameter names follow the ImageNet (torchvision)
layout -- ``conv1, bn1, layer1..layer4`` -- so an ImageNet state dict (``fc.*`` ignored) loads
with ``load_backbone_state``. ``base_width`` scales every channel count (64 = ImageNet width).
"""
from __future__ import annotations

from torch import nn


def conv3x3(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1, dilation: int = 1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(cin, width, stride, dilation)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, 1, dilation)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision "ResNet v1.5" bottleneck: the stride sits on the 3x3 convolution."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, dilation: int = 1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, dilation)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


DEPTHS = {18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)),
          50: (Bottleneck, (3, 4, 6, 3)), 101: (Bottleneck, (3, 4, 23, 3))}


class DilatedResNet(nn.Module):
    """ResNet-{18,34,50,101} trunk, output stride 8; ``forward`` returns [layer1..layer4] outputs.

    ``out_channels`` lists the four stage widths (ResNet-18 at base_width 64: 64, 128, 256, 512;
    ResNet-50/101: 256, 512, 1024, 2048).
    """

    stage_names = ("layer1", "layer2", "layer3", "layer4")

    def __init__(self, depth: int = 18, base_width: int = 64):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"ResNet depth {depth} not in {sorted(DEPTHS)}")
        block, counts = DEPTHS[depth]
        w = base_width
        self.conv1 = nn.Conv2d(3, w, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self._cin = w
        # (width, stride, dilation): layer3/4 trade their stride for dilation (output stride 8)
        plan = [(w, 1, 1), (2 * w, 2, 1), (4 * w, 1, 2), (8 * w, 1, 4)]
        for name, n, (width, stride, dilation) in zip(self.stage_names, counts, plan):
            setattr(self, name, self._make_layer(block, width, n, stride, dilation))
        self.out_channels = [width * block.expansion for width, _, _ in plan]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block, width: int, n: int, stride: int, dilation: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._cin != width * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(self._cin, width * block.expansion, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(width * block.expansion))
        # the first block of a dilated stage uses half the dilation (DeepLab / PSPNet practice)
        layers = [block(self._cin, width, stride, max(1, dilation // 2), downsample)]
        self._cin = width * block.expansion
        layers += [block(self._cin, width, 1, dilation) for _ in range(n - 1)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for name in self.stage_names:
            x = getattr(self, name)(x)
            outs.append(x)
        return outs
