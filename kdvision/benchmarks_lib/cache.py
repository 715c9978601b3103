"""``kdvision bench cache``: what the teacher-output cache saves, and what it costs in accuracy.

For each seed it trains, with the real trainer, three runs of one KD recipe (default
configs/digits/kd.yaml): the student alone, KD with the live teacher (uncached) and KD
replaying the teacher cache (cached; the cache is built once, before the first cached run,
and shared by every seed). From the runs' metrics.jsonl it takes the training time of every
epoch but the first (the loop only: no evaluation, no checkpoint writing) and reports medians:

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

from kdvision.benchmarks_lib.common import machine, report

NAME = "cache"
HELP = "epoch time of student alone, uncached KD and cached KD (cached_ratio) and their accuracy over seeds"
GOAL = 1.10
KINDS = ("student", "kd_uncached", "kd_cached")


def add_arguments(p) -> None:
    p.add_argument("--config", default="configs/digits/kd.yaml", help="a KD recipe (default configs/digits/kd.yaml)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (default: the recipe's)")
    p.add_argument("--views", type=int, default=8, help="recorded views per sample (default 8)")
    p.add_argument("--topk", type=int, default=None, help="store only the top-k logits (default: all)")
    p.add_argument("--work", default="runs/bench_cache", help="folder for the teacher, the cache and the runs")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
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


def stats(values: list[float]) -> dict:
    return {"mean": round(statistics.fmean(values), 2),
            "std": round(statistics.stdev(values), 2) if len(values) > 1 else 0.0,
            "per_seed": [round(v, 2) for v in values]}


def measure(config: str, seeds: int, epochs: int | None, views: int, topk: int | None, work: Path,
            overrides: list[str], log=print) -> dict:
    from kdvision.cache.store import TeacherCache

    work = work.resolve()
    shutil.rmtree(work / "runs", ignore_errors=True)
    (work / "teacher_cache.safetensors").unlink(missing_ok=True)
    common = list(overrides) + [f"teacher.checkpoint={work / 'teacher'}", "train.tensorboard=false"]
    if epochs:
        common.append(f"train.epochs={epochs}")
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    acc: dict[str, list[float]] = {k: [] for k in KINDS}
    for seed in range(seeds):
        for kind in KINDS:
            out = work / "runs" / kind / f"seed{seed}"
            epoch_s, summary = train_run(config, common + [f"seed={seed}"] + variant_overrides(kind, work, views, topk),
                                         out)
            times[kind].extend(epoch_s[1:] if len(epoch_s) > 1 else epoch_s)
            acc[kind].append(summary["test_last"]["acc"])
            log(f"seed {seed} {kind:12s} test acc {acc[kind][-1]:6.2f}  "
                f"median epoch {statistics.median(epoch_s[1:] or epoch_s):.2f}s")
    header = TeacherCache.read_header(work / "teacher_cache.safetensors")
    med = {k: statistics.median(v) for k, v in times.items()}
    low = {k: min(v) for k, v in times.items()}  # least disturbed epoch: robust on a shared machine
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
        "fastest_epoch_s": {k: round(v, 3) for k, v in low.items()},
        "cached_ratio_fastest": round(low["kd_cached"] / low["student"], 3),
        "speedup_vs_uncached_fastest": round(low["kd_uncached"] / low["kd_cached"], 2),
        "cache_build_s": header["built_s"],
        "cache_mib": round((work / "teacher_cache.safetensors").stat().st_size / 2 ** 20, 2),
        "views": views, "topk": topk, "seeds": seeds, "config": config, "overrides": list(overrides),
        "epochs": epochs or "recipe",
        "test_acc": a,
        "cached_minus_uncached": round(diff, 2),
        "two_standard_errors": round(2 * se, 2),
        "accuracy_ok": diff >= -2 * se,
        "machine": machine(),
    }


def run(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    say = (lambda s: None) if args.json else print
    r = measure(args.config, args.seeds, args.epochs, args.views, args.topk, Path(args.work), args.overrides, say)
    a = r["test_acc"]
    lines = [
        f"{r['config']}: {r['seeds']} seeds, {r['views']} views{'' if r['topk'] is None else ', top-' + str(r['topk'])}"
        f", median training epoch (first epoch excluded)",
        f"student alone    {r['student_epoch_s']:8.2f} s/epoch   test acc {a['student']['mean']:6.2f} +- {a['student']['std']:.2f}",
        f"KD, live teacher {r['uncached_epoch_s']:8.2f} s/epoch   test acc {a['kd_uncached']['mean']:6.2f} +- "
        f"{a['kd_uncached']['std']:.2f}",
        f"KD, cached       {r['cached_epoch_s']:8.2f} s/epoch   test acc {a['kd_cached']['mean']:6.2f} +- "
        f"{a['kd_cached']['std']:.2f}",
        f"cached_ratio = cached / student = {r['cached_ratio']:.3f} "
        f"({'within' if r['cached_ratio'] <= GOAL else 'ABOVE'} the goal {GOAL})",
        f"fastest epochs instead of medians (less disturbed by other load): cached_ratio "
        f"{r['cached_ratio_fastest']:.3f}, speed-up {r['speedup_vs_uncached_fastest']:.2f}x",
        f"speed-up over the live teacher: {r['speedup_vs_uncached']:.2f}x per epoch "
        f"(cache built once in {r['cache_build_s']:.1f}s, {r['cache_mib']:.2f} MiB)",
        f"accuracy, cached - live: {r['cached_minus_uncached']:+.2f} points (2 standard errors: "
        f"{r['two_standard_errors']:.2f}) -> {'not worse beyond seed noise' if r['accuracy_ok'] else 'WORSE'}",
    ]
    report(r, args.json, lines)
    return 0
