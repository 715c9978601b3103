"""Loaders for real on-disk dataset layouts, joint transforms and embedded data sets."""
from kdvision.registry import DATASETS, import_submodules

import_submodules(__name__, __path__)

__all__ = ["DATASETS"]
