"""Opening a run directory before training: lock, new-or-resume checks, restartable folders.

* A new run needs a missing or empty ``--out`` (or one left by a run that stopped before its
  first checkpoint, which is started again from scratch, saying so).
* ``--resume`` needs ``checkpoints/last.pt``; its contents and the run's ``config.yaml`` are
  checked against the resolved config before anything is written (engine/resume_check.py).
* Everything that this invocation creates is recorded, so a run that fails during setup
  removes only that (never a folder or file that was there before).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from kdvision.config import Config
from kdvision.engine.checkpoint import RunDir, check_resumable, load_checkpoint, remove_stale_temp_files
from kdvision.engine.resume_check import compare, read_run_config
from kdvision.engine.run_lock import LOCK_NAME, RunLock
from kdvision.errors import UserError

# what a run writes before its first checkpoint (cleared on a restart) and what it keeps
# across a restart (a teacher trained inside the run, the teacher-output cache)
CLEARED_ON_RESTART = ("config.yaml", "metrics.jsonl", "tb", "pictures", "checkpoints")
KEPT_ON_RESTART = ("teachers", "teacher_cache.safetensors", LOCK_NAME)


@dataclass
class OpenedRun:
    resume: bool
    lock: RunLock
    state: dict | None = None  # last.pt, already checked, when resuming
    created_root: bool = False
    before: set = field(default_factory=set)  # the entries of the root before training began


def _restartable(run: RunDir) -> bool:
    """A folder that a kdvision run left before its first checkpoint (nothing else in it)."""
    names = {p.name for p in run.root.iterdir()} - {LOCK_NAME}
    if not names or not names <= set(CLEARED_ON_RESTART) | set(KEPT_ON_RESTART):
        return False
    return not (run.checkpoints.is_dir() and any(run.checkpoints.iterdir()))


def _clear_for_restart(run: RunDir) -> None:
    for name in CLEARED_ON_RESTART:
        p = run.root / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def open_run(run: RunDir, cfg: Config, resume: bool, say) -> OpenedRun:
    root = run.root
    if root.exists() and not root.is_dir():
        raise UserError(f"--out {root} is a file, not a run directory (nothing was overwritten)")
    if resume and not root.is_dir():
        raise UserError(f"--resume: run directory not found: {root}")
    created = not root.exists()
    if created:
        try:
            root.mkdir(parents=True)
        except OSError as e:
            raise UserError(f"cannot create the run directory {root}: {e.strerror}") from None
    lock = RunLock(root, say).acquire()
    try:
        opened = _check(run, cfg, resume, say, lock)
    except BaseException:
        lock.release()
        if created:
            shutil.rmtree(root, ignore_errors=True)
        raise
    opened.created_root = created
    opened.before = {p.name for p in root.iterdir()}
    return opened


def _check(run: RunDir, cfg: Config, resume: bool, say, lock: RunLock) -> OpenedRun:
    for p in remove_stale_temp_files(run.checkpoints) + remove_stale_temp_files(run.root):
        say(f"note: removed {p}, a temporary file left by a killed run")
    others = [p for p in run.root.iterdir() if p.name != LOCK_NAME]
    if resume and not run.last.is_file():
        if not _restartable(run):
            raise UserError(f"--resume: {run.root} has no checkpoint ({run.last} missing)")
        say(f"note: {run.root} has no checkpoint (its run stopped before the first one); starting it from scratch")
        _clear_for_restart(run)
        return OpenedRun(False, lock)
    if resume:
        state = load_checkpoint(run.last)
        check_resumable(state, run.last)
        saved = read_run_config(run.config) if run.config.is_file() else _config_in(state, run.last)
        for change in compare(saved, cfg, int(state["epoch"])):
            say(f"note: resuming with a changed {change}")
        return OpenedRun(True, lock, state)
    if others:
        if not _restartable(run):
            raise UserError(f"run directory {run.root} already exists; pass --resume to continue it, "
                            f"or choose another --out (nothing was overwritten)")
        say(f"note: {run.root} holds a run that stopped before its first checkpoint; starting it from scratch")
        _clear_for_restart(run)
    return OpenedRun(False, lock)


def _config_in(state: dict, path: Path) -> Config:
    from kdvision.config import config_from_dict

    if not isinstance(state.get("config"), dict):
        raise UserError(f"--resume: the run has no config.yaml and {path} holds no config; nothing was changed")
    try:
        return config_from_dict(state["config"], f"{path} (its config)")
    except UserError as e:
        raise UserError(f"--resume: the run's config is not valid: {e}") from None


def discard_setup(run: RunDir, opened: OpenedRun) -> None:
    """A new run that failed before training: remove only what this invocation created,
    keeping anything that holds weights (a teacher trained on the way)."""
    if opened.resume:
        return
    for p in run.root.iterdir():
        if p.name in opened.before or p.name == LOCK_NAME:
            continue
        if p.is_dir() and (any(p.rglob("*.pt")) or any(p.rglob("*.safetensors"))):
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.suffix not in (".pt", ".safetensors"):
            p.unlink(missing_ok=True)
    opened.lock.release()
    if opened.created_root and not any(run.root.iterdir()):
        run.root.rmdir()
