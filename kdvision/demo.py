"""``kdvision demo``: a teacher and two students on the embedded digits set, in about 3 minutes.

It runs the packaged recipes digits/{teacher,student_50,kd_50} exactly as the classification
benchmark does (benchmarks/results/digits_50: scikit-learn's real handwritten digits at 16x16; the
teacher trained on all 1,077 training digits, the students on 50 of them for 300 epochs, where KD
beats the student alone by far more than the seed noise): the teacher once, each student at 3
seeds (``seed=0,1,2``, all learning from that one teacher). Only the validation pass is thinned
(every 10th epoch, ``train.eval_every``), which does not change training, so each seed's test
accuracy is the benchmark's. It prints test accuracy as mean ± std over the seeds, each student's
paired per-seed difference to the student alone with its 95% t-interval
(``kdvision.benchmarks_lib.accuracy_stats``), parameters and CPU latency per image, and plots the
training curves (the UNWEIGHTED cross-entropy, ``train/raw/ce``, so that a method that weights CE
by 0.1 is not drawn 10x lower).
"""
from __future__ import annotations

import json
import statistics
import time
from datetime import datetime
from pathlib import Path

import torch

from kdvision.benchmarks_lib.accuracy_stats import fmt_difference, paired_difference
from kdvision.benchmarks_lib.accuracy_terms import mean_curve
from kdvision.config import load_config
from kdvision.engine.trainer import Trainer
from kdvision.errors import UserError
from kdvision.models import count_parameters
from kdvision.recipe_library import RECIPES

CONFIGS = RECIPES / "digits"
TEACHER = ("teacher", "teacher.yaml")
STUDENTS = [("student alone", "student_50.yaml"), ("student+KD", "kd_50.yaml")]
#: validation only every 10th epoch (and the last): the demo reports the last epoch's test accuracy,
#: and evaluation does not touch the training's random streams, so training is the benchmark's
STUDENT_OVERRIDES = ["train.eval_every=10"]
RUNS = [TEACHER, *STUDENTS]
BASELINE = "student alone"
SEEDS = 3


def cpu_latency_ms(model: torch.nn.Module, shape: tuple[int, ...], repeats: int = 50) -> float:
    """Median wall time of one image through the model on one CPU thread, in milliseconds."""
    model = model.eval().cpu()
    x = torch.randn(1, *shape)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            for _ in range(5):
                model(x)
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return sorted(times)[len(times) // 2] * 1000


def unweighted_ce(row: dict) -> float | None:
    """The epoch's mean unweighted CE (``train/raw/ce``); ``train/ce`` where no weight applies it."""
    return row.get("train/raw/ce", row.get("train/ce"))


def plot_curves(histories: dict[str, list[list[dict]]], path: Path) -> None:
    """Left: unweighted training CE; right: validation accuracy; each the mean over the seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for name, runs in histories.items():
        label = f"{name} ({len(runs)} run{'s' if len(runs) > 1 else ''})"
        ax_loss.plot(*mean_curve(runs, unweighted_ce), label=label)
        ax_acc.plot(*mean_curve(runs, lambda r: r.get("val/acc")), label=label)
    ax_loss.set(xlabel="epoch", ylabel="unweighted CE with the labels (train/raw/ce)", yscale="log",
                title="training CE before any loss weight (mean over seeds)")
    ax_acc.set(xlabel="epoch", ylabel="val top-1 (%)", title="validation accuracy (mean over seeds)")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _train(file: str, run: Path, overrides: list[str], epochs_scale: float) -> tuple[Trainer, dict, list[dict]]:
    cfg = load_config(CONFIGS / file, overrides)
    if epochs_scale != 1.0:
        cfg.train.epochs = max(1, round(cfg.train.epochs * epochs_scale))
    trainer = Trainer(cfg, run, quiet=True)
    summary = trainer.fit()
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return trainer, summary, history


def _measure(label: str, trainer: Trainer) -> dict:
    student = trainer.method.student  # taps record only inside the training step: nothing hooks it here
    shape = tuple(trainer.datasets["test"][0]["input"].shape)
    return {"run": label, "model": trainer.cfg.student["name"], "parameters": count_parameters(student),
            "latency_ms": cpu_latency_ms(student, shape)}


def run_demo(out: str | None = None, epochs_scale: float = 1.0, seeds: int = SEEDS) -> list[dict]:
    if not CONFIGS.is_dir():
        raise UserError(f"demo recipes not found: {CONFIGS} (this kdvision was installed without its recipes)")
    if seeds < 1:
        raise UserError(f"demo: --seeds must be at least 1, got {seeds}")
    root = Path(out or f"runs/demo-{datetime.now():%Y%m%d-%H%M%S}")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        what = "folder" if root.is_dir() else "--out is a file:"
        raise UserError(f"demo {what} {root} already exists; choose another --out (nothing was overwritten)")
    started = time.perf_counter()
    label, file = TEACHER
    print(f"[demo] {label}: {CONFIGS / file} -> {root / 'teacher'}", flush=True)
    trainer, summary, history = _train(file, root / "teacher", [], epochs_scale)
    teacher = {**_measure(label, trainer), "acc": {"-": summary["test_last"]["acc"]}, "train_s": [summary["wall_s"]]}
    print(f"[demo] {label}: test acc {summary['test_last']['acc']:.2f}% ({summary['wall_s']:.0f} s)", flush=True)
    rows, histories = [teacher], {label: [history]}
    for label, file in STUDENTS:  # the teacher is shared: every seed of every student learns from it
        name = file.removesuffix(".yaml").removesuffix("_50")
        row, histories[label] = {"acc": {}, "train_s": []}, []
        for seed in range(seeds):
            overrides = [f"seed={seed}", *STUDENT_OVERRIDES]
            overrides += [f"teacher.checkpoint={root / 'teacher'}"] if label != BASELINE else []
            trainer, summary, history = _train(file, root / name / f"seed{seed}", overrides, epochs_scale)
            if seed == 0:
                row.update(_measure(label, trainer))
            row["acc"][seed] = summary["test_last"]["acc"]
            row["train_s"].append(summary["wall_s"])
            histories[label].append(history)
            print(f"[demo] {label} seed {seed}: test acc {summary['test_last']['acc']:.2f}% "
                  f"({summary['wall_s']:.0f} s)", flush=True)
        rows.append(row)
    baseline = next(r for r in rows if r["run"] == BASELINE)
    for r in rows:
        values = list(r["acc"].values())
        r["test_acc"] = statistics.fmean(values)
        r["test_std"] = statistics.stdev(values) if len(values) > 1 else None
        r["difference"] = (paired_difference(r["acc"], baseline["acc"])
                           if r is not baseline and r is not teacher else None)
    plot_curves(histories, root / "curves.png")
    table = format_table(rows, seeds)
    (root / "results.md").write_text(table + "\n")
    print()
    print(table)
    print(f"\ntest accuracy = last epoch, on the 360 held-out test digits, mean ± std over seeds 0..{seeds - 1} "
          f"(the teacher: one run, shared by every student and seed); Δ = paired per-seed difference to the "
          f"student alone, mean and 95% t-interval; latency = median of 50 single-image forwards on 1 CPU thread."
          f"\ncurves (unweighted training CE, val accuracy): {root / 'curves.png'}   "
          f"total {time.perf_counter() - started:.0f} s")
    return rows


def format_table(rows: list[dict], seeds: int = SEEDS) -> str:
    lines = ["| run | model | test top-1 (%), mean ± std | Δ vs student alone [95% CI] | seeds | parameters | "
             "CPU latency / image (ms) | train time / run (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        acc = f"{r['test_acc']:.2f} ± {r['test_std']:.2f}" if r["test_std"] is not None else f"{r['test_acc']:.2f}"
        diff = fmt_difference(r["difference"]) if r["difference"] is not None else "-"
        lines.append(f"| {r['run']} | {r['model']} | {acc} | {diff} | {len(r['acc'])} | {r['parameters']:,} | "
                     f"{r['latency_ms']:.2f} | {statistics.fmean(r['train_s']):.0f} |")
    return "\n".join(lines)
