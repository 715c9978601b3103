"""The segmentation network: dilated backbone -> decoder -> 1x1 classifier, optional aux head."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn


class SegmentationNet(nn.Module):
    """Backbone (stride 8) + decoder (PPM or ASPP) + classifier, logits at input resolution.

    ``forward(x)`` returns logits [B, C, H, W] (bilinear upsampling from stride 8, with
    ``align_corners`` as given: True in the official PSPNet/APD code, whose crops are 8k+1
    pixels so that corners align exactly). In training mode with an auxiliary head it returns
    ``{"out": logits, "aux": aux_logits}``, the aux head reading layer3.

    Tap paths (for ``kdvision.taps.FeatureTaps``):
      * ``model.stages`` = ["backbone.layer1", ..., "backbone.layer4"], stride 4, 8, 8, 8
        (``model.stage_channels`` their widths);
      * ``model.feature_tap`` = "decoder": the feature the classifier reads (PPM merge / ASPP
        bottleneck output after Dropout2d, ``model.feature_channels`` = 512 at full width).
    """

    feature_tap = "decoder"

    def __init__(self, backbone: nn.Module, decoder: nn.Module, feature_channels: int, num_classes: int,
                 aux_head: nn.Module | None = None, head_lr_mult: float = 1.0, align_corners: bool = False):
        super().__init__()
        self.backbone = backbone
        self.decoder = decoder
        self.classifier = nn.Conv2d(feature_channels, num_classes, 1)
        self.aux = aux_head
        self.num_classes = num_classes
        self.feature_channels = feature_channels
        self.stage_channels = list(backbone.out_channels)
        self.stages = [f"backbone.{n}" for n in backbone.stage_names]
        self.head_lr_mult = head_lr_mult
        self.align_corners = align_corners

    def forward(self, x):
        size = x.shape[-2:]
        feats = self.backbone(x)
        logits = F.interpolate(self.classifier(self.decoder(feats[-1])), size, mode="bilinear",
                               align_corners=self.align_corners)
        if self.aux is not None and self.training:
            aux = F.interpolate(self.aux(feats[2]), size, mode="bilinear", align_corners=self.align_corners)
            return {"out": logits, "aux": aux}
        return logits
