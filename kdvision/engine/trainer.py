"""The one trainer for every task and method.

It hands the method its training progress (``method.set_progress(epoch + step / steps)``,
which the method's loss-term weight schedules read), asks it for ``(output, {name: weighted
loss})``, sums the dict, backpropagates, steps the optimisers and logs every term: per epoch,
``train/<term>`` is the weighted term's mean (what the total ``train/loss`` sums),
``train/raw/<term>`` the unweighted term's and ``train/weight/<term>`` the weight's. It walks
``train.stages`` (switching the method's parameters at each boundary), evaluates every ``eval_every`` epochs, writes ``last.pt`` each
epoch and ``best.pt`` on improvement (atomically), and resumes exactly where a run stopped:
every epoch reseeds all random generators from (seed, epoch), so a run resumed after epoch k
replays the same augmentations and ends with the same weights as an uninterrupted run.
"""
from __future__ import annotations

import contextlib
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader

from kdvision.config import Config, load_config
from kdvision import student_metadata
from kdvision.engine import build, distributed
from kdvision.engine.checkpoint import RunDir, load_checkpoint, save_checkpoint, save_safetensors
from kdvision.engine.cpu_memory import keep_freed_memory
from kdvision.engine.logger import RunLogger, Throughput
from kdvision.engine.optim import build_optimizer, set_learning_rate
from kdvision.errors import NonFiniteLossError, UserError
from kdvision.models import count_parameters


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"train.device is '{name}' but no CUDA device is available")
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
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if dtype is None:
        raise UserError(f"train.precision must be fp32, bf16 or fp16, got '{precision}'")
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


class Trainer:
    def __init__(self, cfg: Config, out: str | Path, resume: bool = False, quiet: bool = False):
        self.cfg = cfg
        self.run = RunDir(out)
        self.resume = resume
        self.quiet = quiet
        self.dist = distributed.init_from_env(cfg.train.distributed, cfg.train.device)  # DDP under torchrun
        self.rank, self.world_size = self.dist.rank, self.dist.world_size
        self.is_main = self.dist.is_main

    # ------------------------------------------------------------------ building
    def _train_recipe(self, recipe: Path, overrides: list[str], target: Path) -> None:
        """Train a teacher recipe (the first stage of a teacher-then-student run)."""
        resume = (target / "checkpoints" / "last.pt").is_file()
        self.log.line(f"teacher: {'resuming' if resume else 'training'} recipe {recipe} into {target}")
        sub_cfg = load_config(recipe, overrides)
        Trainer(sub_cfg, target, resume=resume, quiet=self.quiet).fit()

    def _loader(self, dataset, train: bool, epoch: int = 0) -> DataLoader:
        d = self.cfg.data
        batch_size = int(d.get("batch_size", 64)) if train else int(d.get("eval_batch_size", 2 * d.get("batch_size", 64)))
        workers = int(d.get("workers", 0))
        g = torch.Generator().manual_seed(epoch_seed(self.cfg.seed, epoch))
        # a data set may need its own batches (e.g. every weather type in each batch)
        make_batches = getattr(dataset, "train_batch_sampler", None)
        if train and self.world_size > 1:  # this rank's shard
            return distributed.train_loader(dataset, batch_size, workers, epoch_seed(self.cfg.seed, epoch), self.dist,
                                            make_batches, self.device.type == "cuda", worker_init)
        batch_sampler = make_batches(batch_size, g) if (train and make_batches) else None
        if batch_sampler is not None:
            return DataLoader(dataset, batch_sampler=batch_sampler, num_workers=workers,
                              worker_init_fn=worker_init, generator=g, pin_memory=self.device.type == "cuda")
        return DataLoader(dataset, batch_size=batch_size, shuffle=train, drop_last=train and len(dataset) > batch_size,
                          num_workers=workers, worker_init_fn=worker_init, generator=g,
                          pin_memory=self.device.type == "cuda", persistent_workers=False)

    def _build(self) -> None:
        cfg = self.cfg
        self.device = distributed.local_device(pick_device(cfg.train.device), self.dist)
        if self.device.type == "cpu":
            keep_freed_memory()  # no page faults on every step (engine/cpu_memory.py)
        self.autocast = autocast_factory(self.device, cfg.train.precision)
        if cfg.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        seed_everything(cfg.seed)
        self.task = build.build_task(cfg)
        self.datasets = self.task.datasets()
        cls = build.method_class(cfg)
        build.validate_method(cfg, cls, self.task.dataset_info())  # before any teacher recipe trains
        if cfg.teacher_cache is not None:
            from kdvision.cache import attach

            attach.check_early(cfg, cls, self.datasets["train"])  # before any teacher trains
        teachers = build.build_teachers(cfg, self.task, self.run.root, self._train_recipe)
        seed_everything(cfg.seed)
        self.method = build.build_method(cfg, self.task, teachers).to(self.device)
        if cfg.train.channels_last:
            self.method.to(memory_format=torch.channels_last)
        if cfg.train.compile_teacher:
            for i, t in enumerate(self.method.teachers):
                self.method.teachers[i] = torch.compile(t)
        if cfg.teacher_cache is not None:  # the training set replays recorded views with their teacher logits
            self.datasets = attach.attach_teacher_cache(cfg, self.method, self.datasets, self.run.root,
                                                        self.device, self.log.line)
        self.base_params = self.method.params
        first = to_device(next(iter(self._loader(self.datasets["train"], True, 0))), self.device,
                          cfg.train.channels_last)
        with self.autocast():
            self.method.setup(first)
        self.optimizer = build_optimizer(cfg.train.optimizer, self.method.param_groups())
        self.extra_optimizers = self.method.extra_optimizers()
        self.scaler = torch.amp.GradScaler("cuda") if (cfg.train.precision == "fp16" and self.device.type == "cuda") else None
        self.eval_loader = self._loader(self.datasets["val"], False)
        self.picture_batch = None
        # what train_step calls: the method, or the method inside DDP under torchrun
        self.step_module = distributed.wrap(self.method, self.dist, self.device,
                                            cfg.train.distributed.find_unused_parameters)

    # ------------------------------------------------------------------ checkpoints
    def _state(self, epoch: int, best: float | None, best_epoch: int | None) -> dict:
        np_state = np.random.get_state()
        return {
            "model": self.method.trainable_state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "extra_optimizers": [o.state_dict() for o in self.extra_optimizers],
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "epoch": epoch,
            "progress": float(epoch),  # training progress in epochs the loss-weight schedules read
            "best_metric": best,
            "best_epoch": best_epoch,
            "metric": self.task.metric,
            "rng": {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
                    "numpy": torch.from_numpy(np_state[1].astype(np.int64))},
            "config": self.cfg.to_dict(),
        }

    def _restore(self) -> tuple[int, float | None, int | None]:
        state = load_checkpoint(self.run.last)
        try:
            self.method.load_trainable_state_dict(state["model"])
        except RuntimeError as e:
            raise UserError(f"--resume: {self.run.last} does not fit this config: {e}") from None
        self.optimizer.load_state_dict(state["optimizer"])
        for opt, s in zip(self.extra_optimizers, state.get("extra_optimizers", [])):
            opt.load_state_dict(s)
        if self.scaler and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        self.method.set_progress(float(state.get("progress", state["epoch"])))
        return state["epoch"], state["best_metric"], state["best_epoch"]

    def _write_config(self) -> None:
        if self.resume:
            saved = yaml.safe_load(self.run.config.read_text()) if self.run.config.is_file() else None
            now = self.cfg.to_dict()
            if saved is not None:
                changed = [k for k in now if k != "train" and now[k] != saved.get(k)]
                if changed:
                    self.log.line(f"note: resuming with a config whose '{changed[0]}' differs from {self.run.config}")
        text = yaml.safe_dump(self.cfg.to_dict(), sort_keys=False)
        self.run.config.write_text(f"# resolved from {self.cfg.source}\n{text}")

    def _discard_empty_run(self) -> None:
        """A new run that failed before training leaves no folder behind (unless it holds weights)."""
        if self.resume or not self.is_main or not self.run.root.is_dir():
            return
        if any(self.run.root.rglob("*.pt")) or any(self.run.root.rglob("*.safetensors")):
            return
        self.log.close()
        import shutil

        shutil.rmtree(self.run.root, ignore_errors=True)

    # ------------------------------------------------------------------ the loop
    def stage_at(self, epoch: int):
        start = 0
        for i, stage in enumerate(self.cfg.train.stages):
            if epoch < start + stage.epochs:
                return i, stage
            start += stage.epochs
        return None, None

    def _apply_stage(self, epoch: int, current: int | None) -> int | None:
        index, stage = self.stage_at(epoch)
        if stage is not None and index != current:
            self.method.params = self.base_params
            self.method.set_params(build.stage_overrides(self.cfg, type(self.method), index))
            self.log.line(f"stage {index + 1}/{len(self.cfg.train.stages)}: {stage.name} from epoch {epoch + 1}")
        return index

    def fit(self) -> dict:
        cfg = self.cfg
        if self.is_main:
            self.run.create(self.resume)
        self.log = RunLogger(self.run.metrics, self.run.tensorboard if cfg.train.tensorboard else None,
                             enabled=self.is_main, quiet=self.quiet)
        started = time.perf_counter()
        try:
            try:
                self._build()
            except UserError:
                self._discard_empty_run()
                raise
            if self.is_main:
                self._write_config()
            start_epoch, best, best_epoch = self._restore() if self.resume else (0, None, None)
            if self.resume:
                self.log.line(f"resuming {self.run.root} after epoch {start_epoch}")
            stage = None
            for epoch in range(start_epoch, cfg.train.epochs):
                stage = self._apply_stage(epoch, stage)
                seed_everything(epoch_seed(cfg.seed, epoch) + self.rank)
                row = self._train_epoch(epoch)
                last = epoch + 1 == cfg.train.epochs
                if (epoch + 1) % max(cfg.train.eval_every, 1) == 0 or last:
                    metrics = self.evaluate("val")
                    value = metrics[self.task.metric]
                    improved = best is None or (value > best if self.task.higher_is_better else value < best)
                    if improved:
                        best, best_epoch = value, epoch + 1
                    row.update({f"val/{k}": v for k, v in metrics.items()})
                    row[f"best/{self.task.metric}"] = best
                    if improved and self.is_main:
                        save_checkpoint(self._state(epoch + 1, best, best_epoch), self.run.best)
                if self.is_main:
                    save_checkpoint(self._state(epoch + 1, best, best_epoch), self.run.last)
                    self.log.record(row)
                    self.log.scalars({k: v for k, v in row.items() if isinstance(v, (int, float)) and k != "epoch"},
                                     epoch + 1)
                    self.log.line(self._epoch_line(row))
                    if cfg.train.pictures_every and (epoch + 1) % cfg.train.pictures_every == 0:
                        self._pictures(epoch + 1)
            summary = self._finish(best, best_epoch, time.perf_counter() - started)
            distributed.barrier(self.dist)  # ranks leave together (rank 0 may still be writing)
        except Exception as e:
            distributed.raise_if_lost_rank(e, self.dist)  # a dead or hung rank: one clear line
            raise
        finally:
            self.log.close()
        return summary

    def _train_epoch(self, epoch: int) -> dict:
        cfg, method = self.cfg, self.method
        loader = self._loader(self.datasets["train"], True, epoch)
        steps = len(loader)
        if cfg.train.max_steps_per_epoch:
            steps = min(steps, cfg.train.max_steps_per_epoch)
        method.train()
        bar = self.log.progress(steps, f"epoch {epoch + 1}/{cfg.train.epochs}")
        speed = Throughput()
        sums: dict[str, torch.Tensor] = {}
        pending: list[tuple[int, tuple[str, ...], torch.Tensor]] = []
        lr = 0.0
        log_every = max(cfg.train.log_every, 1)
        for step, batch in enumerate(loader):
            if step >= steps:
                break
            lr = set_learning_rate(self.optimizer, cfg.train, epoch, step, steps)
            method.set_progress(epoch + step / steps)
            batch = to_device(batch, self.device, cfg.train.channels_last)
            names, values = train_step(self.step_module, batch, self.optimizer, self.extra_optimizers,
                                       self.autocast, self.scaler, cfg.train.grad_clip, cfg.train.grad_clip_value)
            # no host-device sync here: loss values are checked and logged every log_every steps
            pending.append((epoch * steps + step + 1, names, values))
            raw = method.raw_terms
            if raw:
                pending.append((epoch * steps + step + 1, tuple(f"raw/{k}" for k in raw),
                                torch.stack([v.float() for v in raw.values()])))
            terms = list(raw or names) + [k for k in method.loss_weights if k not in raw]
            for k, w in method.current_weights(terms).items():  # host floats: no device sync
                s = sums.setdefault(f"#weight/{k}", [0.0, 0])
                s[0] += w
                s[1] += 1
            speed.add(int(batch["input"].shape[0]))
            if (step + 1) % log_every == 0 or step + 1 == steps:
                self._flush(pending, sums)
                pending = []
                bar.set_postfix_str(f"loss {self._mean(sums, 'loss'):.4f} {speed.rate:.0f} img/s")
            bar.update(1)
        bar.close()
        rate = distributed.reduce_epoch(sums, speed.rate, self.dist)  # sums over ranks under DDP
        row = {"epoch": epoch + 1, "lr": lr, "train/images_per_s": round(rate, 1),
               "time_s": round(speed.seconds, 2)}
        _, stage = self.stage_at(epoch)
        if stage is not None:
            row["stage"] = stage.name
        row.update({f"train/{k}": self._mean(sums, k) for k in sums if not k.startswith("#")})
        row.update({f"train/{k[1:]}": self._mean(sums, k) for k in sums if k.startswith("#weight/")})
        return row

    def _flush(self, pending, sums: dict) -> None:
        """One host sync per log interval: check every loss term is finite and accumulate means."""
        if not pending:
            return
        groups: dict[tuple[str, ...], list] = {}
        for step, names, values in pending:
            groups.setdefault(names, []).append((step, values))
        for names, items in groups.items():
            values = torch.stack([v for _, v in items]).cpu()
            finite = torch.isfinite(values)
            if not bool(finite.all()):
                row, col = map(int, (~finite).nonzero()[0])
                bad = values[row, col].item()
                raise NonFiniteLossError(
                    f"loss term '{names[col]}' became {bad} at step {items[row][0]}; training stopped, "
                    f"the last good checkpoint is kept in {self.run.root / 'checkpoints'}")
            for i, name in enumerate(names):
                self._add(sums, name, values[:, i])
            if not names[0].startswith("raw/"):  # the unweighted values are logged, not summed
                self._add(sums, "loss", values.sum(dim=1))

    @staticmethod
    def _add(sums: dict, name: str, values: torch.Tensor) -> None:
        s = sums.setdefault(name, [0.0, 0])
        s[0] += float(values.sum())
        s[1] += values.numel()

    @staticmethod
    def _mean(sums: dict, name: str) -> float:
        s = sums.get(name)
        return s[0] / max(s[1], 1) if s else float("nan")

    def _epoch_line(self, row: dict) -> str:
        terms = " ".join(f"{k[6:]} {v:.4f}" for k, v in row.items() if k.startswith("train/") and k not in
                         ("train/images_per_s", "train/loss") and not k.startswith(("train/raw/", "train/weight/")))
        text = (f"epoch {row['epoch']}/{self.cfg.train.epochs} loss {row.get('train/loss', float('nan')):.4f} "
                f"({terms}) lr {row['lr']:.4g} {row['train/images_per_s']:.0f} img/s {row['time_s']:.1f}s")
        metric = self.task.metric
        if f"val/{metric}" in row:
            text += f" | val {metric} {row[f'val/{metric}']:.2f} (best {row[f'best/{metric}']:.2f})"
        return text

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, split: str = "val") -> dict[str, float]:
        """The student's metrics on a split; under DDP rank 0 evaluates and every rank gets its result."""
        metrics = None
        if self.is_main:
            loader = self.eval_loader if split == "val" else self._loader(self.datasets[split], False)
            metrics = self.task.evaluate(self.method.student, loader, self.device, self.autocast)
            self.method.student.train()
        return distributed.broadcast_object(metrics, self.dist)

    def _pictures(self, epoch: int) -> None:
        if self.picture_batch is None:
            self.picture_batch = to_device(next(iter(self.eval_loader)), self.device)
        self.method.student.eval()
        with torch.no_grad(), self.autocast():
            image = self.task.pictures(self.method.student, self.picture_batch)
        self.method.student.train()
        if image is None:
            return
        from PIL import Image

        self.run.pictures.mkdir(exist_ok=True)
        Image.fromarray(image).save(self.run.pictures / f"epoch_{epoch:04d}.png")
        self.log.image("pictures", image, epoch)

    def _finish(self, best: float | None, best_epoch: int | None, wall: float) -> dict:
        """Test the last and the best weights, export the best student, write summary.json."""
        metric = self.task.metric
        replicas = distributed.replica_digests(self.method, self.dist) if self.world_size > 1 else None
        test_last = self.evaluate("test")
        test_best = test_last
        has_best = distributed.broadcast_object(self.run.best.is_file(), self.dist)
        if has_best and best_epoch != self.cfg.train.epochs:
            if self.is_main:
                self.method.load_trainable_state_dict(load_checkpoint(self.run.best)["model"])
            test_best = self.evaluate("test")
        summary = {
            "metric": metric,
            "epochs": self.cfg.train.epochs,
            "best_epoch": best_epoch,
            f"val_best_{metric}": best,
            "test_last": test_last,
            "test_best": test_best,
            "student_parameters": count_parameters(self.method.student),
            "wall_s": round(wall, 2),
            "device": str(self.device),
        }
        if replicas:
            summary["ddp"] = {"world_size": self.world_size, "backend": self.dist.backend,
                              "parameter_digest_per_rank": replicas}
        if self.is_main:
            self._pictures(self.cfg.train.epochs)
            meta = student_metadata.student_metadata(self.cfg, self.task, extra={"epoch": str(best_epoch)})
            save_safetensors(self.method.student.state_dict(), self.run.student, metadata=meta)
            self.run.summary.write_text(json.dumps(summary, indent=2))
            self.log.line(f"done: test {metric} {test_last[metric]:.2f} (last epoch), "
                          f"{test_best[metric]:.2f} (best val epoch {best_epoch}); student -> {self.run.student}")
        return summary
