"""``kdvision bench accuracy``: train recipes over several seeds and tabulate their test accuracy.

``kdvision bench accuracy CONFIG... --seeds N --out DIR [KEY=VALUE ...]`` trains every recipe
once per seed (seeds 0..N-1, or from ``--first-seed``; the seed is the override ``seed=<s>``)
into ``DIR/runs/<recipe>/seed<s>`` and writes

* ``DIR/results.md``: one row per recipe with mean +- sample standard deviation over the seeds
  of the test accuracy of the final epoch's weights (summary.json ``test_last``) and of the
  best-validation epoch's weights (``test_best``), the student's parameters and the mean wall
  time per run; then every seed's values, the shared teachers and the machine;
* ``DIR/results.png``: the same means as bars with +-1 std error bars and each seed as a dot.

It is resumable: a run with a summary.json is done and skipped, a run with a checkpoint is
resumed (the trainer's exact resume), so re-running an interrupted command continues it. The
command line's overrides are recorded in ``DIR/bench.json``; re-running with other overrides
is refused, since their results would mix. Several invocations may share one DIR at the same
time (e.g. one per ``--first-seed``): each run and teacher is trained under a lock file, so a
second process waits for it instead of training it again, and results.md always tabulates
every recipe and seed finished in DIR.

Teachers trained from a recipe (``teacher.recipe``) are trained once per benchmark, into
``DIR/runs/teachers/<recipe name>`` (``teacher.checkpoint`` is pointed there, so a benchmark
never reuses weights from elsewhere), before the runs that need them; they get the command
line's ``train.*`` and ``data.*`` overrides, as under ``kdvision train``
(``kdvision.config.teacher_overrides``), but not the seed: a teacher keeps its recipe's own seed,
so every seed of a distillation recipe learns from the same teacher. When the teacher recipe is itself one of the
benchmarked recipes and its seed is among the seeds, that run is the teacher (same config, so
the same weights) and nothing trains twice. ``teacher.checkpoint=PATH`` on the command line
opts out: that teacher is used (or trained there by the trainer) as the recipe says.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from kdvision.errors import UserError

NAME = "accuracy"
HELP = "train recipes over several seeds; mean +- std of test accuracy in DIR/results.md and DIR/results.png"

RUNS = "runs"  # DIR/runs/<recipe>/seed<s>, DIR/runs/teachers/<name>
STATE = "bench.json"


def add_arguments(p) -> None:
    p.add_argument("configs", nargs="+", metavar="CONFIG",
                   help="recipes (YAML); KEY=VALUE items are overrides applied to every recipe and its teacher")
    p.add_argument("--seeds", type=int, default=3, help="seeds per recipe (default 3)")
    p.add_argument("--first-seed", type=int, default=0, help="the seeds are first-seed .. first-seed+seeds-1")
    p.add_argument("--out", required=True, help="benchmark folder: runs/, results.md, results.png, bench.json")
    p.add_argument("--verbose", action="store_true", help="print every epoch of every run")
    p.set_defaults(overrides=[])


# ----------------------------------------------------------------------------- recipes
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


def recipe_data(recipe: Recipe, overrides: list[str], seed: int | None, teacher_dirs: dict[Path, Path]) -> dict:
    """The recipe's config as a mapping: overrides and seed applied, recipe teachers pointed into the bench."""
    from kdvision.config import apply_overrides, load_yaml, pass_overrides_to_teachers

    data = apply_overrides(load_yaml(recipe.path), list(overrides) + ([f"seed={seed}"] if seed is not None else []),
                           source=f"bench accuracy ({recipe.path})")
    for t in _teacher_entries(data, overrides):
        if t.get("recipe"):
            target = teacher_dirs[teacher_recipe_path(recipe.path, t["recipe"])]
            t["checkpoint"] = str(target)
    return pass_overrides_to_teachers(data, overrides)  # the same rule as kdvision train


def teacher_recipe_path(config: Path, recipe: str) -> Path:
    from kdvision.engine import build

    return build.teacher_recipe_path(config, recipe, f"{config}: teacher.recipe").resolve()


def shared_teachers(recipes: list[Recipe], overrides: list[str], runs: Path,
                    seeds: list[int] = ()) -> tuple[list[SharedTeacher], dict]:
    """Every teacher recipe the recipes name, once each, and where it trains.

    When the teacher recipe is itself benchmarked (with no overrides of its own) and its own seed
    is one of ``seeds``, that run has exactly the teacher's config: the teacher is that run
    (``DIR/runs/<recipe>/seed<s>``) instead of a second, identical training.
    """
    from kdvision.config import apply_overrides, load_yaml, teacher_overrides

    passed = teacher_overrides(overrides)
    found: dict[Path, list[str]] = {}
    for r in recipes:
        data = apply_overrides(load_yaml(r.path), overrides, source=f"bench accuracy ({r.path})")
        for t in _teacher_entries(data, overrides):
            if t.get("recipe"):
                path = teacher_recipe_path(r.path, t["recipe"])
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


# ----------------------------------------------------------------------------- running
def run_dir(out: Path, name: str, seed: int) -> Path:
    return out / RUNS / name / f"seed{seed}"


@contextlib.contextmanager
def locked(path: Path, waiting: str | None = None):
    """Hold an exclusive lock on ``path`` (created if missing); released when the process ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                print(waiting, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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


def write_atomic(path: Path, data: bytes | str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if isinstance(data, str):
        tmp.write_text(data)
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)


def check_state(out: Path, overrides: list[str]) -> None:
    """A benchmark folder keeps one set of overrides; new recipes and seeds may be added."""
    state = out / STATE
    if state.is_file():
        saved = json.loads(state.read_text()).get("overrides", [])
        if saved != list(overrides):
            raise UserError(f"bench accuracy: {out} was run with overrides {saved}, not {list(overrides)}; "
                            f"choose another --out")


def save_state(out: Path, recipes: list[Recipe], overrides: list[str], seeds: list[int],
               teachers: list[SharedTeacher] = (), dirs: dict | None = None) -> None:
    """Merge this invocation's recipes, seeds and shared teachers into DIR/bench.json."""
    state = out / STATE
    with locked(out / RUNS / ".bench.lock"):
        old = json.loads(state.read_text()) if state.is_file() else {}
        names = {r["name"]: r for r in old.get("recipes", [])}
        names.update({r.name: {"name": r.name, "config": str(r.path)} for r in recipes})
        shared = {t["name"]: t for t in old.get("teachers", [])}
        shared.update({t.name: {"name": t.name, "recipe": str(t.recipe), "dir": str(dirs[t.recipe]),
                                "same_as": list(t.same_as) if t.same_as else None} for t in teachers})
        new = {"overrides": list(overrides), "recipes": list(names.values()),
               "seeds": sorted(set(old.get("seeds", [])) | set(seeds)), "teachers": list(shared.values())}
        write_atomic(state, json.dumps(new, indent=2) + "\n")


def run(args) -> int:
    from kdvision.benchmarks_lib.common import machine
    from kdvision.config import config_from_dict, load_config

    if args.seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {args.seeds}")
    configs, overrides = split_arguments(args.configs, args.overrides)
    recipes = recipe_names(configs)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    check_state(out, overrides)
    runs = out / RUNS
    teachers, teacher_dirs = shared_teachers(recipes, overrides, runs, seeds)
    # every config must validate before hours of training start
    cfgs = {(r.name, s): config_from_dict(recipe_data(r, overrides, s, teacher_dirs), str(r.path))
            for r in recipes for s in seeds}
    save_state(out, recipes, overrides, seeds, teachers, teacher_dirs)
    started = time.perf_counter()
    # teachers first (a benchmarked run that is also the teacher trains first), then seed by seed,
    # so an interrupted benchmark has every recipe at some seeds
    jobs = []
    for t in teachers:
        if t.same_as:
            jobs.append((f"{t.same_as[0]} seed {t.same_as[1]} (the shared teacher {t.name})", cfgs[t.same_as],
                         teacher_dirs[t.recipe]))
        else:
            jobs.append((f"shared teacher {t.name}", load_config(t.recipe, t.overrides), teacher_dirs[t.recipe]))
    first = {t.same_as for t in teachers if t.same_as}
    jobs += [(f"{r.name} seed {s}", cfgs[(r.name, s)], run_dir(out, r.name, s))
             for s in seeds for r in recipes if (r.name, s) not in first]
    for i, (label, cfg, target) in enumerate(jobs, 1):
        print(f"[bench {i}/{len(jobs)}] {label} -> {target}", flush=True)
        summary, how = train_once(cfg, target, args.verbose)
        print(f"[bench {i}/{len(jobs)}] {label}: {how}, {describe(summary)}", flush=True)
        write_all_results(out, machine())
    print(f"[bench] {len(cfgs)} runs in {time.perf_counter() - started:.0f} s -> {out / 'results.md'}, "
          f"{out / 'results.png'}", flush=True)
    print()
    print((out / "results.md").read_text())
    return 0


def describe(summary: dict) -> str:
    m = summary["metric"]
    return (f"test {m} {summary['test_last'][m]:.2f} (final epoch), {summary['test_best'][m]:.2f} "
            f"(best val epoch {summary['best_epoch']}), {summary['wall_s']:.0f} s")


def teachers_info(entries: list[dict]) -> list[dict]:
    """Shared teachers as recorded in bench.json, with their results when finished."""
    import yaml

    info = []
    for t in entries:
        run = Path(t["dir"])
        seed = None
        if (run / "config.yaml").is_file():
            seed = (yaml.safe_load((run / "config.yaml").read_text()) or {}).get("seed")
        summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else None
        info.append({**t, "seed": seed, "summary": summary})
    return info


# ----------------------------------------------------------------------------- results
#: the unit each task metric is reported in (summary.json "metric")
UNITS = {"acc": "%", "miou": "%", "psnr": "dB"}
#: a second metric reported beside the main one when the runs' test results hold it
SECONDARY = {"psnr": "ssim"}


def unit(metric: str) -> str:
    return f" ({UNITS[metric]})" if metric in UNITS else ""


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1); no std for a single value."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def collect(out: Path, names: list[str], seeds: list[int]) -> list[dict]:
    """One row per recipe from the finished runs' summary.json files (recipes with none are left out)."""
    rows = []
    for name in names:
        summaries = {}
        for s in seeds:
            path = run_dir(out, name, s) / "summary.json"
            if path.is_file():
                summaries[s] = json.loads(path.read_text())
        if not summaries:
            continue
        first = next(iter(summaries.values()))
        metric = first["metric"]
        last = {s: float(v["test_last"][metric]) for s, v in summaries.items()}
        best = {s: float(v["test_best"][metric]) for s, v in summaries.items()}
        second = SECONDARY.get(metric)
        if second and not all(second in v["test_last"] and second in v["test_best"] for v in summaries.values()):
            second = None
        student, method = _model_and_method(run_dir(out, name, next(iter(summaries))))
        whole = {k: v for k, v in summaries.items() if not resumed_marker(run_dir(out, name, k)).exists()}
        rows.append({
            "recipe": name, "metric": metric, "student": student, "method": method, "seeds": sorted(summaries),
            "last": last, "best": best, "last_mean_std": mean_std(list(last.values())),
            "best_mean_std": mean_std(list(best.values())),
            "parameters": first.get("student_parameters"),
            # runs resumed after an interruption timed only their last part: left out when others exist
            "wall_s": statistics.fmean(float(v["wall_s"]) for v in (whole or summaries).values()),
            "wall_partial": not whole,
            "epochs": first.get("epochs"),
            "second": second,
            "second_last_mean_std": mean_std([float(v["test_last"][second]) for v in summaries.values()])
            if second else None,
            "second_best_mean_std": mean_std([float(v["test_best"][second]) for v in summaries.values()])
            if second else None,
            "domains": per_domain(summaries, metric, second),
        })
    return rows


def per_domain(summaries: dict, metric: str, second: str | None) -> dict[str, dict]:
    """Final-epoch test values per domain (e.g. weather type), from the keys the task writes per
    domain: ``images_<d>``, ``<metric>_<d>`` (and ``<second>_<d>``). {domain: {"main": (mean, std),
    "second": (mean, std) | None}} over the seeds that evaluated it, plus
    "domain_mean" (the task's mean over domains) when the runs hold more than one domain."""
    found: dict[str, dict[str, list[float]]] = {}
    for v in summaries.values():
        test = v["test_last"]
        names = [k[len("images_"):] for k in test if k.startswith("images_")]
        if len(names) > 1:
            names.append("domain_mean")
        for d in names:
            if f"{metric}_{d}" not in test:
                continue
            entry = found.setdefault(d, {"main": [], "second": []})
            entry["main"].append(float(test[f"{metric}_{d}"]))
            if second and f"{second}_{d}" in test:
                entry["second"].append(float(test[f"{second}_{d}"]))
    return {d: {"main": mean_std(e["main"]),
                "second": mean_std(e["second"]) if len(e["second"]) == len(e["main"]) and e["second"] else None}
            for d, e in found.items()}


def _model_and_method(run: Path) -> tuple[str, str]:
    path = run / "config.yaml"
    if not path.is_file():
        return "-", "-"
    import yaml

    cfg = yaml.safe_load(path.read_text()) or {}
    return (cfg.get("student") or {}).get("name", "-"), (cfg.get("method") or {}).get("name", "-")


def fmt_mean_std(pair: tuple[float, float | None], digits: int = 2) -> str:
    m, s = pair
    return f"{m:.{digits}f} ± {s:.{digits}f}" if s is not None else f"{m:.{digits}f} ± n/a"


def format_table(rows: list[dict]) -> str:
    metric = rows[0]["metric"] if rows else "acc"  # the task's metric, summary.json["metric"]
    second = next((r["second"] for r in rows if r.get("second")), None)  # e.g. SSIM beside PSNR
    extra = f" test {second}, final epoch | test {second}, best-val epoch |" if second else ""
    lines = [f"| recipe | student | method | parameters | test {metric}, final epoch{unit(metric)} | "
             f"test {metric}, best-val epoch{unit(metric)} | epochs | wall time / run (s) | seeds |" + extra,
             "|---|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if second else "")]
    for r in rows:
        params = f"{r['parameters']:,}" if isinstance(r["parameters"], int) else "-"
        cells = ""
        if second:
            cells = (f" {fmt_mean_std(r['second_last_mean_std'], 4)} | {fmt_mean_std(r['second_best_mean_std'], 4)} |"
                     if r.get("second") == second else " - | - |")
        lines.append(f"| {r['recipe']} | {r['student']} | {r['method']} | {params} | {fmt_mean_std(r['last_mean_std'])} | "
                     f"{fmt_mean_std(r['best_mean_std'])} | {r['epochs']} | {r['wall_s']:.1f}{'*' if r.get('wall_partial') else ''} | {len(r['seeds'])} |"
                     + cells)
    return "\n".join(lines)


def format_per_domain(rows: list[dict]) -> str:
    """Rows x domains (e.g. weather types) of final-epoch mean ± std, metric / second metric;
    "-" where a recipe was not tested on that domain (a specialist teacher)."""
    domains = []
    for r in rows:
        domains += [d for d in r.get("domains", {}) if d not in domains and d != "domain_mean"]
    if not domains:
        return ""
    columns = domains + ["domain_mean"]
    lines = ["| recipe | " + " | ".join("mean over types" if d == "domain_mean" else d for d in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for r in rows:
        cells = []
        for d in columns:
            v = r.get("domains", {}).get(d)
            if v is None:
                cells.append("-")
                continue
            text = fmt_mean_std(v["main"])
            if v["second"] is not None:
                text += f" / {fmt_mean_std(v['second'], 4)}"
            cells.append(text)
        lines.append(f"| {r['recipe']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_per_seed(rows: list[dict], seeds: list[int]) -> str:
    lines = ["| recipe | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---|" + "---:|" * len(seeds)]
    for r in rows:
        cells = [f"{r['last'][s]:.2f} / {r['best'][s]:.2f}" if s in r["last"] else "-" for s in seeds]
        lines.append(f"| {r['recipe']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_results(rows: list[dict], seeds: list[int], machine: dict, teachers: list[dict]) -> str:
    total = sum(r["wall_s"] * len(r["seeds"]) for r in rows)
    total += sum(t["summary"]["wall_s"] for t in teachers if t["summary"] and not t.get("same_as"))
    metric = rows[0]["metric"] if rows else "acc"
    parts = [
        "# Accuracy benchmark",
        "",
        f"Test {metric}{unit(metric)} as mean ± sample standard deviation (n - 1) over the seeds each recipe finished "
        f"(`seed=<s>` for s in {seeds[0]}..{seeds[-1]}). **Final epoch**: the weights after the last epoch "
        f"(summary.json `test_last`). **Best-val epoch**: the weights of the epoch with the best validation "
        f"{metric} (`test_best`). Wall time: mean over seeds of one run's training and testing (runs resumed "
        f"after an interruption are left out, since they timed only their last part; * marks a recipe whose "
        f"runs were all resumed).",
        "",
        format_table(rows),
        "",
        f"Per seed, test {metric} final epoch / best-val epoch{unit(metric)}:",
        "",
        format_per_seed(rows, seeds),
        "",
    ]
    by_domain = format_per_domain(rows)
    if by_domain:
        second = next((r["second"] for r in rows if r.get("second")), None)
        parts += [f"Per domain (the data's types, e.g. weather), test {metric}{unit(metric)}"
                  f"{' / ' + second if second else ''} of the final epoch, mean ± std over seeds; "
                  f"\"-\": not tested on that type (e.g. a specialist teacher); the last column is the "
                  f"mean over the types of each run:", "", by_domain, ""]
    if teachers:
        parts += ["Shared teachers: trained once for the whole benchmark at their recipe's own fixed seed "
                  "(not the run's seed), so every seed of a distillation recipe learns from the same teacher.", ""]
        for t in teachers:
            s = t["summary"]
            res = f"test {s['metric']} {s['test_last'][s['metric']]:.2f} (final epoch), " \
                  f"{s['test_best'][s['metric']]:.2f} (best-val epoch), {s['wall_s']:.0f} s" if s else "not trained yet"
            same = t.get("same_as")
            where = f" (the same run as `{same[0]}` seed {same[1]})" if same else ""
            parts.append(f"- `{t['name']}` from `{t['recipe']}`, seed {t['seed']}{where}: {res}")
        parts.append("")
    parts += [
        f"Total training time (sum over all runs{' and shared teachers' if teachers else ''}): {total:.0f} s "
        f"({total / 3600:.2f} h).",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()),
        "",
        "![accuracy per recipe](results.png)",
        "",
    ]
    return "\n".join(parts)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(len(rows))
    width = 0.38
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(rows) + 2), 4.2))
    lowest, highest = [], []
    for offset, key, label, color in ((-width / 2, "last", "final epoch", "#4c72b0"),
                                      (width / 2, "best", "best-val epoch", "#dd8452")):
        means = [r[f"{key}_mean_std"][0] for r in rows]
        stds = [r[f"{key}_mean_std"][1] or 0.0 for r in rows]
        ax.bar(x + offset, means, width, yerr=stds, capsize=4, label=label, color=color, alpha=0.85)
        for i, r in enumerate(rows):
            values = list(r[key].values())
            ax.scatter(np.full(len(values), x[i] + offset), values, s=9, color="black", zorder=3)
            lowest.append(min(values))
            highest.append(max(max(values), means[i] + stds[i]))
    floor = max(0.0, 5 * math.floor((min(lowest) - 3) / 5)) if lowest else 0.0
    ax.set_ylim(floor, min(100.5, max(highest, default=100.0) + 3))
    ax.set_xticks(x, [r["recipe"] for r in rows], rotation=20)
    metric = rows[0]["metric"] if rows else "acc"
    n = max((len(r["seeds"]) for r in rows), default=0)
    ax.set_ylabel(f"test {metric}{unit(metric)}")
    ax.set_title(f"mean ± std over {n} seeds (dots: seeds; y axis from {floor:.0f})")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(out: Path, names: list[str], seeds: list[int], machine: dict, teachers: list[dict]) -> list[dict]:
    rows = collect(out, names, seeds)
    write_atomic(out / "results.md", format_results(rows, seeds, machine, teachers))
    if rows:
        tmp = out / f".results.{os.getpid()}.png"
        plot(rows, tmp)
        os.replace(tmp, out / "results.png")
    return rows


def finished(out: Path) -> tuple[list[str], list[int]]:
    """Recipes (bench.json's order, then any other run folder) and seeds with a finished run in DIR."""
    state = json.loads((out / STATE).read_text()) if (out / STATE).is_file() else {}
    names = [r["name"] for r in state.get("recipes", [])]
    runs = out / RUNS
    found = sorted(p.parent.parent.name for p in runs.glob("*/seed*/summary.json")) if runs.is_dir() else []
    names += [n for n in dict.fromkeys(found) if n not in names and n != "teachers"]
    seeds = set()
    for n in names:
        for p in (runs / n).glob("seed*/summary.json"):
            m = re.fullmatch(r"seed(-?\d+)", p.parent.name)
            if m:
                seeds.add(int(m.group(1)))
    return names, sorted(seeds)


def write_all_results(out: Path, machine: dict) -> list[dict]:
    """results.md and results.png over everything finished in DIR (by this or another invocation)."""
    with locked(out / RUNS / ".bench.lock"):
        names, seeds = finished(out)
        state = json.loads((out / STATE).read_text()) if (out / STATE).is_file() else {}
        if not seeds:
            return []
        return write_results(out, names, seeds, machine, teachers_info(state.get("teachers", [])))
