"""``kdvision demo``: a teacher and four students on the embedded digits set, in about 3 minutes.

It runs the packaged recipes digits/{teacher,student,kd,fitnet,at} (scikit-learn's
real handwritten digits at 16x16, a reduced training set so that distillation matters), then
prints test accuracy, parameters and CPU latency per image, and plots the training curves.
"""
from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import torch

from kdvision.config import load_config
from kdvision.engine.trainer import Trainer
from kdvision.errors import UserError
from kdvision.models import count_parameters
from kdvision.recipe_library import RECIPES

CONFIGS = RECIPES / "digits"
RUNS = [("teacher", "teacher.yaml"), ("student alone", "student.yaml"), ("student+KD", "kd.yaml"),
        ("student+FitNet", "fitnet.yaml"), ("student+AT", "at.yaml")]


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


def plot_curves(histories: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for name, rows in histories.items():
        epochs = [r["epoch"] for r in rows]
        ax_loss.plot(epochs, [r.get("train/ce", r.get("train/loss")) for r in rows], label=name)
        ax_acc.plot(epochs, [r.get("val/acc") for r in rows], label=name)
    ax_loss.set(xlabel="epoch", ylabel="training cross-entropy", yscale="log", title="training loss")
    ax_acc.set(xlabel="epoch", ylabel="val top-1 (%)", title="validation accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_demo(out: str | None = None, epochs_scale: float = 1.0) -> list[dict]:
    if not CONFIGS.is_dir():
        raise UserError(f"demo recipes not found: {CONFIGS} (this kdvision was installed without its recipes)")
    root = Path(out or f"runs/demo-{datetime.now():%Y%m%d-%H%M%S}")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        what = "folder" if root.is_dir() else "--out is a file:"
        raise UserError(f"demo {what} {root} already exists; choose another --out (nothing was overwritten)")
    started = time.perf_counter()
    rows, histories = [], {}
    for label, file in RUNS:
        run = root / file.removesuffix(".yaml")
        overrides = [f"teacher.checkpoint={root / 'teacher'}"] if file not in ("teacher.yaml", "student.yaml") else []
        cfg = load_config(CONFIGS / file, overrides)
        if epochs_scale != 1.0:
            cfg.train.epochs = max(1, round(cfg.train.epochs * epochs_scale))
        print(f"[demo] {label}: {CONFIGS / file} -> {run}", flush=True)
        trainer = Trainer(cfg, run, quiet=True)
        summary = trainer.fit()
        student = trainer.method.student  # taps record only inside the training step: nothing hooks it here
        shape = tuple(trainer.datasets["test"][0]["input"].shape)
        rows.append({"run": label, "model": cfg.student["name"], "test_acc": summary["test_last"]["acc"],
                     "parameters": count_parameters(student), "latency_ms": cpu_latency_ms(student, shape),
                     "train_s": summary["wall_s"]})
        histories[label] = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        print(f"[demo] {label}: test acc {rows[-1]['test_acc']:.2f}% ({summary['wall_s']:.0f} s)", flush=True)
    plot_curves(histories, root / "curves.png")
    table = format_table(rows)
    (root / "results.md").write_text(table + "\n")
    print()
    print(table)
    print(f"\ntest accuracy = last epoch, on the 360 held-out test digits; latency = median of 50 single-image "
          f"forwards on 1 CPU thread.\ncurves: {root / 'curves.png'}   total {time.perf_counter() - started:.0f} s")
    return rows


def format_table(rows: list[dict]) -> str:
    lines = ["| run | model | test top-1 (%) | parameters | CPU latency / image (ms) | train time (s) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['run']} | {r['model']} | {r['test_acc']:.2f} | {r['parameters']:,} | "
                     f"{r['latency_ms']:.2f} | {r['train_s']:.0f} |")
    return "\n".join(lines)
