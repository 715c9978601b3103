"""VGG networks with batch normalisation for CIFAR (Simonyan & Zisserman, "Very Deep
Convolutional Networks for Large-Scale Image Recognition", ICLR 2015): vgg8/11/13/16/19.

Follows the CIFAR definition of the distillation benchmark (HobbitLong/RepDistiller
models/vgg.py, the *_bn builders; identical in megvii-research/mdistiller): five conv groups
block0..block4 of conv3x3(+bias)-BN-ReLU, 2x2 max-pools pool0..pool2 between the first four
groups, pool3 only for 64x64 inputs (TinyImageNet), global average pooling and ONE linear
layer (no fully connected stack). Parameter and buffer names are the same as there
(block0.0.weight, block0.1.running_mean, ..., classifier.weight), so its checkpoints load.

Taps: each group ends with its ReLU, so "block0".."block4" are post-ReLU group outputs
(32, 16, 8, 4, 4 pixels at a 32x32 input) = RepDistiller's f0..f4. ``model.stages`` =
["block1", "block2", "block3", "block4"] (its feat[1:-1], the AT layers); ``feature_tap`` =
"block4" (its feat[-2], the SP layer). A group's pre-ReLU output (RepDistiller's preact
features) is its last BatchNorm, e.g. "block1.1" for vgg8: ``model.preact_stages`` lists them for
block1..block4 and ``model.bn_before_relu`` the same BNs (its get_bn_before_relu). No in-place operations.
"""
from __future__ import annotations

import math

from torch import Tensor, nn

from kdvision.registry import MODELS

# output channels of the convs of block0..block4
CONFIGS: dict[str, list[list[int]]] = {
    "vgg8": [[64], [128], [256], [512], [512]],
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}


def conv_group(in_channels: int, widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        in_channels = width
    return nn.Sequential(*layers)


class CifarVGG(nn.Module):
    def __init__(self, config: list[list[int]], num_classes: int = 100):
        super().__init__()
        in_channels = 3
        for i, widths in enumerate(config):
            self.add_module(f"block{i}", conv_group(in_channels, widths))
            in_channels = widths[-1]
        self.pool0 = nn.MaxPool2d(2, 2)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.pool3 = nn.MaxPool2d(2, 2)
        self.pool4 = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_channels, num_classes)
        self.stages = ["block1", "block2", "block3", "block4"]
        self.stage_channels = [w[-1] for w in config[1:]]
        self.feature_tap = "block4"
        # the pre-ReLU group outputs (each group's last BN) and the BN before each ReLU, for OFD / ReviewKD
        self.preact_stages = [f"block{k}.{3 * len(config[k]) - 2}" for k in (1, 2, 3, 4)]
        self.bn_before_relu = list(self.preact_stages)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan))
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        height = x.shape[2]
        x = self.pool0(self.block0(x))
        x = self.pool1(self.block1(x))
        x = self.pool2(self.block2(x))
        x = self.block3(x)
        if height == 64:  # as in the reference: one more halving for 64x64 (TinyImageNet) inputs
            x = self.pool3(x)
        x = self.block4(x)
        return self.classifier(self.pool4(x).flatten(1))


@MODELS.register("vgg8")
def vgg8(num_classes: int = 100) -> nn.Module:
    """VGG-8 with BN for CIFAR (Simonyan & Zisserman 2015; RepDistiller vgg8_bn); stages block1..4."""
    return CifarVGG(CONFIGS["vgg8"], num_classes)


@MODELS.register("vgg11")
def vgg11(num_classes: int = 100) -> nn.Module:
    """VGG-11 with BN for CIFAR (Simonyan & Zisserman 2015; RepDistiller vgg11_bn); stages block1..4."""
    return CifarVGG(CONFIGS["vgg11"], num_classes)


@MODELS.register("vgg13")
def vgg13(num_classes: int = 100) -> nn.Module:
    """VGG-13 with BN for CIFAR (Simonyan & Zisserman 2015; RepDistiller vgg13_bn); stages block1..4."""
    return CifarVGG(CONFIGS["vgg13"], num_classes)


@MODELS.register("vgg16")
def vgg16(num_classes: int = 100) -> nn.Module:
    """VGG-16 with BN for CIFAR (Simonyan & Zisserman 2015; RepDistiller vgg16_bn); stages block1..4."""
    return CifarVGG(CONFIGS["vgg16"], num_classes)


@MODELS.register("vgg19")
def vgg19(num_classes: int = 100) -> nn.Module:
    """VGG-19 with BN for CIFAR (Simonyan & Zisserman 2015; RepDistiller vgg19_bn); stages block1..4."""
    return CifarVGG(CONFIGS["vgg19"], num_classes)
