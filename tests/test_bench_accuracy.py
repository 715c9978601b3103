"""``kdvision bench accuracy``: aggregation of summary.json files, the shared teacher, and one tiny
benchmark through the real CLI."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from kdvision.benchmarks_lib import accuracy_plan, accuracy_report, accuracy_run
from kdvision.errors import UserError
from tests.conftest import REPO, TINY_DIGITS, run_cli, write_yaml


def fake_summary(acc_last: float, acc_best: float, wall: float, params: int = 1234) -> dict:
    return {"metric": "acc", "epochs": 3, "best_epoch": 2, "val_best_acc": acc_best,
            "test_last": {"acc": acc_last, "loss": 0.5}, "test_best": {"acc": acc_best, "loss": 0.4},
            "student_parameters": params, "wall_s": wall, "device": "cpu"}


def write_run(out: Path, name: str, seed: int, summary: dict) -> None:
    run = out / "runs" / name / f"seed{seed}"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps(summary))


def table_rows(text: str) -> dict[str, list[str]]:
    """The main table's cells by recipe name (the first table in results.md)."""
    block = text.split("\n\n")[2]
    rows = {}
    for line in block.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0]] = cells
    return rows


def test_one_teacher_recipe_spelt_two_ways_is_the_same_run(tmp_path):
    """A teacher recipe written relative in a recipe, and absolute once that recipe is a base
    file elsewhere (through the configs/ symlink, too), is one file: the finished run is reused;
    a run whose teacher is another recipe file is not."""
    import yaml

    from kdvision.config import load_config

    tkl = REPO / "configs" / "embedded_weather" / "tkl.yaml"
    (tmp_path / "elsewhere").mkdir()
    wrapper = write_yaml(tmp_path / "elsewhere" / "tkl_copy.yaml",
                         {"base": str(REPO / "kdvision" / "recipes" / "embedded_weather" / "tkl.yaml")})
    target = tmp_path / "runs" / "tkl" / "seed0"
    target.mkdir(parents=True)
    saved = load_config(wrapper)
    assert Path(saved.teachers[0].recipe).is_absolute()  # the base file's teacher, anchored
    (target / "config.yaml").write_text(f"# resolved from {wrapper}\n" + yaml.safe_dump(saved.to_dict()))
    (target / "summary.json").write_text(json.dumps(fake_summary(17.0, 17.0, 1.0)))
    direct = load_config(tkl)
    assert not Path(direct.teachers[0].recipe).is_absolute()
    assert accuracy_run.train_once(direct, target, False)[1] == "done before"
    moved = yaml.safe_load((target / "config.yaml").read_text())
    moved["teachers"][0]["recipe"] = str(REPO / "configs" / "embedded_weather" / "teacher_rain.yaml")
    (target / "config.yaml").write_text(f"# resolved from {wrapper}\n" + yaml.safe_dump(moved))
    with pytest.raises(UserError, match=r"holds a run of another config \(teachers: .*teacher_rain\.yaml.* -> "):
        accuracy_run.train_once(direct, target, False)


def test_aggregation_mean_sample_std_and_table(tmp_path):
    last = {"a": [90.0, 92.5, 91.0], "b": [80.0, 85.0, 83.0]}
    best = {"a": [91.0, 93.0, 92.5], "b": [81.0, 84.0, 86.0]}
    walls = {"a": [10.0, 12.0, 14.0], "b": [5.0, 6.0, 7.0]}
    for name in last:
        for s in range(3):
            write_run(tmp_path, name, s, fake_summary(last[name][s], best[name][s], walls[name][s], 1_234_567))
    write_run(tmp_path, "c", 0, fake_summary(70.0, 71.0, 3.0))  # only one seed finished
    write_run(tmp_path, "b", 3, fake_summary(85.0, 85.0, 0.5))  # resumed: its wall_s is only the last part
    accuracy_run.resumed_marker(tmp_path / "runs" / "b" / "seed3").touch()
    last["b"].append(85.0)
    best["b"].append(85.0)
    machine = {"cpu": "Test CPU", "cpu_count": 2, "torch": "x.y", "date": "today"}
    rows = accuracy_report.write_results(tmp_path, ["a", "b", "c", "missing"], [0, 1, 2, 3], machine, [])
    assert [r["recipe"] for r in rows] == ["a", "b", "c"]  # a recipe without finished runs has no row

    text = (tmp_path / "results.md").read_text()
    cells = table_rows(text)
    for name in ("a", "b"):
        # independent computation: numpy, sample std (ddof=1)
        want_last = f"{np.mean(last[name]):.2f} ± {np.std(last[name], ddof=1):.2f}"
        want_best = f"{np.mean(best[name]):.2f} ± {np.std(best[name], ddof=1):.2f}"
        assert cells[name][4] == want_last
        assert cells[name][5] == want_best
        assert cells[name][3] == "1,234,567"
        assert float(cells[name][7]) == pytest.approx(np.mean(walls[name]), abs=0.05)  # b: resumed seed left out
    assert cells["a"][8] == "3" and cells["b"][8] == "4"
    assert cells["c"][4] == "70.00 ± n/a" and cells["c"][8] == "1"
    assert "final epoch" in text and "best-val epoch" in text and "test_last" in text and "test_best" in text
    assert "Test CPU" in text and "cpu_count 2" in text
    assert "| c | 70.00 / 71.00 | - | - | - |" in text  # per-seed table
    assert (tmp_path / "results.png").stat().st_size > 5_000


def test_shared_teacher_is_pointed_into_the_benchmark(tmp_path):
    """A recipe's teacher trains once into DIR/runs/teachers/<name>, with the overrides but not the seed."""
    kd = REPO / "configs" / "digits" / "kd.yaml"
    recipes = accuracy_plan.recipe_names([kd, REPO / "configs" / "digits" / "student.yaml"])
    teachers, dirs = accuracy_plan.shared_teachers(recipes, ["data.train_size=50"], tmp_path / "runs")
    assert [t.name for t in teachers] == ["teacher"]
    assert teachers[0].recipe == (REPO / "configs" / "digits" / "teacher.yaml").resolve()
    assert teachers[0].overrides == ["data.train_size=50"]
    data = accuracy_plan.recipe_data(recipes[0], ["data.train_size=50"], 3, dirs)
    assert data["seed"] == 3 and data["data"]["train_size"] == 50
    assert data["teacher"]["checkpoint"] == str(tmp_path / "runs" / "teachers" / "teacher")
    assert data["teacher"]["overrides"] == ["data.train_size=50"]


def test_a_teacher_checkpoint_named_on_the_command_line_is_kept(tmp_path):
    recipes = accuracy_plan.recipe_names([REPO / "configs" / "digits" / "kd.yaml"])
    overrides = [f"teacher.checkpoint={tmp_path / 'mine'}"]
    teachers, dirs = accuracy_plan.shared_teachers(recipes, overrides, tmp_path / "runs", [0])
    assert teachers == [] and dirs == {}
    assert accuracy_plan.recipe_data(recipes[0], overrides, 0, dirs)["teacher"]["checkpoint"] == str(tmp_path / "mine")


def test_a_benchmarked_teacher_recipe_is_the_teacher(tmp_path):
    """teacher.yaml benchmarked at its own seed (0): the kd runs learn from that run, not a second teacher."""
    digits = REPO / "configs" / "digits"
    recipes = accuracy_plan.recipe_names([digits / "teacher.yaml", digits / "kd.yaml"])
    teachers, dirs = accuracy_plan.shared_teachers(recipes, [], tmp_path / "runs", [0, 1])
    assert teachers[0].same_as == ("teacher", 0)
    assert accuracy_plan.recipe_data(recipes[1], [], 1, dirs)["teacher"]["checkpoint"] == \
        str(tmp_path / "runs" / "teacher" / "seed0")
    teachers, dirs = accuracy_plan.shared_teachers(recipes, [], tmp_path / "runs", [1, 2])  # seed 0 not benchmarked
    assert teachers[0].same_as is None
    assert dirs[teachers[0].recipe] == tmp_path / "runs" / "teachers" / "teacher"


def test_same_stems_get_folder_names_and_overrides_are_kept(tmp_path):
    cifar = REPO / "configs" / "cifar100"
    names = [r.name for r in accuracy_plan.recipe_names([cifar / "kd" / "vgg13_vgg8.yaml", cifar / "sp" / "vgg13_vgg8.yaml"])]
    assert names == ["kd_vgg13_vgg8", "sp_vgg13_vgg8"]
    accuracy_plan.save_state(tmp_path, [], ["train.epochs=1"], [0])
    accuracy_plan.check_state(tmp_path, ["train.epochs=1"])
    with pytest.raises(UserError, match="overrides"):
        accuracy_plan.check_state(tmp_path, ["train.epochs=2"])


def test_bench_accuracy_through_the_cli(tmp_path):
    config = write_yaml(tmp_path / "tiny.yaml", {**TINY_DIGITS, "train": {**TINY_DIGITS["train"], "epochs": 1}})
    out = tmp_path / "bench"
    args = ["bench", "accuracy", str(config), "--seeds", "2", "--out", str(out),
            "data.train_size=100", "data.resolution=8"]
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    summaries = [json.loads((out / "runs" / "tiny" / f"seed{s}" / "summary.json").read_text()) for s in (0, 1)]
    configs = [(out / "runs" / "tiny" / f"seed{s}" / "config.yaml").read_text() for s in (0, 1)]
    assert "seed: 0" in configs[0] and "seed: 1" in configs[1] and "train_size: 100" in configs[1]
    text = (out / "results.md").read_text()
    cells = table_rows(text)["tiny"]
    for column, key in ((4, "test_last"), (5, "test_best")):
        values = [s[key]["acc"] for s in summaries]
        assert cells[column] == f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}"
    assert cells[1] == "resnet8" and cells[2] == "student" and cells[8] == "2"
    assert re.search(r"\| tiny \| [\d.]+ / [\d.]+ \| [\d.]+ / [\d.]+ \|", text)
    assert (out / "results.png").is_file()

    record = json.loads((out / "results.json").read_text())
    assert record["machine"]["cpu_count"] >= 1
    record["machine"]["date"] = "2000-01-02 03:04 UTC"  # stands for the time the runs trained
    (out / "results.json").write_text(json.dumps(record))
    again = run_cli(*args)  # finished runs are skipped, not retrained
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("done before") == 2
    assert table_rows((out / "results.md").read_text())["tiny"][4] == cells[4]
    # only re-tabulated: the machine record stays the one of the training, not of this re-run
    assert json.loads((out / "results.json").read_text())["machine"]["date"] == "2000-01-02 03:04 UTC"
    assert "date 2000-01-02 03:04 UTC" in (out / "results.md").read_text()


def test_a_run_another_process_holds_is_waited_for_not_retrained(tmp_path, capsys):
    """Parallel invocations on one DIR: the second waits on the run's lock, then finds it finished."""
    import fcntl
    import threading

    target = tmp_path / "runs" / "kd" / "seed0"
    target.mkdir(parents=True)
    lock = open(target.parent / ".seed0.lock", "a")
    fcntl.flock(lock, fcntl.LOCK_EX)  # "another process" is training kd seed 0
    result = {}
    waiter = threading.Thread(target=lambda: result.update(r=accuracy_run.train_once(None, target, False)))
    waiter.start()
    printed = ""
    for _ in range(300):  # until it says it waits (it imports the trainer first)
        printed += capsys.readouterr().out
        if "waiting: another process is training" in printed:
            break
        waiter.join(timeout=0.1)
    assert "waiting: another process is training" in printed
    assert waiter.is_alive() and target.is_dir()  # still waiting, and it did not wipe the run
    (target / "summary.json").write_text(json.dumps(fake_summary(95.0, 96.0, 1.0)))
    fcntl.flock(lock, fcntl.LOCK_UN)
    lock.close()
    waiter.join(timeout=10)
    assert result["r"][1] == "done before" and result["r"][0]["test_last"]["acc"] == 95.0


def test_results_cover_every_invocation_in_the_folder(tmp_path):
    """One invocation per --first-seed, or recipes added later: results.md tabulates all finished runs."""
    accuracy_plan.save_state(tmp_path, [accuracy_plan.Recipe("student", Path("s.yaml"))], [], [0])
    write_run(tmp_path, "student", 0, fake_summary(90.0, 90.0, 1.0))
    write_run(tmp_path, "student", 2, fake_summary(92.0, 92.0, 1.0))  # from a --first-seed 2 invocation
    write_run(tmp_path, "kd", 1, fake_summary(93.0, 94.0, 1.0))  # a recipe another invocation added
    assert accuracy_report.finished(tmp_path) == (["student", "kd"], [0, 1, 2])
    accuracy_report.write_all_results(tmp_path, {"cpu": "x"})
    cells = table_rows((tmp_path / "results.md").read_text())
    assert cells["student"][4] == f"91.00 ± {np.std([90.0, 92.0], ddof=1):.2f}" and cells["student"][8] == "2"
    assert cells["kd"][4] == "93.00 ± n/a"


def test_a_run_of_another_config_is_not_reused(tmp_path):
    """A recipe edited between two invocations must not pass its old runs off as new ones."""
    import yaml

    from kdvision.config import load_config

    kd = REPO / "configs" / "digits" / "kd.yaml"
    target = tmp_path / "runs" / "kd" / "seed0"
    target.mkdir(parents=True)
    old = load_config(kd, ["data.train_size=400", f"teacher.checkpoint={tmp_path / 'a'}"])
    (target / "config.yaml").write_text("# resolved\n" + yaml.safe_dump(old.to_dict()))
    (target / "summary.json").write_text(json.dumps(fake_summary(98.0, 98.0, 1.0)))
    same = load_config(kd, ["data.train_size=400", f"teacher.checkpoint={tmp_path / 'b'}"])  # where the teacher lies
    assert accuracy_run.train_once(same, target, False)[1] == "done before"
    with pytest.raises(UserError, match=r"data.train_size: 400 -> 100"):
        accuracy_run.train_once(load_config(kd, ["data.train_size=100"]), target, False)
