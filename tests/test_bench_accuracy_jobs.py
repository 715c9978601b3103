"""``kdvision bench accuracy --jobs N``: runs trained N at a time in worker processes, phase by
phase (the sweep's choice before the chosen value's other seeds), marked as timed beside others."""
from __future__ import annotations

import json

import yaml

from kdvision.benchmarks_lib import accuracy_jobs
from tests.conftest import TINY_DIGITS, run_cli, write_yaml


def test_the_cores_are_shared_equally_with_at_least_one_thread_each():
    assert accuracy_jobs.threads_per_job(2, cores=2) == 1
    assert accuracy_jobs.threads_per_job(2, cores=16) == 8
    assert accuracy_jobs.threads_per_job(3, cores=8) == 2
    assert accuracy_jobs.threads_per_job(4, cores=2) == 1


def test_two_jobs_train_every_phase_and_mark_the_runs_timed_beside_others(tmp_path):
    config = write_yaml(tmp_path / "tiny.yaml", {**TINY_DIGITS, "train": {**TINY_DIGITS["train"], "epochs": 1}})
    out = tmp_path / "bench"
    args = ["bench", "accuracy", str(config), "--seeds", "3", "--out", str(out), "--jobs", "2", "--sweep-seeds", "1",
            "--sweep", "train.optimizer.lr=0.01,0.3", "data.train_size=100"]
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    sweep = out / "runs" / "tiny" / "sweep"
    val = {lr: json.loads((sweep / f"train.optimizer.lr={lr}" / "seed0" / "summary.json").read_text())["val_best_acc"]
           for lr in ("0.01", "0.3")}
    chosen, other = sorted(val, key=val.get, reverse=True)
    trained = [sweep / f"train.optimizer.lr={lr}" / "seed0" for lr in val]
    trained += [sweep / f"train.optimizer.lr={chosen}" / f"seed{s}" for s in (1, 2)]
    assert not (sweep / f"train.optimizer.lr={other}" / "seed1").exists()
    threads = accuracy_jobs.threads_per_job(2)
    for run in trained:
        summary = json.loads((run / "summary.json").read_text())
        assert summary["torch_threads"] == threads, run
        assert json.loads(accuracy_jobs.concurrent_marker(run).read_text()) == {"jobs": 2, "threads": threads}
    assert done.stdout.count("[bench] started: ") == 4
    text = (out / "results.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| tiny |"))
    assert row.split("|")[8].strip().endswith("‡") and "(`--jobs`)" in text
    [record] = accuracy_jobs.elapsed_records(out)
    assert record["trained"] == 4 and record["jobs"] == 2 and record["threads_per_run"] == threads
    each = f"{threads} thread{'s' if threads > 1 else ''} each"
    assert f"command(s) that trained here (4 runs, --jobs 2 ({each}); `elapsed.jsonl`)" in text
    assert f"torch_threads {threads} per run, 2 runs at a time" in text.splitlines()[-3]

    again = run_cli(*args)  # finished: nothing trains, nothing is timed again
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("done before") == 4 and len(accuracy_jobs.elapsed_records(out)) == 1


def test_an_error_in_one_job_stops_the_benchmark_with_one_line(tmp_path):
    from kdvision.config import load_config

    config = write_yaml(tmp_path / "tiny.yaml", {**TINY_DIGITS, "train": {**TINY_DIGITS["train"], "epochs": 1}})
    out = tmp_path / "bench"
    foreign = out / "runs" / "tiny" / "seed1"
    foreign.mkdir(parents=True)
    saved = "# resolved\n" + yaml.safe_dump(load_config(config, ["data.train_size=60", "seed=1"]).to_dict())
    (foreign / "config.yaml").write_text(saved)
    bad = run_cli("bench", "accuracy", str(config), "--seeds", "2", "--out", str(out), "--jobs", "2",
                  "data.train_size=100")
    assert bad.returncode == 2, bad.stderr
    assert f"kdvision: error: bench accuracy: {foreign} holds a run of another config (data.train_size: 60 -> 100)" \
        in bad.stderr
    assert "Traceback" not in bad.stderr and (foreign / "config.yaml").read_text() == saved
