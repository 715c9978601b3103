"""``bench accuracy``, statistics: each recipe's paired per-seed difference to the student-alone
baseline with its 95% Student-t interval, and whether that baseline converged.

Paired: only the seeds both recipes finished count, and the difference is taken seed by seed
(the same seed gives both runs the same data order and initialisation stream), so seed-to-seed
noise shared by both cancels. For n paired differences d_i with mean d and sample standard
deviation s (n - 1), the interval is d ± t_{0.975, n-1} · s / sqrt(n).
"""
from __future__ import annotations

import math
import statistics

from kdvision.errors import UserError

NO_EFFECT = "no measurable effect"
CONVERGED_FRACTION = 0.8  # "plateaued": the best-val epoch at most 80% of the way through the schedule


def paired_difference(values: dict[int, float], baseline: dict[int, float], level: float = 0.95) -> dict | None:
    """Mean of ``values[s] - baseline[s]`` over the shared seeds, its t-interval and the verdict;
    None when the two share no seed. With one shared seed there is no interval."""
    from scipy.stats import t

    seeds = sorted(set(values) & set(baseline))
    if not seeds:
        return None
    diffs = [values[s] - baseline[s] for s in seeds]
    mean = statistics.fmean(diffs)
    result = {"seeds": seeds, "differences": diffs, "mean": mean, "low": None, "high": None, "verdict": None}
    if len(diffs) > 1:
        half = float(t.ppf(0.5 + level / 2, len(diffs) - 1)) * statistics.stdev(diffs) / math.sqrt(len(diffs))
        result.update(low=mean - half, high=mean + half)
        result["verdict"] = NO_EFFECT if mean - half <= 0 <= mean + half else ("better" if mean > 0 else "worse")
    return result


def fmt_difference(d: dict | None, digits: int = 2) -> str:
    """``+1.23 [0.40, 2.06]``, with "no measurable effect" where the interval spans 0."""
    if d is None:
        return "-"
    text = f"{d['mean']:+.{digits}f}"
    if d["low"] is None:
        return text + " (1 seed, no interval)"
    text += f" [{d['low']:+.{digits}f}, {d['high']:+.{digits}f}]"
    return text + f", {NO_EFFECT}" if d["verdict"] == NO_EFFECT else text


def choose_baseline(rows: list[dict], named: str | None = None) -> dict[str, str | None]:
    """{recipe: its baseline recipe}: ``named`` (``--baseline RECIPE``) for every other recipe, else
    the recipe whose method is ``student`` with the same student model and the same data section.
    The baseline itself (and a recipe without one) maps to None."""
    names = [r["recipe"] for r in rows]
    if named is not None:
        if named not in names:
            raise UserError(f"bench accuracy: --baseline {named} is not a benchmarked recipe with finished runs "
                            f"(recipes: {', '.join(names) or 'none'})")
        return {r["recipe"]: (named if r["recipe"] != named else None) for r in rows}
    alone = [r for r in rows if r["method"] == "student"]
    found = {}
    for r in rows:
        same = [b["recipe"] for b in alone if b["recipe"] != r["recipe"]
                and b["student"] == r["student"] and b.get("data") == r.get("data")]
        found[r["recipe"]] = same[0] if same and r["method"] != "student" else None
    return found


def convergence(row: dict) -> dict:
    """The baseline's best-val epoch per seed against its last epoch: converged when every seed's
    best epoch lies at most ``CONVERGED_FRACTION`` of the way through the schedule. Beside it, the
    validation curve's late gain (``late_gain``), which tells a plateau from a curve still rising
    where the best epoch of a noisy plateau happens to fall late."""
    from kdvision.benchmarks_lib.accuracy_terms import histories

    epochs = row["epochs"]
    best = row["best_epochs"]
    at_last = sum(1 for e in best.values() if e == epochs)
    converged = bool(best) and all(e is not None and e <= CONVERGED_FRACTION * epochs for e in best.values())
    return {"recipe": row["recipe"], "epochs": epochs, "best_epochs": best, "at_last": at_last,
            "converged": converged, "metric": row.get("metric"),
            "late_gain": late_gain(histories(row), row.get("metric"), epochs)}


def late_gain(history: dict[int, list[dict]], metric: str | None, epochs: int) -> dict | None:
    """Per seed, the mean validation ``metric`` over the last ``1 - CONVERGED_FRACTION`` of the
    schedule minus its mean over the window of the same length before it, paired over seeds
    (``paired_difference``): an interval spanning 0 says the curve is level at the end. None
    where no seed logged validation in both windows."""
    width = (1 - CONVERGED_FRACTION) * epochs
    late_from, early_from = epochs - width, epochs - 2 * width
    late, early = {}, {}
    for seed, rows in history.items():
        values = [(r["epoch"], r[f"val/{metric}"]) for r in rows
                  if isinstance(r.get("epoch"), int) and isinstance(r.get(f"val/{metric}"), (int, float))]
        last = [v for e, v in values if e > late_from]
        before = [v for e, v in values if early_from < e <= late_from]
        if last and before:
            late[seed], early[seed] = statistics.fmean(last), statistics.fmean(before)
    found = paired_difference(late, early)
    if found is None:
        return None
    return {**found, "late_epochs": [math.floor(late_from) + 1, epochs],
            "early_epochs": [max(math.floor(early_from) + 1, 1), math.floor(late_from)]}


def fmt_convergence(c: dict) -> str:
    seeds = ", ".join(f"seed {s}: {e}" for s, e in sorted(c["best_epochs"].items()))
    verdict = (f"converged (every best-val epoch within the first {CONVERGED_FRACTION:.0%} of the schedule)"
               if c["converged"] else
               f"NOT converged: the best-val epoch lies in the last {1 - CONVERGED_FRACTION:.0%} of the schedule "
               f"in some seed ({c['at_last']} of {len(c['best_epochs'])} at the very last epoch); a longer "
               f"schedule may change the comparison")
    text = f"Baseline `{c['recipe']}`: best-val epoch of {c['epochs']} ({seeds}): {verdict}."
    gain = c.get("late_gain")
    if gain:
        (a, b), (x, y) = gain["late_epochs"], gain["early_epochs"]
        trend = {NO_EFFECT: "level at the end", "better": "still rising", "worse": "falling at the end",
                 None: "one seed, no interval"}[gain["verdict"]]
        text += (f" Its mean validation {c['metric']} over epochs {a}-{b} minus over epochs {x}-{y}, paired over "
                 f"seeds: {fmt_difference(gain)} ({trend}).")
    return text
