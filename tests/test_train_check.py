"""``kdvision train CONFIG --check``: validates everything a run would, then stops, writing nothing."""
import pytest
import torch

from kdvision.config import load_config
from kdvision.engine.check import check_config
from kdvision.errors import UserError
from tests.conftest import TINY_DIGITS, run_cli, write_yaml
from tests.test_cli_errors import one_line_error


def tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_check_prints_one_ok_line_and_writes_nothing(tmp_path):
    from kdvision.models import create

    torch.save(create("resnet8", num_classes=10).state_dict(), tmp_path / "t.pt")
    cfg = write_yaml(tmp_path / "kd.yaml", {**TINY_DIGITS, "method": {"name": "kd"},
                                            "teacher": {"model": {"name": "resnet8"}, "checkpoint": str(tmp_path / "t.pt")}})
    before = tree(tmp_path)
    result = run_cli("train", str(cfg), "--check", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{cfg}: OK: classification, data digits (160 train"), lines
    assert "method kd (losses ce, kd on a batch of 32)" in lines[0] and "loaded from" in lines[0], lines[0]
    assert tree(tmp_path) == before  # no run folder, no cache, no log


def test_check_stops_at_a_teacher_checkpoint_that_does_not_fit(tmp_path):
    from kdvision.models import create

    torch.save(create("resnet8", num_classes=10).state_dict(), tmp_path / "t.pt")
    cfg = write_yaml(tmp_path / "kd.yaml", {**TINY_DIGITS, "method": {"name": "kd"},
                                            "teacher": {"model": {"name": "resnet14"}, "checkpoint": str(tmp_path / "t.pt")}})
    before = tree(tmp_path)
    one_line_error(run_cli("train", str(cfg), "--check"), "t.pt does not fit")
    assert tree(tmp_path) == before


def test_check_reaches_the_data(tmp_path):
    cfg = load_config(write_yaml(tmp_path / "c.yaml", {**TINY_DIGITS, "data": {"name": "cifar10",
                                                                              "root": str(tmp_path / "none")}}))
    with pytest.raises(UserError, match="none"):
        check_config(cfg)


def test_check_builds_the_method_on_a_batch(tmp_path):
    """FitNet's regressor is built from the shapes of the first batch: a bad layer pair is found."""
    from kdvision.models import create

    torch.save(create("resnet8", num_classes=10).state_dict(), tmp_path / "t.pt")
    cfg = load_config(write_yaml(tmp_path / "f.yaml", {
        **TINY_DIGITS, "method": {"name": "fitnet", "layers": [["layer1", "layer9"]]},
        "teacher": {"model": {"name": "resnet8"}, "checkpoint": str(tmp_path / "t.pt")}}))
    with pytest.raises(UserError, match="layer9"):
        check_config(cfg)


def test_check_checks_a_teacher_recipe_instead_of_training_it(tmp_path):
    write_yaml(tmp_path / "teacher.yaml", {**TINY_DIGITS, "train": {"optimizer": {"lr": -1}}})
    cfg = load_config(write_yaml(tmp_path / "kd.yaml", {**TINY_DIGITS, "method": {"name": "kd"},
                                                        "teacher": {"model": {"name": "resnet8"},
                                                                    "recipe": "teacher.yaml"}}))
    with pytest.raises(UserError, match=r"teacher.yaml: 'train.optimizer.lr' must be a finite number > 0"):
        check_config(cfg)
    write_yaml(tmp_path / "teacher.yaml", TINY_DIGITS)
    line = check_config(cfg)
    assert "teacher0 (resnet8) from recipe" in line and "would train first" in line, line
    assert tree(tmp_path) == ["kd.yaml", "teacher.yaml"]


def test_check_refuses_a_cycle_of_teacher_recipes(tmp_path):
    kd = {**TINY_DIGITS, "method": {"name": "kd"}, "teacher": {"model": {"name": "resnet8"}, "recipe": "kd.yaml"}}
    cfg = load_config(write_yaml(tmp_path / "kd.yaml", kd))
    with pytest.raises(UserError, match="makes a cycle of teacher recipes: .*kd.yaml -> .*kd.yaml"):
        check_config(cfg)


def test_train_without_out_says_what_is_missing(tmp_path):
    cfg = write_yaml(tmp_path / "c.yaml", TINY_DIGITS)
    one_line_error(run_cli("train", str(cfg)), "--out DIR is required (only --check runs without one)")


def test_check_refuses_data_of_another_task(tmp_path):
    """Found by the property test: a segmentation data set under the default task (classification)."""
    cfg = load_config(write_yaml(tmp_path / "c.yaml", {**TINY_DIGITS, "data": {
        "name": "digit_scenes", "size": 32, "train_size": 4, "val_size": 2, "test_size": 2, "batch_size": 2}}))
    with pytest.raises(UserError, match=r"task 'classification' learns from one class label per image, but data "
                                        r"'digit_scenes' gives int64 targets of shape \[2, 32, 32\]"):
        check_config(cfg)


def test_training_refuses_a_cycle_of_teacher_recipes(tmp_path):
    """Without the check each round would train the recipe into a folder inside the last one."""
    from kdvision.engine.trainer import Trainer

    kd = {**TINY_DIGITS, "method": {"name": "kd"}, "teacher": {"model": {"name": "resnet8"}, "recipe": "kd.yaml"}}
    cfg = load_config(write_yaml(tmp_path / "kd.yaml", kd))
    with pytest.raises(UserError, match=r"teacher recipes make a cycle: .*kd.yaml -> .*kd.yaml"):
        Trainer(cfg, tmp_path / "run", quiet=True).fit()
    assert not (tmp_path / "run" / "teachers" / "teacher0" / "teachers").exists()
