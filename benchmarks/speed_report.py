"""Turn the JSON files of benchmarks/speed.sh into the Markdown table benchmarks/results/speed.md."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def load(folder: Path, name: str) -> dict | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() and path.stat().st_size else None


def machine_line(m: dict) -> str:
    load = f", load average {m['load_average_1min']}" if "load_average_1min" in m else ""
    return (f"{m['date']}, {m['cpu']} ({m['cpu_count']} cores, {m['torch_threads']} torch threads{load}), "
            f"torch {m['torch']}, Python {m['python']}")


def overhead_section(folder: Path) -> list[str]:
    rows = [("fp32", "overhead_fp32"), ("fp32, glibc malloc defaults", "overhead_fp32_default_malloc"),
            ("bf16 autocast", "overhead_bf16"), ("fp32, channels_last", "overhead_fp32_channels_last"),
            ("bf16 autocast, channels_last", "overhead_bf16_channels_last")]
    found = [(label, load(folder, name)) for label, name in rows]
    found = [(label, r) for label, r in found if r]
    if not found:
        return []
    s = found[0][1]["setting"]
    out = ["## Distillation overhead (`kdvision bench overhead`)", "",
           f"{s['teacher']} -> {s['student']} ({s['method']}), batch {s['batch']}, {s['size']}x{s['size']}, "
           f"{s['num_classes']} classes, {s['device']}; median of {s['steps']} interleaved rounds after "
           f"{s['warmup']} warm-up rounds. Goal: overhead_ratio <= {found[0][1]['goal']}.", "",
           "| setting | student step ms | teacher step ms | distill step ms | overhead_ratio |",
           "|---|---:|---:|---:|---:|"]
    for label, r in found:
        out.append(f"| {label} | {r['student_step_ms']:.1f} | {r['teacher_step_ms']:.1f} | "
                   f"{r['distill_step_ms']:.1f} | **{r['overhead_ratio']:.3f}** |")
    both = load(folder, "overhead_precision")
    fp32, bf16 = load(folder, "overhead_fp32"), load(folder, "overhead_bf16")
    if both:
        sp = both["speedup"]["bf16"]
        b = both["by_precision"]
        out += ["", f"bf16 autocast vs fp32, timed in the same interleaved rounds ({both['setting']['steps']} rounds): "
                    f"distill step {b['fp32']['distill_step_ms']:.1f} -> {b['bf16']['distill_step_ms']:.1f} ms, "
                    f"**{sp['distill']:.2f}x faster** (student step {sp['student']:.2f}x, teacher forward "
                    f"{sp['teacher']:.2f}x); overhead_ratio fp32 {b['fp32']['overhead_ratio']:.3f}, "
                    f"bf16 {b['bf16']['overhead_ratio']:.3f}."]
    elif fp32 and bf16:
        out += ["", f"bf16 speed-up of the distill step on this CPU: "
                    f"**{fp32['distill_step_ms'] / bf16['distill_step_ms']:.2f}x** "
                    f"(student step {fp32['student_step_ms'] / bf16['student_step_ms']:.2f}x, "
                    f"teacher forward {fp32['teacher_step_ms'] / bf16['teacher_step_ms']:.2f}x)."]
    out += ["", f"Machine: {machine_line(found[0][1]['machine'])}.", ""]
    return out


def cache_section(folder: Path) -> list[str]:
    r = load(folder, "cache_digits")
    if not r:
        return []
    a = r["test_acc"]
    out = ["## Teacher-output cache (`kdvision bench cache`)", "",
           f"`{r['config']}`, epochs: {r['epochs']}, {r['seeds']} seeds, {r['views']} recorded views"
           f"{'' if r['topk'] is None else ', top-' + str(r['topk'])}; training time per epoch: median of "
           f"{r.get('timed_rounds', '?')} epochs of the three kinds run interleaved (seed 0); test accuracy of the final epoch, mean +- std over seeds. Goal: cached_ratio <= {r['goal']}.",
           "", "| run | s / epoch | test acc (%) | per seed |", "|---|---:|---:|---|"]
    for label, key, t in (("student alone", "student", "student_epoch_s"),
                          ("KD, live teacher", "kd_uncached", "uncached_epoch_s"),
                          ("KD, cached teacher", "kd_cached", "cached_epoch_s")):
        out.append(f"| {label} | {r[t]:.2f} | {a[key]['mean']:.2f} +- {a[key]['std']:.2f} | "
                   f"{', '.join(f'{v:.2f}' for v in a[key]['per_seed'])} |")
    out += ["", f"cached_ratio = cached / student = **{r['cached_ratio']:.3f}**; speed-up over the live teacher "
                f"**{r['speedup_vs_uncached']:.2f}x** per epoch; the cache was built once in {r['cache_build_s']:.1f} s "
                f"({r['cache_mib']:.2f} MiB).",
            f"Accuracy, cached - live: {r['cached_minus_uncached']:+.2f} points (2 standard errors "
            f"{r['two_standard_errors']:.2f}): " + {True: "not worse beyond seed noise", False: "WORSE",
                                                   None: "one seed, no noise estimate"}[r["accuracy_ok"]] + ".",
            "", f"Machine: {machine_line(r['machine'])}.", ""]
    return out


def profile_section(folder: Path) -> list[str]:
    files = sorted(folder.glob("profile_*.json"))
    if not files:
        return []
    out = ["## Teacher vs student (`kdvision profile`)", "",
           "MACs of convolutions and matrix products at batch 1; CPU latency: median eval forward.", "",
           "| config | role | model | params | MACs | ms @1 | ms @batch |", "|---|---|---|---:|---:|---:|---:|"]
    for f in files:
        r = json.loads(f.read_text())
        for m in r["models"]:
            out.append(f"| {f.stem[len('profile_'):]} | {m['role']} | {m['model']} | {m['parameters'] / 1e6:.3f}M | "
                       f"{m['macs'] / 1e6:.1f}M | {m['latency_ms_batch1']:.2f} | "
                       f"{m['latency_ms_batch' + str(r['batch'])]:.1f} "
                       f"(b{r['batch']}) |")
    out += ["", f"Machine: {machine_line(json.loads(files[0].read_text())['machine'])}.", ""]
    return out


def main(folder: str) -> None:
    f = Path(folder)
    lines = ["# Speed and scale benchmarks (issue 7)", "",
             "Produced by `benchmarks/speed.sh` (JSON in `benchmarks/results/speed/`; `THREADS=1 benchmarks/speed.sh` "
             "on a shared machine). No GPU figures: no GPU was available to this measurement.", "",
             "The teacher-output cache (`teacher_cache:` in a config) serves methods that only need the teacher's "
             "final output (`uses_teacher_logits_only`: kd) on data sets whose augmentation can be replayed "
             "(digits, CIFAR-10/100).", ""]
    lines += overhead_section(f) + cache_section(f) + profile_section(f)
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/speed")
