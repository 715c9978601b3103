"""``kdvision bench overhead``: what distillation costs beyond running both networks.

In one process, after warm-up, it times many rounds of three things on the same random batch
(resnet56 -> resnet20, batch 64, 32x32, 100 classes by default):

* student step: the student-only method through ``train_step`` (forward, CE, backward, SGD);
* teacher step: the frozen teacher's forward (``Method.run_teacher``: eval mode, no grad);
* distill step: the KD method through the same ``train_step`` the trainer runs.

The three are interleaved round by round (in rotating order), so a machine whose load drifts
slows all three alike, and each figure is the median over the rounds.
``overhead_ratio = distill / (student + teacher)``: 1.0 means distillation costs exactly one
student step plus one teacher forward; the goal is <= 1.05.
"""
from __future__ import annotations

import copy

import torch

from kdvision.benchmarks_lib.common import machine, median_ms, report, synchronizer, time_call
from kdvision.commands.arguments import non_negative_int, positive_int

NAME = "overhead"
HELP = "time a student step, a teacher forward and a KD step (the trainer's own step); overhead_ratio"
GOAL = 1.05


def add_arguments(p) -> None:
    p.add_argument("--teacher", default="resnet56", help="teacher model (default resnet56)")
    p.add_argument("--student", default="resnet20", help="student model (default resnet20)")
    p.add_argument("--method", default="kd", help="distillation method to time (default kd)")
    p.add_argument("--num-classes", type=positive_int, default=100)
    p.add_argument("--batch", type=positive_int, default=64)
    p.add_argument("--size", type=positive_int, default=32, help="input height and width")
    p.add_argument("--steps", type=positive_int, default=30, help="timed rounds (each times all three steps)")
    p.add_argument("--warmup", type=non_negative_int, default=5, help="untimed rounds first")
    p.add_argument("--precision", default="fp32",
                   help="fp32, bf16 or fp16 (autocast); a list such as fp32,bf16 times them in the same rounds")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile-teacher", action="store_true", help="torch.compile the teacher (as train.compile_teacher)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=positive_int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--default-malloc", action="store_true",
                   help="leave glibc's malloc thresholds alone (the trainer tunes them on the CPU; see engine/cpu_memory.py)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def build_methods(teacher: str, student: str, method: str, num_classes: int):
    """(distilling method, student-only method): the same student architecture, separate copies."""
    from kdvision.config import config_from_dict, params_from_dict
    from kdvision.methods import METHODS
    from kdvision.model_build import build_model
    from kdvision.tasks import TASKS

    cfg = config_from_dict({"data": {"name": "random"}, "student": {"name": student},
                            "teacher": {"model": {"name": teacher}}, "method": {"name": method}}, "bench")
    task = TASKS.get("classification")(cfg)
    s = build_model({"name": student}, "--student", "", "classification", {"num_classes": num_classes})
    t = build_model({"name": teacher}, "--teacher", "", "classification", {"num_classes": num_classes})
    cls = METHODS.get(method, where="--method")
    distill = cls(copy.deepcopy(s), [t], task, params_from_dict(cls.Params, {}, "method", "bench"))
    alone_cls = METHODS.get("student")
    alone = alone_cls(s, [], task, alone_cls.Params())
    return distill, alone


def measure(teacher="resnet56", student="resnet20", method="kd", num_classes=100, batch=64, size=32, steps=30,
            warmup=5, precision="fp32", channels_last=False, compile_teacher=False, device="cpu",
            default_malloc=False) -> dict:
    """Time the three steps; ``precision`` may list several ("fp32,bf16"), all timed in the same rounds.

    With one precision the result holds distill_step_ms, student_step_ms, teacher_step_ms and
    overhead_ratio; with several, ``by_precision`` holds that for each, and ``speedup`` each
    one's step-time ratio against the first.
    """
    from kdvision.config import OptimizerConfig
    from kdvision.engine.optim import build_optimizer
    from kdvision.engine.runtime import autocast_factory, pick_device, to_device, train_step

    precisions = [p.strip() for p in precision.split(",") if p.strip()]
    dev = pick_device(device)
    kept = False
    if dev.type == "cpu" and not default_malloc:
        from kdvision.engine.cpu_memory import keep_freed_memory

        kept = keep_freed_memory()  # as the trainer does
    torch.manual_seed(0)
    distill, alone = build_methods(teacher, student, method, num_classes)
    data = {"input": torch.randn(batch, 3, size, size), "target": torch.randint(0, num_classes, (batch,))}
    data = to_device(data, dev, channels_last)
    optimizers = {}
    for name, m in (("distill", distill), ("student", alone)):
        m.to(dev)
        if channels_last:
            m.to(memory_format=torch.channels_last)
        if compile_teacher:
            for i, t in enumerate(m.teachers):
                m.teachers[i] = torch.compile(t)
        m.setup(data)
        m.train()
        optimizers[name] = (build_optimizer(OptimizerConfig(), m.param_groups()), m.extra_optimizers())
    steppers = {}
    for prec in precisions:
        autocast = autocast_factory(dev, prec)
        scaler = torch.amp.GradScaler("cuda") if prec == "fp16" and dev.type == "cuda" else None
        for name, m in (("distill", distill), ("student", alone)):
            opt, extra = optimizers[name]
            steppers[(name, prec)] = (lambda m=m, opt=opt, extra=extra, a=autocast, sc=scaler:
                                      train_step(m, data, opt, extra, a, sc))

        def teacher_step(a=autocast):
            with a():
                distill.run_teacher(data["input"])

        steppers[("teacher", prec)] = teacher_step
    order = [(k, prec) for prec in precisions for k in ("student", "teacher", "distill")]
    sync = synchronizer(dev)
    times: dict[tuple, list[float]] = {k: [] for k in order}
    for r in range(warmup + steps):
        shift = r % len(order)
        for key in order[shift:] + order[:shift]:  # rotating order: no step always runs first
            seconds = time_call(steppers[key], sync)
            if r >= warmup:
                times[key].append(seconds)
    by_precision = {}
    for prec in precisions:
        student_ms, teacher_ms, distill_ms = (median_ms(times[(k, prec)]) for k in ("student", "teacher", "distill"))
        by_precision[prec] = {"distill_step_ms": distill_ms, "student_step_ms": student_ms,
                              "teacher_step_ms": teacher_ms,
                              "overhead_ratio": round(distill_ms / (student_ms + teacher_ms), 4)}
    setting = {"teacher": teacher, "student": student, "method": method, "batch": batch, "size": size,
               "num_classes": num_classes, "precision": precision, "channels_last": channels_last,
               "compile_teacher": compile_teacher, "device": str(dev), "steps": steps, "warmup": warmup,
               "malloc_tuned": kept}
    if len(precisions) == 1:
        return {**by_precision[precisions[0]], "goal": GOAL, "setting": setting, "machine": machine()}
    base = by_precision[precisions[0]]
    speedup = {prec: {k: round(base[f"{k}_step_ms"] / r[f"{k}_step_ms"], 3) for k in ("distill", "student", "teacher")}
               for prec, r in by_precision.items()}
    return {"by_precision": by_precision, "speedup": speedup, "goal": GOAL, "setting": setting, "machine": machine()}


def lines_for(r: dict, s: dict, precision: str) -> list[str]:
    verdict = "within" if r["overhead_ratio"] <= GOAL else "ABOVE"
    return [
        f"[{precision}] student step  {r['student_step_ms']:9.1f} ms",
        f"[{precision}] teacher step  {r['teacher_step_ms']:9.1f} ms",
        f"[{precision}] distill step  {r['distill_step_ms']:9.1f} ms",
        f"[{precision}] overhead_ratio = distill / (student + teacher) = {r['overhead_ratio']:.3f} "
        f"({verdict} the goal {GOAL})",
    ]


def run(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    r = measure(args.teacher, args.student, args.method, args.num_classes, args.batch, args.size, args.steps,
                args.warmup, args.precision, args.channels_last, args.compile_teacher, args.device,
                args.default_malloc)
    s = r["setting"]
    lines = [f"{s['teacher']} -> {s['student']} ({s['method']}), batch {s['batch']}, {s['size']}x{s['size']}, "
             f"{'channels_last, ' if s['channels_last'] else ''}{s['device']}, {torch.get_num_threads()} threads, "
             f"median of {s['steps']} rounds"]
    if "by_precision" in r:
        first = next(iter(r["by_precision"]))
        for prec, one in r["by_precision"].items():
            lines += lines_for(one, s, prec)
        for prec, sp in list(r["speedup"].items())[1:]:
            lines.append(f"{prec} vs {first}: distill step {sp['distill']:.2f}x faster (student step "
                         f"{sp['student']:.2f}x, teacher forward {sp['teacher']:.2f}x)")
    else:
        lines += lines_for(r, s, s["precision"])
    report(r, args.json, lines)
    return 0
