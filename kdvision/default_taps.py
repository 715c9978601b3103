"""Default taps for models that do not document them, read off the model itself.

kdvision's own models list their stage outputs in ``model.stages`` and the last conv stage
before pooling in ``model.feature_tap``; feature methods (AT, FitNet, SP, FRSKD, APD) tap those
by default. For other models they come from the model's structure:

- timm: ``feature_info`` (the library's own list of stage modules and their strides);
- a ResNet-like body (torchvision ResNet/ResNeXt/Wide-ResNet, and the ``backbone`` of
  torchvision's segmentation networks): ``layer1`` .. ``layer4``;
- a sequence of blocks (torchvision MobileNet/EfficientNet/MNASNet/VGG/ConvNeXt ``features``,
  RegNet ``trunk_output``, the children of a segmentation ``backbone``): the last block at each
  stride, found by running the model once on a 64x64 image in eval mode; failing those, the
  model's own children the same way (torchvision ShuffleNetV2 ``stage2`` .. ``conv5``).

Stages are the last module at each stride of 4, 8, 16 and 32 (strides 2 and below are stem
layers), so a ResNet and a MobileNet pair stage by stage at equal spatial sizes. A
classifier's ``feature_tap`` is its last stage; a torchvision DeepLabV3/FCN's is the last
activation of its head, before the final 1x1 classifier. Where nothing applies the attributes
stay unset and the method's error names the key to set.
"""
from __future__ import annotations

import torch
from torch import nn

STAGE_STRIDES = (4, 8, 16, 32)
PROBE_SIZE = 64
RESNET_LAYERS = ("layer1", "layer2", "layer3", "layer4")
BLOCK_SEQUENCES = ("features", "layers", "trunk_output")


def attach_default_taps(model: nn.Module) -> None:
    """Set ``model.stages`` / ``model.feature_tap`` where the model lacks them and they can be found."""
    has_stages = getattr(model, "stages", None) is not None
    has_tap = bool(getattr(model, "feature_tap", None))
    if has_stages and has_tap:
        return
    stages, tap = find_default_taps(model)
    if not has_stages and stages:
        model.stages = stages
    if not has_tap and tap:
        model.feature_tap = tap


def find_default_taps(model: nn.Module) -> tuple[list[str] | None, str | None]:
    """(stage module paths, feature tap path) from the model's structure; None where unknown."""
    info = getattr(model, "feature_info", None)
    if info is not None and hasattr(info, "__iter__") and not isinstance(info, nn.Module):
        stages = timm_stages(info)
        if stages:
            return stages, stages[-1]
    children = dict(model.named_children())
    backbone = children.get("backbone")
    if isinstance(backbone, nn.Module) and isinstance(children.get("classifier"), nn.Module):
        return segmentation_taps(model, backbone)
    if all(name in children for name in RESNET_LAYERS):
        return list(RESNET_LAYERS), RESNET_LAYERS[-1]
    for name in BLOCK_SEQUENCES:
        if isinstance(children.get(name), nn.Sequential):
            stages = stage_ends(model, children[name], name)
            if stages:
                return stages, stages[-1]
    stages = stage_ends(model, model, "")
    return (stages, stages[-1]) if stages else (None, None)


def timm_stages(feature_info) -> list[str]:
    """The last module of each stride 4..32 in timm's ``feature_info`` (list of dicts or a FeatureInfo)."""
    entries = [e for e in feature_info if isinstance(e, dict) and "module" in e and "reduction" in e]
    by_stride = {}
    for e in entries:
        if e["reduction"] in STAGE_STRIDES:
            by_stride[e["reduction"]] = e["module"]
    return [by_stride[s] for s in sorted(by_stride)]


def segmentation_taps(model: nn.Module, backbone: nn.Module) -> tuple[list[str] | None, str | None]:
    """torchvision DeepLabV3 / FCN / LR-ASPP: stages of the backbone; tap before the classifier."""
    names = dict(backbone.named_children())
    if all(n in names for n in RESNET_LAYERS):
        stages = [f"backbone.{n}" for n in RESNET_LAYERS]
    else:
        stages = stage_ends(model, backbone, "backbone", strides=(4, 8, 16, 32))
    head = model.classifier
    tap = None
    if isinstance(head, nn.Sequential):
        acts = [i for i, m in enumerate(head) if isinstance(m, (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.GELU, nn.SiLU))]
        if acts:
            tap = f"classifier.{acts[-1]}"
    return stages or None, tap


@torch.no_grad()
def stage_ends(model: nn.Module, blocks: nn.Module, prefix: str,
               strides: tuple[int, ...] = STAGE_STRIDES) -> list[str]:
    """The last child of ``blocks`` at each stride, from one eval-mode forward of ``model``."""
    first_param = next(model.parameters(), None)
    if first_param is None:
        return []
    found: dict[int, str] = {}
    handles = []

    def record(name):
        def hook(_module, _inputs, output):
            if isinstance(output, torch.Tensor) and output.dim() == 4 and output.shape[-1] == output.shape[-2]:
                size = output.shape[-1]
                if size and PROBE_SIZE % size == 0 and PROBE_SIZE // size in strides:
                    found[PROBE_SIZE // size] = f"{prefix}.{name}" if prefix else name
        return hook

    for name, child in blocks.named_children():
        handles.append(child.register_forward_hook(record(name)))
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE, dtype=first_param.dtype, device=first_param.device))
    except Exception:  # noqa: BLE001 - a model that cannot run on this probe gets no default taps
        return []
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return [found[s] for s in sorted(found)]
