"""KTDN / SRKTDN dehazing students and the KTDN teacher autoencoder.

KTDN: Wu et al., "Knowledge Transfer Dehazing Network for NonHomogeneous Dehazing", CVPRW 2020
(NTIRE 2020 non-homogeneous dehazing). SRKTDN: the KTDN student plus a super-resolution branch,
NTIRE 2021 NonHomogeneous Dehazing Challenge (report: Ancuti et al., CVPRW 2021; official code
Errno1024/SRKT-ntire2021, src/model.py).

Student: encoder (skips at 1/4 and 1/8, bottleneck at 1/16) -> ``mid`` DehazeBlock (the feature
that learns from the teacher: ``model.feature_tap == "mid"``) -> PixelShuffle(2) -> DehazeBlock
-> concat skip 1/8 -> PixelShuffle(2) -> DehazeBlock -> concat skip 1/4 -> PixelShuffle(2) x2
-> enhancer -> [concat SR branch] -> reflection-padded 7x7 tail -> tanh. The output lies in
[-1, 1]; restoration losses and metrics clamp it to [0, 1].

Teacher: the same decoder on a ResNet encoder, with a block that widens its bottleneck to the
student's width, trained as an autoencoder of clear images.

Input sizes: height and width must be multiples of 16 (``model.input_multiple``) and at least
32 (``model.min_input_size``, the enhancer's largest pool); the task and ``kdvision infer``
pad any image to that with reflection and crop the output back.

Sizes ("size" option): "paper" is the published layout (student: Res2Net-101 cut after layer3,
bottleneck 1024; teacher: ResNet-18, widened 256 -> 1024); "small" trains on a CPU in minutes
(student: Res2Net layers (1, 1, 1) with 16 planes, bottleneck 256; teacher: ResNet layers
(1, 1, 1) with 32 planes, widened 128 -> 256). ``layers`` and ``planes`` override either.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from kdvision.errors import UserError
from kdvision.models.restoration.blocks import DehazeBlock, Enhancer, SRBranch, Tail, WidenBlock
from kdvision.models.restoration.encoders import Res2NetEncoder, ResNetEncoder, load_encoder_weights
from kdvision.registry import MODELS

STUDENT_SIZES = {"paper": ((3, 4, 23), 64), "small": ((1, 1, 1), 16)}
TEACHER_SIZES = {"paper": ((2, 2, 2), 64), "small": ((1, 1, 1), 32)}
ENHANCER_OUT = 28
SR_OUT = 4


def check_input_size(model: nn.Module, x: torch.Tensor) -> None:
    h, w = x.shape[-2:]
    m, lo = model.input_multiple, model.min_input_size
    if h % m or w % m or min(h, w) < lo:
        raise UserError(f"{type(model).__name__} needs inputs whose sides are multiples of {m} and at least "
                        f"{lo}, got {h}x{w} (set data.crop to such a size; evaluation and infer pad images)")


class KTDNDecoder(nn.Module):
    """PixelShuffle decoder with DehazeBlocks and skip concatenations, then the enhancer."""

    def __init__(self, channels: tuple[int, int, int], where: str):
        super().__init__()
        c4, c8, c16 = channels
        a1 = c16 // 4
        a2 = (a1 + c8) // 4
        enh = (a2 + c4) // 16
        if c16 % 4 or (a1 + c8) % 4 or (a2 + c4) % 16 or a1 < 8 or a2 < 8:
            raise UserError(f"{where}: encoder widths {channels} do not fit the PixelShuffle decoder "
                            f"(need c16 % 4 == 0, (c16/4 + c8) % 4 == 0, ((c16/4 + c8)/4 + c4) % 16 == 0)")
        self.up = nn.PixelShuffle(2)
        self.attention1 = DehazeBlock(a1)
        self.attention2 = DehazeBlock(a2)
        self.enhancer = Enhancer(enh, ENHANCER_OUT)

    def forward(self, mid: torch.Tensor, skip8: torch.Tensor, skip4: torch.Tensor) -> torch.Tensor:
        x = self.attention1(self.up(mid))
        x = self.attention2(self.up(torch.cat([x, skip8], 1)))
        x = self.up(self.up(torch.cat([x, skip4], 1)))
        return self.enhancer(x)


class KTDN(nn.Module):
    """The dehazing student; ``sr_branch=True`` makes it SRKTDN."""

    feature_tap = "mid"
    input_multiple = 16
    min_input_size = 32

    def __init__(self, layers=(3, 4, 23), planes: int = 64, sr_branch: bool = False, where: str = "ktdn"):
        super().__init__()
        self.encoder = Res2NetEncoder(layers, planes)
        self.width = self.encoder.channels[2]
        self.mid = DehazeBlock(self.width)
        self.decoder = KTDNDecoder(self.encoder.channels, where)
        self.sr_branch = SRBranch(SR_OUT) if sr_branch else None
        self.tail = Tail(ENHANCER_OUT + (SR_OUT if sr_branch else 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_size(self, x)
        skip4, skip8, x16 = self.encoder(x)
        features = self.decoder(self.mid(x16), skip8, skip4)
        if self.sr_branch is not None:
            features = torch.cat([features, self.sr_branch(x)], 1)
        return self.tail(features)


class KTDNTeacher(nn.Module):
    """The teacher autoencoder: ResNet encoder, widen to the student's bottleneck width, ``mid``
    DehazeBlock (the transferred feature), the student's decoder (no SR branch)."""

    feature_tap = "mid"
    input_multiple = 16
    min_input_size = 32

    def __init__(self, student_width: int = 1024, layers=(2, 2, 2), planes: int = 64, where: str = "ktdn_teacher"):
        super().__init__()
        self.encoder = ResNetEncoder(layers, planes)
        c4, c8, c16 = self.encoder.channels
        self.width = student_width
        self.widen = WidenBlock(c16, student_width, student_width // 2)
        self.mid = DehazeBlock(student_width)
        self.decoder = KTDNDecoder((c4, c8, student_width), where)
        self.tail = Tail(ENHANCER_OUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_size(self, x)
        skip4, skip8, x16 = self.encoder(x)
        return self.tail(self.decoder(self.mid(self.widen(x16)), skip8, skip4))


def _layout(sizes: dict, size: str, layers: Optional[list[int]], planes: int, where: str):
    if size not in sizes:
        raise UserError(f"{where}.size: unknown size '{size}'; known: {', '.join(sizes)}")
    default_layers, default_planes = sizes[size]
    layers = tuple(layers) if layers else default_layers
    if len(layers) != 3 or min(layers) < 1:
        raise UserError(f"{where}.layers: three block counts >= 1 are needed, got {list(layers)}")
    return layers, planes or default_planes


def _student(size: str, layers, planes: int, encoder_weights: str, sr_branch: bool, where: str) -> KTDN:
    layers, planes = _layout(STUDENT_SIZES, size, layers, planes, where)
    model = KTDN(layers, planes, sr_branch, where)
    if encoder_weights:
        load_encoder_weights(model.encoder, encoder_weights)
    return model


@MODELS.register("ktdn")
def ktdn(size: str = "small", layers: Optional[list[int]] = None, planes: int = 0,
         encoder_weights: str = "") -> nn.Module:
    """KTDN dehazing student (Res2Net encoder, DehazeBlocks, PixelShuffle decoder, enhancer)."""
    return _student(size, layers, planes, encoder_weights, False, "ktdn")


@MODELS.register("srktdn")
def srktdn(size: str = "small", layers: Optional[list[int]] = None, planes: int = 0,
           encoder_weights: str = "") -> nn.Module:
    """SRKTDN dehazing student: KTDN plus a parallel super-resolution branch before the tail."""
    return _student(size, layers, planes, encoder_weights, True, "srktdn")


@MODELS.register("ktdn_teacher")
def ktdn_teacher(size: str = "small", student_width: int = 0, layers: Optional[list[int]] = None,
                 planes: int = 0, encoder_weights: str = "") -> nn.Module:
    """KTDN teacher autoencoder (ResNet encoder widened to the student's bottleneck width)."""
    layers, planes = _layout(TEACHER_SIZES, size, layers, planes, "ktdn_teacher")
    if not student_width:
        student_layers, student_planes = STUDENT_SIZES[size]
        student_width = student_planes * 16
    model = KTDNTeacher(student_width, layers, planes)
    if encoder_weights:
        load_encoder_weights(model.encoder, encoder_weights)
    return model
