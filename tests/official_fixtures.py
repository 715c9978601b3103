"""Helpers for the tests that compare kdvision with numbers computed by running the methods'
official code (on CPU, on inputs generated here) — see tests/fixtures/official/*.json.

Each fixture names the official repository, file and commit it was computed with. The inputs
are made by ``seeded`` and ``fill_seeded`` so a test rebuilds exactly the tensors the official
code saw; state dicts are filled in key order, so a model and its official twin (same key
names) hold the same weights.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

FIXTURES = Path(__file__).parent / "fixtures" / "official"


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def seeded(seed: int, *shape: int) -> torch.Tensor:
    """A standard-normal tensor from its own generator (independent of the global RNG)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def fill_seeded(module: nn.Module, seed: int, scale: float = 0.1) -> dict[str, torch.Tensor]:
    """Overwrite every float parameter/buffer in state-dict order with seeded values: weight
    matrices / kernels N(0, 1 / fan_in) (activations stay O(1) through deep networks), norm
    scales 1 + N(0, scale^2), BN running variances positive, the rest N(0, scale^2).
    Returns the state dict that was loaded."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in module.state_dict().items():
        if not value.is_floating_point():
            state[key] = value.clone()
            continue
        v = torch.randn(value.shape, generator=g) * scale
        if value.dim() > 1:
            v = v / scale / (value[0].numel() ** 0.5)
        elif key.endswith("running_var"):
            v = v.abs() + 0.5
        elif key.endswith(".weight") and value.dim() == 1:  # norm scales around 1
            v = v + 1.0
        state[key] = v
    module.load_state_dict(state)
    return state
