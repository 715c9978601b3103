"""``bench accuracy --sweep KEY=V1,V2,...``: a recipe's hyperparameter (e.g. a loss weight,
``method.weights.sp``) chosen on the VALIDATION split, never the test split.

A sweep applies to the recipes whose config has KEY (after ``base:`` and the overrides); the
others train as usual. ``--sweep RECIPE:KEY=V1,...`` applies it to that recipe only (e.g. one
method's ``method.weights.kd`` without another's). Several ``--sweep`` options that apply to one
recipe span their grid. Every value trains at every seed of the benchmark (or, with
``--sweep-seeds K``, at its first K seeds), into ``DIR/runs/<recipe>/sweep/<point>/seed<s>``;
the value with the best mean over those seeds of the best validation metric (summary.json
``val_best_<metric>``) is chosen, its runs at the remaining seeds follow, and its runs are the
recipe's row in the main table.
"""
from __future__ import annotations

import itertools
import statistics
from pathlib import Path

from kdvision.benchmarks_lib.accuracy_plan import RUNS
from kdvision.errors import UserError


def parse_sweeps(items: list[str]) -> list[tuple[str | None, str, list[str]]]:
    """``["method.weights.sp=300,1000"]`` -> ``[(None, "method.weights.sp", ["300", "1000"])]``;
    ``["frskd:method.weights.feature=10,50"]`` -> ``[("frskd", "method.weights.feature", ["10", "50"])]``."""
    sweeps = []
    for item in items:
        key, sep, values = item.partition("=")
        recipe, colon, key = key.rpartition(":")
        recipe, key = (recipe.strip() if colon else None), key.strip()
        parts = [v.strip() for v in values.split(",")]
        if not sep or not key or not all(parts) or recipe == "":
            raise UserError(f"bench accuracy: --sweep {item!r}: expected [RECIPE:]KEY=V1,V2,... "
                            f"(e.g. method.weights.sp=300,1000 or sp:method.weights.sp=300,1000)")
        if len(set(parts)) != len(parts):
            raise UserError(f"bench accuracy: --sweep {item!r}: a value is named twice")
        if (recipe, key) in [(r, k) for r, k, _ in sweeps]:
            raise UserError(f"bench accuracy: --sweep names {recipe + ':' if recipe else ''}{key} twice")
        sweeps.append((recipe, key, parts))
    return sweeps


def widens(old: list[str], new: list[str]) -> bool:
    """Whether the ``--sweep`` options ``new`` (``--sweep-seeds=K`` included, as bench.json keeps
    them) are the folder's ``old`` ones with values added: the same [RECIPE:]KEYs in the same
    order, each keeping every old value, and the same ``--sweep-seeds``. Then the finished runs
    stay valid and the choice is made again over every value."""
    def split(options):
        flags = [o for o in options if o.startswith("--")]
        return flags, parse_sweeps([o for o in options if not o.startswith("--")])

    (old_flags, old_sweeps), (new_flags, new_sweeps) = split(old), split(new)
    if old_flags != new_flags or [(r, k) for r, k, _ in old_sweeps] != [(r, k) for r, k, _ in new_sweeps]:
        return False
    return all(set(ov) <= set(nv) for (_, _, ov), (_, _, nv) in zip(old_sweeps, new_sweeps))


def _has_key(data: dict, key: str) -> bool:
    node = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def sweep_points(data: dict, sweeps: list[tuple[str | None, str, list[str]]], name: str | None = None
                 ) -> list[list[str]]:
    """The override lists recipe ``name`` (its config as a mapping) trains at: one per grid point
    of the sweeps whose KEY it has and that name no other recipe; ``[]`` when none applies. A
    sweep named for this recipe replaces an unnamed one of the same KEY."""
    named = {k for r, k, _ in sweeps if r is not None and r == name}
    keys = [(k, vs) for r, k, vs in sweeps if (r == name if r is not None else k not in named) and _has_key(data, k)]
    if not keys:
        return []
    return [[f"{k}={v}" for (k, _), v in zip(keys, combo)] for combo in itertools.product(*(vs for _, vs in keys))]


def point_label(point: list[str]) -> str:
    """A grid point as one folder name: ``method.weights.sp=300`` (``,`` between keys)."""
    return ",".join(point)


def sweep_dir(out: Path, name: str, label: str, seed: int) -> Path:
    return out / RUNS / name / "sweep" / label / f"seed{seed}"


def selection_scores(points: dict[str, dict]) -> tuple[list[int], dict[str, float]]:
    """(the seeds every point finished, {label: mean validation value over those seeds}): what
    ``select`` compares. ``points``: {label: {"val": {seed: value}}}; ({} scores while they share no seed)."""
    if not points:
        return [], {}
    seeds = sorted(set.intersection(*(set(p["val"]) for p in points.values())))
    if not seeds:
        return [], {}
    return seeds, {k: statistics.fmean(p["val"][s] for s in seeds) for k, p in points.items()}


def select(points: dict[str, dict], higher_is_better: bool = True) -> str | None:
    """The grid point with the best mean validation value. ``points``: {label: {"val": {seed: value}}}
    (other keys, such as test values, are deliberately not looked at). Only the seeds every point
    finished count, so each mean covers the same seeds; None while they share none."""
    _, score = selection_scores(points)
    if not score:
        return None
    pick = max if higher_is_better else min
    return pick(score, key=score.get)  # ties: the first value named
