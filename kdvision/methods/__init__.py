"""Distillation methods, one file each; ``METHODS`` maps a config name to its class.

``create(name, student, teachers, task_loss=..., weights=..., **params)`` builds one without a
config, for a training loop of your own (README, "Distil in your own loop").
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from torch import nn

from kdvision.methods.base import Method, TaskLoss
from kdvision.registry import METHODS, import_submodules

import_submodules(__name__, __path__)


def create(name: str, student: nn.Module, teachers: nn.Module | Sequence[nn.Module] = (),
           task_loss: TaskLoss | Callable | None = None, weights: dict[str, Any] | None = None,
           **params) -> Method:
    """The method ``name`` (e.g. "kd", "fitnet", "at") on these models, with its paper's defaults
    overridden by ``params`` (its ``Params`` fields, e.g. ``temperature=4``) and ``weights``
    ({term: number or schedule}, as ``method.weights`` of a config). ``task_loss``: the task's
    own supervised loss, a callable ``(output, batch) -> {term: tensor} | tensor`` or an object
    with ``.loss(output, batch)``. Call ``setup(first_batch)`` before making the optimiser."""
    cls = METHODS.get(name)
    known = {f.name for f in dataclasses.fields(cls.Params)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise TypeError(f"method '{name}' has no parameter '{unknown[0]}' (it has: {', '.join(sorted(known)) or 'none'})")
    method = cls(student, teachers, task_loss, cls.Params(**params))
    method.configure_weights(weights or {})
    return method


__all__ = ["Method", "METHODS", "TaskLoss", "create"]
