"""The U-Net-style restoration network of two-stage knowledge learning (Chen et al., CVPR 2022).

The official code uses MSBDN with dense feature fusion (Dong et al., "Multi-Scale Boosted
Dehazing Network with Dense Feature Fusion", CVPR 2020) for every teacher and the student.
This is our own implementation of that layout, with the base width and the number of
bottleneck residual blocks as options (official: width 16, 18 blocks, ~31 M parameters):

- head: reflection-padded 11x11 conv 3 -> w, then 3 residual blocks (full resolution);
- four encoder levels, each a stride-2 conv doubling the width, then the channels split in
  halves: one half through a back-projection fusion with all earlier levels (dense feature
  fusion), the other through a residual dense block; concatenated; then 3 residual blocks
  (none at the last level);
- bottleneck at 1/16: r + body(2r), body = ``bottleneck_blocks`` residual blocks;
- four decoder levels mirroring the encoder (transposed conv, bilinear resize to the skip,
  residual blocks, fusion with all coarser decoder levels, residual dense block);
- tail: reflection-padded 3x3 conv -> 3 channels (no activation, as in the official code).

Knowledge taps (``model.stages``, the module paths used by the CKT of the paper, as in the
official ``return_feat``): ``enc2`` (4w ch at 1/4), ``enc3`` (8w at 1/8), ``enc4`` (16w at 1/16)
and ``bottleneck`` (16w at 1/16). Inputs of any size work: they are reflection-padded to a
multiple of 16, and to at least 32 (the 1/16 maps need 2 pixels for reflection padding);
the output is cropped back.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kdvision.registry import MODELS


class ReflectConv(nn.Sequential):
    """Reflection padding k//2 then a conv (with bias)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1):
        super().__init__(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride))


class ResidualBlock(nn.Module):
    """x + 0.1 * conv(PReLU(conv(x)))."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1, self.act, self.conv2 = ReflectConv(c, c, 3), nn.PReLU(), ReflectConv(c, c, 3)

    def forward(self, x):
        return x + 0.1 * self.conv2(self.act(self.conv1(x)))


def residual_stack(c: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[ResidualBlock(c) for _ in range(n)])


class ResidualDenseBlock(nn.Module):
    """Densely connected 3x3 convs (ReLU, no bias), 1x1 fusion back to c channels, + input."""

    def __init__(self, c: int, layers: int = 4, growth: int | None = None):
        super().__init__()
        growth = growth or c
        self.dense = nn.ModuleList(nn.Conv2d(c + i * growth, growth, 3, padding=1, bias=False)
                                   for i in range(layers))
        self.fuse = nn.Conv2d(c + layers * growth, c, 1, bias=False)

    def forward(self, x):
        h = x
        for conv in self.dense:
            h = torch.cat([h, F.relu(conv(h))], 1)
        return x + self.fuse(h)


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.PReLU())


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.PReLU())


class BackProjectionFusion(nn.Module):
    """Dense feature fusion (MSBDN): refine x with the residuals against each earlier feature.

    ``memory[i]`` lies ``steps - i`` scale steps from x. For each one in turn: resample x to
    its scale, subtract it, resample the difference back and add it to x. ``toward_fine``: the
    memory is at finer scales (encoder); otherwise at coarser scales (decoder).
    """

    def __init__(self, c: int, steps: int, toward_fine: bool):
        super().__init__()
        self.steps = steps
        if toward_fine:  # c -> c/2 -> c/4 ... and back
            self.go = nn.ModuleList(_up(c >> i, c >> (i + 1)) for i in range(steps))
            self.back = nn.ModuleList(_down(c >> (i + 1), c >> i) for i in range(steps))
        else:  # c -> 2c -> 4c ... and back
            self.go = nn.ModuleList(_down(c << i, c << (i + 1)) for i in range(steps))
            self.back = nn.ModuleList(_up(c << (i + 1), c << i) for i in range(steps))

    def forward(self, x, memory: list[torch.Tensor]):
        for i, m in enumerate(memory):
            n = self.steps - i
            h = x
            for j in range(n):
                h = self.go[j](h)
            h = h - m
            for j in reversed(range(n)):
                h = self.back[j](h)
            x = x + h
        return x


class EncoderLevel(nn.Module):
    """Stride-2 conv (c -> 2c), split: fusion half | dense half, concat, residual blocks.

    Returns (output, fused half); the fused half joins the encoder's memory.
    """

    def __init__(self, c: int, level: int, blocks: int = 3):
        super().__init__()
        self.down = ReflectConv(c, 2 * c, 3, stride=2)
        self.fusion = BackProjectionFusion(c, level, toward_fine=True)
        self.rdb = ResidualDenseBlock(c)
        self.body = residual_stack(2 * c, blocks)

    def forward(self, x, memory):
        a, b = self.down(x).chunk(2, dim=1)
        a = self.fusion(a, memory)
        h = torch.cat([a, self.rdb(b)], 1)
        return h + self.body(h) if len(self.body) else h, a


class Bottleneck(nn.Module):
    """r + body(2 r) at 1/16 (the official ``dehaze(2r) + 2r - r``)."""

    def __init__(self, c: int, blocks: int):
        super().__init__()
        self.body = residual_stack(c, blocks)

    def forward(self, x):
        return self.body(2 * x) + x


class DecoderLevel(nn.Module):
    """Transposed conv (2c -> c), resize to the skip, residual blocks, fusion | dense halves.

    Returns (output, fused half); the fused half joins the decoder's memory.
    """

    def __init__(self, c: int, level: int, blocks: int = 3):
        super().__init__()
        self.up = nn.ConvTranspose2d(2 * c, c, 3, stride=2)
        self.body = residual_stack(c, blocks)
        self.fusion = BackProjectionFusion(c // 2, level, toward_fine=False)
        self.rdb = ResidualDenseBlock(c // 2)

    def forward(self, x, skip, memory):
        u = F.interpolate(self.up(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
        h = u + skip
        h = self.body(h) + skip  # official: dense(u + skip) + (u + skip) - u
        a, b = h.chunk(2, dim=1)
        a = self.fusion(a, memory)
        return torch.cat([a, self.rdb(b)], 1), a


class WeatherUNet(nn.Module):
    """MSBDN-style U-Net for haze/rain/snow removal; see the module docstring."""

    stages = ["enc2", "enc3", "enc4", "bottleneck"]
    input_multiple = 16  # (the restoration package's inference pads to these itself)
    min_input_size = 32

    def __init__(self, width: int = 16, bottleneck_blocks: int = 18, level_blocks: int = 3):
        super().__init__()
        if width < 2 or width % 2:
            raise ValueError(f"width must be an even number >= 2, got {width}")
        w = width
        self.head = ReflectConv(3, w, 11)
        self.enc0 = residual_stack(w, level_blocks)
        self.enc1 = EncoderLevel(w, 1, level_blocks)
        self.enc2 = EncoderLevel(2 * w, 2, level_blocks)
        self.enc3 = EncoderLevel(4 * w, 3, level_blocks)
        self.enc4 = EncoderLevel(8 * w, 4, blocks=0)
        self.bottleneck = Bottleneck(16 * w, bottleneck_blocks)
        self.dec3 = DecoderLevel(8 * w, 1, level_blocks)
        self.dec2 = DecoderLevel(4 * w, 2, level_blocks)
        self.dec1 = DecoderLevel(2 * w, 3, level_blocks)
        self.dec0 = DecoderLevel(w, 4, level_blocks)
        self.tail = ReflectConv(w, 3, 3)

    def forward(self, x):
        h, w = x.shape[-2:]
        m, lo = self.input_multiple, self.min_input_size
        ph, pw = max(lo, h + (-h) % m) - h, max(lo, w + (-w) % m) - w
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
        f0 = self.head(x)
        memory = [f0.chunk(2, dim=1)[0]]
        s0 = f0 + self.enc0(f0)
        skips = [s0]
        y = s0
        for level in (self.enc1, self.enc2, self.enc3, self.enc4):
            y, fused = level(y, memory)
            memory.append(fused)
            skips.append(y)
        y = self.bottleneck(y)
        up_memory = [y.chunk(2, dim=1)[0]]
        for level, skip in zip((self.dec3, self.dec2, self.dec1, self.dec0), reversed(skips[:-1])):
            y, fused = level(y, skip, up_memory)
            up_memory.append(fused)
        out = self.tail(y)
        return out[..., :h, :w]


@MODELS.register("tkl_unet")
def tkl_unet(width: int = 16, bottleneck_blocks: int = 18, level_blocks: int = 3) -> nn.Module:
    """MSBDN-style U-Net of two-stage knowledge learning; taps enc2, enc3, enc4, bottleneck."""
    return WeatherUNet(width, bottleneck_blocks, level_blocks)
