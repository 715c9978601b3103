"""Segmentation networks: PSPNet (PPM) and DeepLabV3 (ASPP) heads on dilated backbones.

Backbones (output stride 8, written here; no torchvision): ResNet-18/50/101 in the ImageNet
(torchvision) parameter layout, so a local ImageNet state dict loads into ``backbone``, and
MobileNetV2. Every model exposes ``model.stages`` (backbone stage tap paths),
``model.feature_tap`` (the feature before the classifier) and ``model.num_classes``.
"""
