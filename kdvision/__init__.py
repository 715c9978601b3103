"""kdvision: knowledge distillation for computer vision (classification, segmentation, restoration).

The stable Python surface (imported on first use, so ``import kdvision`` stays light)::

    kdvision.losses          pure loss functions (kd_loss, at_loss, fitnet_loss, ...)
    kdvision.taps            FeatureTaps: scoped forward hooks by module path ("layer3", "fc:input")
    kdvision.methods         METHODS, Method, TaskLoss, create(name, student, teachers, task_loss=...)
    kdvision.models          create(name, num_classes=...), MODELS
    kdvision.Trainer         the trainer of ``kdvision train``: Trainer(load_config(path), out).fit()
    kdvision.load_config     a YAML recipe (with KEY=VALUE overrides) to a validated Config
"""

__version__ = "0.2.0"

import importlib as _importlib

_MODULES = ("losses", "taps", "methods", "models")
_NAMES = {"FeatureTaps": ("kdvision.taps", "FeatureTaps"), "Method": ("kdvision.methods", "Method"),
          "METHODS": ("kdvision.methods", "METHODS"), "TaskLoss": ("kdvision.methods", "TaskLoss"),
          "Trainer": ("kdvision.engine.trainer", "Trainer"), "load_config": ("kdvision.config", "load_config")}

__all__ = [*_MODULES, *_NAMES, "__version__"]


def __getattr__(name: str):
    if name in _MODULES:
        return _importlib.import_module(f"kdvision.{name}")
    if name in _NAMES:
        module, attr = _NAMES[name]
        return getattr(_importlib.import_module(module), attr)
    raise AttributeError(f"module 'kdvision' has no attribute '{name}'")


def __dir__():
    return sorted(set(globals()) | set(__all__))
