"""``kdvision profile CONFIG``: parameters, MACs and CPU latency of the teacher(s) and the student.

MACs are those of convolutions and matrix products at batch 1, counted by
``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2); normalisation, activations and
pooling are not counted, as in most papers' tables. Latency is the median wall time of an
eval-mode forward under ``torch.inference_mode`` after warm-up, at batch 1 and at the
config's batch size. Architectures only: no weights are loaded and no teacher is trained.
"""
from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from kdvision.errors import UserError


def count_macs(model: nn.Module, shape: tuple[int, ...], name: str = "the model") -> int:
    """Multiply-accumulates of one input; the first forward, so a shape the model cannot take is named here."""
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(torch.zeros(1, *shape))
    except RuntimeError as e:
        size = ",".join(str(d) for d in shape)
        raise UserError(f"input size {size} does not fit {name}: {str(e).splitlines()[0]}") from None
    return int(counter.get_total_flops()) // 2


def latency_ms(model: nn.Module, shape: tuple[int, ...], batch: int, repeats: int, warmup: int = 2) -> float:
    model.eval()
    x = torch.randn(batch, *shape)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            model(x)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return round(1000.0 * statistics.median(times), 3)


def profile_models(models: list[tuple[str, str, nn.Module]], shape: tuple[int, ...], batch: int,
                   repeats: int = 10) -> list[dict]:
    """One row per (role, name, model): parameters, MACs, latency at batch 1 and ``batch``."""
    rows = []
    for role, name, model in models:
        rows.append({"role": role, "model": name, "parameters": sum(p.numel() for p in model.parameters()),
                     "macs": count_macs(model, shape, f"the {role} ({name})"),
                     "latency_ms_batch1": latency_ms(model, shape, 1, repeats),
                     f"latency_ms_batch{batch}": latency_ms(model, shape, batch, max(3, repeats // 2))})
    return rows


def create_model(task, spec: dict, where: str, data_available: bool) -> nn.Module:
    """The model as the task builds it; without the data set, with the builder's own defaults
    (e.g. num_classes) unless the spec sets them."""
    if data_available:
        return task.create_model(spec, where)
    from kdvision.model_build import build_model

    return build_model(spec, where, task.cfg.source, task.cfg.task)


def config_models(cfg, task, data_available: bool = True) -> list[tuple[str, str, nn.Module]]:
    """(role, model name, network) for the config's teachers and student (no weights loaded)."""
    from kdvision.engine.build import teacher_name

    models = []
    for i, t in enumerate(cfg.all_teachers()):
        where = "teacher.model" if cfg.teacher is t else f"teachers[{i}].model"
        role = "teacher" if len(cfg.all_teachers()) == 1 else f"teacher {teacher_name(t, i)}"
        models.append((role, t.model["name"], create_model(task, t.model, where, data_available)))
    models.append(("student", cfg.student["name"], create_model(task, cfg.student, "student", data_available)))
    return models


def data_available(task) -> bool:
    try:
        task.datasets()
    except UserError:
        return False
    return True


def human(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"


def table(rows: list[dict], batch: int) -> list[str]:
    key = f"latency_ms_batch{batch}"
    w = max([16] + [len(r["model"]) for r in rows])
    lines = [f"{'role':18s} {'model':{w}s} {'params':>9s} {'MACs':>9s} {'ms @1':>9s} {f'ms @{batch}':>10s}"]
    for r in rows:
        lines.append(f"{r['role']:18s} {r['model']:{w}s} {human(r['parameters']):>9s} {human(r['macs']):>9s} "
                     f"{r['latency_ms_batch1']:9.2f} {r[key]:10.2f}")
    student = rows[-1]
    for r in rows[:-1]:
        lines.append(f"{r['role']} / student: {r['parameters'] / student['parameters']:.1f}x parameters, "
                     f"{r['macs'] / max(student['macs'], 1):.1f}x MACs, "
                     f"{r[key] / max(student[key], 1e-9):.1f}x latency at batch {batch}")
    return lines
