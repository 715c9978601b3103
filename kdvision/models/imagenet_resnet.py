"""ImageNet ResNet-18/34/50 (He et al., "Deep Residual Learning for Image Recognition",
CVPR 2016, table 1) in the torchvision layout.

Module names are torchvision's (conv1, bn1, relu, maxpool, layer1..layer4 of blocks with
conv1/bn1/conv2/bn2[/conv3/bn3]/downsample.{0,1}, avgpool, fc), so a torchvision state dict
loads with ``load_state_dict`` unchanged. As in torchvision (ResNet "v1.5"), a Bottleneck
down-samples in its 3x3 conv; the shortcut is a strided 1x1 conv + BN where the shape changes.
Initialisation: Kaiming-normal (fan-out) convs, BN weight 1 / bias 0, as torchvision.

Taps (``model.stages``): "layer1".."layer4", the post-ReLU stage outputs (strides 4, 8, 16,
32; 64/128/256/512 channels, x4 for ResNet-50). ``feature_tap`` = "layer4". The stem output
after max-pooling is "maxpool". A block's ``relu`` module applies all its ReLUs, so a hook on
"layerK.i.relu" records the block output (its last call). No in-place operations.
"""
from __future__ import annotations

from torch import Tensor, nn

from kdvision.registry import MODELS


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv1x1(in_channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = conv1x1(channels, channels * self.expansion)
        self.bn3 = nn.BatchNorm2d(channels * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class ImageNetResNet(nn.Module):
    def __init__(self, block: type[BasicBlock] | type[Bottleneck], blocks: list[int],
                 num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_channels = 64
        widths = (64, 128, 256, 512)
        for i, (width, n) in enumerate(zip(widths, blocks)):
            stride = 1 if i == 0 else 2
            out_channels = width * block.expansion
            downsample = None
            if stride != 1 or in_channels != out_channels:
                downsample = nn.Sequential(conv1x1(in_channels, out_channels, stride),
                                           nn.BatchNorm2d(out_channels))
            layers = [block(in_channels, width, stride, downsample)]
            layers += [block(out_channels, width) for _ in range(n - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layers))
            in_channels = out_channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        self.stages = ["layer1", "layer2", "layer3", "layer4"]
        self.stage_channels = [w * block.expansion for w in widths]
        self.feature_tap = "layer4"
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


@MODELS.register("resnet18")
def resnet18(num_classes: int = 1000) -> nn.Module:
    """ImageNet ResNet-18 (He et al. 2016), torchvision layout; stages layer1..4."""
    return ImageNetResNet(BasicBlock, [2, 2, 2, 2], num_classes)


@MODELS.register("resnet34")
def resnet34(num_classes: int = 1000) -> nn.Module:
    """ImageNet ResNet-34 (He et al. 2016), torchvision layout; stages layer1..4."""
    return ImageNetResNet(BasicBlock, [3, 4, 6, 3], num_classes)


@MODELS.register("resnet50")
def resnet50(num_classes: int = 1000) -> nn.Module:
    """ImageNet ResNet-50 (He et al. 2016), torchvision layout; stages layer1..4."""
    return ImageNetResNet(Bottleneck, [3, 4, 6, 3], num_classes)
