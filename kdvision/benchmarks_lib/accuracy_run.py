"""``bench accuracy``, running: one run trained (or resumed, or found finished) under its lock,
and never a folder reused for another config."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from kdvision.benchmarks_lib.common import locked
from kdvision.errors import UserError


def train_once(cfg, target: Path, verbose: bool) -> tuple[dict, str]:
    """Train into ``target`` unless it is finished; resume it when it holds a checkpoint.

    Under ``.<target>.lock`` beside it: a second process asking for the same run waits, then
    finds it finished.
    """
    from kdvision.engine.trainer import Trainer

    with locked(target.parent / f".{target.name}.lock", f"[bench] waiting: another process is training {target}"):
        check_same_config(cfg, target)
        summary = target / "summary.json"
        if summary.is_file():
            return json.loads(summary.read_text()), "done before"
        resume = (target / "checkpoints" / "last.pt").is_file()
        if target.exists() and not resume:
            shutil.rmtree(target)  # interrupted before its first checkpoint: nothing to keep
        if resume:  # its summary's wall_s will cover only the resumed part
            resumed_marker(target).touch()
        Trainer(cfg, target, resume=resume, quiet=not verbose).fit()
        return json.loads(summary.read_text()), "resumed" if resume else "trained"


#: set by the benchmark itself (where the shared teacher lies), not part of what a run is
IGNORED_KEYS = ("teacher.checkpoint", "teachers.checkpoint")


def config_difference(saved, now, key: str = "") -> str | None:
    """The first dotted key whose value differs between two resolved configs (None if they agree).

    Keys present on one side only are skipped (a newer kdvision may add options with defaults).
    """
    if key in IGNORED_KEYS:
        return None
    if isinstance(saved, dict) and isinstance(now, dict):
        for k in sorted(set(saved) & set(now)):
            found = config_difference(saved[k], now[k], f"{key}.{k}" if key else str(k))
            if found:
                return found
        return None
    if isinstance(saved, list) and isinstance(now, list) and len(saved) == len(now):
        for a, b in zip(saved, now):
            found = config_difference(a, b, key)
            if found:
                return found
        return None
    return None if saved == now else f"{key}: {saved!r} -> {now!r}"


def check_same_config(cfg, target: Path) -> None:
    """A run folder is reused (skipped as done, or resumed) only for the config that made it."""
    path = target / "config.yaml"
    if cfg is None or not path.is_file():
        return
    import yaml

    saved = json.loads(json.dumps(yaml.safe_load(path.read_text()) or {}))
    found = config_difference(saved, json.loads(json.dumps(cfg.to_dict())))
    if found:
        raise UserError(f"bench accuracy: {target} holds a run of another config ({found}); "
                        f"delete that folder or choose another --out")


def resumed_marker(target: Path) -> Path:
    return target.parent / f".{target.name}.resumed"
