"""Loss-term weights: constants or schedules of the training progress.

A method returns its loss terms unweighted; the base method multiplies each by its weight
from ``method.weights: {term: value}``, keyed by the name the term is logged under
(``train/<term>`` in metrics.jsonl and TensorBoard). A value is a number or a schedule,
evaluated at the training progress p = epoch + step / steps_per_epoch (0-based) that the
trainer hands the method before every step (``Method.set_progress``):

  {schedule: sigmoid_ramp, start_epoch: S, epochs: N, to: V[, from: A]}
      A before epoch S; from epoch S on, A + (V - A) * exp(-5 (1 - min(e + 1 - S, N) / N)^2),
      the ramp of the official FRSKD segmentation script (MingiJi/FRSKD segmentation/main.py,
      ``sigmoid_rampup(epoch + 1 - warmup, num_epochs - warmup)``): epoch S already gets the
      ramp's first step, epoch S + N - 1 the full value.
  {schedule: linear, start_epoch: S, epochs: N, to: V[, from: A]}
      A + (V - A) * clip((e - S) / N, 0, 1).
  {schedule: step, milestones: [m1, m2, ...], values: [v0, v1, v2, ...]}
      v_k where k = the number of milestones <= e.

e is the epoch index floor(p) (``by: epoch``, the default: one value per epoch, as the
official scripts set them) or p itself (``by: step``: the value moves every step).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kdvision.config_checks import FiniteFloat, NonNegativeFloat, check_choice
from kdvision.errors import UserError

SCHEDULES = ("sigmoid_ramp", "linear", "step")
_KEYS = {
    "sigmoid_ramp": {"schedule", "start_epoch", "epochs", "to", "from", "by"},
    "linear": {"schedule", "start_epoch", "epochs", "to", "from", "by"},
    "step": {"schedule", "milestones", "values", "by"},
}


def sigmoid_ramp(current: float, length: float) -> float:
    """exp(-5 (1 - clip(current, 0, length) / length)^2); 1 for a zero length (Laine & Aila 2017)."""
    if length == 0:
        return 1.0
    phase = 1.0 - min(max(current, 0.0), length) / length
    return math.exp(-5.0 * phase * phase)


@dataclass(frozen=True)
class Weight:
    """One term's weight: a constant (``schedule`` None) or a schedule with its options."""

    value: float = 1.0
    schedule: str | None = None
    options: tuple = ()

    def at(self, progress: float) -> float:
        if self.schedule is None:
            return self.value
        o = dict(self.options)
        e = progress if o.get("by", "epoch") == "step" else math.floor(progress + 1e-9)
        if self.schedule == "step":
            k = sum(e >= m for m in o["milestones"])
            return float(o["values"][k])
        start, length, lo, hi = float(o.get("start_epoch", 0)), float(o["epochs"]), float(o.get("from", 0.0)), \
            float(o["to"])
        if self.schedule == "sigmoid_ramp":
            if e < start:
                return lo
            return lo + (hi - lo) * sigmoid_ramp(e + 1 - start, length)
        t = 1.0 if length == 0 else min(max((e - start) / length, 0.0), 1.0)
        return lo + (hi - lo) * t

    @property
    def always_zero(self) -> bool:
        return self.schedule is None and self.value == 0.0

    def describe(self):
        return self.value if self.schedule is None else {"schedule": self.schedule, **dict(self.options)}


def _number(value: Any, key: str, source: str, kind=NonNegativeFloat) -> float:
    """Weights, epochs and milestones are finite numbers >= 0 (the config's own rule); a start
    epoch is any finite number (DKD's recipes start at -1)."""
    from kdvision.config import coerce  # the loader's checker, imported only when a weight is parsed

    return coerce(value, kind, key, source)


def parse_weight(value: Any, key: str, source: str = "config") -> Weight:
    """A number or a schedule mapping -> ``Weight``; errors name the key."""
    if not isinstance(value, dict):
        return Weight(_number(value, key, source))
    name = check_choice(value.get("schedule"), SCHEDULES, f"{key}.schedule", source)
    unknown = sorted(set(value) - _KEYS[name])
    if unknown:
        raise UserError(f"{source}: unknown key '{key}.{unknown[0]}' for schedule {name} "
                        f"(known: {', '.join(sorted(_KEYS[name]))})")
    opts: dict[str, Any] = {}
    opts["by"] = check_choice(value.get("by", "epoch"), ("epoch", "step"), f"{key}.by", source)
    if name == "step":
        for k in ("milestones", "values"):
            if not isinstance(value.get(k), list):
                raise UserError(f"{source}: '{key}.{k}' must be a list")
        milestones = [_number(m, f"{key}.milestones[{i}]", source) for i, m in enumerate(value["milestones"])]
        values = [_number(v, f"{key}.values[{i}]", source) for i, v in enumerate(value["values"])]
        if len(values) != len(milestones) + 1:
            raise UserError(f"{source}: '{key}.values' needs one value more than '{key}.milestones' "
                            f"({len(milestones)} milestones, {len(values)} values)")
        if milestones != sorted(milestones):
            raise UserError(f"{source}: '{key}.milestones' must be increasing")
        opts.update(milestones=tuple(milestones), values=tuple(values))
    else:
        for k in ("epochs", "to"):
            if k not in value:
                raise UserError(f"{source}: '{key}.{k}' is missing (schedule {name})")
        opts["epochs"] = _number(value["epochs"], f"{key}.epochs", source)
        opts["to"] = _number(value["to"], f"{key}.to", source)
        opts["from"] = _number(value.get("from", 0.0), f"{key}.from", source)
        opts["start_epoch"] = _number(value.get("start_epoch", 0), f"{key}.start_epoch", source, FiniteFloat)
    return Weight(schedule=name, options=tuple(sorted(opts.items())))


def parse_weights(spec: Any, terms: dict[str, Any], key: str = "method.weights",
                  source: str = "config") -> dict[str, Weight]:
    """``method.weights`` checked against the method's terms (``terms``: name -> default)."""
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise UserError(f"{source}: '{key}' must be a mapping {{term: weight}}, got {spec!r}")
    unknown = [k for k in spec if k not in terms]
    if unknown:
        raise UserError(f"{source}: unknown loss term '{key}.{unknown[0]}' (this method's terms: "
                        f"{', '.join(terms)})")
    return {k: parse_weight(v, f"{key}.{k}", source) for k, v in spec.items()}


def check_renamed(options: dict, renamed: dict[str, str], prefix: str, source: str) -> None:
    """An old weight key (e.g. ``kd_weight``) gives one line naming its new place."""
    for k in options:
        if k in renamed:
            raise UserError(f"{source}: {prefix}.{k} is now {prefix}.weights.{renamed[k]}")
