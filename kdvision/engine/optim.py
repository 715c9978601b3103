"""Optimisers and learning-rate schedules (with linear warm-up).

The schedule is a pure function of training progress (epoch, or fractional epoch when it
advances by step), so resuming needs no scheduler state: the learning rate is recomputed
from the epoch and step stored in the checkpoint.
"""
from __future__ import annotations

import math

import torch

from kdvision.config import OptimizerConfig, ScheduleConfig, TrainConfig


def build_optimizer(cfg: OptimizerConfig, param_groups: list[dict]) -> torch.optim.Optimizer:
    groups = [{**g, "lr": cfg.lr * g.get("lr_mult", 1.0)} for g in param_groups if g["params"]]
    for g in groups:
        g.setdefault("lr_mult", 1.0)
    name = cfg.name  # one of OptimizerConfig.name's choices (checked by the config)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                               nesterov=cfg.nesterov)
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return cls(groups, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    raise ValueError(f"optimiser {cfg.name!r} is not one of OptimizerConfig.name's choices")


def warmup_factor(cfg: ScheduleConfig, progress: float) -> float:
    """The warm-up multiplier at ``progress`` < warmup_epochs.

    linear: warmup_start_factor at progress 0, rising linearly to 1 at warmup_epochs.
    gradual: (progress + 1) / warmup_epochs, the official two-stage (TKL) schedule: its
    GradualWarmupScheduler (multiplier 1, stepped once before training and after every epoch)
    gives epoch k (1-based) base_lr * k / warmup_epochs, e.g. 1.33e-4, 2.67e-4, 4e-4 for
    lr 4e-4 over 3 epochs (fingerk28/Two-stage-Knowledge-For-Multiple-Adverse-Weather-Removal,
    utils/warmup_scheduler.py and train.py).
    """
    w = cfg.warmup_epochs
    if cfg.warmup == "gradual":
        return min((progress + 1.0) / w, 1.0)
    if cfg.warmup == "linear":
        return cfg.warmup_start_factor + (1.0 - cfg.warmup_start_factor) * progress / w
    raise ValueError(f"warm-up {cfg.warmup!r} is not one of ScheduleConfig.warmup's choices")


def lr_factor(cfg: ScheduleConfig, progress: float, total_epochs: int) -> float:
    """Multiplier of the base learning rate after ``progress`` epochs (0-based, may be fractional)."""
    w = cfg.warmup_epochs
    if w > 0 and progress < w:
        return warmup_factor(cfg, progress)
    name = cfg.name
    if name == "multistep":
        return cfg.gamma ** sum(progress >= m for m in cfg.milestones)
    if name == "step":
        return cfg.gamma ** math.floor(progress / max(cfg.step_size, 1))
    if name == "exponential":
        return cfg.gamma ** progress
    if name == "constant":
        return 1.0
    span = max(total_epochs - w, 1e-8)
    t = min(max((progress - w) / span, 0.0), 1.0)
    if name == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if name == "poly":
        return (1.0 - t) ** cfg.power
    raise ValueError(f"schedule {name!r} is not one of ScheduleConfig.name's choices")


def set_learning_rate(optimizer: torch.optim.Optimizer, train: TrainConfig, epoch: int, step: int,
                      steps_per_epoch: int) -> float:
    """Set every group's lr for the given position; returns the base lr (without lr_mult)."""
    s = train.schedule
    progress = epoch + (step / max(steps_per_epoch, 1) if s.by == "step" else 0.0)
    factor = lr_factor(s, progress, train.epochs)
    base = train.optimizer.lr
    if s.name == "cosine" and s.min_lr:
        lr = s.min_lr + (base - s.min_lr) * factor if progress >= s.warmup_epochs else base * factor
    else:
        lr = base * factor
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_mult", 1.0)
    return lr
