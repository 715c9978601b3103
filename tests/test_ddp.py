"""DDP with torchrun: two CPU processes (gloo) train KD on the digits set, then resume."""
import json
import os
import subprocess
import sys

import pytest
import torch

from kdvision.models import MODELS
from tests.conftest import REPO, TINY_DIGITS, write_yaml


def torchrun(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "kdvision", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def kd_config(tmp_path):
    torch.manual_seed(0)
    torch.save(MODELS.get("resnet8")(num_classes=10).state_dict(), tmp_path / "teacher.pt")
    cfg = write_yaml(tmp_path / "kd.yaml", {
        **TINY_DIGITS, "method": {"name": "kd"},
        "teacher": {"model": {"name": "resnet8"}, "checkpoint": str(tmp_path / "teacher.pt")},
        "train": {**TINY_DIGITS["train"], "epochs": 1, "distributed": {"timeout_s": 120}}})
    return cfg


def test_two_processes_train_in_step_and_only_rank_0_writes(tmp_path):
    cfg = kd_config(tmp_path)
    out = tmp_path / "run"
    done = torchrun("train", str(cfg), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    digests = summary["ddp"]["parameter_digest_per_rank"]
    assert summary["ddp"]["world_size"] == 2 and len(digests) == 2 and digests[0] == digests[1]
    assert sorted(p.name for p in tmp_path.rglob("metrics*.jsonl")) == ["metrics.jsonl"]
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.yaml", "metrics.jsonl",
                                                     "student.safetensors", "summary.json"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1] and "train/kd" in rows[0]


@pytest.mark.slow  # ~15 s more; test_trainer checks exact resume in one process
def test_resume_under_ddp(tmp_path):
    cfg = kd_config(tmp_path)
    out = tmp_path / "run"
    assert torchrun("train", str(cfg), "--out", str(out), cwd=tmp_path).returncode == 0
    resumed = torchrun("train", str(cfg), "--out", str(out), "--resume", "train.epochs=2", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    digests = json.loads((out / "summary.json").read_text())["ddp"]["parameter_digest_per_rank"]
    assert digests[0] == digests[1]
