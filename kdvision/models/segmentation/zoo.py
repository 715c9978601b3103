"""Registered segmentation models: ``pspnet_r18`` ... ``deeplabv3_mbv2``.

Builder options (config ``student:`` / ``teacher.model:``):
  num_classes   taken from the data set unless given (must agree with it)
  aux           auxiliary head on layer3 (training output {"out", "aux"})
  base_width    ResNet stem width: 64 = ImageNet (full) width; 8 or 16 train on a CPU.
                Every channel count scales with it (decoder 512 * base_width / 64).
  width         MobileNetV2 width multiplier (1.0 = ImageNet; decoder 512 * width)
  pretrained    local ImageNet state dict for the backbone ("" = random init; never downloaded)
  head_lr_mult  learning-rate multiplier of decoder/classifier/aux (10 with a pretrained backbone)
  align_corners bilinear upsampling of the pyramid-pooling branches and of the logits; default
                true for pspnet_* (the official PSPNet/APD code, made for 8k+1 crops such as
                713 and 473) and false for deeplabv3_* (the torchvision / mmsegmentation
                DeepLabV3 convention; APD's own DeepLabV3 upsamples with true: set it to follow)
"""
from __future__ import annotations

from kdvision.models.segmentation.heads import ASPP, AuxHead, PyramidPooling
from kdvision.models.segmentation.mobilenetv2_dilated import DilatedMobileNetV2
from kdvision.models.segmentation.network import SegmentationNet
from kdvision.models.segmentation.pretrained import load_backbone_state
from kdvision.models.segmentation.resnet_dilated import DilatedResNet
from kdvision.registry import MODELS

#: align_corners when the config does not say (see the module docstring)
DEFAULT_ALIGN_CORNERS = {"psp": True, "aspp": False}


def build(backbone, decoder: str, scale: float, num_classes: int, aux: bool, pretrained: str,
          head_lr_mult: float, align_corners: bool | None = None) -> SegmentationNet:
    if pretrained:
        load_backbone_state(backbone, pretrained)
    channels = max(8, round(512 * scale))
    aux_head = AuxHead(backbone.out_channels[2], max(8, round(256 * scale)), num_classes) if aux else None
    align = DEFAULT_ALIGN_CORNERS[decoder] if align_corners is None else bool(align_corners)
    head = PyramidPooling(backbone.out_channels[3], channels, align_corners=align) if decoder == "psp" \
        else ASPP(backbone.out_channels[3], channels)
    return SegmentationNet(backbone, head, channels, num_classes, aux_head, head_lr_mult, align)


def resnet_builder(decoder: str, depth: int, paper: str):
    def builder(num_classes: int = 19, aux: bool = True, base_width: int = 64, pretrained: str = "",
                head_lr_mult: float = 1.0, align_corners: bool | None = None) -> SegmentationNet:
        return build(DilatedResNet(depth, base_width), decoder, base_width / 64, num_classes, aux, pretrained,
                     head_lr_mult, align_corners)

    builder.__doc__ = f"{paper} on a dilated ResNet-{depth} (output stride 8); base_width 64 = full width."
    return builder


def mbv2_builder(decoder: str, paper: str):
    def builder(num_classes: int = 19, aux: bool = True, width: float = 1.0, pretrained: str = "",
                head_lr_mult: float = 1.0, align_corners: bool | None = None) -> SegmentationNet:
        return build(DilatedMobileNetV2(width), decoder, width, num_classes, aux, pretrained, head_lr_mult,
                     align_corners)

    builder.__doc__ = f"{paper} on a dilated MobileNetV2 (output stride 8); width 1.0 = full width."
    return builder


PSP = "PSPNet (Zhao et al., CVPR 2017)"
DLV3 = "DeepLabV3 (Chen et al., 2017)"
for _depth in (18, 50, 101):
    MODELS.register(f"pspnet_r{_depth}")(resnet_builder("psp", _depth, PSP))
    MODELS.register(f"deeplabv3_r{_depth}")(resnet_builder("aspp", _depth, DLV3))
MODELS.register("pspnet_mbv2")(mbv2_builder("psp", PSP))
MODELS.register("deeplabv3_mbv2")(mbv2_builder("aspp", DLV3))
