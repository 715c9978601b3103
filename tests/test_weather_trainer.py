"""Two-stage knowledge learning through the real trainer: the stage switch in metrics.jsonl, an
exact resume into stage 2, per-weather PSNR/SSIM in the evaluation, and the teacher/data weather
check that runs before any teacher recipe trains."""
import json
import math
import warnings

import pytest
import torch
from safetensors.torch import save_file

from kdvision.config import load_config
from kdvision.engine.checkpoint import load_checkpoint
from kdvision.engine.trainer import Trainer
from kdvision.errors import UserError
from kdvision.models.restoration.restoration_unet import WeatherUNet
from kdvision.tasks.restoration import per_domain_means
from tests.conftest import write_yaml

DOMAINS = ["haze", "rain", "snow"]
UNET = {"name": "tkl_unet", "width": 2, "bottleneck_blocks": 1, "level_blocks": 1}


@pytest.fixture(autouse=True)
def quiet_untrained_vgg():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "VGG-19 runs with random weights" is expected here
        yield


def tiny_tkl(tmp_path, teacher_domains=DOMAINS, data_domains=DOMAINS, recipe=None) -> dict:
    """A tkl config: 3 x 3 training crops of 32 px, teachers from tiny checkpoints written here."""
    teachers = []
    for d in teacher_domains:
        entry = {"model": dict(UNET), "domain": d}
        if recipe:  # a teacher that would have to be trained first
            entry.update(recipe=str(recipe), checkpoint=str(tmp_path / f"teacher_{d}"))
        else:
            path = tmp_path / f"teacher_{d}.safetensors"
            if not path.is_file():
                torch.manual_seed(len(d))
                save_file(WeatherUNet(2, 1, 1).state_dict(), str(path))
            entry["checkpoint"] = str(path)
        teachers.append(entry)
    return {
        "task": "restoration",
        "seed": 0,
        "data": {"name": "embedded_weather", "domains": list(data_domains), "size": 32, "train_per_domain": 3,
                 "val_per_domain": 1, "test_per_domain": 2, "data_seed": 0, "batch_size": 3,
                 "eval_batch_size": 6},
        "student": dict(UNET),
        "teachers": teachers,
        "method": {"name": "tkl", "allow_untrained_vgg": True},
        "eval": {"l1_weight": 1.0, "laplacian_weight": 0.0, "lab_weight": 0.0, "clamp_in_loss": False},
        "train": {"optimizer": {"name": "adam", "lr": 1.0e-3}, "schedule": {"name": "cosine"},
                  "tensorboard": False, "log_every": 1,
                  "stages": [{"name": "collation", "epochs": 1, "method": {"collation": True}},
                             {"name": "examination", "epochs": 1, "method": {"collation": False}}]},
    }


def trainer(path, out, resume=False):
    return Trainer(load_config(path), out, resume=resume, quiet=True)


def rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def test_stage_switch_is_logged_and_resume_into_stage_2_is_exact(tmp_path, monkeypatch):
    cfg = write_yaml(tmp_path / "tkl.yaml", tiny_tkl(tmp_path))
    full = tmp_path / "full"
    summary = trainer(cfg, full).fit()
    logged = rows(full)
    assert [r["stage"] for r in logged] == ["collation", "examination"]
    assert {"train/l1_teacher", "train/pfe", "train/pfv", "train/scr"} <= set(logged[0])
    assert {"train/l1", "train/hcr"} <= set(logged[1]) and "train/pfe" not in logged[1]

    # per-weather metrics of the test split, named by the data set's weather types
    test = summary["test_last"]
    for d in DOMAINS:
        assert test[f"images_{d}"] == 2 and 0 < test[f"ssim_{d}"] <= 1 and math.isfinite(test[f"psnr_{d}"])
    assert test["psnr_domain_mean"] == pytest.approx(sum(test[f"psnr_{d}"] for d in DOMAINS) / 3)
    assert test["psnr"] == pytest.approx(test["psnr_domain_mean"], abs=1e-4)  # equal counts per weather

    part = tmp_path / "part"
    real_epoch = Trainer._train_epoch

    def killed_in_epoch_2(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt  # the process dies in the first epoch of stage 2
        return real_epoch(self, epoch)

    monkeypatch.setattr(Trainer, "_train_epoch", killed_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        trainer(cfg, part).fit()
    monkeypatch.setattr(Trainer, "_train_epoch", real_epoch)
    assert load_checkpoint(part / "checkpoints" / "last.pt")["epoch"] == 1
    trainer(cfg, part, resume=True).fit()
    assert [r["stage"] for r in rows(part)] == ["collation", "examination"]
    a = load_checkpoint(full / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(part / "checkpoints" / "last.pt")["model"]
    assert set(a) == set(b) and any(k.startswith("student_projectors.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("teacher_domains, data_domains, named", [
    (["haze", "rain", "fog"], ["haze", "rain"], "teachers[2].domain 'fog'"),  # a teacher for absent data
    (["haze", "rain"], ["haze", "rain", "snow"], "'snow' samples but no teacher"),  # data no teacher serves
])
def test_weather_mismatch_is_refused_before_any_teacher_trains(tmp_path, teacher_domains, data_domains, named):
    recipe = write_yaml(tmp_path / "teacher.yaml", {"task": "restoration", "data": {"name": "embedded_weather"},
                                                   "student": dict(UNET), "method": {"name": "student"}})
    cfg = write_yaml(tmp_path / "tkl.yaml", tiny_tkl(tmp_path, teacher_domains, data_domains, recipe))
    with pytest.raises(UserError, match=named.replace("[", r"\[").replace("]", r"\]")) as e:
        trainer(cfg, tmp_path / "run").fit()
    assert "\n" not in str(e.value) and str(cfg) in str(e.value)
    assert not any(tmp_path.glob("teacher_*"))  # no teacher recipe started
    assert not (tmp_path / "run").exists()


def test_per_domain_means_group_images_by_weather():
    psnr = torch.tensor([10.0, 20.0, 30.0, 40.0, 50.0])
    ssim = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    domain = torch.tensor([2, 0, 2, 0, 2])

    class Data:
        domains = ["haze", "rain", "snow"]

    out = per_domain_means(psnr, ssim, domain, Data())
    assert out["psnr_haze"] == pytest.approx(30.0) and out["psnr_snow"] == pytest.approx(30.0)
    assert out["ssim_haze"] == pytest.approx(0.3) and out["ssim_snow"] == pytest.approx(0.3)
    assert out["images_haze"] == 2 and out["images_snow"] == 3 and "psnr_rain" not in out
    assert out["psnr_domain_mean"] == pytest.approx(30.0) and out["ssim_domain_mean"] == pytest.approx(0.3)
    unnamed = per_domain_means(psnr[:2], ssim[:2], torch.tensor([1, 1]))
    assert unnamed["psnr_domain1"] == pytest.approx(15.0)
