"""Models named by where they come from: ``torchvision:resnet18``, ``timm:mobilenetv3_small_050``
or an import path to the user's own class or factory, ``my_package.models:build_net``.

Each name resolves to a builder that takes keyword arguments (``num_classes`` the way the
library expects it) and returns an ``nn.Module``. Nothing downloads: a request for a library's
own pretrained weights (``pretrained=True``, ``weights=``, ``checkpoint_path=``) stops with one
line that points at ``pretrained: PATH`` (kdvision's own loader, ``kdvision.engine.weights``).
"""
from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sys
import typing
from typing import Callable

from kdvision.errors import UserError

LIBRARIES = ("torchvision", "timm")
#: library arguments that fetch or read weights by the library's own means
DOWNLOAD_ARGS = ("pretrained", "weights", "weights_backbone", "checkpoint_path", "pretrained_cfg_overlay")
#: which torchvision families fit which task (the output the task's loss and metric read)
TORCHVISION_FAMILY_FOR_TASK = {"classification": "classification", "segmentation": "segmentation"}
TIMM_TASKS = ("classification",)


def is_external(name: str) -> bool:
    """True for ``library:model`` and ``module.path:attr`` names (registered names have no colon)."""
    return ":" in name


def refuse_downloads(arguments: dict, at: str, model_key: str) -> None:
    """Stop on any argument that would make torchvision or timm fetch or read weights itself.

    ``at`` is where the arguments sit in the config (``student`` or ``student.kwargs``);
    ``model_key`` the model's section, whose ``pretrained: PATH`` is the way to give weights.
    """
    for key in DOWNLOAD_ARGS:
        value = arguments.get(key)
        if value is None or value is False:
            continue
        raise UserError(f"{at}.{key}: {value!r}: kdvision never downloads weights; download them once and point "
                        f"at the file with '{model_key}.pretrained: PATH'")


def external_builder(name: str, where: str, task: str | None) -> Callable:
    """The builder behind an external name; checks that the model's output fits ``task``."""
    library, _, attr = name.partition(":")
    if not attr:
        raise UserError(f"{where}.name '{name}': nothing after ':'; write e.g. torchvision:resnet18, "
                        f"timm:resnet18 or my_package.models:build_net")
    if library == "torchvision":
        return torchvision_builder(attr, where, task)
    if library == "timm":
        return timm_builder(attr, where, task)
    return import_path_builder(library, attr, where)


def torchvision_builder(model: str, where: str, task: str | None) -> Callable:
    import torchvision.models as tvm

    families = {"classification": tvm.list_models(module=tvm),
                "segmentation": tvm.list_models(module=tvm.segmentation)}
    family = next((f for f, names in families.items() if model in names), None)
    if family is None:
        every = tvm.list_models()
        if model in every:
            raise UserError(f"{where}.name 'torchvision:{model}' is neither a classification nor a segmentation "
                            f"model; kdvision's tasks cannot read its output")
        close = difflib.get_close_matches(model, every, n=3)
        hint = f"; close: {', '.join(close)}" if close else ""
        raise UserError(f"{where}.name: torchvision has no model '{model}'{hint} "
                        f"(torchvision.models.list_models() lists them)")
    if task is not None and TORCHVISION_FAMILY_FOR_TASK.get(task) != family:
        raise UserError(f"{where}.name 'torchvision:{model}' is a {family} model; the config's task is '{task}'")

    def build(**kwargs):
        if family == "segmentation":
            kwargs.setdefault("weights_backbone", None)  # torchvision's default would download ImageNet weights
        return tvm.get_model(model, weights=None, **kwargs)

    build.__doc__ = f"torchvision.models.{model}"
    return build


def timm_builder(model: str, where: str, task: str | None) -> Callable:
    import timm

    if not timm.is_model(model):
        close = difflib.get_close_matches(model, timm.list_models(), n=3)
        hint = f"; close: {', '.join(close)}" if close else ""
        raise UserError(f"{where}.name: timm has no model '{model}'{hint} (timm.list_models() lists them)")
    if task is not None and task not in TIMM_TASKS:
        raise UserError(f"{where}.name 'timm:{model}' is a classification model; the config's task is '{task}'")

    def build(**kwargs):
        return timm.create_model(model, pretrained=False, **kwargs)

    build.__doc__ = f"timm.create_model('{model}')"
    return build


def import_path_builder(module_name: str, attr: str, where: str) -> Callable:
    """``package.module:Name`` (a class or a factory function) from the user's own code.

    The working directory is importable, as it is for ``python -m``, so a module beside the
    config works with the ``kdvision`` command too.
    """
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    path = f"{module_name}:{attr}"
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise UserError(f"{where}.name '{path}': cannot import '{module_name}' ({e}); is it installed or on "
                        f"PYTHONPATH?") from None
    target = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise UserError(f"{where}.name '{path}': '{module_name}' has no '{attr}'")
        target = getattr(target, part)
    if not callable(target):
        raise UserError(f"{where}.name '{path}' is a {type(target).__name__}, not a class or function")
    return class_factory(target) if inspect.isclass(target) else target


def class_factory(cls: type) -> Callable:
    """A function with the class's constructor signature and resolved annotations, so that
    config values are checked against them like any builder's."""
    def build(**kwargs):
        return cls(**kwargs)

    build.__signature__ = inspect.signature(cls)
    try:
        build.__annotations__ = {k: v for k, v in typing.get_type_hints(cls.__init__).items() if k != "return"}
    except Exception:  # noqa: BLE001 - unresolvable annotations: values are passed unchecked
        build.__annotations__ = {}
    build.__doc__ = cls.__doc__
    build.__name__ = cls.__name__
    return build

