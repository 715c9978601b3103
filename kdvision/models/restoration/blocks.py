"""Building blocks of the KTDN / SRKTDN dehazing networks.

KTDN: Wu et al., "Knowledge Transfer Dehazing Network for NonHomogeneous Dehazing", CVPRW 2020
(official code GlassyWu/KTDN). SRKTDN: NTIRE 2021 NonHomogeneous Dehazing Challenge report
(Ancuti et al., CVPRW 2021; official code Errno1024/SRKT-ntire2021). The attention block is
FFA-Net's (Qin et al., AAAI 2020); the SR branch follows WDSR's wide activation (Yu et al. 2018).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv3x3(cin: int, cout: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, bias=bias)


class ChannelAttention(nn.Module):
    """Global average pool -> 1x1 (c -> c/8) -> ReLU -> 1x1 (c/8 -> c) -> sigmoid; scales channels."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.weights = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)


class PixelAttention(nn.Module):
    """1x1 (c -> c/8) -> ReLU -> 1x1 (c/8 -> 1) -> sigmoid; scales every pixel."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.weights = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(hidden, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)


class DehazeBlock(nn.Module):
    """FFA-style block: r = relu(conv1(x)) + x; r = PA(CA(conv2(r))); return r + x."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)
        self.channel_attention = ChannelAttention(channels)
        self.pixel_attention = PixelAttention(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = F.relu(self.conv1(x)) + x
        r = self.pixel_attention(self.channel_attention(self.conv2(r)))
        return r + x


class Enhancer(nn.Module):
    """PSP-style enhancer: two conv3x3 (LeakyReLU 0.2); average pools of 32, 16, 8 and 4 pixels
    -> 1x1 conv to one channel -> LeakyReLU -> nearest upsampling; concat; conv3x3; tanh.

    The 32-pixel pool needs inputs of at least 32x32.
    """

    POOLS = (32, 16, 8, 4)

    def __init__(self, in_channels: int, out_channels: int = 28, width: int = 20):
        super().__init__()
        self.refine1 = conv3x3(in_channels, width)
        self.refine2 = conv3x3(width, width)
        self.pool_convs = nn.ModuleList(nn.Conv2d(width, 1, 1) for _ in self.POOLS)
        self.refine3 = conv3x3(width + len(self.POOLS), out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.refine1(x), 0.2)
        x = F.leaky_relu(self.refine2(x), 0.2)
        size = x.shape[-2:]
        pooled = [F.interpolate(F.leaky_relu(conv(F.avg_pool2d(x, k)), 0.2), size=size, mode="nearest")
                  for k, conv in zip(self.POOLS, self.pool_convs)]
        return torch.tanh(self.refine3(torch.cat(pooled + [x], dim=1)))


class WideActivationBlock(nn.Module):
    """conv3x3 (c -> expand*c) + BN + ReLU, conv3x3 (-> c) + BN, scaled by 0.2, plus the input."""

    def __init__(self, channels: int, expand: int = 4, res_scale: float = 0.2):
        super().__init__()
        self.body = nn.Sequential(conv3x3(channels, channels * expand), nn.BatchNorm2d(channels * expand),
                                  nn.ReLU(inplace=True), conv3x3(channels * expand, channels),
                                  nn.BatchNorm2d(channels))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) * self.res_scale + x


class SRBranch(nn.Module):
    """SRKTDN's super-resolution branch, run on the hazy input at full resolution:
    conv3x3 3->16 + BN; inverse PixelShuffle x4 (256 ch at 1/4); conv3x3 256->16 + BN;
    3 wide-activation blocks; conv3x3 16->256; PixelShuffle x4; BN; conv3x3 16->``out_channels``.
    Needs inputs whose sides are multiples of 4."""

    def __init__(self, out_channels: int = 4, width: int = 16, blocks: int = 3, factor: int = 4):
        super().__init__()
        wide = width * factor * factor
        self.body = nn.Sequential(
            conv3x3(3, width), nn.BatchNorm2d(width),
            nn.PixelUnshuffle(factor),
            conv3x3(wide, width), nn.BatchNorm2d(width),
            *[WideActivationBlock(width) for _ in range(blocks)],
            conv3x3(width, wide),
            nn.PixelShuffle(factor), nn.BatchNorm2d(width),
            conv3x3(width, out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class WidenBlock(nn.Module):
    """The teacher's bridge to the student's bottleneck width (official SRKTDN teacher):
    out = conv1x1(x + IN(conv3x3(relu(IN(conv3x3(x)))))), with instance norms (no affine)."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int):
        super().__init__()
        self.residual = nn.Sequential(conv3x3(in_channels, hidden), nn.InstanceNorm2d(hidden), nn.ReLU(inplace=True),
                                      conv3x3(hidden, in_channels), nn.InstanceNorm2d(in_channels))
        self.project = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(x + self.residual(x))


class Tail(nn.Sequential):
    """Reflection pad 3 + conv7x7 -> 3 channels + tanh."""

    def __init__(self, in_channels: int):
        super().__init__(nn.ReflectionPad2d(3), nn.Conv2d(in_channels, 3, 7), nn.Tanh())
