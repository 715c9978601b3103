"""``kdvision bench data``: the loader's share of a training epoch, DataLoader vs device-resident.

For each set (the packaged digits/student recipe on all 1,077 training digits, and a synthetic CIFAR-100-shaped set written
in the official pickle format into WORK/cifar with the cifar100/students/resnet20 recipe) it
builds two real trainers side by side, ``data.device_resident=false`` (the DataLoader path) and
``true`` (kdvision/data/device_batches.py), and runs rounds in rotating order (the first is a
warm-up) of:

* loader alone: the training loader's batches of one epoch, moved to the device as the
  trainer moves them, no step;
* a full training epoch (the trainer's own epoch loop: no evaluation, no checkpoints).

It reports medians: loader_s, epoch_s, loader_share = loader_s / epoch_s for each path, and
epoch_ratio = device-resident epoch / DataLoader epoch (below 1: faster). On a shared machine
only ratios from the same interleaved rounds mean much; the load average is recorded.
"""
from __future__ import annotations

import pickle
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from kdvision.benchmarks_lib.common import machine, report

NAME = "data"
HELP = "loader share of an epoch and epoch time: DataLoader vs device-resident data (digits, CIFAR-shaped)"
SETS = {"digits": ("digits/student", ["data.train_size=null"]),  # all 1,077 training digits
        "cifar": ("cifar100/students/resnet20", ["data.workers=0"])}
PATHS = ("dataloader", "device_resident")


def add_arguments(p) -> None:
    p.add_argument("--sets", nargs="+", choices=sorted(SETS), default=["digits", "cifar"], help="which sets (default both)")
    p.add_argument("--rounds", type=int, default=5, help="timed interleaved rounds per path (default 5)")
    p.add_argument("--steps", type=int, default=20, help="train.max_steps_per_epoch for the CIFAR-shaped set (default 20)")
    p.add_argument("--cifar-images", type=int, default=2560, help="training images of the CIFAR-shaped set (default 2560)")
    p.add_argument("--work", default="runs/bench_data", help="folder for the CIFAR-shaped files and the runs")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides for every run")


def write_cifar100(root: Path, train_images: int, test_images: int = 128, seed: int = 0) -> Path:
    """Random images in the official cifar-100-python layout (train, test, meta pickles)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", train_images), ("test", test_images)):
        labels = rng.integers(0, 100, n).tolist()
        batch = {b"batch_label": name.encode(), b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"fine_labels": labels, b"coarse_labels": [x // 5 for x in labels],
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [f"c{i}".encode() for i in range(100)]}, f)
    return folder


def trainers_for(config: str, overrides: list[str], work: Path) -> dict:
    from kdvision.config import load_config
    from kdvision.engine.logger import RunLogger
    from kdvision.engine.trainer import Trainer

    out = {}
    for path in PATHS:
        extra = overrides + [f"data.device_resident={'true' if path == 'device_resident' else 'false'}",
                             "train.tensorboard=false"]
        t = Trainer(load_config(config, extra), work / path, quiet=True)
        t.run.create(False)
        t.log = RunLogger(None, None, enabled=False)
        t._build()
        out[path] = t
    return out


def loader_seconds(t, epoch: int) -> float:
    """One epoch of the training loader's batches, moved to the device, no training step."""
    from kdvision.engine.runtime import epoch_seed, seed_everything, to_device

    seed_everything(epoch_seed(t.cfg.seed, epoch))
    steps = t.cfg.train.max_steps_per_epoch or 10 ** 9
    start = time.perf_counter()
    for step, batch in enumerate(t._loader(t.datasets["train"], True, epoch)):
        if step >= steps:
            break
        to_device(batch, t.device, t.cfg.train.channels_last)
    if t.device.type == "cuda":
        torch.cuda.synchronize(t.device)
    return time.perf_counter() - start


def epoch_seconds(t, epoch: int) -> float:
    from kdvision.engine.runtime import epoch_seed, seed_everything

    seed_everything(epoch_seed(t.cfg.seed, epoch))
    start = time.perf_counter()
    t._train_epoch(epoch)
    if t.device.type == "cuda":
        torch.cuda.synchronize(t.device)
    return time.perf_counter() - start


def measure_set(config: str, overrides: list[str], rounds: int, work: Path) -> dict:
    trainers = trainers_for(config, overrides, work)
    times = {p: {"loader_s": [], "epoch_s": []} for p in PATHS}
    for r in range(rounds + 1):
        for path in PATHS[r % 2:] + PATHS[:r % 2]:
            t = trainers[path]
            loader, epoch = loader_seconds(t, r), epoch_seconds(t, r)
            if r:
                times[path]["loader_s"].append(loader)
                times[path]["epoch_s"].append(epoch)
    med = {p: {k: statistics.median(v) for k, v in d.items()} for p, d in times.items()}
    t = trainers["dataloader"]
    result = {p: {"loader_s": round(m["loader_s"], 4), "epoch_s": round(m["epoch_s"], 4),
                  "loader_share": round(m["loader_s"] / m["epoch_s"], 3)} for p, m in med.items()}
    ratios = [d / b for d, b in zip(times["device_resident"]["epoch_s"], times["dataloader"]["epoch_s"])]
    result.update({
        "epoch_ratio": round(med["device_resident"]["epoch_s"] / med["dataloader"]["epoch_s"], 3),
        "epoch_ratio_per_round": [round(x, 3) for x in ratios],
        "loader_speedup": round(med["dataloader"]["loader_s"] / med["device_resident"]["loader_s"], 2),
        "config": config, "overrides": overrides, "rounds": rounds,
        "train_images": len(t.datasets["train"]), "batch_size": int(t.cfg.data.get("batch_size", 64)),
        "steps_per_epoch": len(t._loader(t.datasets["train"], True, 0)) if not t.cfg.train.max_steps_per_epoch
        else min(t.cfg.train.max_steps_per_epoch, len(t._loader(t.datasets["train"], True, 0))),
        "precision": t.cfg.train.precision, "device": str(t.device),
        "seconds": {p: {k: [round(x, 4) for x in v] for k, v in d.items()} for p, d in times.items()},
    })
    return result


def run(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work).resolve()
    results, lines = {}, []
    for name in args.sets:
        config, extra = SETS[name]
        extra = list(extra) + list(args.overrides)
        if name == "cifar":
            shutil.rmtree(work / "cifar_data", ignore_errors=True)
            write_cifar100(work / "cifar_data", args.cifar_images)
            extra += [f"data.root={work / 'cifar_data'}", f"train.max_steps_per_epoch={args.steps}"]
        shutil.rmtree(work / name, ignore_errors=True)
        r = results[name] = measure_set(config, extra, args.rounds, work / name)
        lines.append(f"{name} ({config}, {r['train_images']} images, batch {r['batch_size']}, "
                     f"{r['steps_per_epoch']} steps, {r['precision']}, {r['device']}):")
        for p in PATHS:
            lines.append(f"  {p:16s} loader {r[p]['loader_s']:.3f} s, epoch {r[p]['epoch_s']:.3f} s, "
                         f"loader share {100 * r[p]['loader_share']:.1f}%")
        lines.append(f"  epoch ratio device-resident / DataLoader {r['epoch_ratio']:.3f} "
                     f"(per round {r['epoch_ratio_per_round']}); loader {r['loader_speedup']:.1f}x faster")
    results["machine"] = machine()
    lines.append(f"machine: {results['machine']}")
    report(results, args.json, lines)
    return 0
