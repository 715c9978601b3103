"""What a training or evaluation process needs around the model, shared by the trainer,
``evaluate``, ``infer``, the teacher-output cache and the benchmarks: the device, the
precision's autocast, seeding (per run, per epoch, per loader worker), moving a batch to the
device, and one optimisation step (``train_step``).
"""
from __future__ import annotations

import contextlib
import random
from typing import Any

import numpy as np
import torch

from kdvision.engine import fast_defaults
from kdvision.errors import UserError


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"train.device is '{name}' but no CUDA device is available")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise UserError(f"train.device is '{name}' but this machine has {torch.cuda.device_count()} CUDA device(s) "
                        f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("train.device is 'mps' but no Apple MPS device is available")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + 17) % (2 ** 31)


def worker_init(worker_id: int) -> None:
    s = torch.initial_seed() % (2 ** 32)
    np.random.seed(s)
    random.seed(s)


def autocast_factory(device: torch.device, precision: str):
    precision = fast_defaults.choose_precision(precision, device).value  # "auto" -> what this device runs
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]  # choices checked by the config
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def to_device(batch: dict[str, Any], device: torch.device, channels_last: bool = False) -> dict[str, Any]:
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device, non_blocking=True)
            if channels_last and v.dim() == 4 and v.is_floating_point():
                v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


def train_step(forward, batch: dict[str, Any], optimizer: torch.optim.Optimizer, extra_optimizers=(),
               autocast=contextlib.nullcontext, scaler=None, grad_clip: float | None = None,
               grad_clip_value: float | None = None):
    """One optimisation step: forward the method, sum its losses, backward, clip, step.

    ``forward`` is the method (or its DDP wrapper). Returns the loss names and their detached
    values stacked on the device (no host sync). ``kdvision bench overhead`` times this function.
    """
    with autocast():
        _, losses = forward(batch)
    total = sum(losses.values())
    optimizer.zero_grad(set_to_none=True)
    for opt in extra_optimizers:
        opt.zero_grad(set_to_none=True)
    if scaler:
        scaler.scale(total).backward()
        scaler.unscale_(optimizer)
    else:
        total.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], grad_clip)
    if grad_clip_value:  # every gradient element clipped to [-v, v] (e.g. the FRSKD segmentation script)
        torch.nn.utils.clip_grad_value_([p for g in optimizer.param_groups for p in g["params"]], grad_clip_value)
    if scaler:  # every optimiser steps through the scaler: skipped together on inf gradients
        scaler.step(optimizer)
        for opt in extra_optimizers:
            scaler.step(opt)
        scaler.update()
    else:
        optimizer.step()
        for opt in extra_optimizers:
            opt.step()
    return tuple(losses), torch.stack([v.detach().float() for v in losses.values()])
