"""Loss-term weights and their schedules, through the trainer: weights applied per term, raw values
logged, a 0 weight, old keys refused with their new name, the official FRSKD ramp, resume."""
import json
import math

import pytest

from kdvision.config import load_config
from kdvision.engine.build import method_class, validate_method
from kdvision.engine.checkpoint import load_checkpoint
from kdvision.engine.trainer import Trainer
from kdvision.errors import UserError
from kdvision.methods.loss_weights import parse_weight
from tests.conftest import TINY_DIGITS, write_yaml

# The official FRSKD segmentation schedule (MingiJi/FRSKD segmentation/main.py, commit
# 98b87e5182be9b9aba905369efa23c85987e08ad: its sigmoid_rampup and the per-epoch weight block of
# train_model_seg, run as they are) for our inputs --alpha 1 --beta 50 --anneal T:
# --num_epochs 60 --warmup 40: beta for 0-based epochs 38..59 (mean over the 60 epochs 7.00883)
OFFICIAL_BETA_60 = [0, 0, 0.5485499183465739, 0.8711187319746757, 1.3492150857901242, 2.0381101989183104,
                    3.0027333947653974, 4.314679324968527, 6.046762503520832, 8.264944411079329,
                    11.01791963916169, 14.325239843009504, 18.165478467950564, 22.466448205861077,
                    27.099709422959357, 31.88140758108866, 36.580781447332086, 40.936537653899094,
                    44.679867355425785, 47.5614712250357, 49.37889002469407, 50.0]
# --num_epochs 4 --warmup 2: (alpha, beta) per epoch
OFFICIAL_4 = [(0, 0), (0, 0), (0.2865047968601901, 14.325239843009504), (1.0, 50.0)]


def rows_of(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def fit(path, out, resume=False, overrides=()):
    return Trainer(load_config(path, list(overrides)), out, resume=resume, quiet=True).fit()


def test_sigmoid_ramp_equals_the_official_script_for_60_epochs():
    kd = parse_weight({"schedule": "sigmoid_ramp", "start_epoch": 40, "epochs": 20, "to": 50.0}, "feature")
    assert [kd.at(e) for e in range(38, 60)] == pytest.approx(OFFICIAL_BETA_60, rel=1e-12, abs=0)
    assert sum(kd.at(e) for e in range(60)) / 60 == pytest.approx(7.00883107392969, rel=1e-12)
    assert kd.at(45.99) == kd.at(45)  # by epoch: one value per epoch, as the official script


def test_linear_and_step_schedules():
    lin = parse_weight({"schedule": "linear", "start_epoch": 1, "epochs": 4, "from": 1.0, "to": 3.0, "by": "step"}, "w")
    assert [lin.at(p) for p in (0, 1, 2.5, 5, 9)] == [1.0, 1.0, 1.75, 3.0, 3.0]
    step = parse_weight({"schedule": "step", "milestones": [2, 5], "values": [0.0, 1.0, 0.5]}, "w")
    assert [step.at(p) for p in (0, 1.9, 2, 4.5, 5, 7)] == [0.0, 0.0, 1.0, 1.0, 0.5, 0.5]
    with pytest.raises(UserError, match="'method.weights.kd.values' needs one value more"):
        parse_weight({"schedule": "step", "milestones": [2], "values": [1.0]}, "method.weights.kd")
    with pytest.raises(UserError, match="'method.weights.kd.epochs' is missing"):
        parse_weight({"schedule": "sigmoid_ramp", "to": 1.0}, "method.weights.kd")


def test_weights_are_applied_and_raw_values_logged(tmp_path):
    teacher = write_yaml(tmp_path / "t.yaml", {**TINY_DIGITS, "data": {**TINY_DIGITS["data"], "train_size": 64},
                                               "train": {**TINY_DIGITS["train"], "epochs": 1}})
    kd = write_yaml(tmp_path / "kd.yaml", {**TINY_DIGITS, "method": {"name": "kd", "weights": {"ce": 0.5, "kd": 3.0}},
                                          "data": {**TINY_DIGITS["data"], "train_size": 64},
                                          "teacher": {"model": {"name": "resnet8"}, "recipe": str(teacher)},
                                          "train": {**TINY_DIGITS["train"], "epochs": 1, "log_every": 1}})
    fit(kd, tmp_path / "run")
    (row,) = rows_of(tmp_path / "run")
    assert row["train/weight/ce"] == 0.5 and row["train/weight/kd"] == 3.0
    assert row["train/ce"] == pytest.approx(0.5 * row["train/raw/ce"], rel=1e-6)
    assert row["train/kd"] == pytest.approx(3.0 * row["train/raw/kd"], rel=1e-6)
    assert row["train/loss"] == pytest.approx(row["train/ce"] + row["train/kd"], rel=1e-6)


def test_old_weight_keys_name_their_new_place(tmp_path):
    old = write_yaml(tmp_path / "old.yaml", {**TINY_DIGITS, "method": {"name": "kd", "kd_weight": 0.9},
                                            "teacher": {"model": {"name": "resnet8"}, "checkpoint": "x"}})
    cfg = load_config(old)
    with pytest.raises(UserError, match=r"old.yaml: method.kd_weight is now method.weights.kd$"):
        validate_method(cfg, method_class(cfg))
    staged = write_yaml(tmp_path / "staged.yaml", {**TINY_DIGITS, "method": {"name": "frskd"}, "train": {
        **TINY_DIGITS["train"], "stages": [{"name": "a", "epochs": 1, "method": {"beta": 0.0}}]}})
    cfg = load_config(staged)
    with pytest.raises(UserError,
                       match=r"train.stages\[0\].method.beta is now train.stages\[0\].method.weights.feature"):
        validate_method(cfg, method_class(cfg))
    unknown = write_yaml(tmp_path / "unknown.yaml", {**TINY_DIGITS, "method": {"name": "frskd", "weights": {"kl": 1}}})
    cfg = load_config(unknown)
    with pytest.raises(UserError,
                       match=r"unknown loss term 'method.weights.kl' \(this method's terms: ce, kd, feature"):
        validate_method(cfg, method_class(cfg))


FRSKD_RAMP = {**TINY_DIGITS, "method": {"name": "frskd", "width": 1, "weights": {
    "kd": {"schedule": "sigmoid_ramp", "start_epoch": 2, "epochs": 2, "to": 1.0},
    "feature": {"schedule": "sigmoid_ramp", "start_epoch": 2, "epochs": 2, "to": 50.0}}},
    "data": {**TINY_DIGITS["data"], "train_size": 64}, "train": {**TINY_DIGITS["train"], "epochs": 4}}


def test_frskd_ramp_through_the_trainer_and_resume(tmp_path):
    path = write_yaml(tmp_path / "ramp.yaml", FRSKD_RAMP)
    fit(path, tmp_path / "full")
    rows = rows_of(tmp_path / "full")
    assert [r["train/weight/kd"] for r in rows] == pytest.approx([a for a, _ in OFFICIAL_4], rel=1e-12, abs=0)
    assert [r["train/weight/feature"] for r in rows] == pytest.approx([b for _, b in OFFICIAL_4], rel=1e-12, abs=0)
    # weight 0: the term is not computed (not logged), and it is not in the total
    assert "train/kd" not in rows[1] and "train/raw/feature" not in rows[1]
    assert rows[1]["train/loss"] == pytest.approx(rows[1]["train/ce"] + rows[1]["train/ce_self_teacher"], rel=1e-6)
    assert rows[2]["train/feature"] == pytest.approx(OFFICIAL_4[2][1] * rows[2]["train/raw/feature"], rel=1e-5)

    part = tmp_path / "part"
    interrupted = Trainer(load_config(path), part, quiet=True)
    real_epoch = interrupted._train_epoch

    def killed_in_epoch_3(epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return real_epoch(epoch)

    interrupted._train_epoch = killed_in_epoch_3
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    assert load_checkpoint(part / "checkpoints" / "last.pt")["progress"] == 2.0
    fit(path, part, resume=True)
    resumed = rows_of(part)
    assert [r["epoch"] for r in resumed] == [1, 2, 3, 4]
    for a, b in zip(rows[2:], resumed[2:]):  # same weights and the same values after the resume
        for key in ("train/weight/kd", "train/weight/feature", "train/loss", "train/raw/feature"):
            assert a[key] == pytest.approx(b[key], rel=1e-6), key


def test_a_stage_sets_weights_on_top_of_the_config(tmp_path):
    cfg = {**FRSKD_RAMP, "method": {"name": "frskd", "width": 1, "weights": {"feature": 7.0}},
           "train": {**FRSKD_RAMP["train"], "stages": [
               {"name": "ce_only", "epochs": 1, "method": {"weights": {"kd": 0.0, "feature": 0.0}}},
               {"name": "ramp", "epochs": 1, "method": {"weights": {
                   "kd": {"schedule": "linear", "start_epoch": 1, "epochs": 2, "to": 2.0, "from": 1.0}}}}]}}
    fit(write_yaml(tmp_path / "s.yaml", cfg), tmp_path / "run")
    first, second = rows_of(tmp_path / "run")
    assert (first["train/weight/kd"], first["train/weight/feature"]) == (0.0, 0.0)
    assert (second["train/weight/kd"], second["train/weight/feature"]) == (1.0, 7.0)  # the config's feature again
    assert math.isfinite(second["train/kd"])
