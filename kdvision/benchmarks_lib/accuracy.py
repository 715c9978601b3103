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

import time
from pathlib import Path

from kdvision.benchmarks_lib.accuracy_plan import (check_state, recipe_data, recipe_names, run_dir, save_state,
                                                   shared_teachers, split_arguments)
from kdvision.benchmarks_lib.accuracy_report import describe, write_all_results
from kdvision.benchmarks_lib.accuracy_run import train_once
from kdvision.errors import UserError

NAME = "accuracy"
HELP = "train recipes over several seeds; mean +- std of test accuracy in DIR/results.md and DIR/results.png"


def add_arguments(p) -> None:
    p.add_argument("configs", nargs="+", metavar="CONFIG",
                   help="recipes (YAML); KEY=VALUE items are overrides applied to every recipe and its teacher")
    p.add_argument("--seeds", type=int, default=3, help="seeds per recipe (default 3)")
    p.add_argument("--first-seed", type=int, default=0, help="the seeds are first-seed .. first-seed+seeds-1")
    p.add_argument("--out", required=True, help="benchmark folder: runs/, results.md, results.png, bench.json")
    p.add_argument("--verbose", action="store_true", help="print every epoch of every run")
    p.set_defaults(overrides=[])


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
    teachers, teacher_dirs = shared_teachers(recipes, overrides, out / "runs", seeds)
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
