"""Distillation methods, one file each; ``METHODS`` maps a config name to its class."""
from kdvision.methods.base import Method
from kdvision.registry import METHODS, import_submodules

import_submodules(__name__, __path__)

__all__ = ["Method", "METHODS"]
