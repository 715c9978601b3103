"""From a model section of the config (``student:``, ``teacher.model:``) to an ``nn.Module``.

A section names a registered model (``resnet20``) or an external one (``torchvision:resnet18``,
``timm:mobilenetv3_small_050``, ``my_package.models:build_net``; see
``kdvision.external_models``). Its other keys are the builder's arguments; external models may
also gather them under ``kwargs:``. ``pretrained: PATH`` loads a local state dict into any model
(``kdvision.engine.weights.load_pretrained_into``) unless the builder takes ``pretrained``
itself (the segmentation networks' backbone file). Facts from the data (``num_classes``) are
passed the way each builder takes them. Models that document no taps get them from their own
structure (``kdvision.default_taps``; external models only, kdvision's own document theirs).
"""
from __future__ import annotations

import inspect
import sys

from torch import nn

from kdvision.config import call_with_config
from kdvision.default_taps import attach_default_taps
from kdvision.errors import UserError
from kdvision.external_models import LIBRARIES, external_builder, is_external, refuse_downloads
from kdvision.registry import MODELS


def build_model(spec: dict, where: str, source: str, task: str | None = None, data_info: dict | None = None,
                load_pretrained: bool = False, new_head: bool = True) -> nn.Module:
    """Build the model ``spec`` describes; with ``load_pretrained``, load its ``pretrained`` file.

    Runs rebuilt from their config.yaml (eval, export, infer, profile) leave ``load_pretrained``
    off: their own weights replace the pretrained ones, which need not exist any more.
    ``new_head=False`` refuses a pretrained file whose classifier does not fit (teachers).
    """
    name = spec["name"]
    if not isinstance(name, str):
        raise UserError(f"{source}: {where}.name must be a string, got {name!r}")
    data_info = dict(data_info or {})
    options = {k: v for k, v in spec.items() if k != "name"}
    try:
        if is_external(name):
            options = external_options(options, where)  # refused before the library is even imported
            builder = external_builder(name, where, task)
        else:
            builder = registered_builder(name, where)
    except UserError as e:
        raise UserError(f"{source}: {e}" if source else str(e)) from None
    if load_pretrained and not is_external(name):
        note_registered_from_python(builder, name, where)
    own_pretrained = takes(builder, "pretrained")
    if own_pretrained and load_pretrained and not new_head and options.get("pretrained"):
        raise UserError(f"{source}: {where}.pretrained of '{name}' initialises its backbone only; a teacher needs "
                        f"trained weights: give its checkpoint")
    pretrained = None if own_pretrained else options.pop("pretrained", None)
    if own_pretrained and not load_pretrained:
        options.pop("pretrained", None)
    if pretrained is not None and not isinstance(pretrained, str):
        raise UserError(f"{source}: {where}.pretrained: {pretrained!r}: kdvision never downloads weights; download "
                        f"them once and point at the file with '{where}.pretrained: PATH'")
    if "num_classes" in options and "num_classes" in data_info and options["num_classes"] != data_info["num_classes"]:
        raise UserError(f"{source}: {where}.num_classes is {options['num_classes']} but the data set has "
                        f"{data_info['num_classes']} classes")
    library = name.partition(":")[0] if is_external(name) else None
    accepts_all = library in LIBRARIES  # torchvision and timm builders take num_classes through **kwargs
    info = {k: v for k, v in data_info.items() if k not in options and (accepts_all or takes(builder, k))}
    model = call_builder(builder, name, options, info, where, source, library)
    if not isinstance(model, nn.Module):
        raise UserError(f"{source}: {where}.name '{name}' returned a {type(model).__name__}, not an nn.Module")
    if pretrained and load_pretrained:
        from kdvision.engine.weights import load_pretrained_into

        num_classes = options.get("num_classes", data_info.get("num_classes"))
        try:
            load_pretrained_into(model, pretrained, where, num_classes, new_head)
        except UserError as e:
            raise UserError(f"{source}: {e}" if source else str(e)) from None
    if library is not None:
        attach_default_taps(model)
    return model


def registered_builder(name: str, where: str):
    import kdvision.models  # noqa: F401  (registers the built-in models)

    if name not in MODELS:
        raise UserError(f"{where}.name: unknown model '{name}' (known: {', '.join(MODELS.names())}); a model of "
                        f"your own is named by its import path, e.g. my_package.models:build_net")
    return MODELS.get(name)


def note_registered_from_python(builder, name: str, where: str) -> None:
    """A model registered by the user's script is unknown to a later ``kdvision eval``/``export``
    of the run: say so while training, with the import path that would work."""
    module = getattr(builder, "__module__", "") or ""
    if module == "kdvision" or module.startswith("kdvision."):
        return
    path = f"{module}:{builder.__qualname__}" if module != "__main__" and "<" not in builder.__qualname__ else \
        "my_package.models:build_net"
    print(f"kdvision: {where}.name '{name}' is registered from Python only: kdvision eval/export/infer of this run "
          f"will not know it; name it by import path instead ({where}.name: {path})", file=sys.stderr, flush=True)


def external_options(options: dict, where: str) -> dict:
    """Flat keys and ``kwargs:`` together (a key in both is an error); no download requests."""
    extra = options.pop("kwargs", None) or {}
    if not isinstance(extra, dict):
        raise UserError(f"{where}.kwargs must be a mapping of argument names to values, got {extra!r}")
    both = sorted(set(extra) & set(options))
    if both:
        raise UserError(f"{where}: '{both[0]}' is given both as {where}.{both[0]} and {where}.kwargs.{both[0]}")
    refuse_downloads(extra, f"{where}.kwargs", where)
    refuse_downloads({k: v for k, v in options.items() if k != "pretrained"}, where, where)
    return {**options, **extra}


def call_builder(builder, name: str, options: dict, info: dict, where: str, source: str, library: str | None):
    if library in LIBRARIES:  # their signatures are **kwargs: a wrong argument surfaces as TypeError
        try:
            return builder(**info, **options)
        except (TypeError, ValueError, KeyError, AssertionError) as e:
            args = ", ".join(f"{k}={v!r}" for k, v in {**info, **options}.items())
            raise UserError(f"{source}: {where}: {name}({args}) failed: {type(e).__name__}: {e}") from None
    if library is None:
        return call_with_config(builder, options, where, source, **info)
    try:
        return call_with_config(builder, options, where, source, **info)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - the user's own code: its error, named, on one line
        raise UserError(f"{source}: {where}: building '{name}' raised {type(e).__name__}: {e}") from None


def takes(builder, key: str) -> bool:
    try:
        return key in inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return False


def build_model_for_weights(spec: dict, where: str, source: str, task: str | None, weights: dict) -> nn.Module:
    """Without the data set: the model with the class count its trained ``weights`` have (the
    rows of its classifier layers), else with its builder's defaults."""
    model = build_model(spec, where, source, task)
    if "num_classes" in spec or "num_classes" in (spec.get("kwargs") or {}):
        return model
    modules = dict(model.named_modules())
    counts = {int(weights[k].shape[0]) for k, v in model.state_dict().items()
              if k in weights and v.dim() and tuple(weights[k].shape) != tuple(v.shape)
              and weights[k].shape[1:] == v.shape[1:]
              and isinstance(modules.get(k.rpartition(".")[0]), (nn.Linear, nn.modules.conv._ConvNd))}
    if len(counts) == 1:
        return build_model(spec, where, source, task, {"num_classes": counts.pop()})
    return model
