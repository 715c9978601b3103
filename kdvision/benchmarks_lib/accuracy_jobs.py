"""``bench accuracy --jobs N``: N runs at a time, each in its own process with an equal share of
the cores (``torch.set_num_threads(cores // N)``).

Why: the small networks of the embedded benchmarks use two cores badly. On the 2-core AMD EPYC
of benchmarks/results/digit_scenes, one PSPNet-R18 (width 8) training step took 44 ms on two
threads and 49 ms on one, so two one-thread runs side by side finish about 1.7x more runs per
hour than the same runs one after another on two threads. The thread count changes the order of
floating-point sums, so a run trained under ``--jobs 2`` is not bit-identical to the same run
trained alone (as on another machine); its summary.json records ``torch_threads``.

Each run trained here leaves ``.<seed>.concurrent`` beside its folder (``{"jobs", "threads"}``):
its wall time was measured beside other runs, which results.md marks. The runs of one phase are
independent (the shared teachers before the runs, the swept values before the chosen value's
remaining seeds); ``bench accuracy`` waits for a phase before it starts the next.
"""
from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path
from typing import Callable

from kdvision.benchmarks_lib.accuracy_run import train_once

#: (label shown in the progress lines, config, run folder)
Job = tuple[str, object, Path]


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, as taskset or a cluster's cgroup sets it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_job(jobs: int, cores: int | None = None) -> int:
    """Each of ``jobs`` concurrent runs gets an equal share of the cores, at least one thread."""
    return max(1, (cores or available_cores()) // jobs)


def concurrent_marker(target: Path) -> Path:
    return target.parent / f".{target.name}.concurrent"


def _start_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _train(item: tuple[str, object, Path, bool]) -> tuple[str, Path, dict, str]:
    label, cfg, target, verbose = item
    print(f"[bench] started: {label} -> {target}", flush=True)
    summary, how = train_once(cfg, target, verbose)
    return label, target, summary, how


def run_jobs(jobs: list[Job], workers: int, verbose: bool, finished: Callable[[str, dict, str], None]) -> None:
    """Train ``jobs`` (independent of each other), ``workers`` at a time; ``finished(label,
    summary, how)`` is called in this process after each one, in the order they finish.

    ``workers == 1`` trains them here one after another on torch's own thread count (what
    ``bench accuracy`` always did). Otherwise each runs in a spawned worker process; the first
    error stops the others (their checkpoints let a rerun resume them) and is raised here.
    """
    if workers <= 1 or len(jobs) <= 1:
        for label, cfg, target in jobs:
            print(f"[bench] started: {label} -> {target}", flush=True)
            summary, how = train_once(cfg, target, verbose)
            if how != "done before":
                concurrent_marker(target).unlink(missing_ok=True)  # timed alone this time
            finished(label, summary, how)
        return
    threads = threads_per_job(workers)
    context = multiprocessing.get_context("spawn")  # no fork of a process that has torch threads
    with context.Pool(min(workers, len(jobs)), initializer=_start_worker, initargs=(threads,)) as pool:
        # chunksize 1: a worker takes the next run only when it is free, so runs start in order
        for label, target, summary, how in pool.imap_unordered(
                _train, [(label, cfg, target, verbose) for label, cfg, target in jobs], chunksize=1):
            if how != "done before":
                concurrent_marker(target).write_text(json.dumps({"jobs": workers, "threads": threads}))
            finished(label, summary, how)
        # leaving the with-block terminates the pool: on an error, the other runs stop here


ELAPSED = "elapsed.jsonl"


def record_elapsed(out: Path, seconds: float, trained: int, jobs: int) -> None:
    """One line per ``bench accuracy`` command that trained something here: its wall-clock time
    from the first run to the last, how many runs it trained, and how many at a time."""
    if trained == 0:
        return
    from datetime import datetime, timezone

    line = {"finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "elapsed_s": round(seconds, 1),
            "trained": trained, "jobs": jobs, "threads_per_run": threads_per_job(jobs) if jobs > 1 else None}
    with open(out / ELAPSED, "a") as f:
        f.write(json.dumps(line) + "\n")


def elapsed_records(out: Path) -> list[dict]:
    path = out / ELAPSED
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
