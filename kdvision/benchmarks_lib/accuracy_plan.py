"""``bench accuracy``, planning: the recipes and their names, the teachers they share and
where everything trains, and the benchmark folder's record of it (``DIR/bench.json``)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kdvision.benchmarks_lib.common import locked
from kdvision.engine.checkpoint import atomic_write
from kdvision.errors import UserError

RUNS = "runs"  # DIR/runs/<recipe>/seed<s>, DIR/runs/teachers/<name>
STATE = "bench.json"


@dataclass
class Recipe:
    name: str  # folder and row name
    path: Path


@dataclass
class SharedTeacher:
    name: str
    recipe: Path
    overrides: list[str] = field(default_factory=list)
    same_as: tuple[str, int] | None = None  # (recipe, seed): a benchmarked run with exactly this config


def split_arguments(items: list[str], overrides: list[str]) -> tuple[list[Path], list[str]]:
    """CONFIG paths and KEY=VALUE overrides, in any order after ``bench accuracy``."""
    from kdvision.recipe_library import resolve_config

    configs, extra = [], []
    for item in items:
        if "=" in item and not Path(item).is_file():
            extra.append(item)
        else:  # a file, or a packaged recipe by name
            configs.append(resolve_config(item, where="bench accuracy: config file"))
    if not configs:
        raise UserError("bench accuracy: name at least one CONFIG")
    return configs, extra + list(overrides)


def recipe_names(paths: list[Path]) -> list[Recipe]:
    """A recipe is named by its file stem; stems that clash get their folder's name in front."""
    stems = [p.stem for p in paths]
    names = []
    for p in paths:
        name = p.stem if stems.count(p.stem) == 1 else f"{p.resolve().parent.name}_{p.stem}"
        while name in names:
            name += "_"
        names.append(name)
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise UserError("bench accuracy: a CONFIG is named twice")
    return [Recipe(n, p) for n, p in zip(names, paths)]


def _teacher_entries(data: dict, overrides: list[str] = ()) -> list[dict]:
    """The teachers trained from a recipe: those the benchmark trains and shares (a teacher whose
    checkpoint the command line names, ``teacher.checkpoint=PATH``, is left as it is)."""
    entries = []
    named = any(o.split("=", 1)[0] == "teacher.checkpoint" for o in overrides)
    if isinstance(data.get("teacher"), dict) and not named:
        entries.append(data["teacher"])
    if isinstance(data.get("teachers"), list):
        entries.extend(t for t in data["teachers"] if isinstance(t, dict))
    return entries


def recipe_data(recipe: Recipe, overrides: list[str], seed: int | None, teacher_dirs: dict[Path, Path],
                extra: list[str] = ()) -> dict:
    """The recipe's config as a mapping: overrides and seed applied, recipe teachers pointed into the bench.
    ``extra`` (a sweep's value, ``--sweep``) applies to the recipe only, never to its teachers."""
    from kdvision.config import apply_overrides, load_yaml, pass_overrides_to_teachers
    from kdvision.engine.build import teacher_recipe_path  # where the trainer finds it

    data = apply_overrides(load_yaml(recipe.path), list(overrides) + list(extra)
                           + ([f"seed={seed}"] if seed is not None else []), source=f"bench accuracy ({recipe.path})")
    for t in _teacher_entries(data, overrides):
        if t.get("recipe"):
            path = teacher_recipe_path(recipe.path, t["recipe"], f"{recipe.path}: teacher.recipe").resolve()
            t["checkpoint"] = str(teacher_dirs[path])
    return pass_overrides_to_teachers(data, overrides)  # the same rule as kdvision train


def shared_teachers(recipes: list[Recipe], overrides: list[str], runs: Path,
                    seeds: list[int] = ()) -> tuple[list[SharedTeacher], dict]:
    """Every teacher recipe the recipes name, once each, and where it trains.

    When the teacher recipe is itself benchmarked (with no overrides of its own) and its own seed
    is one of ``seeds``, that run has exactly the teacher's config: the teacher is that run
    (``DIR/runs/<recipe>/seed<s>``) instead of a second, identical training.
    """
    from kdvision.config import apply_overrides, load_yaml, teacher_overrides
    from kdvision.engine.build import teacher_recipe_path  # where the trainer finds it

    passed = teacher_overrides(overrides)
    found: dict[Path, list[str]] = {}
    for r in recipes:
        data = apply_overrides(load_yaml(r.path), overrides, source=f"bench accuracy ({r.path})")
        for t in _teacher_entries(data, overrides):
            if t.get("recipe"):
                path = teacher_recipe_path(r.path, t["recipe"], f"{r.path}: teacher.recipe").resolve()
                own = list(t.get("overrides") or [])
                if path in found and found[path] != own:
                    raise UserError(f"{r.path}: teacher recipe {path} is used with different 'overrides' "
                                    f"by two recipes; benchmark them separately")
                found[path] = own
    stems = [p.stem for p in found]
    teachers, dirs = [], {}
    benchmarked = {r.path.resolve(): r.name for r in recipes}
    for path, own in found.items():
        name = path.stem if stems.count(path.stem) == 1 else f"{path.parent.name}_{path.stem}"
        teacher = SharedTeacher(name, path, own + passed)
        dirs[path] = runs / "teachers" / name
        if path in benchmarked and not own and passed == list(overrides):  # the run's config is the teacher's
            seed = apply_overrides(load_yaml(path), overrides).get("seed", 0)
            if seed in seeds:
                teacher.same_as = (benchmarked[path], seed)
                dirs[path] = runs / benchmarked[path] / f"seed{seed}"
        teachers.append(teacher)
    return teachers, dirs


def run_dir(out: Path, name: str, seed: int) -> Path:
    return out / RUNS / name / f"seed{seed}"


def check_state(out: Path, overrides: list[str], sweep: list[str] = ()) -> None:
    """A benchmark folder keeps one set of overrides and ``--sweep`` options; new recipes and seeds
    may be added, and new values to a sweep (``accuracy_sweep.widens``)."""
    from kdvision.benchmarks_lib.accuracy_sweep import widens

    state = out / STATE
    if state.is_file():
        old = json.loads(state.read_text())
        saved = old.get("overrides", [])
        if saved != list(overrides):
            raise UserError(f"bench accuracy: {out} was run with overrides {saved}, not {list(overrides)}; "
                            f"choose another --out")
        if old.get("sweep", []) != list(sweep) and not widens(old.get("sweep", []), list(sweep)):
            raise UserError(f"bench accuracy: {out} was run with --sweep {old.get('sweep', [])}, not {list(sweep)} "
                            f"(only new values may be added to its sweeps); choose another --out")


def save_state(out: Path, recipes: list[Recipe], overrides: list[str], seeds: list[int],
               teachers: list[SharedTeacher] = (), dirs: dict | None = None, sweep: list[str] = (),
               swept: dict[str, list[str]] | None = None, baseline: str | None = None) -> None:
    """Merge this invocation's recipes, seeds and shared teachers into DIR/bench.json."""
    state = out / STATE
    with locked(out / RUNS / ".bench.lock"):
        old = json.loads(state.read_text()) if state.is_file() else {}
        names = {r["name"]: r for r in old.get("recipes", [])}
        names.update({r.name: {"name": r.name, "config": str(r.path)} for r in recipes})
        shared = {t["name"]: t for t in old.get("teachers", [])}
        shared.update({t.name: {"name": t.name, "recipe": str(t.recipe), "dir": str(dirs[t.recipe]),
                                "same_as": list(t.same_as) if t.same_as else None} for t in teachers})
        sweeps = {**old.get("sweeps", {}), **(swept or {})}  # {recipe: [point label, ...]}
        new = {"overrides": list(overrides), "recipes": list(names.values()),
               "seeds": sorted(set(old.get("seeds", [])) | set(seeds)), "teachers": list(shared.values()),
               "sweep": list(sweep), "sweeps": sweeps, "baseline": baseline}
        text = json.dumps(new, indent=2) + "\n"
        atomic_write(state, lambda tmp: Path(tmp).write_text(text))
