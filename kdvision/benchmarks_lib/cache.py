"""``kdvision bench cache``: what the teacher-output cache saves, and what it costs in accuracy.

For each seed it trains, with the real trainer, three runs of one KD recipe (default
the packaged digits/kd): the student alone, KD with the live teacher (uncached) and KD
replaying the teacher cache (cached; the cache is built once, before the first cached run,
and shared by every seed); their test accuracy is compared.

Timing: whole runs one after the other would each meet different load on a shared machine,
so the epoch times come from three more trainers (seed 0) built side by side whose training
epochs (the trainer's own epoch loop: no evaluation, no checkpoints) run interleaved, round
after round in rotating order; the first round is a warm-up. It reports medians:

* student_epoch_s, uncached_epoch_s, cached_epoch_s;
* cached_ratio = cached_epoch_s / student_epoch_s (goal <= 1.10: distilling from the cache
  costs about what training the student alone costs);
* speedup_vs_uncached = uncached_epoch_s / cached_epoch_s, and the one-off cache_build_s;
* the test accuracy (final epoch) of each kind: mean, std and every seed; the cache must not
  be worse than the live teacher beyond seed noise (2 standard errors of the difference).

The teacher is trained once from the recipe's ``teacher.recipe`` into WORK/teacher (kept
between invocations); student runs go to WORK/runs (replaced on every invocation).
"""
from __future__ import annotations

import math
import shutil
import statistics
from pathlib import Path

import torch

from kdvision.commands.arguments import positive_int
from kdvision.benchmarks_lib.common import machine, report

NAME = "cache"
HELP = "epoch time of student alone, uncached KD and cached KD (cached_ratio) and their accuracy over seeds"
GOAL = 1.10
KINDS = ("student", "kd_uncached", "kd_cached")


def add_arguments(p) -> None:
    p.add_argument("--config", default="digits/kd", help="a KD recipe: a file or a packaged name (default digits/kd)")
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds 0..N-1 (default 3)")
    p.add_argument("--epochs", type=positive_int, default=None, help="epochs per run (default: the recipe's)")
    p.add_argument("--views", type=positive_int, default=8, help="recorded views per sample (default 8)")
    p.add_argument("--topk", type=positive_int, default=None, help="store only the top-k logits (default: all)")
    p.add_argument("--rounds", type=positive_int, default=10, help="interleaved timed epochs per kind (default 10)")
    p.add_argument("--work", default="runs/bench_cache", help="folder for the teacher, the cache and the runs")
    p.add_argument("--threads", type=positive_int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides for every run")


def variant_overrides(kind: str, work: Path, views: int, topk: int | None) -> list[str]:
    if kind == "student":
        return ["method={name: student}", "teacher=null"]
    if kind == "kd_cached":
        return [f"teacher_cache={{views: {views}, topk: {'null' if topk is None else topk}, "
                f"path: {work / 'teacher_cache.safetensors'}}}"]
    return []


def train_run(config: str, overrides: list[str], out: Path) -> tuple[list[float], dict]:
    """(training seconds of each epoch, summary.json) of one run."""
    import json

    from kdvision.config import load_config
    from kdvision.engine.trainer import Trainer

    summary = Trainer(load_config(config, overrides), out, quiet=True).fit()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["time_s"] for r in rows], summary


def interleaved_epochs(config: str, overrides: dict[str, list[str]], rounds: int, work: Path) -> dict:
    """Seconds of each training epoch of each kind, the kinds' epochs interleaved."""
    from kdvision.config import load_config
    from kdvision.engine.logger import RunLogger
    from kdvision.engine.runtime import epoch_seed, seed_everything
    from kdvision.engine.trainer import Trainer

    trainers = {}
    for kind, extra in overrides.items():
        t = Trainer(load_config(config, extra), work / "timing" / kind, quiet=True)
        t.run.create(False)
        t.log = RunLogger(None, None, enabled=False)
        t._build()
        trainers[kind] = t
    kinds = list(trainers)
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(rounds + 1):
        for kind in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:
            t = trainers[kind]
            epoch = r % t.cfg.train.epochs
            seed_everything(epoch_seed(t.cfg.seed, epoch))
            seconds = t._train_epoch(epoch)["time_s"]
            if r:
                times[kind].append(seconds)
    return times


def stats(values: list[float]) -> dict:
    return {"mean": round(statistics.fmean(values), 2),
            "std": round(statistics.stdev(values), 2) if len(values) > 1 else 0.0,
            "per_seed": [round(v, 2) for v in values]}


def measure(config: str, seeds: int, epochs: int | None, views: int, topk: int | None, work: Path,
            overrides: list[str], rounds: int = 10, log=print) -> dict:
    from kdvision.cache.store import TeacherCache

    work = work.resolve()
    shutil.rmtree(work / "runs", ignore_errors=True)
    shutil.rmtree(work / "timing", ignore_errors=True)
    (work / "teacher_cache.safetensors").unlink(missing_ok=True)
    common = list(overrides) + [f"teacher.checkpoint={work / 'teacher'}", "train.tensorboard=false"]
    if epochs:
        common.append(f"train.epochs={epochs}")
    acc: dict[str, list[float]] = {k: [] for k in KINDS}
    for seed in range(seeds):
        for kind in KINDS:
            out = work / "runs" / kind / f"seed{seed}"
            _, summary = train_run(config, common + [f"seed={seed}"] + variant_overrides(kind, work, views, topk), out)
            acc[kind].append(summary["test_last"]["acc"])
            log(f"seed {seed} {kind:12s} test acc {acc[kind][-1]:6.2f}")
    times = interleaved_epochs(config, {k: common + ["seed=0"] + variant_overrides(k, work, views, topk)
                                        for k in KINDS}, rounds, work)
    log("interleaved epochs (s): " + "; ".join(f"{k} {' '.join(f'{v:.2f}' for v in t)}" for k, t in times.items()))
    header = TeacherCache.read_header(work / "teacher_cache.safetensors")
    med = {k: statistics.median(v) for k, v in times.items()}
    a = {k: stats(v) for k, v in acc.items()}
    diff = a["kd_cached"]["mean"] - a["kd_uncached"]["mean"]
    se = math.sqrt((a["kd_cached"]["std"] ** 2 + a["kd_uncached"]["std"] ** 2) / seeds)
    return {
        "student_epoch_s": round(med["student"], 3),
        "uncached_epoch_s": round(med["kd_uncached"], 3),
        "cached_epoch_s": round(med["kd_cached"], 3),
        "cached_ratio": round(med["kd_cached"] / med["student"], 3),
        "speedup_vs_uncached": round(med["kd_uncached"] / med["kd_cached"], 2),
        "goal": GOAL,
        "epoch_s_per_round": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "timed_rounds": rounds,
        "cache_build_s": header["built_s"],
        "cache_mib": round((work / "teacher_cache.safetensors").stat().st_size / 2 ** 20, 2),
        "views": views, "topk": topk, "seeds": seeds, "config": config, "overrides": list(overrides),
        "epochs": epochs or "recipe",
        "test_acc": a,
        "cached_minus_uncached": round(diff, 2),
        "two_standard_errors": round(2 * se, 2),
        "accuracy_ok": diff >= -2 * se if seeds > 1 else None,  # one seed: no noise estimate
        "machine": machine(),
    }


def run(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    say = (lambda s: None) if args.json else print
    r = measure(args.config, args.seeds, args.epochs, args.views, args.topk, Path(args.work), args.overrides,
                args.rounds, say)
    a = r["test_acc"]
    lines = [
        f"{r['config']}: {r['seeds']} seeds, {r['views']} views{'' if r['topk'] is None else ', top-' + str(r['topk'])}"
        f", median of {r['timed_rounds']} interleaved training epochs",
        f"student alone    {r['student_epoch_s']:8.2f} s/epoch   test acc {a['student']['mean']:6.2f} +- {a['student']['std']:.2f}",
        f"KD, live teacher {r['uncached_epoch_s']:8.2f} s/epoch   test acc {a['kd_uncached']['mean']:6.2f} +- "
        f"{a['kd_uncached']['std']:.2f}",
        f"KD, cached       {r['cached_epoch_s']:8.2f} s/epoch   test acc {a['kd_cached']['mean']:6.2f} +- "
        f"{a['kd_cached']['std']:.2f}",
        f"cached_ratio = cached / student = {r['cached_ratio']:.3f} "
        f"({'within' if r['cached_ratio'] <= GOAL else 'ABOVE'} the goal {GOAL})",
        f"speed-up over the live teacher: {r['speedup_vs_uncached']:.2f}x per epoch "
        f"(cache built once in {r['cache_build_s']:.1f}s, {r['cache_mib']:.2f} MiB)",
        f"accuracy, cached - live: {r['cached_minus_uncached']:+.2f} points (2 standard errors: "
        f"{r['two_standard_errors']:.2f}) -> " + {True: "not worse beyond seed noise", False: "WORSE",
                                                  None: "one seed: no noise estimate"}[r["accuracy_ok"]],
    ]
    report(r, args.json, lines)
    return 0
