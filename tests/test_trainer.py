"""The trainer: run directory contents, exact resume, frozen teachers, stages."""
import json

import pytest
import torch
from safetensors.torch import load_file

from kdvision.config import load_config
from kdvision.engine.checkpoint import load_checkpoint
from kdvision.engine.trainer import Trainer
from tests.conftest import TINY_DIGITS, write_yaml


def train(config, out, resume=False, overrides=()):
    return Trainer(load_config(config, list(overrides)), out, resume=resume, quiet=True)


def test_run_directory_holds_everything(tiny_config, tmp_path):
    out = tmp_path / "run"
    summary = train(tiny_config, out).fit()
    assert (out / "config.yaml").is_file() and (out / "checkpoints" / "last.pt").is_file()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"train/ce", "train/loss", "lr", "val/acc"} <= set(rows[0])
    weights = load_file(str(out / "student.safetensors"))
    assert weights and all(k.startswith(("conv1.", "bn1.", "layer", "fc.")) for k in weights)
    assert 0 <= summary["test_last"]["acc"] <= 100


def test_resume_ends_with_exactly_the_same_weights(tiny_config, tmp_path):
    full = tmp_path / "full"
    train(tiny_config, full, overrides=["train.epochs=3"]).fit()
    part = tmp_path / "part"
    interrupted = train(tiny_config, part, overrides=["train.epochs=3"])
    real_epoch = interrupted._train_epoch

    def killed_in_epoch_3(epoch):
        if epoch == 2:
            raise KeyboardInterrupt  # the process dies during epoch 3
        return real_epoch(epoch)

    interrupted._train_epoch = killed_in_epoch_3
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    assert load_checkpoint(part / "checkpoints" / "last.pt")["epoch"] == 2
    train(tiny_config, part, resume=True, overrides=["train.epochs=3"]).fit()
    a = load_checkpoint(full / "checkpoints" / "last.pt")
    b = load_checkpoint(part / "checkpoints" / "last.pt")
    assert a["epoch"] == b["epoch"] == 3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert torch.equal(a["optimizer"]["state"][0]["momentum_buffer"], b["optimizer"]["state"][0]["momentum_buffer"])


def test_teacher_is_frozen_out_of_the_optimizer_and_out_of_the_student_file(tiny_config, tmp_path):
    teacher_run = tmp_path / "teacher"
    train(tiny_config, teacher_run, overrides=["student.name=resnet14", "train.epochs=1"]).fit()
    kd = write_yaml(tmp_path / "kd.yaml", {**TINY_DIGITS, "method": {"name": "fitnet"},
                                          "teacher": {"model": {"name": "resnet14"}, "checkpoint": str(teacher_run)}})
    trainer = train(kd, tmp_path / "kd", overrides=["train.epochs=1"])
    trainer.fit()
    teacher = trainer.method.teacher
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    optimised = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert not optimised & {id(p) for p in teacher.parameters()}
    assert optimised & {id(p) for p in trainer.method.regressors.parameters()}  # connectors do train
    before = load_file(str(teacher_run / "student.safetensors"))
    for k, v in teacher.state_dict().items():
        assert torch.equal(v.cpu(), before[k]), f"teacher weight {k} changed"
    exported = load_file(str(tmp_path / "kd" / "student.safetensors"))
    assert set(exported) == set(trainer.method.student.state_dict())  # no teacher, no regressor


def test_teacher_recipe_is_trained_first(tmp_path):
    recipe = write_yaml(tmp_path / "teacher.yaml", {**TINY_DIGITS, "train": {**TINY_DIGITS["train"], "epochs": 1}})
    kd = write_yaml(tmp_path / "kd.yaml", {**TINY_DIGITS, "method": {"name": "kd"},
                                          "teacher": {"model": {"name": "resnet8"}, "recipe": "teacher.yaml",
                                                      "checkpoint": str(tmp_path / "shared_teacher")}})
    train(kd, tmp_path / "kd", overrides=["train.epochs=1"]).fit()
    assert (tmp_path / "shared_teacher" / "student.safetensors").is_file()
    rows = (tmp_path / "kd" / "metrics.jsonl").read_text().splitlines()
    assert "train/kd" in json.loads(rows[0]) and recipe.is_file()


def test_stages_switch_method_parameters(tmp_path):
    cfg = write_yaml(tmp_path / "s.yaml", {**TINY_DIGITS, "train": {**TINY_DIGITS["train"], "stages": [
        {"name": "warm", "epochs": 1, "method": {}}, {"name": "zero-ce", "epochs": 1, "method": {"weights": {"ce": 0.0}}}]},
        "method": {"name": "at", "layers": [["layer1", "layer1"]]},
        "teacher": {"model": {"name": "resnet8"}, "recipe": "t.yaml", "checkpoint": str(tmp_path / "t")}})
    write_yaml(tmp_path / "t.yaml", {**TINY_DIGITS, "train": {**TINY_DIGITS["train"], "epochs": 1}})
    train(cfg, tmp_path / "run").fit()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows] == ["warm", "zero-ce"]
    assert rows[0]["train/ce"] > 0 and rows[0]["train/weight/ce"] == 1.0
    # a 0 weight: the term leaves the total, its unweighted value is still logged
    assert "train/ce" not in rows[1] and rows[1]["train/weight/ce"] == 0.0 and rows[1]["train/raw/ce"] > 0
    assert rows[1]["train/loss"] == pytest.approx(rows[1]["train/at"], rel=1e-6)
