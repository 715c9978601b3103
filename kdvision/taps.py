"""Forward hooks that record named module outputs from any nn.Module, only while asked.

A tap names a module by its path in ``model.named_modules()`` ("layer3", "layer3.2.relu").
A path ending in ``:input`` records the module's (first) input instead of its output, e.g.
"fc:input", the pooled feature a classifier reads (torchdistill's ``requires_input``).
Any model works unchanged: nothing needs to return feature dicts.

Recording is scoped, as mmrazor's recorders are used: hooks exist only inside
``with taps.recording() as record:`` and what they saw lives in that ``record`` alone, so
evaluation, export and latency timing run the bare model, and no step sees another's tensors::

    with taps.recording() as record:
        out = model(x)
    features = record.take()   # in tap order
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

from kdvision.errors import UserError


INPUT_SUFFIX = ":input"


def split_tap(path: str) -> tuple[str, bool]:
    """("layer3", False) for "layer3"; ("fc", True) for "fc:input"."""
    if path.endswith(INPUT_SUFFIX):
        return path[: -len(INPUT_SUFFIX)], True
    return path, False


def find_module(model: nn.Module, path: str, owner: str = "model") -> nn.Module:
    path, _ = split_tap(path)
    modules = dict(model.named_modules())
    if path not in modules:
        top = [n for n, _ in model.named_children()]
        raise UserError(f"tap '{path}' names no module of the {owner} ({type(model).__name__}); "
                        f"its top-level modules are: {', '.join(top)}")
    return modules[path]


class Record:
    """What the taps saw during one ``recording()``: ``record[path]``, or ``take()`` in tap order.

    When a module returns a tuple or list, its first element is recorded; when a module runs
    more than once, its last call is kept.
    """

    def __init__(self, paths: list[str]):
        self.paths = paths
        self.outputs: dict[str, torch.Tensor] = {}

    def __getitem__(self, path: str) -> torch.Tensor:
        return self.outputs[path]

    def take(self) -> list[torch.Tensor]:
        """The recorded tensors in tap order; an error names a tap whose module did not run."""
        missing = [p for p in self.paths if p not in self.outputs]
        if missing:
            raise RuntimeError(f"tap '{missing[0]}' recorded nothing: the module did not run in forward")
        return [self.outputs[p] for p in self.paths]

    def _hook(self, path: str, record_input: bool):
        def hook(_module, inputs, output):
            if record_input:
                output = inputs[0] if inputs else None
            if isinstance(output, (tuple, list)):
                output = output[0]
            self.outputs[path] = output

        return hook


class FeatureTaps:
    """Named taps on one model; paths are checked when the taps are made, hooks live only
    inside ``recording()``."""

    def __init__(self, model: nn.Module, paths: Iterable[str], owner: str = "model"):
        self.paths = list(dict.fromkeys(paths))
        self._modules = [(path, find_module(model, path, owner)) for path in self.paths]

    @contextlib.contextmanager
    def recording(self) -> Iterator[Record]:
        """Hooks on the tapped modules for the body of the ``with``; yields the ``Record``."""
        record = Record(self.paths)
        handles = [module.register_forward_hook(record._hook(path, split_tap(path)[1]))
                   for path, module in self._modules]
        try:
            yield record
        finally:
            for h in handles:
                h.remove()

    def run(self, fn: Callable, *args, **kwargs):
        """(``fn(*args, **kwargs)``, the tapped tensors in tap order) from one recorded call."""
        with self.recording() as record:
            out = fn(*args, **kwargs)
        return out, record.take()
