"""``--resume`` with a config that differs from the run's: which changes are safe.

The whole resolved config is compared with the run's ``config.yaml`` (read back through the
same schema, so defaults added since are filled in) before anything is written. Safe are the
changes that leave the trained weights of the epochs already run untouched: more epochs (or a
longer last stage), evaluation, logging, picture and checkpoint intervals, TensorBoard, data
loader workers and the evaluation batch size. Anything else (learning rate, batch size,
optimiser, model, method, data...) is refused naming the keys.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


from kdvision.config import Config, config_from_dict
from kdvision.config_yaml import read_yaml_mapping
from kdvision.errors import UserError

SAFE_KEYS = {
    "train.eval_every", "train.log_every", "train.tensorboard", "train.pictures_every",
    "train.checkpoint_every_steps", "data.workers", "data.eval_batch_size",
}


def read_run_config(path: Path) -> Config:
    """The run's own config.yaml, validated; a damaged one is one line naming it."""
    try:  # strict, as every config: UTF-8, a mapping, no key twice
        data = read_yaml_mapping(path)
    except UserError as e:
        raise UserError(f"--resume: the run's {e}; nothing was changed") from None
    try:
        return config_from_dict(data, str(path))
    except UserError as e:
        raise UserError(f"--resume: the run's config is not valid: {e}") from None


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _stages_longer_last(saved: list, now: list) -> bool:
    """Only the last stage's epochs grew."""
    if len(saved) != len(now) or not now:
        return False
    head_equal = saved[:-1] == now[:-1]
    last_s, last_n = dict(saved[-1]), dict(now[-1])
    grew = last_n.pop("epochs") >= last_s.pop("epochs")
    return head_equal and grew and last_s == last_n


def compare(saved: Config, now: Config, done_epochs: int) -> list[str]:
    """The safe changes as 'key: old -> new'; raises UserError naming every unsafe key."""
    a, b = flatten(saved.to_dict()), flatten(now.to_dict())
    changed = sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))
    safe, unsafe = [], []
    for key in changed:
        old, new = a.get(key, "<absent>"), b.get(key, "<absent>")
        if key in SAFE_KEYS:
            safe.append(key)
        elif key == "train.epochs" and isinstance(new, int) and isinstance(old, int) and new >= old:
            safe.append(key)
        elif key == "train.stages" and isinstance(old, list) and isinstance(new, list) \
                and _stages_longer_last(old, new):
            safe.append(key)
        else:
            unsafe.append(key)
    if unsafe:
        shown = ", ".join(f"{k} ({_short(a.get(k, '<absent>'))} -> {_short(b.get(k, '<absent>'))})"
                          for k in unsafe[:4])
        more = f" and {len(unsafe) - 4} more" if len(unsafe) > 4 else ""
        raise UserError(f"--resume: the config differs from the run's {saved.source} in {shown}{more}; only more "
                        f"epochs and evaluation/logging settings may change on resume (start a new run with "
                        f"another --out for the rest); nothing was changed")
    if now.train.epochs < done_epochs:
        raise UserError(f"--resume: train.epochs={now.train.epochs} but the run has already trained "
                        f"{done_epochs} epochs; nothing was changed")
    return [f"{k}: {_short(a.get(k))} -> {_short(b.get(k))}" for k in safe]


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."
