"""CIFAR ResNets of depth 6n+2 (He et al., "Deep Residual Learning for Image Recognition",
CVPR 2016, Sec. 4.2): resnet8/14/20/32/44/56/110 and the 4x-wide resnet8x4 / resnet32x4.

Follows the CIFAR definitions of the distillation benchmark (HobbitLong/RepDistiller
models/resnet.py, identical in megvii-research/mdistiller): 3x3 stem without pooling, three
stages of BasicBlocks, 1x1-conv+BN projection shortcuts where the shape changes, global
average pooling, one linear layer. Parameter and buffer names are the same as there, so
checkpoints of that code (e.g. the published CIFAR-100 teachers) load directly.

Taps (``model.stages``): "layer1", "layer2", "layer3" are the post-ReLU stage outputs
(32x32, 16x16, 8x8 at a 32x32 input), the features RepDistiller returns as f1..f3;
"relu" is the stem output (its f0). "layer3" is ``model.feature_tap``. The pre-ReLU sum of
block i of a stage is the input of "layerK.i.relu" on its last call; every ReLU of a block
is its ``relu`` module, so a hook on "layerK.i.relu" records the block output.
``model.preact_stages`` are those pre-ReLU stage outputs ("layerK.<last>.relu:input", the
benchmark's preact_feats f1..f3) and ``model.bn_before_relu`` the BN feeding each
("layerK.<last>.bn2", its get_bn_before_relu), for OFD and ReviewKD.

Differences that change no result at 32x32: no in-place operations (so that every tapped
output stays what the module returned), and adaptive average pooling instead of a fixed
8x8 window, which also lets other input sizes run.
"""
from __future__ import annotations

from torch import Tensor, nn

from kdvision.registry import MODELS


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class CifarResNet(nn.Module):
    """ResNet for 32x32 inputs: depth = 6n + 2 (n BasicBlocks per stage).

    ``widths`` = (stem, stage1, stage2, stage3) channels: (16, 16, 32, 64) for resnet20 etc.,
    (32, 64, 128, 256) for the x4 models.
    """

    def __init__(self, depth: int, widths: tuple[int, int, int, int], num_classes: int = 100):
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        blocks = (depth - 2) // 6
        self.conv1 = conv3x3(3, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self.layer1 = self._stage(widths[0], widths[1], blocks, stride=1)
        self.layer2 = self._stage(widths[1], widths[2], blocks, stride=2)
        self.layer3 = self._stage(widths[2], widths[3], blocks, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3], num_classes)
        self.stages = ["layer1", "layer2", "layer3"]
        self.stage_channels = list(widths[1:])
        self.feature_tap = "layer3"
        last = blocks - 1
        self.preact_stages = [f"layer{k}.{last}.relu:input" for k in (1, 2, 3)]
        self.bn_before_relu = [f"layer{k}.{last}.bn2" for k in (1, 2, 3)]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def _stage(in_channels: int, channels: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [BasicBlock(in_channels, channels, stride)]
        layers += [BasicBlock(channels, channels) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


@MODELS.register("resnet8")
def resnet8(num_classes: int = 100) -> nn.Module:
    """CIFAR ResNet-8 (He et al. 2016; RepDistiller definition); stages layer1..3."""
    return CifarResNet(8, (16, 16, 32, 64), num_classes)


@MODELS.register("resnet14")
def resnet14(num_classes: int = 100) -> nn.Module:
    """CIFAR ResNet-14 (He et al. 2016; RepDistiller definition); stages layer1..3."""
    return CifarResNet(14, (16, 16, 32, 64), num_classes)


@MODELS.register("resnet20")
def resnet20(num_classes: int = 100) -> nn.Module:
    """CIFAR ResNet-20 (He et al. 2016; RepDistiller definition); stages layer1..3."""
    return CifarResNet(20, (16, 16, 32, 64), num_classes)


@MODELS.register("resnet32")
def resnet32(num_classes: int = 100) -> nn.Module:
    """CIFAR ResNet-32 (He et al. 2016; RepDistiller definition); stages layer1..3."""
    return CifarResNet(32, (16, 16, 32, 64), num_classes)


@MODELS.register("resnet44")
def resnet44(num_classes: int = 100) -> nn.Module:
    """CIFAR ResNet-44 (He et al. 2016; RepDistiller definition); stages layer1..3."""
    return CifarResNet(44, (16, 16, 32, 64), num_classes)


@MODELS.register("resnet56")
def resnet56(num_classes: int = 100) -> nn.Module:
    """CIFAR ResNet-56 (He et al. 2016; RepDistiller definition); stages layer1..3."""
    return CifarResNet(56, (16, 16, 32, 64), num_classes)


@MODELS.register("resnet110")
def resnet110(num_classes: int = 100) -> nn.Module:
    """CIFAR ResNet-110 (He et al. 2016; RepDistiller definition); stages layer1..3."""
    return CifarResNet(110, (16, 16, 32, 64), num_classes)


@MODELS.register("resnet8x4")
def resnet8x4(num_classes: int = 100) -> nn.Module:
    """CIFAR ResNet-8 4x wide (He et al. 2016; RepDistiller definition); stages layer1..3."""
    return CifarResNet(8, (32, 64, 128, 256), num_classes)


@MODELS.register("resnet32x4")
def resnet32x4(num_classes: int = 100) -> nn.Module:
    """CIFAR ResNet-32 4x wide (He et al. 2016; RepDistiller definition); stages layer1..3."""
    return CifarResNet(32, (32, 64, 128, 256), num_classes)
