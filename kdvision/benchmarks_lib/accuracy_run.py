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


def _teacher_recipe_file(recipe, source: str | None):
    """A teacher's ``recipe`` as the file it names (symlinks resolved): relative paths are
    relative to the config that wrote them, so one file spelt two ways (relative in a recipe,
    absolute once a base file was inherited) compares equal. Unresolvable names stay as written."""
    import os

    from kdvision.engine.build import teacher_recipe_path

    if not isinstance(recipe, str):
        return recipe
    try:
        return os.path.realpath(teacher_recipe_path(source or ".", recipe, "teacher.recipe"))
    except UserError:
        return recipe


def _comparable(cfg, source: str | None = None) -> dict:
    """A config as flat {dotted key: value}, without the teachers' checkpoints: the benchmark
    itself sets those (where the shared teacher lies); they are not part of what a run is.
    Teacher recipes compare as the files they name, relative to ``source`` (default the
    config's own ``source``)."""
    from kdvision.engine.resume_check import flatten

    data = cfg.to_dict()
    for t in [data.get("teacher")] + list(data.get("teachers") or []):
        if isinstance(t, dict):
            t.pop("checkpoint", None)
            if "recipe" in t:
                t["recipe"] = _teacher_recipe_file(t["recipe"], source or getattr(cfg, "source", None))
    return flatten(data)


def config_difference(saved, now, saved_source: str | None = None) -> str | None:
    """The first key whose value differs between two configs, as 'key: old -> new' (None if
    they agree). The saved side is read back through the schema (``config_from_dict``), as
    ``--resume`` does, so options a newer kdvision added compare at their defaults;
    ``saved_source`` is the config it was resolved from (its teacher recipes are relative to it;
    when unknown, the config benchmarked now)."""
    a, b = _comparable(saved, saved_source or getattr(now, "source", None)), _comparable(now)
    for key in sorted(set(a) | set(b)):
        old, new = a.get(key, "<absent>"), b.get(key, "<absent>")
        if old != new:
            return f"{key}: {old!r} -> {new!r}"
    return None


def resolved_from(text: str) -> str | None:
    """The config a run's config.yaml was resolved from (its first line, as the trainer writes it)."""
    first, prefix = text.split("\n", 1)[0], "# resolved from "
    if not first.startswith(prefix):
        return None
    return first[len(prefix):].strip() or None


def check_same_config(cfg, target: Path) -> None:
    """A run folder is reused (skipped as done, or resumed) only for the config that made it."""
    path = target / "config.yaml"
    if cfg is None or not path.is_file():
        return
    import yaml

    from kdvision.config import config_from_dict

    text = path.read_text()
    saved = config_from_dict(yaml.safe_load(text) or {}, str(path))
    found = config_difference(saved, cfg, resolved_from(text))
    if found:
        raise UserError(f"bench accuracy: {target} holds a run of another config ({found}); "
                        f"delete that folder or choose another --out")


def resumed_marker(target: Path) -> Path:
    return target.parent / f".{target.name}.resumed"
