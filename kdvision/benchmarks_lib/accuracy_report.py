"""``bench accuracy``, reporting: the finished runs' summary.json files gathered into
``DIR/results.md`` (mean ± sample std per recipe, per seed, per domain; the shared teachers;
the machine) and ``DIR/results.png``. The metric's unit and the metric shown beside it come
from the task that wrote the runs (``Task.metric_unit``, ``Task.secondary_metric``)."""
from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path

from kdvision.benchmarks_lib.accuracy_plan import RUNS, STATE, run_dir
from kdvision.benchmarks_lib.accuracy_jobs import concurrent_marker, elapsed_records
from kdvision.benchmarks_lib.accuracy_run import resumed_marker
from kdvision.benchmarks_lib.common import locked
from kdvision.engine.checkpoint import atomic_write

NOTES = "notes.md"  # DIR/notes.md: what the investigation showed, written by hand after the run


def describe(summary: dict) -> str:
    m = summary["metric"]
    return (f"test {m} {summary['test_last'][m]:.2f} (final epoch), {summary['test_best'][m]:.2f} "
            f"(best val epoch {summary['best_epoch']}), {summary['wall_s']:.0f} s")


def teachers_info(entries: list[dict]) -> list[dict]:
    """Shared teachers as recorded in bench.json, with their results when finished."""
    info = []
    for t in entries:
        run = Path(t["dir"])
        seed = _run_config(run).get("seed")
        summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else None
        info.append({**t, "seed": seed, "summary": summary})
    return info


def task_facts(metric: str, run: Path | None = None) -> tuple[str, str | None]:
    """(unit, secondary metric) of the task that reported ``metric``: the run's own ``task``
    (its config.yaml), else the registered task whose metric it is."""
    from kdvision.tasks import TASKS

    name = _run_config(run).get("task") if run is not None else None
    if name not in TASKS:
        name = next((n for n in TASKS.names() if TASKS.get(n).metric == metric), None)
    if name is None:
        return "", None
    task = TASKS.get(name)
    return task.metric_unit, task.secondary_metric


def unit_label(rows: list[dict]) -> str:
    """" (dB)" for the rows' metric unit; the classification default when nothing finished."""
    unit = rows[0]["unit"] if rows else task_facts("acc")[0]
    return f" ({unit})" if unit else ""


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1); no std for a single value."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def collect(out: Path, names: list[str], seeds: list[int], swept: dict[str, list[str]] | None = None) -> list[dict]:
    """One row per recipe from the finished runs' summary.json files (recipes with none are left out).
    A swept recipe's row is its chosen value's runs, with the whole sweep under ``row["sweep"]``."""
    rows = []
    for name in names:
        labels = (swept or {}).get(name)
        if labels:
            row = swept_row(out, name, labels, seeds)
        else:
            row = collect_row(name, {s: run_dir(out, name, s) for s in seeds})
        if row is not None:
            rows.append(row)
    return rows


def swept_row(out: Path, name: str, labels: list[str], seeds: list[int]) -> dict | None:
    """The row of the sweep's value with the best mean validation metric (accuracy_sweep.select)."""
    from kdvision.benchmarks_lib.accuracy_sweep import select, selection_scores, sweep_dir
    from kdvision.tasks import TASKS

    points = {}
    for label in labels:
        row = collect_row(name, {s: sweep_dir(out, name, label, s) for s in seeds})
        if row is not None:
            points[label] = row
    if not points:
        return None
    metric = next(iter(points.values()))["metric"]
    task = next((TASKS.get(n) for n in TASKS.names() if TASKS.get(n).metric == metric), None)
    chosen = select(points, task.higher_is_better if task is not None else True)
    if chosen is None:
        return None
    row = dict(points[chosen])
    selection_seeds, selection_val = selection_scores(points)
    row["sweep"] = {"chosen": chosen, "points": points, "order": [lab for lab in labels if lab in points],
                    "selection_seeds": selection_seeds, "selection_val": selection_val}
    return row


def collect_row(name: str, dirs: dict[int, Path]) -> dict | None:
    """The row of one recipe whose seed ``s`` ran in ``dirs[s]``; None when no seed finished."""
    summaries = {}
    for s, d in dirs.items():
        if (d / "summary.json").is_file():
            summaries[s] = json.loads((d / "summary.json").read_text())
    if not summaries:
        return None
    first = next(iter(summaries.values()))
    metric = first["metric"]
    some = dirs[next(iter(summaries))]
    last = {s: float(v["test_last"][metric]) for s, v in summaries.items()}
    best = {s: float(v["test_best"][metric]) for s, v in summaries.items()}
    unit, second = task_facts(metric, some)
    if second and not all(second in v["test_last"] and second in v["test_best"] for v in summaries.values()):
        second = None
    student, method = _model_and_method(some)
    whole = {k: v for k, v in summaries.items() if not resumed_marker(dirs[k]).exists()}
    beside = [json.loads(concurrent_marker(dirs[k]).read_text()) for k in (whole or summaries)
              if concurrent_marker(dirs[k]).is_file()]
    val = {s: float(v[f"val_best_{metric}"]) for s, v in summaries.items() if v.get(f"val_best_{metric}") is not None}
    return {
        "recipe": name, "metric": metric, "unit": unit, "student": student, "method": method, "seeds": sorted(summaries),
        "runs": {s: str(dirs[s]) for s in sorted(summaries)},
        "data": _run_config(some).get("data"),
        "last": last, "best": best, "last_mean_std": mean_std(list(last.values())),
        "best_mean_std": mean_std(list(best.values())),
        "val": val, "val_mean_std": mean_std(list(val.values())) if val else None,
        "best_epochs": {s: v.get("best_epoch") for s, v in summaries.items()},
        "parameters": first.get("student_parameters"),
        # runs resumed after an interruption timed only their last part: left out when others exist
        "wall_s": statistics.fmean(float(v["wall_s"]) for v in (whole or summaries).values()),
        "wall_partial": not whole,
        "wall_concurrent": sorted({b["jobs"] for b in beside}),  # --jobs of the runs timed beside others
        "epochs": first.get("epochs"),
        "second": second,
        "second_last_mean_std": mean_std([float(v["test_last"][second]) for v in summaries.values()])
        if second else None,
        "second_best_mean_std": mean_std([float(v["test_best"][second]) for v in summaries.values()])
        if second else None,
        "domains": per_domain(summaries, metric, second),
    }


def per_domain(summaries: dict, metric: str, second: str | None) -> dict[str, dict]:
    """Final-epoch test values per domain (e.g. weather type), from the keys the task writes per
    domain: ``images_<d>``, ``<metric>_<d>`` (and ``<second>_<d>``). {domain: {"main": (mean, std),
    "second": (mean, std) | None}} over the seeds that evaluated it, plus
    "domain_mean" (the task's mean over domains) when the runs hold more than one domain."""
    found: dict[str, dict[str, list[float]]] = {}
    for v in summaries.values():
        test = v["test_last"]
        names = [k[len("images_"):] for k in test if k.startswith("images_")]
        if len(names) > 1:
            names.append("domain_mean")
        for d in names:
            if f"{metric}_{d}" not in test:
                continue
            entry = found.setdefault(d, {"main": [], "second": []})
            entry["main"].append(float(test[f"{metric}_{d}"]))
            if second and f"{second}_{d}" in test:
                entry["second"].append(float(test[f"{second}_{d}"]))
    return {d: {"main": mean_std(e["main"]),
                "second": mean_std(e["second"]) if len(e["second"]) == len(e["main"]) and e["second"] else None}
            for d, e in found.items()}


def _run_config(run: Path) -> dict:
    """The run's resolved config.yaml as a mapping ({} before it exists)."""
    path = run / "config.yaml"
    if not path.is_file():
        return {}
    import yaml

    return yaml.safe_load(path.read_text()) or {}


def _model_and_method(run: Path) -> tuple[str, str]:
    cfg = _run_config(run)
    return (cfg.get("student") or {}).get("name", "-"), (cfg.get("method") or {}).get("name", "-")


def fmt_mean_std(pair: tuple[float, float | None], digits: int = 2) -> str:
    m, s = pair
    return f"{m:.{digits}f} ± {s:.{digits}f}" if s is not None else f"{m:.{digits}f} ± n/a"


def format_table(rows: list[dict]) -> str:
    metric = rows[0]["metric"] if rows else "acc"  # the task's metric, summary.json["metric"]
    second = next((r["second"] for r in rows if r.get("second")), None)  # e.g. SSIM beside PSNR
    extra = f" test {second}, final epoch | test {second}, best-val epoch |" if second else ""
    lines = [f"| recipe | student | method | parameters | test {metric}, final epoch{unit_label(rows)} | "
             f"test {metric}, best-val epoch{unit_label(rows)} | epochs | wall time / run (s) | seeds |" + extra,
             "|---|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if second else "")]
    for r in rows:
        params = f"{r['parameters']:,}" if isinstance(r["parameters"], int) else "-"
        cells = ""
        if second:
            cells = (f" {fmt_mean_std(r['second_last_mean_std'], 4)} | {fmt_mean_std(r['second_best_mean_std'], 4)} |"
                     if r.get("second") == second else " - | - |")
        lines.append(f"| {r['recipe']} | {r['student']} | {r['method']} | {params} | {fmt_mean_std(r['last_mean_std'])} | "
                     f"{fmt_mean_std(r['best_mean_std'])} | {r['epochs']} | {r['wall_s']:.1f}{'*' if r.get('wall_partial') else ''}{'‡' if r.get('wall_concurrent') else ''} | {len(r['seeds'])} |"
                     + cells)
    return "\n".join(lines)


def format_per_domain(rows: list[dict]) -> str:
    """Rows x domains (e.g. weather types) of final-epoch mean ± std, metric / second metric;
    "-" where a recipe was not tested on that domain (a specialist teacher)."""
    domains = []
    for r in rows:
        domains += [d for d in r.get("domains", {}) if d not in domains and d != "domain_mean"]
    if not domains:
        return ""
    columns = domains + ["domain_mean"]
    lines = ["| recipe | " + " | ".join("mean over types" if d == "domain_mean" else d for d in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for r in rows:
        cells = []
        for d in columns:
            v = r.get("domains", {}).get(d)
            if v is None:
                cells.append("-")
                continue
            text = fmt_mean_std(v["main"])
            if v["second"] is not None:
                text += f" / {fmt_mean_std(v['second'], 4)}"
            cells.append(text)
        lines.append(f"| {r['recipe']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_per_seed(rows: list[dict], seeds: list[int]) -> str:
    lines = ["| recipe | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---|" + "---:|" * len(seeds)]
    for r in rows:
        cells = [f"{r['last'][s]:.2f} / {r['best'][s]:.2f}" if s in r["last"] else "-" for s in seeds]
        lines.append(f"| {r['recipe']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare(rows: list[dict], named: str | None = None) -> dict[str, dict]:
    """{recipe: {"baseline", "last", "best"}}: the paired differences (accuracy_stats) of the final-
    epoch and the best-val-epoch test values to the recipe's baseline, for recipes that have one."""
    from kdvision.benchmarks_lib.accuracy_stats import choose_baseline, paired_difference

    if named is not None and named not in [r["recipe"] for r in rows]:
        return {}  # the named baseline has no finished run yet
    by_name = {r["recipe"]: r for r in rows}
    found = {}
    for recipe, base in choose_baseline(rows, named).items():
        if base is None:
            continue
        r, b = by_name[recipe], by_name[base]
        found[recipe] = {"baseline": base, "last": paired_difference(r["last"], b["last"]),
                         "best": paired_difference(r["best"], b["best"])}
    return found


def format_paired(rows: list[dict], comparisons: dict[str, dict]) -> str:
    from kdvision.benchmarks_lib.accuracy_stats import fmt_difference

    metric = rows[0]["metric"] if rows else "acc"
    lines = [f"| recipe | baseline | paired seeds | Δ test {metric}, final epoch [95% CI]{unit_label(rows)} | "
             f"Δ test {metric}, best-val epoch [95% CI]{unit_label(rows)} |", "|---|---|---:|---:|---:|"]
    for r in rows:
        c = comparisons.get(r["recipe"])
        if c is None:
            continue
        n = len(c["last"]["seeds"]) if c["last"] else 0
        lines.append(f"| {r['recipe']} | {c['baseline']} | {n} | {fmt_difference(c['last'])} | "
                     f"{fmt_difference(c['best'])} |")
    return "\n".join(lines)


def format_sweeps(rows: list[dict]) -> str:
    """Per swept recipe: every value's validation and test mean ± std, and the chosen one."""
    parts = []
    for r in rows:
        sweep = r.get("sweep")
        if not sweep:
            continue
        metric = r["metric"]
        chosen_on = ", ".join(str(s) for s in sweep["selection_seeds"])
        lines = [f"Sweep of `{r['recipe']}` (chosen on validation: the best mean val {metric} over the seeds every "
                 f"value finished, here {chosen_on}; the test columns are reported, never used to choose):", "",
                 f"| value | seeds | val {metric} (best epoch), seeds {chosen_on}: the choice | "
                 f"val {metric} (best epoch), all its seeds{unit_label([r])} | test {metric}, final epoch | "
                 f"test {metric}, best-val epoch | chosen |", "|---|---:|---:|---:|---:|---:|---|"]
        for label in sweep["order"]:
            p = sweep["points"][label]
            val = fmt_mean_std(p["val_mean_std"]) if p["val_mean_std"] else "-"
            score = sweep["selection_val"].get(label)
            chosen_val = "-" if score is None else f"{score:.2f}"
            lines.append(f"| `{label}` | {len(p['seeds'])} | {chosen_val} | {val} | {fmt_mean_std(p['last_mean_std'])} | "
                         f"{fmt_mean_std(p['best_mean_std'])} | {'**chosen**' if label == sweep['chosen'] else ''} |")
        lines += ["", f"Chosen for `{r['recipe']}`: `{sweep['chosen']}` (its runs are the recipe's row above)."]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def baseline_convergence(rows: list[dict], comparisons: dict[str, dict]) -> list[dict]:
    from kdvision.benchmarks_lib.accuracy_stats import convergence

    # a student-alone row is a baseline even where nothing is compared with it (a schedule pilot)
    names = set(c["baseline"] for c in comparisons.values()) | {r["recipe"] for r in rows if r["method"] == "student"}
    return [convergence(r) for r in rows if r["recipe"] in names]


def summary_json(rows: list[dict], comparisons: dict[str, dict], seeds: list[int], machine: dict) -> dict:
    """DIR/results.json: what results.md says, as numbers."""
    def pair(p):
        return {"mean": p[0], "std": p[1]} if p else None

    recipes = []
    for r in rows:
        entry = {"recipe": r["recipe"], "student": r["student"], "method": r["method"], "metric": r["metric"],
                 "seeds": r["seeds"], "epochs": r["epochs"], "best_epochs": {str(k): v for k, v in r["best_epochs"].items()},
                 "test_final_epoch": {"per_seed": {str(k): v for k, v in r["last"].items()}, **pair(r["last_mean_std"])},
                 "test_best_val_epoch": {"per_seed": {str(k): v for k, v in r["best"].items()},
                                         **pair(r["best_mean_std"])},
                 "val_best": pair(r["val_mean_std"]), "parameters": r["parameters"], "wall_s": r["wall_s"]}
        c = comparisons.get(r["recipe"])
        if c:
            entry["paired_difference"] = {"baseline": c["baseline"], "final_epoch": c["last"],
                                          "best_val_epoch": c["best"]}
        if r.get("sweep"):
            sw = r["sweep"]
            entry["sweep"] = {"chosen": sw["chosen"], "selected_on": f"mean val_best_{r['metric']}",
                              "selection_seeds": sw["selection_seeds"],
                              "values": [{"value": lab, "seeds": sw["points"][lab]["seeds"],
                                          "val": pair(sw["points"][lab]["val_mean_std"]),
                                          "val_selection_seeds": sw["selection_val"].get(lab),
                                          "test_final_epoch": pair(sw["points"][lab]["last_mean_std"]),
                                          "test_best_val_epoch": pair(sw["points"][lab]["best_mean_std"])}
                                         for lab in sw["order"]]}
        recipes.append(entry)
    return {"seeds": seeds, "recipes": recipes, "baseline_convergence": baseline_convergence(rows, comparisons),
            "machine": machine}


def concurrency_note(rows: list[dict]) -> str:
    """The sentence explaining ‡ (runs timed beside others under ``--jobs``), where a row has it."""
    jobs = sorted({j for r in rows for j in r.get("wall_concurrent", [])})
    if not jobs:
        return ""
    return (f" ‡: some of its runs trained {' or '.join(map(str, jobs))} at a time (`--jobs`), each on its share "
            f"of the cores, so one run took longer than alone while more runs finished per hour; the "
            f"elapsed time below is what the benchmark took.")


def elapsed_note(records: list[dict]) -> str:
    """The wall-clock time of the bench commands that trained in DIR (elapsed.jsonl)."""
    if not records:
        return ""
    total = sum(r["elapsed_s"] for r in records)
    how = ", ".join(sorted({f"--jobs {r['jobs']}" + (f" ({r['threads_per_run']} thread{'s' if r['threads_per_run'] > 1 else ''} each)"
                                                      if r.get("threads_per_run") else "") for r in records}))
    return (f" Elapsed wall-clock time of the {len(records)} `bench accuracy` command(s) that trained here "
            f"({sum(r['trained'] for r in records)} runs, {how}; `elapsed.jsonl`): {total:.0f} s "
            f"({total / 3600:.2f} h).")


def format_results(rows: list[dict], seeds: list[int], machine: dict, teachers: list[dict],
                   comparisons: dict[str, dict] | None = None, elapsed: list[dict] | None = None,
                   notes: str | None = None) -> str:
    from kdvision.benchmarks_lib.accuracy_stats import NO_EFFECT, fmt_convergence
    from kdvision.benchmarks_lib.accuracy_terms import format_investigations

    comparisons = comparisons if comparisons is not None else compare(rows)
    # a swept recipe trained every value: all of them count
    total = sum(p["wall_s"] * len(p["seeds"]) for r in rows
                for p in (r["sweep"]["points"].values() if r.get("sweep") else [r]))
    total += sum(t["summary"]["wall_s"] for t in teachers if t["summary"] and not t.get("same_as"))
    metric = rows[0]["metric"] if rows else "acc"
    parts = [
        "# Accuracy benchmark",
        "",
        f"Test {metric}{unit_label(rows)} as mean ± sample standard deviation (n - 1) over the seeds each recipe finished "
        f"(`seed=<s>` for s in {seeds[0]}..{seeds[-1]}). **Final epoch**: the weights after the last epoch "
        f"(summary.json `test_last`). **Best-val epoch**: the weights of the epoch with the best validation "
        f"{metric} (`test_best`). Wall time: mean over seeds of one run's training and testing (runs resumed "
        f"after an interruption are left out, since they timed only their last part; * marks a recipe whose "
        f"runs were all resumed)." + concurrency_note(rows),
        "",
        format_table(rows),
        "",
        f"Per seed, test {metric} final epoch / best-val epoch{unit_label(rows)}:",
        "",
        format_per_seed(rows, seeds),
        "",
    ]
    if comparisons:
        parts += [f"Paired difference to the baseline (the student alone: method `student`, same student model "
                  f"and data, unless `--baseline` named one): per seed, recipe minus baseline at the same seed, over "
                  f"the seeds both finished; mean and 95% Student-t interval (mean ± t(0.975, n-1)·s/√n). "
                  f"\"{NO_EFFECT}\" where the interval spans 0.", "", format_paired(rows, comparisons), ""]
    converging = baseline_convergence(rows, comparisons)
    if converging:
        parts += [fmt_convergence(c) for c in converging] + [""]
    sweeps = format_sweeps(rows)
    if sweeps:
        parts += [sweeps, ""]
    investigations = format_investigations(rows, comparisons)
    if investigations:
        parts += [investigations, ""]
    if notes:  # the reader's conclusions survive every rewrite of results.md
        parts += [f"#### What the investigation shows (written after the run, `{NOTES}`)", "", notes.strip(), ""]
    by_domain = format_per_domain(rows)
    if by_domain:
        second = next((r["second"] for r in rows if r.get("second")), None)
        parts += [f"Per domain (the data's types, e.g. weather), test {metric}{unit_label(rows)}"
                  f"{' / ' + second if second else ''} of the final epoch, mean ± std over seeds; "
                  f"\"-\": not tested on that type (e.g. a specialist teacher); the last column is the "
                  f"mean over the types of each run:", "", by_domain, ""]
    if teachers:
        parts += ["Shared teachers: trained once for the whole benchmark at their recipe's own fixed seed "
                  "(not the run's seed), so every seed of a distillation recipe learns from the same teacher.", ""]
        for t in teachers:
            s = t["summary"]
            res = f"test {s['metric']} {s['test_last'][s['metric']]:.2f} (final epoch), " \
                  f"{s['test_best'][s['metric']]:.2f} (best-val epoch), {s['wall_s']:.0f} s" if s else "not trained yet"
            same = t.get("same_as")
            where = f" (the same run as `{same[0]}` seed {same[1]})" if same else ""
            parts.append(f"- `{t['name']}` from `{t['recipe']}`, seed {t['seed']}{where}: {res}")
        parts.append("")
    parts += [
        f"Total training time (sum over all runs{', every swept value' if any(r.get('sweep') for r in rows) else ''}"
        f"{' and shared teachers' if teachers else ''}): {total:.0f} s "
        f"({total / 3600:.2f} h)." + elapsed_note(elapsed or []),
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()),
        "",
        "![accuracy per recipe](results.png)",
        "",
    ]
    return "\n".join(parts)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(len(rows))
    width = 0.38
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(rows) + 2), 4.2))
    lowest, highest = [], []
    for offset, key, label, color in ((-width / 2, "last", "final epoch", "#4c72b0"),
                                      (width / 2, "best", "best-val epoch", "#dd8452")):
        means = [r[f"{key}_mean_std"][0] for r in rows]
        stds = [r[f"{key}_mean_std"][1] or 0.0 for r in rows]
        ax.bar(x + offset, means, width, yerr=stds, capsize=4, label=label, color=color, alpha=0.85)
        for i, r in enumerate(rows):
            values = list(r[key].values())
            ax.scatter(np.full(len(values), x[i] + offset), values, s=9, color="black", zorder=3)
            lowest.append(min(values))
            highest.append(max(max(values), means[i] + stds[i]))
    floor = max(0.0, 5 * math.floor((min(lowest) - 3) / 5)) if lowest else 0.0
    ax.set_ylim(floor, min(100.5, max(highest, default=100.0) + 3))
    ax.set_xticks(x, [r["recipe"] for r in rows], rotation=20)
    metric = rows[0]["metric"] if rows else "acc"
    n = max((len(r["seeds"]) for r in rows), default=0)
    ax.set_ylabel(f"test {metric}{unit_label(rows)}")
    ax.set_title(f"mean ± std over {n} seeds (dots: seeds; y axis from {floor:.0f})")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def write_results(out: Path, names: list[str], seeds: list[int], machine: dict, teachers: list[dict],
                  baseline: str | None = None, swept: dict[str, list[str]] | None = None) -> list[dict]:
    """DIR/results.md, DIR/results.json and DIR/results.png over the finished runs."""
    rows = collect(out, names, seeds, swept)
    comparisons = compare(rows, baseline)
    notes = (out / NOTES).read_text(encoding="utf-8") if (out / NOTES).is_file() else None
    text = format_results(rows, seeds, machine, teachers, comparisons, elapsed_records(out), notes)
    atomic_write(out / "results.md", lambda tmp: Path(tmp).write_text(text))
    record = json.dumps(summary_json(rows, comparisons, seeds, machine), indent=2) + "\n"
    atomic_write(out / "results.json", lambda tmp: Path(tmp).write_text(record))
    if rows:
        atomic_write(out / "results.png", lambda tmp: plot(rows, Path(tmp)))
    from kdvision.benchmarks_lib.accuracy_terms import investigated, plot_investigations

    todo = investigated(rows, comparisons)
    if todo:
        atomic_write(out / "investigation.png", lambda tmp: plot_investigations(todo, Path(tmp)))
    elif (out / "investigation.png").is_file():
        (out / "investigation.png").unlink()  # an earlier report's rows all gain now
    return rows


def finished(out: Path) -> tuple[list[str], list[int]]:
    """Recipes (bench.json's order, then any other run folder) and seeds with a finished run in DIR."""
    state = json.loads((out / STATE).read_text()) if (out / STATE).is_file() else {}
    names = [r["name"] for r in state.get("recipes", [])]
    runs = out / RUNS
    found = sorted(p.parent.parent.name for p in runs.glob("*/seed*/summary.json")) if runs.is_dir() else []
    names += [n for n in dict.fromkeys(found) if n not in names and n != "teachers"]
    seeds = set()
    for n in names:
        for p in [*(runs / n).glob("seed*/summary.json"), *(runs / n).glob("sweep/*/seed*/summary.json")]:
            m = re.fullmatch(r"seed(-?\d+)", p.parent.name)
            if m:
                seeds.add(int(m.group(1)))
    return names, sorted(seeds)


def recorded_machine(out: Path) -> dict | None:
    """The machine record of DIR/results.json, if any: what the finished runs were trained on."""
    try:
        info = json.loads((out / "results.json").read_text()).get("machine")
    except (OSError, ValueError, AttributeError):
        return None
    return info if isinstance(info, dict) and info else None


def write_all_results(out: Path, machine: dict) -> list[dict]:
    """results.md and results.png over everything finished in DIR (by this or another invocation)."""
    with locked(out / RUNS / ".bench.lock"):
        names, seeds = finished(out)
        state = json.loads((out / STATE).read_text()) if (out / STATE).is_file() else {}
        if not seeds:
            return []
        return write_results(out, names, seeds, machine, teachers_info(state.get("teachers", [])),
                             state.get("baseline"), state.get("sweeps") or {})
