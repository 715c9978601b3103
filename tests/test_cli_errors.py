"""Every kind of bad input, through the real CLI: one line naming the culprit, exit code 2,
nothing overwritten."""
import numpy as np
import pytest
import torch
from PIL import Image

from tests.cifar_files import write_cifar
from tests.conftest import TINY_DIGITS, run_cli, write_yaml


def one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("kdvision: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr  # progress lines may come first
    assert "Traceback" not in result.stderr, result.stderr
    for f in fragments:
        assert f in errors[0], errors[0]
    return errors[0]


def config(tmp_path, name="c.yaml", **changes):
    data = {**TINY_DIGITS, **changes}
    return str(write_yaml(tmp_path / name, data))


def test_missing_config_file(tmp_path):
    one_line_error(run_cli("train", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "r")),
                   "config file not found", "nope.yaml")


def test_malformed_yaml(tmp_path):
    (tmp_path / "bad.yaml").write_text("data: {name: digits\nstudent: x\n")
    one_line_error(run_cli("train", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "r")), "bad.yaml:", "malformed YAML")


@pytest.mark.parametrize("override, fragments", [
    ("train.epochz=1", ["unknown key 'train.epochz'", "c.yaml"]),
    ("train.epochs=lots", ["'train.epochs' must be an integer", "c.yaml"]),
    ("student.name=resnet9000", ["unknown model 'resnet9000'", "student.name"]),
    ("method.name=telepathy", ["unknown method 'telepathy'", "method.name"]),
    ("method.temperature=2", ["unknown key 'method.temperature'"]),
])
def test_config_mistakes_name_the_key(tmp_path, override, fragments):
    out = tmp_path / "r"
    one_line_error(run_cli("train", config(tmp_path), "--out", str(out), override), *fragments)
    assert not out.exists()


def test_missing_data_directory(tmp_path):
    cfg = config(tmp_path, data={"name": "cifar100", "root": str(tmp_path / "no_cifar"), "batch_size": 4})
    one_line_error(run_cli("train", cfg, "--out", str(tmp_path / "r")), "no_cifar", "cifar-100-python")


def test_label_outside_class_range(tmp_path):
    write_cifar(tmp_path / "data", 10, labels=[0, 3, 12])
    cfg = config(tmp_path, data={"name": "cifar10", "root": str(tmp_path / "data"), "batch_size": 2})
    one_line_error(run_cli("train", cfg, "--out", str(tmp_path / "r")), "data_batch_1", "label 12 at row 2")


def test_corrupt_image_is_named(tmp_path):
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (tmp_path / "imgs" / split / cls).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(tmp_path / "imgs" / split / cls / f"{i}.png")
    (tmp_path / "imgs" / "train" / "b" / "9.png").write_bytes(b"\x89PNG garbage")
    cfg = config(tmp_path, data={"name": "imagefolder", "root": str(tmp_path / "imgs"), "size": 8,
                                 "batch_size": 8, "workers": 1})
    one_line_error(run_cli("train", cfg, "--out", str(tmp_path / "r")), "cannot read image", "9.png")


def test_teacher_checkpoint_that_does_not_fit(tmp_path):
    from kdvision.models import create

    torch.save(create("resnet8", num_classes=10).state_dict(), tmp_path / "t.pt")
    cfg = config(tmp_path, method={"name": "kd"},
                 teacher={"model": {"name": "resnet14"}, "checkpoint": str(tmp_path / "t.pt")})
    one_line_error(run_cli("train", cfg, "--out", str(tmp_path / "r")), "t.pt does not fit", "layer1.1")


def test_tap_naming_no_module(tmp_path):
    from kdvision.models import create

    torch.save(create("resnet8", num_classes=10).state_dict(), tmp_path / "t.pt")
    cfg = config(tmp_path, method={"name": "at", "layers": [["layer9", "layer1"]]},
                 teacher={"model": {"name": "resnet8"}, "checkpoint": str(tmp_path / "t.pt")})
    one_line_error(run_cli("train", cfg, "--out", str(tmp_path / "r")), "tap 'layer9' names no module of the student")


def test_existing_run_directory_is_never_overwritten(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    one_line_error(run_cli("train", config(tmp_path), "--out", str(out)), "already exists", "--resume")
    assert (out / "precious.txt").read_text() == "keep me"


def test_resume_without_checkpoint(tmp_path):
    (tmp_path / "r").mkdir()
    one_line_error(run_cli("train", config(tmp_path), "--out", str(tmp_path / "r"), "--resume"), "no checkpoint")


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg = config(tmp_path)
    out = tmp_path / "r"
    # the learning rate explodes in epoch 2: epoch 1's checkpoint is the last good one
    line = one_line_error(run_cli("train", cfg, "--out", str(out), "train.schedule.name=exponential",
                                  "train.schedule.gamma=1e30"), "loss term 'ce' became", "at step")
    assert "nan" in line or "inf" in line
    assert "last good checkpoint" in line and "after epoch 1" in line and "--resume" in line
    import torch

    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1


def test_eval_prints_metrics_as_json(tmp_path):
    cfg = config(tmp_path)
    out = tmp_path / "r"
    assert run_cli("train", cfg, "--out", str(out), "train.epochs=1", "--quiet").returncode == 0
    import json

    result = run_cli("eval", cfg, "--checkpoint", str(out), "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    summary = json.loads((out / "summary.json").read_text())
    assert abs(metrics["acc"] - summary["test_best"]["acc"]) < 1e-9  # student.safetensors = best-val weights


def test_methods_lists_one_line_each():
    result = run_cli("methods")
    assert result.returncode == 0
    names = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("method")}
    assert {"student", "kd", "fitnet", "at"} <= names
    assert any(line.split()[:2] == ["model", "resnet56"] for line in result.stdout.splitlines())
