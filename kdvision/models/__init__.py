"""Network definitions. ``create(name, num_classes)`` builds any registered model.

Every built-in model lists its stage outputs (tap paths) in ``model.stages``.
"""
from __future__ import annotations

from torch import nn

from kdvision.registry import MODELS, import_submodules

import_submodules(__name__, __path__)

from kdvision.models.frskd_self_teacher import FRSKDSelfTeacher, frskd_self_teacher  # noqa: E402 (after the registry fills)


def create(name: str, num_classes: int | None = None, **kwargs) -> nn.Module:
    """Build a model by name, e.g. ``create("resnet20", num_classes=100)``; external names
    (``"torchvision:resnet18"``, ``"timm:..."``, ``"pkg.mod:factory"``) as in a config."""
    if ":" in name:
        from kdvision.model_build import build_model

        info = {"num_classes": num_classes} if num_classes is not None else {}
        return build_model({"name": name, **kwargs}, "model", "", None, info)
    builder = MODELS.get(name)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return builder(**kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["create", "count_parameters", "MODELS", "frskd_self_teacher", "FRSKDSelfTeacher"]
