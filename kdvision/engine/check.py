"""``kdvision train CONFIG --check``: everything a run checks before its first step, writing nothing.

It builds what the trainer builds -- the task, the data sets, the student, the teachers with
their checkpoints, the method -- then draws one training batch and one validation batch,
builds the method's connectors from the first (``setup``), runs one forward and backward of
the summed losses and one evaluation forward. No run folder, checkpoint, cache or log is
written and no optimiser steps. A teacher that a recipe would train first is checked by
checking its recipe the same way (the student is then checked against an untrained teacher of
the same architecture).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

from kdvision.config import Config, load_config
from kdvision.engine import build
from kdvision.engine.optim import build_optimizer
from kdvision.engine.runtime import autocast_factory, epoch_seed, pick_device, to_device
from kdvision.engine.weights import load_weights_into
from kdvision.errors import UserError
from kdvision.models import count_parameters

#: where a check looks for teachers trained inside a run when no --out is given: never exists
NO_RUN = Path(os.devnull) / "run"


def check_config(cfg: Config, out: str | Path | None = None, _chain: tuple[Path, ...] = ()) -> str:
    """Validate ``cfg`` as far as training would before its first step; returns a one-line summary."""
    device = pick_device(cfg.train.device)
    autocast = autocast_factory(device, cfg.train.precision)
    torch.manual_seed(cfg.seed)
    task = build.build_task(cfg)
    datasets = task.datasets()
    cls = build.method_class(cfg)
    build.validate_method(cfg, cls, task.dataset_info())
    if cfg.teacher_cache is not None:
        from kdvision.cache import attach

        attach.check_early(cfg, cls, datasets["train"])
    chain = _chain or ((Path(cfg.source).resolve(),) if cfg.source else ())
    teachers, teacher_notes = _teachers(cfg, task, Path(out) if out else NO_RUN, chain)
    method = build.build_method(cfg, task, teachers).to(device)
    batch = to_device(next(iter(_train_loader(cfg, datasets["train"]))), device)
    task.check_batch(batch)
    with autocast():
        method.setup(batch, task.method_info())
    optimizer = build_optimizer(cfg.train.optimizer, method.param_groups())
    method.train()
    with autocast():
        _, losses = method(batch)
    if not losses:
        raise UserError(f"{cfg.source}: method '{cfg.method['name']}' returned no loss terms")
    total = sum(losses.values())
    if not torch.isfinite(total.detach()).all():
        bad = [k for k, v in losses.items() if not torch.isfinite(v.detach()).all()]
        raise UserError(f"{cfg.source}: loss term '{bad[0]}' is not finite on the first batch")
    total.backward()
    optimizer.zero_grad(set_to_none=True)
    _check_validation(cfg, task, method.student, datasets["val"], device, autocast)
    sizes = ", ".join(f"{len(datasets[s])} {s}" for s in ("train", "val", "test") if s in datasets)
    teachers_text = f", teachers: {'; '.join(teacher_notes)}" if teacher_notes else ""
    return (f"{cfg.source}: OK: {cfg.task}, data {cfg.data['name']} ({sizes}), student {cfg.student['name']} "
            f"({count_parameters(method.student):,} parameters), method {cfg.method['name']} "
            f"(losses {', '.join(losses)} on a batch of {int(batch['input'].shape[0])}){teachers_text}, "
            f"{cfg.train.epochs} epoch(s) on {device}; nothing was written")


def _teachers(cfg: Config, task, run_root: Path, chain: tuple[Path, ...]):
    """The teachers with their weights; a recipe still to train is checked instead of trained."""
    teachers, notes = [], []
    for i, t in enumerate(cfg.all_teachers()):
        where = "teacher.model" if cfg.teacher is t else f"teachers[{i}].model"
        model = task.create_model(t.model, where)
        pending: list[Path] = []

        def check_recipe(recipe: Path, overrides: list[str], target: Path) -> None:
            recipe = recipe.resolve()
            if recipe in chain:
                raise UserError(f"{cfg.source}: {where[:-6]}.recipe makes a cycle of teacher recipes: "
                                f"{' -> '.join(str(p) for p in (*chain, recipe))}")
            check_config(load_config(recipe, overrides), None, (*chain, recipe))
            pending.append(recipe)

        path = build.teacher_weights(t, i, cfg, run_root, check_recipe)
        name = build.teacher_name(t, i)
        if pending:
            notes.append(f"{name} ({t.model['name']}) from recipe {pending[0]}, checked, would train first")
        else:
            load_weights_into(model, path, f"{where} ({t.model['name']})")
            notes.append(f"{name} ({t.model['name']}) loaded from {path}")
        teachers.append(model)
    return teachers, notes


def _train_loader(cfg: Config, dataset) -> DataLoader:
    """The first training batch as the trainer draws it (the data set's own batches if it has them)."""
    batch_size = int(cfg.data.get("batch_size", 64))
    if len(dataset) == 0:
        raise UserError(f"{cfg.source}: the training set of data '{cfg.data['name']}' is empty")
    g = torch.Generator().manual_seed(epoch_seed(cfg.seed, 0))
    make_batches = getattr(dataset, "train_batch_sampler", None)
    if make_batches is not None:
        return DataLoader(dataset, batch_sampler=make_batches(batch_size, g), generator=g)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=g)


def _check_validation(cfg: Config, task, student, dataset, device, autocast) -> None:
    if len(dataset) == 0:
        raise UserError(f"{cfg.source}: the validation set of data '{cfg.data['name']}' is empty")
    """The task's own evaluation on the first validation batch."""
    batch_size = int(cfg.data.get("eval_batch_size") or 2 * int(cfg.data.get("batch_size", 64)))
    first = Subset(dataset, range(min(batch_size, len(dataset))))
    task.evaluate(student, DataLoader(first, batch_size=batch_size), device, autocast)
