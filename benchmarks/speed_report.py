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
    out = [f"## Distillation overhead (`kdvision bench overhead`)", "",
           f"{s['teacher']} -> {s['student']} ({s['method']}), batch {s['batch']}, {s['size']}x{s['size']}, "
           f"{s['num_classes']} classes, {s['device']}; median of {s['steps']} interleaved rounds after "
           f"{s['warmup']} warm-up rounds. Goal: overhead_ratio <= {found[0][1]['goal']}.", "",
           "| setting | student step ms | teacher step ms | distill step ms | overhead_ratio |",
           "|---|---:|---:|---:|---:|"]
    for label, r in found:
        out.append(f"| {label} | {r['student_step_ms']:.1f} | {r['teacher_step_ms']:.1f} | "
                   f"{r['distill_step_ms']:.1f} | **{r['overhead_ratio']:.3f}** |")
    fp32, bf16 = load(folder, "overhead_fp32"), load(folder, "overhead_bf16")
    if fp32 and bf16:
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
           f"{'' if r['topk'] is None else ', top-' + str(r['topk'])}; median training time per epoch (first epoch "
           f"excluded); test accuracy of the final epoch, mean +- std over seeds. Goal: cached_ratio <= {r['goal']}.",
           "", "| run | s / epoch | test acc (%) | per seed |", "|---|---:|---:|---|"]
    for label, key, t in (("student alone", "student", "student_epoch_s"),
                          ("KD, live teacher", "kd_uncached", "uncached_epoch_s"),
                          ("KD, cached teacher", "kd_cached", "cached_epoch_s")):
        out.append(f"| {label} | {r[t]:.2f} | {a[key]['mean']:.2f} +- {a[key]['std']:.2f} | "
                   f"{', '.join(f'{v:.2f}' for v in a[key]['per_seed'])} |")
    if "cached_ratio_fastest" in r:
        out += ["", f"Fastest epoch of each kind instead of the median (less disturbed by other load): "
                    f"cached_ratio {r['cached_ratio_fastest']:.3f}, speed-up {r['speedup_vs_uncached_fastest']:.2f}x."]
    out += ["", f"cached_ratio = cached / student = **{r['cached_ratio']:.3f}**; speed-up over the live teacher "
                f"**{r['speedup_vs_uncached']:.2f}x** per epoch; the cache was built once in {r['cache_build_s']:.1f} s "
                f"({r['cache_mib']:.2f} MiB).",
            f"Accuracy, cached - live: {r['cached_minus_uncached']:+.2f} points (2 standard errors "
            f"{r['two_standard_errors']:.2f}): {'not worse beyond seed noise' if r['accuracy_ok'] else 'WORSE'}.",
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
             "Produced by `benchmarks/speed.sh` (JSON in `benchmarks/results/speed/`). No GPU figures: "
             "no GPU was available to this measurement.", ""]
    lines += overhead_section(f) + cache_section(f) + profile_section(f)
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/speed")
