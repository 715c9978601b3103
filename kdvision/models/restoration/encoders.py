"""Encoders of the dehazing networks, cut after the third stage.

Both return ``(skip4, skip8, x16)``: features at 1/4, 1/8 and 1/16 of the input size, and
expose their widths as ``channels = (c4, c8, c16)``. Module names follow the usual ImageNet
checkpoints (conv1, bn1, layer1..., downsample), so a local file of ImageNet weights can be
loaded with ``load_encoder_weights`` (the official KTDN code starts from ImageNet weights;
kdvision never downloads them).

- ``Res2NetEncoder``: Res2Net-v1b (Gao et al., "Res2Net: A New Multi-scale Backbone
  Architecture", TPAMI 2019): deep 3-conv stem, Bottle2neck blocks (scale 4, base width 26),
  average-pool shortcuts. Paper layout (KTDN student): Res2Net-101, layers (3, 4, 23),
  64 planes -> widths (256, 512, 1024).
- ``ResNetEncoder``: ResNet with basic blocks (He et al., CVPR 2016). Paper layout (SRKTDN
  teacher): ResNet-18, layers (2, 2, 2), 64 planes -> widths (64, 128, 256).
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from kdvision.errors import UserError
from kdvision.models.imagenet_resnet import BasicBlock  # torchvision's block and key names
from kdvision.safe_load import check_dtypes, read_torch_file


class Bottle2neck(nn.Module):
    """Res2Net bottleneck: 1x1 conv, then the channels split into ``scale`` groups; group i
    (i < scale-1) gets a 3x3 conv of (group i + output of group i-1); the last group passes
    unchanged (or average-pooled in the first block of a stage); concat; 1x1 conv; + shortcut."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 base_width: int = 26, scale: int = 4, first: bool = False):
        super().__init__()
        width = int(math.floor(planes * base_width / 64.0))
        self.width, self.scale, self.first = width, scale, first
        self.conv1 = nn.Conv2d(inplanes, width * scale, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width * scale)
        n = max(1, scale - 1)
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, stride, 1, bias=False) for _ in range(n))
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(n))
        if first:
            self.pool = nn.AvgPool2d(3, stride, 1)
        self.conv3 = nn.Conv2d(width * scale, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        groups = torch.split(out, self.width, 1)
        parts, carry = [], None
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            carry = groups[i] if (i == 0 or self.first) else carry + groups[i]
            carry = self.relu(bn(conv(carry)))
            parts.append(carry)
        if self.scale > 1:
            parts.append(self.pool(groups[-1]) if self.first else groups[-1])
        out = self.bn3(self.conv3(torch.cat(parts, 1)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class ThreeStageEncoder(nn.Module):
    """Stem (conv1, bn1, relu, maxpool), then layer1..layer3; subclasses build them."""

    def forward(self, x: torch.Tensor):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        s4 = self.layer1(x)
        s8 = self.layer2(s4)
        return s4, s8, self.layer3(s8)


class Res2NetEncoder(ThreeStageEncoder):
    def __init__(self, layers=(3, 4, 23), planes: int = 64, base_width: int = 26, scale: int = 4):
        super().__init__()
        stem = planes // 2
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True),
            nn.Conv2d(stem, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True),
            nn.Conv2d(stem, planes, 3, 1, 1, bias=False))
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.inplanes, self.base_width, self.scale = planes, base_width, scale
        self.layer1 = self._stage(planes, layers[0], 1)
        self.layer2 = self._stage(planes * 2, layers[1], 2)
        self.layer3 = self._stage(planes * 4, layers[2], 2)
        e = Bottle2neck.expansion
        self.channels = (planes * e, planes * 2 * e, planes * 4 * e)
        _init(self)

    def _stage(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        out = planes * Bottle2neck.expansion
        downsample = None
        if stride != 1 or self.inplanes != out:
            downsample = nn.Sequential(nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False),
                                       nn.Conv2d(self.inplanes, out, 1, bias=False), nn.BatchNorm2d(out))
        layers = [Bottle2neck(self.inplanes, planes, stride, downsample, self.base_width, self.scale, first=True)]
        self.inplanes = out
        layers += [Bottle2neck(out, planes, 1, None, self.base_width, self.scale) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

class ResNetEncoder(ThreeStageEncoder):
    def __init__(self, layers=(2, 2, 2), planes: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, planes, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.inplanes = planes
        self.layer1 = self._stage(planes, layers[0], 1)
        self.layer2 = self._stage(planes * 2, layers[1], 2)
        self.layer3 = self._stage(planes * 4, layers[2], 2)
        self.channels = (planes, planes * 2, planes * 4)
        _init(self)

    def _stage(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def load_encoder_weights(encoder: nn.Module, path: str) -> int:
    """Copy the tensors of a local checkpoint whose names and shapes match the encoder's
    (extra entries such as ``fc.*`` or ``layer4.*`` are skipped). Returns how many were loaded."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"encoder weights not found: {file}")
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            state = load_file(str(file))
        except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
            raise UserError(f"{file}: cannot be read as a state dict ({type(e).__name__})") from None
    else:
        state = read_torch_file(file, "encoder weights")
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    state = {k.removeprefix("module.").removeprefix("encoder."): v for k, v in state.items()
             if isinstance(v, torch.Tensor)}
    own = encoder.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    check_dtypes(matched, own, str(file))
    if not matched:
        raise UserError(f"{file}: no tensor matches the encoder (expected names like "
                        f"{next(iter(own))}, shape {tuple(next(iter(own.values())).shape)})")
    encoder.load_state_dict(matched, strict=False)
    return len(matched)
