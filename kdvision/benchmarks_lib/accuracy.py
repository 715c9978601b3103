"""``kdvision bench accuracy``: train recipes over several seeds and tabulate their test accuracy.

``kdvision bench accuracy CONFIG... --seeds N --out DIR [KEY=VALUE ...]`` trains every recipe
once per seed (seeds 0..N-1, or from ``--first-seed``; the seed is the override ``seed=<s>``)
into ``DIR/runs/<recipe>/seed<s>`` and writes

* ``DIR/results.md``: one row per recipe with mean +- sample standard deviation over the seeds
  of the test accuracy of the final epoch's weights (summary.json ``test_last``) and of the
  best-validation epoch's weights (``test_best``), the student's parameters and the mean wall
  time per run; then every seed's values, the shared teachers and the machine;
* each recipe's paired per-seed difference to its baseline (the student alone: method ``student``
  with the same student model and data, or ``--baseline RECIPE``) with its 95% t-interval, "no
  measurable effect" where it spans 0, and whether the baseline converged (``accuracy_stats``);
* with ``--sweep [RECIPE:]KEY=V1,V2,...``: every value of KEY trained at every seed (or at the
  first ``--sweep-seeds K``, the chosen value then at the rest), the value with the best mean
  validation metric chosen and its runs used in the table (``accuracy_sweep``);
* ``DIR/results.json``: the same as numbers;
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

import time
from pathlib import Path

from kdvision.benchmarks_lib.accuracy_plan import (check_state, recipe_data, recipe_names, run_dir, save_state,
                                                   shared_teachers, split_arguments)
from kdvision.benchmarks_lib.accuracy_report import describe, recorded_machine, swept_row, write_all_results
from kdvision.benchmarks_lib.accuracy_jobs import available_cores, record_elapsed, run_jobs, threads_per_job
from kdvision.benchmarks_lib.accuracy_sweep import parse_sweeps, point_label, sweep_dir, sweep_points
from kdvision.commands.arguments import non_negative_int, positive_int
from kdvision.errors import UserError

NAME = "accuracy"
HELP = "train recipes over several seeds; mean +- std of test accuracy in DIR/results.md and DIR/results.png"


def add_arguments(p) -> None:
    p.add_argument("configs", nargs="+", metavar="CONFIG",
                   help="recipes (YAML); KEY=VALUE items are overrides applied to every recipe and its teacher")
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds per recipe (default 3)")
    p.add_argument("--first-seed", type=non_negative_int, default=0,
                   help="the seeds are first-seed .. first-seed+seeds-1")
    p.add_argument("--out", required=True, help="benchmark folder: runs/, results.md, results.png, bench.json")
    p.add_argument("--baseline", default=None, metavar="RECIPE",
                   help="the recipe (its row name) every other is compared with (default: per recipe, the one "
                        "whose method is 'student' with the same student model and data)")
    p.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="train every value of KEY (e.g. method.weights.sp=300,1000,3000) at every seed, in the "
                        "recipes that have KEY, and keep the one with the best mean VALIDATION metric; "
                        "RECIPE:KEY=... sweeps that recipe only; repeatable")
    p.add_argument("--sweep-seeds", type=positive_int, default=None, metavar="K",
                   help="train every swept value at the first K seeds only, choose on them, then train the "
                        "chosen value at the remaining seeds (default: every value at every seed)")
    p.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                   help="train N runs at a time, each in its own process on cores/N torch threads (default 1: "
                        "one run at a time on torch's own thread count); small networks finish more runs per "
                        "hour this way, and each run's wall time is then measured beside the others")
    p.add_argument("--verbose", action="store_true", help="print every epoch of every run")
    p.set_defaults(overrides=[])


def run(args) -> int:
    from kdvision.benchmarks_lib.common import machine as machine_now
    from kdvision.config import apply_overrides, config_from_dict, load_config, load_yaml

    if args.seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {args.seeds}")
    configs, overrides = split_arguments(args.configs, args.overrides)
    recipes = recipe_names(configs)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    out = Path(args.out)
    if args.baseline is not None and args.baseline not in [r.name for r in recipes]:
        raise UserError(f"bench accuracy: --baseline {args.baseline} is none of the recipes "
                        f"({', '.join(r.name for r in recipes)})")
    sweeps = parse_sweeps(args.sweep)
    points = {r.name: sweep_points(apply_overrides(load_yaml(r.path), overrides, f"bench accuracy ({r.path})"),
                                   sweeps, r.name)
              for r in recipes}
    for recipe, key, _ in sweeps:
        if recipe is not None and recipe not in points:
            raise UserError(f"bench accuracy: --sweep {recipe}:{key}: {recipe} is none of the recipes "
                            f"({', '.join(points)})")
        scope = [points[recipe]] if recipe is not None else points.values()
        if not any(any(o.startswith(key + "=") for o in p[0]) for p in scope if p):
            raise UserError(f"bench accuracy: --sweep {recipe}:{key}: recipe {recipe} has no key '{key}'"
                            if recipe is not None else f"bench accuracy: --sweep {key}: no recipe has the key '{key}'")
    sweep_seeds = seeds if args.sweep_seeds is None else seeds[:args.sweep_seeds]
    sweep_options = args.sweep + ([f"--sweep-seeds={args.sweep_seeds}"] if args.sweep_seeds else [])
    out.mkdir(parents=True, exist_ok=True)
    check_state(out, overrides, sweep_options)
    teachers, teacher_dirs = shared_teachers(recipes, overrides, out / "runs", seeds)
    for t in teachers:  # a swept recipe has no single run that is the teacher: train the teacher on its own
        if t.same_as and points[t.same_as[0]]:
            t.same_as, teacher_dirs[t.recipe] = None, out / "runs" / "teachers" / t.name
    # every config must validate before hours of training start; a swept recipe trains at every value
    cfgs, where = {}, {}
    for r in recipes:
        for point in points[r.name] or [None]:
            label = point_label(point) if point else None
            for s in seeds:
                cfgs[(r.name, label, s)] = config_from_dict(recipe_data(r, overrides, s, teacher_dirs, point or []),
                                                            str(r.path))
                where[(r.name, label, s)] = sweep_dir(out, r.name, label, s) if point else run_dir(out, r.name, s)
    swept = {n: [point_label(p) for p in ps] for n, ps in points.items() if ps}
    save_state(out, recipes, overrides, seeds, teachers, teacher_dirs, sweep_options, swept, args.baseline)
    started = time.perf_counter()

    def machine() -> dict:
        if trained == 0 and recorded_machine(out):  # only re-tabulated: the runs were measured then, not now
            return recorded_machine(out)
        info = machine_now()
        if args.jobs > 1:  # the parent's thread count is not what the runs trained on
            info["torch_threads"] = (f"{threads_per_job(args.jobs, available_cores())} per run, "
                                     f"{args.jobs} runs at a time")
        return info

    # teachers first (a benchmarked run that is also the teacher trains first), then seed by seed,
    # so an interrupted benchmark has every recipe at some seeds
    jobs = []
    for t in teachers:
        if t.same_as:
            jobs.append((f"{t.same_as[0]} seed {t.same_as[1]} (the shared teacher {t.name})",
                         cfgs[(t.same_as[0], None, t.same_as[1])], teacher_dirs[t.recipe]))
        else:
            jobs.append((f"shared teacher {t.name}", load_config(t.recipe, t.overrides), teacher_dirs[t.recipe]))
    first = {(t.same_as[0], None, t.same_as[1]) for t in teachers if t.same_as}

    def job(name, label, s):
        return f"{name}{' ' + label if label else ''} seed {s}", cfgs[(name, label, s)], where[(name, label, s)]

    # a swept value trains at sweep_seeds; the chosen one at the other seeds once the choice is made
    jobs += [job(name, label, s) for s in seeds for (name, label, seed) in cfgs
             if seed == s and (name, label, s) not in first and (label is None or s in sweep_seeds)]
    rest = [s for s in seeds if s not in sweep_seeds]
    total = len(jobs) + len(rest) * len(swept)
    done, trained = 0, 0

    def finished(label, summary, how):
        nonlocal done, trained
        done, trained = done + 1, trained + (how != "done before")
        print(f"[bench {done}/{total}] {label}: {how}, {describe(summary)}", flush=True)
        write_all_results(out, machine())

    # phases whose runs are independent of each other: the shared teachers, then the runs (every
    # swept value at the sweep seeds), then the chosen values at the remaining seeds
    n_teachers = len(teachers)
    phases = [jobs[:n_teachers], jobs[n_teachers:]]
    while phases:
        run_jobs(phases.pop(0), args.jobs, args.verbose, finished)
        if not phases and rest:
            phases.append([job(name, chosen_point(out, name, labels, sweep_seeds), s)
                           for s in rest for name, labels in swept.items()])
            rest = []
    elapsed = time.perf_counter() - started
    record_elapsed(out, elapsed, trained, args.jobs)
    write_all_results(out, machine())
    print(f"[bench] {total} runs in {elapsed:.0f} s -> {out / 'results.md'}, "
          f"{out / 'results.json'}, {out / 'results.png'}", flush=True)
    print()
    print((out / "results.md").read_text())
    return 0


def chosen_point(out: Path, name: str, labels: list[str], seeds: list[int]) -> str:
    """The swept value of recipe ``name`` with the best mean validation metric over ``seeds``."""
    row = swept_row(out, name, labels, seeds)
    if row is None:
        raise UserError(f"bench accuracy: no value of the sweep of {name} finished at seeds {seeds}")
    return row["sweep"]["chosen"]
