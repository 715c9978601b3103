"""ResNet-18 for 32x32 inputs (He et al., "Deep Residual Learning for Image Recognition",
CVPR 2016): the ImageNet ResNet-18 stages (64, 128, 256, 512 channels, two BasicBlocks each)
with a 3x3 stride-1 stem and no max-pool.

Follows HobbitLong/RepDistiller models/resnetv2.py (ResNet18; same in mdistiller), whose
parameter and buffer names are kept ("shortcut", "linear") so its checkpoints load. The
FRSKD official CIFAR ResNet-18 (MingiJi/FRSKD models/resnet.py) has the same layers and
parameter count; it applies each block's final ReLU at the start of the next block, which
gives the same stage features after ReLU.

Taps (``model.stages``): "layer1".."layer4", the post-ReLU stage outputs (32, 16, 8, 4 pixels
at a 32x32 input; RepDistiller's f1..f4, FRSKD's four features). ``feature_tap`` = "layer4".
The stem output is "relu". No in-place operations.

Initialisation (``init``): "kaiming_fan_out" (default; RepDistiller's: convs Kaiming-normal
fan-out, BN 1/0, the linear layer PyTorch's default) or "pytorch" (every layer keeps PyTorch's
default init, as FRSKD's official CIFAR ResNet-18, which sets none; with the same seed the
weights equal the official model's, its "downsample"/"fc" being our "shortcut"/"linear").
"""
from __future__ import annotations

from torch import Tensor, nn

from kdvision.errors import UserError
from kdvision.registry import MODELS


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


INITS = ("kaiming_fan_out", "pytorch")


class CifarResNet18(nn.Module):
    def __init__(self, num_classes: int = 100, blocks: tuple[int, ...] = (2, 2, 2, 2), init: str = "kaiming_fan_out"):
        super().__init__()
        if init not in INITS:
            raise UserError(f"resnet18_cifar: init must be one of {', '.join(INITS)}, got '{init}'")
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        widths = (64, 128, 256, 512)
        in_channels = 64
        for i, (width, n) in enumerate(zip(widths, blocks)):
            stride = 1 if i == 0 else 2
            layers = [BasicBlock(in_channels, width, stride)]
            layers += [BasicBlock(width, width) for _ in range(n - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layers))
            in_channels = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(512, num_classes)
        self.stages = ["layer1", "layer2", "layer3", "layer4"]
        self.stage_channels = list(widths)
        self.feature_tap = "layer4"
        if init == "kaiming_fan_out":
            self._init_kaiming_fan_out()

    def _init_kaiming_fan_out(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.linear(self.avgpool(x).flatten(1))


@MODELS.register("resnet18_cifar")
def resnet18_cifar(num_classes: int = 100, init: str = "kaiming_fan_out") -> nn.Module:
    """ResNet-18 with a 3x3 stem and no max-pool, for 32x32 inputs (RepDistiller ResNet18); stages layer1..4.

    ``init``: "kaiming_fan_out" (RepDistiller) or "pytorch" (PyTorch defaults, FRSKD's official code)."""
    return CifarResNet18(num_classes, init=init)
