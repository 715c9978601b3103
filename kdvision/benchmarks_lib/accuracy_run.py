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


def _comparable(cfg) -> dict:
    """A config as flat {dotted key: value}, without the teachers' checkpoints: the benchmark
    itself sets those (where the shared teacher lies); they are not part of what a run is."""
    from kdvision.engine.resume_check import flatten

    data = cfg.to_dict()
    for t in [data.get("teacher")] + list(data.get("teachers") or []):
        if isinstance(t, dict):
            t.pop("checkpoint", None)
    return flatten(data)


def config_difference(saved, now) -> str | None:
    """The first key whose value differs between two configs, as 'key: old -> new' (None if
    they agree). The saved side is read back through the schema (``config_from_dict``), as
    ``--resume`` does, so options a newer kdvision added compare at their defaults."""
    a, b = _comparable(saved), _comparable(now)
    for key in sorted(set(a) | set(b)):
        old, new = a.get(key, "<absent>"), b.get(key, "<absent>")
        if old != new:
            return f"{key}: {old!r} -> {new!r}"
    return None


def check_same_config(cfg, target: Path) -> None:
    """A run folder is reused (skipped as done, or resumed) only for the config that made it."""
    path = target / "config.yaml"
    if cfg is None or not path.is_file():
        return
    import yaml

    from kdvision.config import config_from_dict

    saved = config_from_dict(yaml.safe_load(path.read_text()) or {}, str(path))
    found = config_difference(saved, cfg)
    if found:
        raise UserError(f"bench accuracy: {target} holds a run of another config ({found}); "
                        f"delete that folder or choose another --out")


def resumed_marker(target: Path) -> Path:
    return target.parent / f".{target.name}.resumed"
