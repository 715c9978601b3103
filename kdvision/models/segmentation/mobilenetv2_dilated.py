"""Dilated MobileNetV2 backbone (Sandler et al., CVPR 2018) at output stride 8.

The seven inverted-residual groups are gathered into four stages so that every backbone of
this package has ``layer1..layer4`` (tap paths ``backbone.layer1`` ...):

| stage  | groups (t, c, n, s)             | stride | out channels (width 1.0) |
|--------|---------------------------------|--------|--------------------------|
| stem   | conv 3x3 32 s2; (1, 16, 1, 1)   | 2      | 16                       |
| layer1 | (6, 24, 2, 2)                   | 4      | 24                       |
| layer2 | (6, 32, 3, 2)                   | 8      | 32                       |
| layer3 | (6, 64, 4, 2->1 d2); (6, 96, 3, 1 d2)   | 8 | 96                   |
| layer4 | (6, 160, 3, 2->1 d4); (6, 320, 1, 1 d4) | 8 | 320                  |

``width`` multiplies every channel count (rounded to multiples of 8, as in the paper's code).
"""
from __future__ import annotations

from torch import nn


def make_divisible(v: float, divisor: int = 8) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1, dilation: int = 1, groups: int = 1):
    pad = (kernel - 1) // 2 * dilation
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, pad, dilation=dilation, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, dilation: int = 1):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [conv_bn_relu(cin, hidden, 1)]
        layers += [conv_bn_relu(hidden, hidden, 3, stride, dilation, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.use_residual else self.conv(x)


# (expand t, channels c, repeats n, stride s, dilation d) per group, strides already dilated
GROUPS = {
    "stem": [(1, 16, 1, 1, 1)],
    "layer1": [(6, 24, 2, 2, 1)],
    "layer2": [(6, 32, 3, 2, 1)],
    "layer3": [(6, 64, 4, 1, 2), (6, 96, 3, 1, 2)],
    "layer4": [(6, 160, 3, 1, 4), (6, 320, 1, 1, 4)],
}


class DilatedMobileNetV2(nn.Module):
    """MobileNetV2 trunk, output stride 8; ``forward`` returns [layer1..layer4] outputs."""

    stage_names = ("layer1", "layer2", "layer3", "layer4")

    def __init__(self, width: float = 1.0):
        super().__init__()
        cin = make_divisible(32 * width)
        stem = [conv_bn_relu(3, cin, 3, stride=2)]
        self.out_channels = []
        dilation = 1
        for name, groups in GROUPS.items():
            blocks = stem if name == "stem" else []
            for t, c, n, s, d in groups:
                cout = make_divisible(c * width)
                for i in range(n):
                    # the first block of a group keeps the dilation in effect before it
                    blocks.append(InvertedResidual(cin, cout, s if i == 0 else 1, t, dilation if i == 0 else d))
                    cin = cout
                dilation = d
            setattr(self, name, nn.Sequential(*blocks))
            if name != "stem":
                self.out_channels.append(cin)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")

    def forward(self, x):
        x = self.stem(x)
        outs = []
        for name in self.stage_names:
            x = getattr(self, name)(x)
            outs.append(x)
        return outs
