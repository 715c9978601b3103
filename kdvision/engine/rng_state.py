"""The random generators' states as checkpoint entries (tensors, ints and floats only, so that
checkpoints load with ``weights_only=True``), for resuming inside an epoch.

A checkpoint's ``rng`` is the state that training continues with at the checkpoint's position
(``epoch``, ``step``): inside an epoch, the states after step ``step``; at an epoch boundary,
the states the next epoch is reseeded to from (seed, epoch), which resuming recomputes.
"""
from __future__ import annotations

import random

import numpy as np
import torch


def capture(device: torch.device) -> dict:
    py = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": list(py[1]), "python_gauss": py[2],
             "numpy": torch.from_numpy(keys.astype(np.int64)), "numpy_pos": int(pos),
             "numpy_gauss": [int(has_gauss), float(cached)]}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if "python" in state:
        random.setstate((3, tuple(int(v) for v in state["python"]), state.get("python_gauss")))
    if "numpy" in state:
        has_gauss, cached = state.get("numpy_gauss", [0, 0.0])
        np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), int(state.get("numpy_pos", 624)),
                             int(has_gauss), float(cached)))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
