"""``bench accuracy --sweep KEY=V1,V2,...``: a recipe's hyperparameter (e.g. a loss weight,
``method.weights.sp``) chosen on the VALIDATION split, never the test split.

A sweep applies to the recipes whose config has KEY (after ``base:`` and the overrides); the
others train as usual. Several ``--sweep`` options that apply to one recipe span their grid.
Every value trains at every seed of the benchmark, into ``DIR/runs/<recipe>/sweep/<point>/seed<s>``;
the value with the best mean over seeds of the best validation metric (summary.json
``val_best_<metric>``) is chosen, and its runs are the recipe's row in the main table.
"""
from __future__ import annotations

import itertools
import statistics
from pathlib import Path

from kdvision.benchmarks_lib.accuracy_plan import RUNS
from kdvision.errors import UserError


def parse_sweeps(items: list[str]) -> list[tuple[str, list[str]]]:
    """``["method.weights.sp=300,1000,3000"]`` -> ``[("method.weights.sp", ["300", "1000", "3000"])]``."""
    sweeps = []
    for item in items:
        key, sep, values = item.partition("=")
        parts = [v.strip() for v in values.split(",")]
        if not sep or not key.strip() or not all(parts):
            raise UserError(f"bench accuracy: --sweep {item!r}: expected KEY=V1,V2,... (e.g. method.weights.sp=300,1000)")
        if len(set(parts)) != len(parts):
            raise UserError(f"bench accuracy: --sweep {item!r}: a value is named twice")
        if key in [k for k, _ in sweeps]:
            raise UserError(f"bench accuracy: --sweep names {key} twice")
        sweeps.append((key.strip(), parts))
    return sweeps


def _has_key(data: dict, key: str) -> bool:
    node = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def sweep_points(data: dict, sweeps: list[tuple[str, list[str]]]) -> list[list[str]]:
    """The override lists a recipe (its config as a mapping) trains at: one per grid point of the
    sweeps whose KEY it has; ``[]`` when none applies."""
    keys = [(k, vs) for k, vs in sweeps if _has_key(data, k)]
    if not keys:
        return []
    return [[f"{k}={v}" for (k, _), v in zip(keys, combo)] for combo in itertools.product(*(vs for _, vs in keys))]


def point_label(point: list[str]) -> str:
    """A grid point as one folder name: ``method.weights.sp=300`` (``,`` between keys)."""
    return ",".join(point)


def sweep_dir(out: Path, name: str, label: str, seed: int) -> Path:
    return out / RUNS / name / "sweep" / label / f"seed{seed}"


def select(points: dict[str, dict], higher_is_better: bool = True) -> str | None:
    """The grid point with the best mean validation value. ``points``: {label: {"val": {seed: value}}}
    (other keys, such as test values, are deliberately not looked at). Only the seeds every point
    finished count, so each mean covers the same seeds; None while they share none."""
    if not points:
        return None
    seeds = set.intersection(*(set(p["val"]) for p in points.values()))
    if not seeds:
        return None
    score = {k: statistics.fmean(p["val"][s] for s in seeds) for k, p in points.items()}
    pick = max if higher_is_better else min
    return pick(score, key=score.get)  # ties: the first value named
