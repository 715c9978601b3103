"""``bench accuracy``, investigation of the rows that do not measurably beat their baseline: their
learning curves and the size of each weighted loss term against the cross-entropy over training.

For every recipe whose paired final-epoch interval does not lie above 0 (a gain the seeds
cannot tell from noise, or a loss), results.md gets a table and ``DIR/investigation.png`` a
panel pair, both from the runs' ``metrics.jsonl`` (the trainer logs every term weighted,
``train/<term>``, and unweighted, ``train/raw/<term>``): at five points of the schedule, the mean
over seeds of the validation metric (recipe and baseline), the unweighted CE (recipe and
baseline) and each weighted term as a multiple of the recipe's weighted CE. A term hundreds of
times the CE drowns the labels; one far below it barely acts.
"""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

#: ``train/...`` keys that are not loss terms
NOT_TERMS = {"loss", "images_per_s"}


def needs_investigation(comparison: dict | None) -> bool:
    """True when the recipe has a baseline and its final-epoch paired difference is not a
    measurable gain: "no measurable effect", "worse", or one seed (no interval)."""
    last = comparison.get("last") if comparison else None
    return bool(last) and last.get("verdict") != "better"


def histories(row: dict) -> dict[int, list[dict]]:
    """{seed: the run's metrics.jsonl rows} for the row's runs (``row["runs"]``)."""
    found = {}
    for seed, run in row.get("runs", {}).items():
        path = Path(run) / "metrics.jsonl"
        if path.is_file():
            found[int(seed)] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return found


def reference(history: dict[int, list[dict]]) -> str:
    """The task's main loss the other terms are measured against: CE (classification, segmentation)
    or, where the runs logged none, L1 (restoration)."""
    logged = {k for rows in history.values() for r in rows for k in r}
    return next((n for n in ("ce", "l1") if f"train/{n}" in logged), "ce")


#: where an epoch logged no main loss, the term that stands in for it: two-stage knowledge
#: learning's collation stage (Chen et al., CVPR 2022, Eq. 1) fits the teachers' outputs, not the
#: ground truth, so its terms are measured against that L1 to the teacher
STAND_IN = {"l1": "l1_teacher"}


def reference_curve(history: dict[int, list[dict]], main: str) -> dict[int, float]:
    """{epoch: mean over seeds of the weighted ``main`` loss}, the ``STAND_IN`` term at epochs
    that logged no ``main`` (e.g. a collation stage)."""
    curve = dict(zip(*mean_curve(list(history.values()), lambda r: r.get(f"train/{main}"))))
    if main in STAND_IN:
        stand_in = dict(zip(*mean_curve(list(history.values()), lambda r: r.get(f"train/{STAND_IN[main]}"))))
        curve = {**{e: v for e, v in stand_in.items() if e not in curve}, **curve}
    return curve


def uses_stand_in(history: dict[int, list[dict]], main: str) -> bool:
    """Whether some epoch logged the ``STAND_IN`` term instead of ``main`` (the table then says so)."""
    return main in STAND_IN and any(f"train/{STAND_IN[main]}" in r and f"train/{main}" not in r
                                    for rows in history.values() for r in rows)


def terms(history: dict[int, list[dict]]) -> list[str]:
    """The weighted loss terms the runs logged besides the main loss (``reference``), in first-seen order."""
    names, main = [], reference(history)
    for rows in history.values():
        for r in rows:
            for k in r:
                part = k.split("/")
                if len(part) == 2 and part[0] == "train" and part[1] not in NOT_TERMS and part[1] != main \
                        and part[1] not in names:
                    names.append(part[1])
    return names


def mean_curve(histories: list[list[dict]], value) -> tuple[list[int], list[float]]:
    """Per epoch, the mean over seeds of ``value(row)`` (epochs every seed logged)."""
    by_epoch: dict[int, list[float]] = {}
    for rows in histories:
        for r in rows:
            v = value(r)
            if v is not None:
                by_epoch.setdefault(r["epoch"], []).append(v)
    epochs = [e for e in sorted(by_epoch) if len(by_epoch[e]) == len(histories)]
    return epochs, [statistics.fmean(by_epoch[e]) for e in epochs]


def mean_at(history: dict[int, list[dict]], epoch: int, key: str) -> float | None:
    """Mean over seeds of ``key`` at ``epoch`` (None unless every seed logged it there)."""
    epochs, means = mean_curve(list(history.values()), lambda r: r.get(key))
    return dict(zip(epochs, means)).get(epoch)


def checkpoints(epochs: int) -> list[int]:
    """Five points of the schedule: the first epoch, a quarter, half, three quarters, the last."""
    return sorted({1, *(max(1, math.ceil(epochs * f)) for f in (0.25, 0.5, 0.75)), epochs})


def _fmt(v: float | None) -> str:
    """3 significant digits for small or large values, else 3 decimals; "-" for a missing one."""
    return "-" if v is None else f"{v:.3g}" if abs(v) < 1e-2 or abs(v) >= 1e4 else f"{v:.3f}"


def _fmt_metric(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def format_row_investigation(row: dict, baseline: dict) -> str:
    """One recipe's table: epoch, val metric (recipe / baseline), unweighted CE (recipe / baseline),
    each weighted term / the recipe's weighted CE (mean over seeds)."""
    mine, base = histories(row), histories(baseline)
    metric, main = row["metric"], reference(mine)
    names, label = terms(mine), main.upper()
    stand_in = uses_stand_in(mine, main)
    head = ["epoch", f"val {metric} (recipe / baseline)", f"{label} unweighted (recipe / baseline)"]
    head += [f"{n} / weighted {label}{'*' if stand_in else ''}" for n in names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    denominators = reference_curve(mine, main)
    for e in checkpoints(row["epochs"] or 1):
        ce_w = denominators.get(e)
        cells = [str(e),
                 f"{_fmt_metric(mean_at(mine, e, f'val/{metric}'))} / {_fmt_metric(mean_at(base, e, f'val/{metric}'))}",
                 f"{_fmt(mean_at(mine, e, f'train/raw/{main}'))} / {_fmt(mean_at(base, e, f'train/raw/{main}'))}"]
        for n in names:
            t = mean_at(mine, e, f"train/{n}")
            cells.append("-" if t is None or not ce_w else _fmt(t / ce_w))
        lines.append("| " + " | ".join(cells) + " |")
    if stand_in:
        lines += ["", f"\\* at epochs that logged no {main} (a collation stage): the weighted {STAND_IN[main]}."]
    return "\n".join(lines)


def investigated(rows: list[dict], comparisons: dict[str, dict]) -> list[tuple[dict, dict]]:
    """(row, its baseline's row) for every recipe without a measurable gain that has curves."""
    by_name = {r["recipe"]: r for r in rows}
    return [(r, by_name[c["baseline"]]) for r in rows
            if needs_investigation(c := comparisons.get(r["recipe"])) and c["baseline"] in by_name and histories(r)]


def format_investigations(rows: list[dict], comparisons: dict[str, dict]) -> str:
    """The results.md section for every recipe without a measurable gain ('' when there is none)."""
    parts = []
    for r, base in investigated(rows, comparisons):
        parts += [f"#### `{r['recipe']}` against `{base['recipe']}`", "", format_row_investigation(r, base), ""]
    if not parts:
        return ""
    intro = ("### Rows without a measurable gain: learning curves and loss terms (`investigation.png`)\n\n"
             "Mean over seeds at five points of the schedule, from the runs' metrics.jsonl: the validation "
             "metric and the unweighted training CE (restoration: L1) of the recipe and of its baseline, and "
             "each weighted loss term as a multiple of the recipe's weighted CE (L1) (a term far above 1 drives "
             "the training; one far below it barely acts).\n")
    return intro + "\n" + "\n".join(parts).rstrip()


def plot_investigations(todo: list[tuple[dict, dict]], path: Path) -> None:
    """Per investigated (row, baseline) pair (``investigated``): the validation curve against the
    baseline's, and every weighted term over the weighted CE per epoch (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(todo), 2, figsize=(11, 3.3 * len(todo)), squeeze=False)
    for (row, base), (ax_val, ax_terms) in zip(todo, axes):
        mine, theirs = histories(row), histories(base)
        metric = row["metric"]
        for h, label in ((mine, row["recipe"]), (theirs, f"{base['recipe']} (baseline)")):
            ax_val.plot(*mean_curve(list(h.values()), lambda r: r.get(f"val/{metric}")), label=label)
        ax_val.set(xlabel="epoch", ylabel=f"val {metric} (mean over seeds)", title=f"{row['recipe']}: learning curve")
        main = reference(mine)
        ce = reference_curve(mine, main)
        for n in terms(mine):
            epochs, means = mean_curve(list(mine.values()), lambda r, n=n: r.get(f"train/{n}"))
            pts = [(e, t / ce[e]) for e, t in zip(epochs, means) if ce.get(e)]
            ax_terms.plot([p[0] for p in pts], [p[1] for p in pts], label=n)
        ax_terms.axhline(1.0, color="grey", lw=0.8, ls="--")
        stand_in = f" ({STAND_IN[main]} where none)" if uses_stand_in(mine, main) else ""
        ax_terms.set(xlabel="epoch", ylabel=f"weighted term / weighted {main.upper()}{stand_in}", yscale="log",
                     title=f"{row['recipe']}: loss terms against {main.upper()}")
        for ax in (ax_val, ax_terms):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
