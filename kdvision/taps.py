"""Forward hooks that collect named module outputs from any nn.Module.

A tap names a module by its path in ``model.named_modules()`` ("layer3", "layer3.2.relu").
A path ending in ``:input`` records the module's (first) input instead of its output, e.g.
"fc:input", the pooled feature a classifier reads (torchdistill's ``requires_input``).
Any model works unchanged: nothing needs to return feature dicts.
"""
from __future__ import annotations

from typing import Iterable

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


class FeatureTaps:
    """Records the outputs of the named modules on every forward pass.

    ``taps.outputs[path]`` holds the latest output of each tapped module (its first input for a
    ``path:input`` tap). When a module returns a tuple or list, its first element is recorded.
    """

    def __init__(self, model: nn.Module, paths: Iterable[str], owner: str = "model"):
        self.paths = list(dict.fromkeys(paths))
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles = []
        for path in self.paths:
            module = find_module(model, path, owner)
            self._handles.append(module.register_forward_hook(self._recorder(path, split_tap(path)[1])))

    def _recorder(self, path: str, record_input: bool):
        def hook(_module, inputs, output):
            if record_input:
                output = inputs[0] if inputs else None
            if isinstance(output, (tuple, list)):
                output = output[0]
            self.outputs[path] = output

        return hook

    def __getitem__(self, path: str) -> torch.Tensor:
        return self.outputs[path]

    def take(self) -> list[torch.Tensor]:
        """The recorded tensors in tap order; clears the record so no stale tensor is reused."""
        missing = [p for p in self.paths if p not in self.outputs]
        if missing:
            raise RuntimeError(f"tap '{missing[0]}' recorded nothing: the module did not run in forward")
        out = [self.outputs[p] for p in self.paths]
        self.outputs = {}
        return out

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
