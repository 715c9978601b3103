"""The comparison-table methods through the real CLI: a memory-bank method, a multi-level feature
method and multi-teacher KD with one teacher-output cache per teacher."""
import json

import torch
from safetensors.torch import save_file

from conftest import TINY_DIGITS, run_cli, write_yaml
from kdvision.models import create


def teacher_file(tmp_path, seed):
    torch.manual_seed(seed)
    path = tmp_path / f"teacher{seed}.safetensors"
    save_file(create("resnet8x4", num_classes=10).state_dict(), str(path))
    return str(path)


def rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_crd_and_reviewkd_train_through_the_cli(tmp_path):
    teacher = {"model": {"name": "resnet8x4"}, "checkpoint": teacher_file(tmp_path, 0)}
    for name, extra in (("crd", {"num_negatives": 50}), ("reviewkd", {})):
        cfg = write_yaml(tmp_path / f"{name}.yaml", {**TINY_DIGITS, "teacher": teacher,
                                                       "method": {"name": name, **extra},
                                                       "train": {**TINY_DIGITS["train"], "epochs": 1}})
        result = run_cli("train", str(cfg), "--out", str(tmp_path / name), "--quiet")
        assert result.returncode == 0, result.stderr
        row = rows(tmp_path / name)[0]
        assert row[f"train/raw/{name}"] > 0 and row[f"train/weight/{name}"] > 0
    state = torch.load(tmp_path / "crd" / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert state["memory.student_bank"].shape == (160, 128)  # one row per training digit


def test_multi_teacher_kd_replays_one_cache_per_teacher(tmp_path):
    teachers = [{"model": {"name": "resnet8x4"}, "checkpoint": teacher_file(tmp_path, s)} for s in (0, 1)]
    cfg = write_yaml(tmp_path / "mt.yaml", {**TINY_DIGITS, "teachers": teachers,
                                            "method": {"name": "multi_teacher_kd", "weighting": "confidence"},
                                            "teacher_cache": {"views": 2},
                                            "train": {**TINY_DIGITS["train"], "epochs": 1}})
    result = run_cli("train", str(cfg), "--out", str(tmp_path / "run"), "--quiet")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "teacher_cache.safetensors").is_file()
    assert (tmp_path / "run" / "teacher_cache.teacher1.safetensors").is_file()
    assert rows(tmp_path / "run")[0]["train/raw/kd"] > 0
