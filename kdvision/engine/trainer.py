"""The one trainer for every task and method.

It hands the method its training progress (``method.set_progress(epoch + step / steps)``,
which the method's loss-term weight schedules read), asks it for ``(output, {name: weighted
loss})``, sums the dict, backpropagates, steps the optimisers and logs every term: per epoch,
``train/<term>`` is the weighted term's mean (what the total ``train/loss`` sums),
``train/raw/<term>`` the unweighted term's and ``train/weight/<term>`` the weight's. It walks
``train.stages`` (switching the method's parameters at each boundary), evaluates every
``eval_every`` epochs, writes ``last.pt`` each epoch (and every ``train.checkpoint_every_steps``
steps inside one) and ``best.pt`` on improvement (atomically), and resumes exactly where a run
stopped: every epoch reseeds all random generators from (seed, epoch), and a checkpoint inside an
epoch holds the generators' states, the step and the running loss sums; resuming re-reads the
epoch's first batches without training on them (so the sampler and the loader workers'
augmentation generators land where they were), then restores the states. A resumed run ends
with the same weights as an uninterrupted one. The run directory is locked while a training
writes into it (engine/run_lock.py) and opened by engine/run_setup.py.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import torch
import yaml
from torch.utils.data import DataLoader

from kdvision import student_metadata
from kdvision.config import Config, load_config
from kdvision.engine import build, distributed, rng_state
from kdvision.engine.checkpoint import RunDir, atomic_write, check_resumable, load_checkpoint, save_checkpoint, \
    save_safetensors
from kdvision.engine.run_setup import discard_setup, open_run
from kdvision.engine.val_check import check_split_files
from kdvision.engine.cpu_memory import keep_freed_memory
from kdvision.engine import fast_defaults
from kdvision.engine.logger import RunLogger, Throughput
from kdvision.engine.optim import build_optimizer, set_learning_rate
from kdvision.cache.hint import cache_hint
from kdvision.data.device_batches import DeviceBatches, use_device_resident
from kdvision.errors import NonFiniteLossError, UserError
from kdvision.models import count_parameters
from kdvision.engine.runtime import autocast_factory, epoch_seed, pick_device, seed_everything, to_device, \
    train_step, worker_init


DIE_AFTER_STEP = "KDVISION_TEST_DIE_AFTER_STEP"  # test hook: SIGKILL this process after step N


def _test_hook_die(global_step: int) -> None:
    """The tests' way to kill a training at a known step, exactly as kill -9 would."""
    target = os.environ.get(DIE_AFTER_STEP)
    if target and global_step == int(target):
        os.kill(os.getpid(), signal.SIGKILL)


class Trainer:
    def __init__(self, cfg: Config, out: str | Path, resume: bool = False, quiet: bool = False):
        self.cfg = cfg
        self.run = RunDir(out)
        self.resume = resume
        self.quiet = quiet
        self.dist = distributed.init_from_env(cfg.train.distributed, cfg.train.device)  # DDP under torchrun
        self.rank, self.world_size = self.dist.rank, self.dist.world_size
        self.is_main = self.dist.is_main
        self.opened = None  # the locked, checked run directory (engine/run_setup.py), on rank 0
        self.best, self.best_epoch, self.global_step = None, None, 0
        self.last_saved = None  # (epoch, step) of the last checkpoint written or resumed from
        self.resume_rng = None  # the generators' states of a checkpoint inside an epoch

    # ------------------------------------------------------------------ building
    def _train_recipe(self, recipe: Path, overrides: list[str], target: Path) -> None:
        """Train a teacher recipe (the first stage of a teacher-then-student run)."""
        chain = getattr(self, "recipe_chain", (Path(self.cfg.source).resolve(),))
        if Path(recipe).resolve() in chain:  # each round would nest a run inside the last one
            names = " -> ".join(str(p) for p in (*chain, Path(recipe).resolve()))
            raise UserError(f"{self.cfg.source}: teacher recipes make a cycle: {names}")
        resume = (target / "checkpoints" / "last.pt").is_file()
        self.log.line(f"teacher: {'resuming' if resume else 'training'} recipe {recipe} into {target}")
        sub_cfg = load_config(recipe, overrides)
        sub = Trainer(sub_cfg, target, resume=resume, quiet=self.quiet)
        sub.recipe_chain = (*chain, Path(recipe).resolve())
        sub.fit()

    def _loader(self, dataset, train: bool, epoch: int = 0) -> DataLoader:
        d = self.cfg.data
        batch_size = int(d.get("batch_size", 64)) if train else int(d.get("eval_batch_size", 2 * d.get("batch_size", 64)))
        workers = int(d.get("workers", 0))
        g = torch.Generator().manual_seed(epoch_seed(self.cfg.seed, epoch))
        # a data set may need its own batches (e.g. every weather type in each batch)
        make_batches = getattr(dataset, "train_batch_sampler", None)
        if train and getattr(self, "device_resident", False):  # kdvision/data/device_batches.py
            return DeviceBatches(dataset, batch_size, self.device, g)
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
        self.choices = fast_defaults.resolve_precision(cfg, self.device)  # train.precision: auto
        self.autocast = autocast_factory(self.device, cfg.train.precision)
        if cfg.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        seed_everything(cfg.seed)
        self.task = build.build_task(cfg)
        self.datasets = self.task.datasets()
        if self.is_main:
            for split in ("val", "test"):
                if split in self.datasets and (split == "val" or self.datasets[split] is not self.datasets["val"]):
                    check_split_files(self.datasets[split], split)
        cls = build.method_class(cfg)
        build.validate_method(cfg, cls, self.task.dataset_info())  # before any teacher recipe trains
        if cfg.teacher_cache is not None:
            from kdvision.cache import attach

            attach.check_early(cfg, cls, self.datasets["train"])  # before any teacher trains
        teachers = build.build_teachers(cfg, self.task, self.run.root, self._train_recipe)
        seed_everything(cfg.seed)
        self.method = build.build_method(cfg, self.task, teachers).to(self.device)
        fast_defaults.resolve_channels_last(cfg, self.device, self.method.student, self.choices)
        if cfg.train.channels_last:
            self.method.to(memory_format=torch.channels_last)
        if cfg.train.compile_teacher:
            for i, t in enumerate(self.method.teachers):
                self.method.teachers[i] = torch.compile(t)
        if cfg.teacher_cache is not None:  # the training set replays recorded views with their teacher logits
            self.datasets = attach.attach_teacher_cache(cfg, self.method, self.datasets, self.run.root,
                                                        self.device, self.log.line)
        elif (hint := cache_hint(cfg, cls, self.datasets["train"])) is not None:
            self.log.line(hint)
        self.device_resident = use_device_resident(cfg, self.datasets["train"], self.device, self.world_size)
        self.base_params = self.method.params
        first = to_device(next(iter(self._loader(self.datasets["train"], True, 0))), self.device,
                          cfg.train.channels_last)
        self.task.check_batch(first)  # e.g. segmentation masks under task classification
        with self.autocast():
            self.method.setup(first, self.task.method_info())
        self.optimizer = build_optimizer(cfg.train.optimizer, self.method.param_groups())
        self.extra_optimizers = self.method.extra_optimizers()
        self.scaler = torch.amp.GradScaler("cuda") if (cfg.train.precision == "fp16" and self.device.type == "cuda") else None
        self.eval_loader = self._loader(self.datasets["val"], False)
        self.picture_batch = None
        # what train_step calls: the method, or the method inside DDP under torchrun
        self.step_module = distributed.wrap(self.method, self.dist, self.device,
                                            cfg.train.distributed.find_unused_parameters)

    # ------------------------------------------------------------------ checkpoints
    def _state(self, epoch: int, step: int = 0, sums: dict | None = None) -> dict:
        """Training at position (``epoch`` epochs done, ``step`` batches into the next one)."""
        return {
            "model": self.method.trainable_state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "extra_optimizers": [o.state_dict() for o in self.extra_optimizers],
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "epoch": epoch,
            "step": step,
            "global_step": self.global_step,
            # training progress in epochs, which the loss-weight schedules read
            "progress": float(epoch) + (step / self.steps_in_epoch if step else 0.0),
            "epoch_sums": {k: [float(v[0]), int(v[1])] for k, v in (sums or {}).items()},
            "best_metric": self.best,
            "best_epoch": self.best_epoch,
            "metric": self.task.metric,
            "rng": rng_state.capture(self.device),
            "config": fast_defaults.as_requested(self.cfg.to_dict(), self.choices),
        }

    def _save_last(self, epoch: int, step: int = 0, sums: dict | None = None) -> None:
        rng_per_rank = None
        if self.world_size > 1 and step:  # inside an epoch every rank's generators matter
            rng_per_rank = [None] * self.world_size
            torch.distributed.all_gather_object(rng_per_rank, rng_state.capture(self.device))
        if self.is_main:
            state = self._state(epoch, step, sums)
            if rng_per_rank:
                state["rng_per_rank"] = rng_per_rank
            save_checkpoint(state, self.run.last)
        self.last_saved = (epoch, step)

    def _restore(self) -> tuple[int, int, dict]:
        """Load last.pt (checked by rank 0 before anything was written); returns (epoch, step, sums)."""
        state = self.opened.state if self.is_main else load_checkpoint(self.run.last)
        check_resumable(state, self.run.last)
        where = self.run.last
        try:
            self.method.load_trainable_state_dict(state["model"])
        except RuntimeError as e:
            raise UserError(f"--resume: {where} does not fit this config: {str(e).splitlines()[0]}") from None
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            for opt, s in zip(self.extra_optimizers, state.get("extra_optimizers", [])):
                opt.load_state_dict(s)
            if self.scaler and state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
        except (KeyError, ValueError, TypeError) as e:
            raise UserError(f"--resume: the optimiser state in {where} does not fit this config "
                            f"({type(e).__name__}: {e})") from None
        epoch, step = int(state["epoch"]), int(state.get("step", 0))
        per_rank = state.get("rng_per_rank")
        self.resume_rng = per_rank[self.rank] if per_rank and len(per_rank) == self.world_size else state["rng"]
        self.best, self.best_epoch = state.get("best_metric"), state.get("best_epoch")
        self.global_step = int(state.get("global_step", 0))
        self.last_saved = (epoch, step)
        self.method.set_progress(float(state.get("progress", epoch)))
        return epoch, step, {k: list(v) for k, v in state.get("epoch_sums", {}).items()}

    def _write_config(self) -> None:
        text = yaml.safe_dump(fast_defaults.as_requested(self.cfg.to_dict(), self.choices), sort_keys=False)
        text = f"# resolved from {self.cfg.source}\n{fast_defaults.config_comment(self.choices)}{text}"
        atomic_write(self.run.config, lambda f: f.write(text.encode()), file_object=True)

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

    def _open(self) -> None:
        """Rank 0 locks and checks the run directory; every rank learns whether it resumes."""
        self.opened = None
        if self.is_main:
            def say(text: str) -> None:  # notes about the folder itself print even with --quiet
                print(text, file=sys.stderr, flush=True)

            self.opened = open_run(self.run, self.cfg, self.resume, say)
            self.resume = self.opened.resume
        self.resume = distributed.broadcast_object(self.resume, self.dist)

    def fit(self) -> dict:
        cfg = self.cfg
        if cfg.train.checkpoint_every_steps is not None and cfg.train.checkpoint_every_steps < 1:
            raise UserError(f"{cfg.source}: 'train.checkpoint_every_steps' must be at least 1 (or null), "
                            f"got {cfg.train.checkpoint_every_steps}")
        self._open()
        started = time.perf_counter()
        self.log = None
        try:
            self.log = RunLogger(self.run.metrics, self.run.tensorboard if cfg.train.tensorboard else None,
                                 enabled=self.is_main, quiet=self.quiet)
            try:
                self._build()
                start_epoch, start_step, sums = self._restore() if self.resume else (0, 0, {})
            except UserError:
                if self.is_main:
                    self.log.close()
                    discard_setup(self.run, self.opened)
                raise
            if self.is_main:
                self._write_config()
            if self.resume:
                at = f"step {start_step} of epoch {start_epoch + 1}" if start_step else f"epoch {start_epoch}"
                self.log.line(f"resuming {self.run.root} after {at}")
            stage = None
            for epoch in range(start_epoch, cfg.train.epochs):
                stage = self._apply_stage(epoch, stage)
                seed_everything(epoch_seed(cfg.seed, epoch) + self.rank)
                resumed_inside = epoch == start_epoch and start_step > 0
                row = self._train_epoch(epoch, start_step, sums) if resumed_inside else self._train_epoch(epoch)
                last = epoch + 1 == cfg.train.epochs
                improved = False
                if (epoch + 1) % max(cfg.train.eval_every, 1) == 0 or last:
                    metrics = self.evaluate("val")
                    value = metrics[self.task.metric]
                    improved = self.best is None or (value > self.best if self.task.higher_is_better
                                                     else value < self.best)
                    if improved:
                        self.best, self.best_epoch = value, epoch + 1
                    row.update({f"val/{k}": v for k, v in metrics.items()})
                    row[f"best/{self.task.metric}"] = self.best
                if self.is_main and cfg.train.pictures_every and (epoch + 1) % cfg.train.pictures_every == 0:
                    self._pictures(epoch + 1)
                if not last:  # the generators the next epoch starts with: what last.pt records
                    seed_everything(epoch_seed(cfg.seed, epoch + 1) + self.rank)
                if improved and self.is_main:
                    save_checkpoint(self._state(epoch + 1), self.run.best)
                self._save_last(epoch + 1)
                if self.is_main:
                    self.log.record(row)
                    self.log.scalars({k: v for k, v in row.items() if isinstance(v, (int, float)) and k != "epoch"},
                                     epoch + 1)
                    self.log.line(self._epoch_line(row))
            summary = self._finish(self.best, self.best_epoch, time.perf_counter() - started)
            distributed.barrier(self.dist)  # ranks leave together (rank 0 may still be writing)
        except Exception as e:
            distributed.raise_if_lost_rank(e, self.dist)  # a dead or hung rank: one clear line
            raise
        finally:
            if self.log is not None:
                self.log.close()
            if self.opened is not None:
                self.opened.lock.release()
        return summary

    def _train_epoch(self, epoch: int, skip: int = 0, sums: dict | None = None) -> dict:
        """Train one epoch; ``skip`` batches of it were trained before a mid-epoch checkpoint,
        whose running loss ``sums`` continue."""
        cfg, method = self.cfg, self.method
        loader = self._loader(self.datasets["train"], True, epoch)
        steps = len(loader)
        if cfg.train.max_steps_per_epoch:
            steps = min(steps, cfg.train.max_steps_per_epoch)
        self.steps_in_epoch = steps
        method.train()
        bar = self.log.progress(steps, f"epoch {epoch + 1}/{cfg.train.epochs}")
        speed = Throughput()
        sums = sums if sums is not None else {}
        pending: list[tuple[int, tuple[str, ...], torch.Tensor]] = []
        lr = 0.0
        log_every = max(cfg.train.log_every, 1)
        every = cfg.train.checkpoint_every_steps
        batches = iter(loader)
        for _ in range(skip):  # read, not trained: the loader workers' generators advance as they did
            next(batches)
            bar.update(1)
        if skip:
            rng_state.restore(self.resume_rng, self.device)
        for step in range(skip, steps):
            batch = next(batches)
            lr = set_learning_rate(self.optimizer, cfg.train, epoch, step, steps)
            method.set_progress(epoch + step / steps)
            batch = to_device(batch, self.device, cfg.train.channels_last)
            names, values = train_step(self.step_module, batch, self.optimizer, self.extra_optimizers,
                                       self.autocast, self.scaler, cfg.train.grad_clip, cfg.train.grad_clip_value)
            self.global_step += 1
            # no host-device sync here: loss values are checked and logged every log_every steps
            pending.append((self.global_step, names, values))
            raw = method.raw_terms
            if raw:
                pending.append((self.global_step, tuple(f"raw/{k}" for k in raw),
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
            if every and self.global_step % every == 0 and step + 1 < steps:
                self._flush(pending, sums)  # never a checkpoint of weights that a NaN already reached
                pending = []
                self._save_last(epoch, step + 1, sums)
            _test_hook_die(self.global_step)
            bar.update(1)
        del batches
        bar.close()
        rate = distributed.reduce_epoch(sums, speed.rate, self.dist)  # sums over ranks under DDP
        row = {"epoch": epoch + 1, "lr": lr, "train/images_per_s": round(rate, 1),
               "time_s": round(speed.seconds, 4)}  # to 0.1 ms: a small epoch lasts ~0.05 s
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
                    f"{self._kept()}")
            for i, name in enumerate(names):
                self._add(sums, name, values[:, i])
            if not names[0].startswith("raw/"):  # the unweighted values are logged, not summed
                self._add(sums, "loss", values.sum(dim=1))

    def _kept(self) -> str:
        """What a stopped run leaves, truthfully."""
        if self.last_saved is None:
            return (f"before its first checkpoint: nothing was saved; the same command starts {self.run.root} "
                    f"again from scratch")
        epoch, step = self.last_saved
        at = f"step {step} of epoch {epoch + 1}" if step else f"epoch {epoch}"
        return f"the last good checkpoint {self.run.last} (after {at}) is kept; --resume continues from it"

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
            "torch_threads": torch.get_num_threads(),  # sums run in another order on another count
            **fast_defaults.summary_fields(self.choices),  # what train.precision/channels_last: auto chose
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
