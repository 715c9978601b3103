"""``bench accuracy``'s statistics: paired per-seed differences to the student alone with their
95% t-interval, the baseline's convergence, and ``--sweep`` choosing on validation, never test."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from kdvision.benchmarks_lib import accuracy_report, accuracy_stats, accuracy_sweep
from tests.conftest import TINY_DIGITS, run_cli, write_yaml

DATA = {"name": "digits", "resolution": 16, "train_size": 100}


def write_run(run: Path, last: float, best: float, val: float, *, method: str = "student", student: str = "resnet8",
              data: dict = DATA, best_epoch: int = 5, epochs: int = 30) -> None:
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({
        "metric": "acc", "epochs": epochs, "best_epoch": best_epoch, "val_best_acc": val,
        "test_last": {"acc": last}, "test_best": {"acc": best}, "student_parameters": 100, "wall_s": 1.0}))
    (run / "config.yaml").write_text(yaml.safe_dump({"task": "classification", "data": data,
                                                     "student": {"name": student}, "method": {"name": method}}))


def paired_rows(text: str) -> dict[str, list[str]]:
    block = next(b for b in text.split("\n\n") if b.startswith("| recipe | baseline |"))
    return {c[0]: c for c in ([x.strip() for x in line.strip("|").split("|")] for line in block.splitlines()[2:])}


def hand_interval(a, b):
    d = np.asarray(a) - np.asarray(b)
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return d.mean(), d.mean() - half, d.mean() + half


def test_paired_difference_matches_a_hand_computation():
    student = {0: 90.0, 1: 91.0, 2: 89.0, 3: 92.0}
    kd = {0: 92.0, 1: 92.8, 2: 91.1, 7: 99.0}  # seed 7 has no partner, seed 3 none either: both left out
    d = accuracy_stats.paired_difference(kd, student)
    mean, low, high = hand_interval([92.0, 92.8, 91.1], [90.0, 91.0, 89.0])
    assert d["seeds"] == [0, 1, 2]
    assert d["mean"] == pytest.approx(mean) and d["low"] == pytest.approx(low) and d["high"] == pytest.approx(high)
    assert d["verdict"] == "better" and low > 0
    # the paired interval is narrower than an unpaired one would be on these correlated seeds
    noisy = accuracy_stats.paired_difference({0: 80.0, 1: 90.0, 2: 85.0}, {0: 79.0, 1: 88.9, 2: 84.1})
    assert noisy["verdict"] == "better" and noisy["low"] > 0
    assert stats.ttest_ind([80.0, 90.0, 85.0], [79.0, 88.9, 84.1]).pvalue > 0.5  # unpaired: nothing visible
    assert accuracy_stats.paired_difference({0: 1.0}, {1: 2.0}) is None
    one = accuracy_stats.paired_difference({0: 91.0}, {0: 90.0})
    assert one["mean"] == 1.0 and one["low"] is None and "no interval" in accuracy_stats.fmt_difference(one)


def test_results_report_the_paired_difference_and_no_measurable_effect(tmp_path):
    student = [90.0, 91.0, 89.0]
    kd = [92.0, 92.8, 91.1]  # clearly better
    at = [91.0, 90.0, 89.5]  # spans 0
    for s in range(3):
        write_run(tmp_path / "runs" / "student" / f"seed{s}", student[s], student[s] + 0.5, 90.0, best_epoch=30)
        write_run(tmp_path / "runs" / "kd" / f"seed{s}", kd[s], kd[s], 91.0, method="kd")
        write_run(tmp_path / "runs" / "at" / f"seed{s}", at[s], at[s], 90.0, method="at")
        # another student model: no baseline among these recipes
        write_run(tmp_path / "runs" / "wide" / f"seed{s}", 95.0, 95.0, 95.0, method="kd", student="resnet8x4")
    accuracy_report.write_results(tmp_path, ["student", "kd", "at", "wide"], [0, 1, 2], {"cpu": "x"}, [])
    text = (tmp_path / "results.md").read_text()
    cells = paired_rows(text)
    assert set(cells) == {"kd", "at"} and cells["kd"][1] == "student" and cells["kd"][2] == "3"
    mean, low, high = hand_interval(kd, student)
    assert cells["kd"][3] == f"{mean:+.2f} [{low:+.2f}, {high:+.2f}]"
    mean, low, high = hand_interval(at, student)
    assert low < 0 < high
    assert cells["at"][3] == f"{mean:+.2f} [{low:+.2f}, {high:+.2f}], no measurable effect"
    assert "best-val epoch [95% CI]" in text and "final epoch [95% CI]" in text
    # every student seed's best-val epoch was its last: the baseline did not converge
    assert "Baseline `student`: best-val epoch of 30" in text and "NOT converged" in text
    record = json.loads((tmp_path / "results.json").read_text())
    by_name = {r["recipe"]: r for r in record["recipes"]}
    assert by_name["at"]["paired_difference"]["final_epoch"]["verdict"] == "no measurable effect"
    assert by_name["kd"]["paired_difference"]["final_epoch"]["low"] == pytest.approx(hand_interval(kd, student)[1])
    assert "paired_difference" not in by_name["wide"] and "paired_difference" not in by_name["student"]
    assert record["baseline_convergence"][0]["converged"] is False

    # --baseline names the reference instead; it converged (best epoch 5 of 30)
    accuracy_report.write_results(tmp_path, ["student", "kd", "at", "wide"], [0, 1, 2], {"cpu": "x"}, [],
                                  baseline="kd")
    text = (tmp_path / "results.md").read_text()
    cells = paired_rows(text)
    assert set(cells) == {"student", "at", "wide"} and cells["wide"][1] == "kd"
    assert "Baseline `kd`" in text and "converged (every best-val epoch" in text


def test_hand_written_notes_survive_every_rewrite_of_the_results(tmp_path):
    for s in range(2):
        write_run(tmp_path / "runs" / "student" / f"seed{s}", 90.0 + s, 90.0, 90.0)
        write_run(tmp_path / "runs" / "kd" / f"seed{s}", 91.0 - 2 * s, 90.0, 90.0, method="kd")
    accuracy_report.write_results(tmp_path, ["student", "kd"], [0, 1], {"cpu": "x"}, [])
    assert "written after the run" not in (tmp_path / "results.md").read_text()
    (tmp_path / "notes.md").write_text("KD's term is 0.1x CE: it barely acts.\n")
    accuracy_report.write_results(tmp_path, ["student", "kd"], [0, 1], {"cpu": "x"}, [])
    text = (tmp_path / "results.md").read_text()
    section = text.split("#### What the investigation shows (written after the run, `notes.md`)\n\n")[1]
    assert section.startswith("KD's term is 0.1x CE: it barely acts.\n")
    notes_at = text.index("What the investigation shows")
    assert text.index("| recipe | baseline |") < notes_at < text.index("Total training time")


def test_the_baseline_must_share_model_and_data():
    rows = [{"recipe": "s16", "method": "student", "student": "resnet8", "data": DATA},
            {"recipe": "s8", "method": "student", "student": "resnet8", "data": {**DATA, "resolution": 8}},
            {"recipe": "kd8", "method": "kd", "student": "resnet8", "data": {**DATA, "resolution": 8}}]
    assert accuracy_stats.choose_baseline(rows) == {"s16": None, "s8": None, "kd8": "s8"}


def test_sweep_selects_on_validation_not_test(tmp_path):
    # value 300: best validation, worse test; value 3000: worse validation, best test
    val = {"300": [95.0, 96.0], "1000": [94.0, 94.0], "3000": [90.0, 91.0]}
    test = {"300": [80.0, 81.0], "1000": [85.0, 85.0], "3000": [99.0, 98.0]}
    labels = [f"method.weights.sp={v}" for v in val]
    for v, label in zip(val, labels):
        for s in range(2):
            write_run(accuracy_sweep.sweep_dir(tmp_path, "sp", label, s), test[v][s], test[v][s] + 0.25, val[v][s],
                      method="sp")
    for s in range(2):
        write_run(tmp_path / "runs" / "student" / f"seed{s}", 79.0 + s, 79.0 + s, 90.0)
    rows = accuracy_report.write_results(tmp_path, ["student", "sp"], [0, 1], {"cpu": "x"}, [],
                                         swept={"sp": labels})
    sp = next(r for r in rows if r["recipe"] == "sp")
    assert sp["sweep"]["chosen"] == "method.weights.sp=300"
    assert sp["last"] == {0: 80.0, 1: 81.0}  # the chosen value's runs are the row
    text = (tmp_path / "results.md").read_text()
    assert "Chosen for `sp`: `method.weights.sp=300`" in text
    assert "every swept value): 8 s" in text  # 3 values x 2 seeds x 1 s, plus the student's 2 runs
    assert f"| `method.weights.sp=3000` | 2 | 90.50 | 90.50 ± {np.std([90.0, 91.0], ddof=1):.2f} | 98.50 ± " in text
    assert "| `method.weights.sp=300` | 2 | 95.50 | 95.50 ± 0.71 | 80.50 ± 0.71 | 80.75 ± 0.71 | **chosen** |" in text
    record = json.loads((tmp_path / "results.json").read_text())
    swept = next(r for r in record["recipes"] if r["recipe"] == "sp")["sweep"]
    assert swept["chosen"] == "method.weights.sp=300" and [v["value"] for v in swept["values"]] == labels

    # a lower-is-better metric picks the smallest mean; only seeds every value finished count
    points = {"a": {"val": {0: 1.0, 1: 9.0}, "last": {0: 0.0}}, "b": {"val": {0: 2.0}, "last": {0: 100.0}}}
    assert accuracy_sweep.select(points) == "b" and accuracy_sweep.select(points, higher_is_better=False) == "a"


def test_sweep_table_shows_the_validation_mean_the_choice_was_made_on(tmp_path):
    # --sweep-seeds 2 of 3: the chosen value ran at seeds 0-2, the other at 0-1 only; the choice
    # column is the mean over seeds 0-1 (what select compared), beside each value's all-seed mean
    val = {"1": [95.0, 96.0, 80.0], "3": [94.0, 96.0]}
    labels = [f"method.weights.sp={v}" for v in val]
    for v, label in zip(val, labels):
        for s, x in enumerate(val[v]):
            write_run(accuracy_sweep.sweep_dir(tmp_path, "sp", label, s), 90.0, 90.0, x, method="sp")
    rows = accuracy_report.write_results(tmp_path, ["sp"], [0, 1, 2], {"cpu": "x"}, [], swept={"sp": labels})
    assert rows[0]["sweep"]["chosen"] == "method.weights.sp=1" and rows[0]["sweep"]["selection_seeds"] == [0, 1]
    text = (tmp_path / "results.md").read_text()
    assert "over the seeds every value finished, here 0, 1;" in text
    assert f"| `method.weights.sp=1` | 3 | 95.50 | {np.mean(val['1']):.2f} ± {np.std(val['1'], ddof=1):.2f} |" in text
    assert "| `method.weights.sp=3` | 2 | 95.00 | 95.00 ± 1.41 |" in text
    record = json.loads((tmp_path / "results.json").read_text())["recipes"][0]["sweep"]
    assert record["selection_seeds"] == [0, 1] and [v["val_selection_seeds"] for v in record["values"]] == [95.5, 95.0]


def test_sweep_parsing_and_points():
    sweeps = accuracy_sweep.parse_sweeps(["method.weights.sp=300,1000", "train.epochs=2"])
    assert sweeps == [(None, "method.weights.sp", ["300", "1000"]), (None, "train.epochs", ["2"])]
    data = {"method": {"name": "sp", "weights": {"sp": 3000.0}}, "train": {"epochs": 30}}
    assert accuracy_sweep.sweep_points(data, sweeps) == [["method.weights.sp=300", "train.epochs=2"],
                                                         ["method.weights.sp=1000", "train.epochs=2"]]
    assert accuracy_sweep.sweep_points({"method": {"name": "student"}}, sweeps[:1]) == []
    # RECIPE:KEY reaches that recipe only, and replaces an unnamed sweep of the same key there
    scoped = accuracy_sweep.parse_sweeps(["method.weights.kd=1,3", "frskd:method.weights.kd=9", "frskd:train.epochs=5"])
    assert scoped[1] == ("frskd", "method.weights.kd", ["9"])
    kd = {"method": {"weights": {"kd": 1.0}}, "train": {"epochs": 30}}
    assert accuracy_sweep.sweep_points(kd, scoped, "kd") == [["method.weights.kd=1"], ["method.weights.kd=3"]]
    assert accuracy_sweep.sweep_points(kd, scoped, "frskd") == [["method.weights.kd=9", "train.epochs=5"]]
    # a folder's sweep may gain values, nothing else
    old = ["a:k=1,3", "j=5", "--sweep-seeds=2"]
    assert accuracy_sweep.widens(old, ["a:k=1,3,10", "j=5,6", "--sweep-seeds=2"])
    for other in (["a:k=1,10", "j=5", "--sweep-seeds=2"], ["a:k=1,3", "j=5"], ["j=5", "a:k=1,3", "--sweep-seeds=2"],
                  ["k=1,3", "j=5", "--sweep-seeds=2"], ["a:k=1,3", "--sweep-seeds=2"]):
        assert not accuracy_sweep.widens(old, other)
    for bad in (["method.weights.sp"], ["method.weights.sp=1,,2"], ["k=1,1"], [":k=1"], ["a:k=1", "a:k=2"]):
        with pytest.raises(Exception, match="--sweep"):
            accuracy_sweep.parse_sweeps(bad)


def test_sweep_through_the_cli(tmp_path):
    config = write_yaml(tmp_path / "tiny.yaml", {**TINY_DIGITS, "train": {**TINY_DIGITS["train"], "epochs": 1}})
    out = tmp_path / "bench"
    bad = run_cli("bench", "accuracy", str(config), "--seeds", "1", "--out", str(out), "--sweep", "method.weights.sp=1,2")
    assert bad.returncode == 2 and "kdvision: error: " in bad.stderr and "method.weights.sp" in bad.stderr
    assert "Traceback" not in bad.stderr and not out.exists()
    done = run_cli("bench", "accuracy", str(config), "--seeds", "2", "--out", str(out),
                   "--sweep", "train.optimizer.lr=0.05,0.2", "data.train_size=100")
    assert done.returncode == 0, done.stderr
    summaries = {}
    for lr in ("0.05", "0.2"):
        for s in (0, 1):
            run = out / "runs" / "tiny" / "sweep" / f"train.optimizer.lr={lr}" / f"seed{s}"
            assert f"lr: {lr}" in (run / "config.yaml").read_text() and f"seed: {s}" in (run / "config.yaml").read_text()
            summaries[(lr, s)] = json.loads((run / "summary.json").read_text())
    means = {lr: np.mean([summaries[(lr, s)]["val_best_acc"] for s in (0, 1)]) for lr in ("0.05", "0.2")}
    chosen = max(means, key=means.get)
    record = json.loads((out / "results.json").read_text())
    assert record["recipes"][0]["sweep"]["chosen"] == f"train.optimizer.lr={chosen}"
    assert f"Chosen for `tiny`: `train.optimizer.lr={chosen}`" in (out / "results.md").read_text()


def test_sweep_seeds_choose_on_the_first_seeds_then_train_the_chosen_value_only(tmp_path):
    config = write_yaml(tmp_path / "tiny.yaml", {**TINY_DIGITS, "train": {**TINY_DIGITS["train"], "epochs": 1}})
    out = tmp_path / "bench"
    args = ["bench", "accuracy", str(config), "--seeds", "2", "--out", str(out), "--sweep-seeds", "1",
            "--sweep", "tiny:train.optimizer.lr=0.01,0.3"]
    bad = run_cli(*args[:-1], "other:train.optimizer.lr=0.01,0.3")
    assert bad.returncode == 2 and "--sweep other:train.optimizer.lr: other is none of the recipes" in bad.stderr
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    sweep = out / "runs" / "tiny" / "sweep"
    val = {lr: json.loads((sweep / f"train.optimizer.lr={lr}" / "seed0" / "summary.json").read_text())["val_best_acc"]
           for lr in ("0.01", "0.3")}
    chosen, other = sorted(val, key=val.get, reverse=True)
    assert (sweep / f"train.optimizer.lr={chosen}" / "seed1" / "summary.json").is_file()
    assert not (sweep / f"train.optimizer.lr={other}" / "seed1").exists()
    row = json.loads((out / "results.json").read_text())["recipes"][0]
    assert row["sweep"]["chosen"] == f"train.optimizer.lr={chosen}" and row["seeds"] == [0, 1]
    again = run_cli(*args[:-2])  # the folder keeps its --sweep and --sweep-seeds
    assert again.returncode == 2 and "was run with --sweep" in again.stderr
    # a sweep may gain a value: it trains at the sweep seeds, the finished runs are kept
    before = (sweep / f"train.optimizer.lr={chosen}" / "seed1" / "summary.json").read_text()
    wider = run_cli(*args[:-1], "tiny:train.optimizer.lr=0.01,0.3,0.1")
    assert wider.returncode == 0, wider.stderr
    assert (sweep / "train.optimizer.lr=0.1" / "seed0" / "summary.json").is_file()
    assert (sweep / f"train.optimizer.lr={chosen}" / "seed1" / "summary.json").read_text() == before
    record = json.loads((out / "results.json").read_text())["recipes"][0]["sweep"]
    assert [v["value"] for v in record["values"]] == [f"train.optimizer.lr={v}" for v in ("0.01", "0.3", "0.1")]


def write_metrics(run: Path, rows: list[dict]) -> None:
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_rows_without_a_measurable_gain_get_curves_and_loss_terms(tmp_path):
    """The investigation section: val metric and unweighted CE of recipe and baseline, and each
    weighted term over the weighted CE (ratio of the seed means), at epochs 1, 1, 2, 3, 4 of 4;
    a measurably better recipe gets none."""
    student, at, kd = [90.0, 91.0, 89.0], [91.0, 90.0, 89.5], [92.0, 92.8, 91.1]
    for s in range(3):
        for name, acc, method in (("student", student, "student"), ("at", at, "at"), ("kd", kd, "kd")):
            run = tmp_path / "runs" / name / f"seed{s}"
            write_run(run, acc[s], acc[s], 90.0, method=method, epochs=4)
            rows = []
            for e in range(1, 5):
                r = {"epoch": e, "train/ce": 0.1 * (s + 1) / e, "train/raw/ce": 1.0 * (s + 1) / e,
                     "train/loss": 9.0, "train/images_per_s": 100.0, "val/acc": 50.0 + 10 * e + s}
                if method != "student":
                    r[f"train/{method}"] = 2.0 * e + s  # weighted term
                    r[f"train/raw/{method}"] = 0.02 * e + 0.01 * s
                    r[f"train/weight/{method}"] = 100.0
                rows.append(r)
            write_metrics(run, rows)
    accuracy_report.write_results(tmp_path, ["student", "at", "kd"], [0, 1, 2], {"cpu": "x"}, [])
    text = (tmp_path / "results.md").read_text()
    assert "#### `at` against `student`" in text and "#### `kd`" not in text  # kd is measurably better
    block = text.split("#### `at` against `student`")[1].split("\n\n")[1]
    head, _, *lines = block.splitlines()
    assert head == "| epoch | val acc (recipe / baseline) | CE unweighted (recipe / baseline) | at / weighted CE |"
    cells = {int(c[0]): c for c in ([x.strip() for x in line.strip("|").split("|")] for line in lines)}
    assert sorted(cells) == [1, 2, 3, 4]  # ceil(4 * 0.25) = 1 is the first epoch already
    for e in (1, 2, 3, 4):
        val = np.mean([50.0 + 10 * e + s for s in range(3)])
        ce_raw = np.mean([1.0 * (s + 1) / e for s in range(3)])
        ratio = np.mean([2.0 * e + s for s in range(3)]) / np.mean([0.1 * (s + 1) / e for s in range(3)])
        assert cells[e][1] == f"{val:.2f} / {val:.2f}"
        assert cells[e][2] == f"{ce_raw:.3f} / {ce_raw:.3f}"
        assert float(cells[e][3]) == pytest.approx(ratio, rel=1e-3)
    assert (tmp_path / "investigation.png").stat().st_size > 5_000

    # once every row gains measurably, the section and the picture go
    for s in range(3):
        summary = tmp_path / "runs" / "at" / f"seed{s}" / "summary.json"
        data = json.loads(summary.read_text())
        data["test_last"]["acc"] = kd[s]
        summary.write_text(json.dumps(data))
    accuracy_report.write_results(tmp_path, ["student", "at", "kd"], [0, 1, 2], {"cpu": "x"}, [])
    assert "Rows without a measurable gain" not in (tmp_path / "results.md").read_text()
    assert not (tmp_path / "investigation.png").exists()


def test_restoration_terms_are_measured_against_l1(tmp_path):
    """Restoration logs no CE: each term is divided by the weighted L1, the task's main loss."""
    from kdvision.benchmarks_lib import accuracy_terms

    rows = [{"epoch": e, "train/l1": 0.2 / e, "train/raw/l1": 0.2 / e, "train/kt": 0.4 / e, "train/raw/kt": 0.4 / e,
             "val/psnr": 15.0 + e} for e in (1, 2, 3, 4)]
    write_metrics(tmp_path, rows)
    row = {"recipe": "ktdn", "metric": "psnr", "epochs": 4, "runs": {0: str(tmp_path)}}
    history = accuracy_terms.histories(row)
    assert accuracy_terms.reference(history) == "l1" and accuracy_terms.terms(history) == ["kt"]
    assert accuracy_terms.reference({0: [{"epoch": 1, "train/ce": 1.0, "train/l1": 2.0}]}) == "ce"
    head, _, *lines = accuracy_terms.format_row_investigation(row, row).splitlines()
    assert head.endswith("| L1 unweighted (recipe / baseline) | kt / weighted L1 |")
    assert lines[1].split("|")[1:-1] == [" 2 ", " 17.00 / 17.00 ", " 0.100 / 0.100 ", " 2.000 "]


def test_a_collation_stage_is_measured_against_the_l1_to_the_teacher(tmp_path):
    """Two-stage learning logs no ground-truth L1 in its first stage: there each term is divided
    by the weighted L1 to the teacher; in the second stage by the weighted L1."""
    from kdvision.benchmarks_lib import accuracy_terms

    first = [{"epoch": e, "train/l1_teacher": 0.5, "train/pfv": 0.1 * e, "val/psnr": 10.0 + e} for e in (1, 2)]
    second = [{"epoch": e, "train/l1": 0.25, "train/raw/l1": 0.25, "train/hcr": 0.05 * e, "val/psnr": 10.0 + e}
              for e in (3, 4)]
    write_metrics(tmp_path, first + second)
    row = {"recipe": "tkl", "metric": "psnr", "epochs": 4, "runs": {0: str(tmp_path)}}
    history = accuracy_terms.histories(row)
    assert accuracy_terms.reference(history) == "l1"
    assert accuracy_terms.reference_curve(history, "l1") == {1: 0.5, 2: 0.5, 3: 0.25, 4: 0.25}
    head, _, *lines, _, note = accuracy_terms.format_row_investigation(row, row).splitlines()
    assert "| pfv / weighted L1* |" in head and note == "\\* at epochs that logged no l1 (a collation stage): the weighted l1_teacher."
    cells = {int(c[1]): [x.strip() for x in c[4:-1]] for c in (line.split("|") for line in lines)}
    names = [h.strip().split(" /")[0] for h in head.split("|")[4:-1]]
    by_name = {e: dict(zip(names, v)) for e, v in cells.items()}
    assert by_name[2]["l1_teacher"] == "1.000" and by_name[2]["pfv"] == "0.400"  # 0.2 / 0.5
    assert by_name[4]["hcr"] == "0.800" and by_name[4]["pfv"] == "-"  # 0.2 / 0.25


def test_late_gain_tells_a_level_curve_from_a_rising_one(tmp_path):
    """The baseline line adds the mean validation metric over the last 20% of the schedule minus
    the 20% before it, paired over seeds, checked against a hand computation."""
    def curves(name, values_by_seed):
        for s, values in values_by_seed.items():
            run = tmp_path / name / "runs" / "student" / f"seed{s}"
            write_run(run, 90.0, 90.0, max(values), best_epoch=10, epochs=10)
            rows = [{"epoch": e + 1, "train/ce": 1.0, "val/acc": v} for e, v in enumerate(values)]
            rows.insert(3, {"epoch": 4, "train/ce": 1.0})  # an epoch without validation is skipped
            (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            write_run(tmp_path / name / "runs" / "kd" / f"seed{s}", 91.0, 91.0, 91.0, method="kd")
        accuracy_report.write_results(tmp_path / name, ["student", "kd"], sorted(values_by_seed), {"cpu": "x"}, [])

    base = [50, 60, 70, 80, 85, 88]
    level = {0: base + [90, 91, 91, 90], 1: base + [89, 90, 90.5, 88], 2: base + [90, 92, 90, 91]}
    rising = {0: base + [90, 91, 93, 94], 1: base + [89, 90, 92, 93], 2: base + [90, 91, 93, 95]}
    for name, seeds in (("level", level), ("rising", rising)):
        curves(name, seeds)
        late = [np.mean(v[8:10]) for v in seeds.values()]
        early = [np.mean(v[6:8]) for v in seeds.values()]
        mean, low, high = hand_interval(late, early)
        record = json.loads((tmp_path / name / "results.json").read_text())
        gain = record["baseline_convergence"][0]["late_gain"]
        assert gain["mean"] == pytest.approx(mean) and gain["low"] == pytest.approx(low)
        assert gain["late_epochs"] == [9, 10] and gain["early_epochs"] == [7, 8]
        text = (tmp_path / name / "results.md").read_text()
        assert f"over epochs 9-10 minus over epochs 7-8, paired over seeds: {mean:+.2f} [{low:+.2f}, {high:+.2f}]" in text
        assert ("(level at the end)" in text) == (name == "level")
        assert ("(still rising)" in text) == (name == "rising")


def test_a_student_alone_benchmarked_by_itself_reports_its_convergence(tmp_path):
    """A schedule pilot trains the student alone, with nothing compared with it: its best-val
    epochs and late gain are still reported (here rising by 2 over the last 20% of 10 epochs)."""
    for s in range(3):
        run = tmp_path / "runs" / "student" / f"seed{s}"
        write_run(run, 90.0, 90.0, 95.0, best_epoch=10, epochs=10)
        rows = [{"epoch": e, "train/ce": 1.0, "val/acc": 80.0 + e + (s if e > 8 else 0)} for e in range(1, 11)]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    accuracy_report.write_results(tmp_path, ["student"], [0, 1, 2], {"cpu": "x"}, [])
    record = json.loads((tmp_path / "results.json").read_text())
    [found] = record["baseline_convergence"]
    assert found["recipe"] == "student" and found["converged"] is False
    late, early = [89.5 + s for s in range(3)], [87.5] * 3
    assert found["late_gain"]["mean"] == pytest.approx(np.mean(np.subtract(late, early)))
    assert "Baseline `student`: best-val epoch of 10" in (tmp_path / "results.md").read_text()
