"""Name -> builder registries for models, methods, datasets and tasks (one small mechanism)."""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

from kdvision.errors import UserError


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Callable] = {}
        self._docs: dict[str, str] = {}

    def register(self, name: str | None = None, doc: str | None = None):
        def add(obj):
            key = name or obj.__name__
            if key in self._items:
                raise ValueError(f"{self.kind} '{key}' registered twice")
            self._items[key] = obj
            lines = (doc or obj.__doc__ or "").strip().splitlines()
            self._docs[key] = lines[0] if lines else ""
            return obj

        return add

    def get(self, name: str, where: str = "") -> Callable:
        if name not in self._items:
            known = ", ".join(sorted(self._items))
            at = f" ({where})" if where else ""
            raise UserError(f"unknown {self.kind} '{name}'{at}; known: {known}")
        return self._items[name]

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def names(self) -> list[str]:
        return sorted(self._items)

    def doc(self, name: str) -> str:
        return self._docs.get(name, "")


def import_submodules(package_name: str, package_path) -> None:
    """Import every module of a package so that its ``@register`` decorators run."""
    for info in pkgutil.walk_packages(package_path, prefix=package_name + "."):
        importlib.import_module(info.name)


MODELS = Registry("model")
METHODS = Registry("method")
DATASETS = Registry("dataset")
TASKS = Registry("task")
