"""Segmentation decoders: PSPNet's pyramid pooling and DeepLabV3's ASPP, plus the auxiliary head.

Each decoder maps the last backbone stage to the feature that the classifier reads (512
channels at full width); that feature is the distillation tap (``model.feature_tap``).
The trailing Dropout2d belongs to the decoder, so the tap sees the same tensor the classifier
sees, as in the official PSPNet/APD code (``x_ppm``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin: int, cout: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = (kernel - 1) // 2 * dilation
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def adaptive_pool_matrix(size: int, bins: int, like: torch.Tensor) -> torch.Tensor:
    """[bins, size] averaging matrix of adaptive average pooling (bin i spans
    floor(i*size/bins) .. ceil((i+1)*size/bins)), so pooling is a product of two matrices; unlike
    ``adaptive_avg_pool2d`` it exports to ONNX when ``bins`` does not divide the map size."""
    i = torch.arange(bins, device=like.device)
    start = (i * size) // bins
    end = ((i + 1) * size + bins - 1) // bins
    j = torch.arange(size, device=like.device)
    inside = (j[None] >= start[:, None]) & (j[None] < end[:, None])
    return inside.to(like.dtype) / (end - start)[:, None].to(like.dtype)


def adaptive_avg_pool(x: torch.Tensor, bins: int) -> torch.Tensor:
    """The same values as ``F.adaptive_avg_pool2d(x, bins)``, as two matrix products."""
    ph = adaptive_pool_matrix(x.shape[-2], bins, x)
    pw = adaptive_pool_matrix(x.shape[-1], bins, x)
    return torch.einsum("ih,bchw,jw->bcij", ph, x, pw)


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling module (Zhao et al., CVPR 2017, Sec. 3.2).

    Average-pool to bins 1, 2, 3, 6; a 1x1 conv reduces each to in/4 channels; upsample
    (bilinear; ``align_corners`` True as the official PSPNet/APD code) and concatenate with the
    input (2 x in channels); a 3x3 conv-BN-ReLU merges to ``channels`` (512 at full width),
    then Dropout2d(0.1).
    """

    def __init__(self, in_channels: int, channels: int, bins=(1, 2, 3, 6), dropout: float = 0.1,
                 align_corners: bool = False):
        super().__init__()
        self.align_corners = align_corners
        reduced = in_channels // len(bins)
        self.bins = tuple(bins)
        self.pools = nn.ModuleList(conv_bn_relu(in_channels, reduced) for _ in self.bins)
        self.bottleneck = conv_bn_relu(in_channels + reduced * len(self.bins), channels, 3)
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, x):
        size = x.shape[-2:]
        branches = [x] + [F.interpolate(p(adaptive_avg_pool(x, b)), size, mode="bilinear",
                                        align_corners=self.align_corners)
                          for b, p in zip(self.bins, self.pools)]
        return self.dropout(self.bottleneck(torch.cat(branches, dim=1)))


class ASPP(nn.Module):
    """DeepLabV3's atrous spatial pyramid pooling (Chen et al., 2017, Sec. 3.3), output stride 8.

    Image-level pooling branch + 1x1 branch + three 3x3 branches at dilation 12, 24, 36, each
    conv-BN-ReLU to ``channels``; concatenated and merged by a 3x3 conv-BN-ReLU, then
    Dropout2d(0.1) (the mmsegmentation ASPPHead layout that the APD code uses).
    """

    def __init__(self, in_channels: int, channels: int, dilations=(12, 24, 36), dropout: float = 0.1):
        super().__init__()
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), *conv_bn_relu(in_channels, channels))
        self.branches = nn.ModuleList([conv_bn_relu(in_channels, channels, 1)] +
                                      [conv_bn_relu(in_channels, channels, 3, d) for d in dilations])
        self.bottleneck = conv_bn_relu(channels * (len(dilations) + 2), channels, 3)
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, x):
        pooled = self.image_pool(x).expand(-1, -1, *x.shape[-2:])
        out = torch.cat([pooled] + [b(x) for b in self.branches], dim=1)
        return self.dropout(self.bottleneck(out))


class AuxHead(nn.Sequential):
    """Auxiliary classifier on layer3 (PSPNet's deep supervision, loss weight 0.4):
    3x3 conv-BN-ReLU to ``channels`` (256 at full width), Dropout2d(0.1), 1x1 conv to classes."""

    def __init__(self, in_channels: int, channels: int, num_classes: int, dropout: float = 0.1):
        super().__init__(conv_bn_relu(in_channels, channels, 3), nn.Dropout2d(dropout),
                         nn.Conv2d(channels, num_classes, 1))
