"""The segmentation task: losses, whole-set evaluation, pictures, class-count checks, configs."""
import contextlib
import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from kdvision.config import config_from_dict, load_config, params_from_dict
from kdvision.errors import UserError
from kdvision.metrics import miou
from kdvision.methods import METHODS
from kdvision.models import MODELS
from kdvision.registry import DATASETS
from kdvision.tasks import TASKS
from kdvision.tasks.segmentation import palette


REPO = Path(__file__).resolve().parents[1]


def task_for(**eval_options):
    cfg = config_from_dict({"task": "segmentation", "eval": eval_options,
                            "data": {"name": "digit_scenes", "train_size": 4, "val_size": 6, "test_size": 2},
                            "student": {"name": "pspnet_r18", "base_width": 4}})
    return TASKS.get("segmentation")(cfg)


def test_loss_terms_and_aux_weight():
    g = torch.Generator().manual_seed(0)
    out = {"out": torch.randn(2, 3, 5, 5, generator=g), "aux": torch.randn(2, 3, 5, 5, generator=g)}
    y = torch.randint(0, 3, (2, 5, 5), generator=g)
    y[0, 0] = 255
    losses = task_for(aux_weight=0.25).loss(out, {"target": y})
    ce = torch.nn.functional.cross_entropy
    assert losses["ce"].item() == pytest.approx(ce(out["out"], y, ignore_index=255).item())
    assert losses["ce_aux"].item() == pytest.approx(0.25 * ce(out["aux"], y, ignore_index=255).item())
    assert set(task_for().loss(out["out"], {"target": y})) == {"ce"}
    empty = task_for().loss(out, {"target": torch.full((2, 5, 5), 255)})
    assert all(torch.isfinite(v) and v.item() == 0 for v in empty.values())


class Fixed(nn.Module):
    """A "model" that returns stored logits for the images it is given (by their first pixel)."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return self.logits[x[:, 0, 0, 0].long()]


def test_evaluate_accumulates_over_the_whole_set():
    g = torch.Generator().manual_seed(0)
    n, c = 5, 4
    logits = torch.randn(n, c, 6, 7, generator=g)
    y = torch.randint(0, c, (n, 6, 7), generator=g)
    y[1] = 255
    items = [{"input": torch.full((3, 6, 7), float(i)), "target": y[i]} for i in range(n)]
    loader = DataLoader(items, batch_size=2)
    out = task_for().evaluate(Fixed(logits), loader, torch.device("cpu"), contextlib.nullcontext)
    assert out["miou"] == pytest.approx(miou(logits.argmax(1), y, c))
    keep = y != 255
    assert out["pixel_acc"] == pytest.approx(100 * float((logits.argmax(1)[keep] == y[keep]).float().mean()))


def test_pictures_grid():
    task = task_for()
    model = task.create_model({"name": "pspnet_r18", "base_width": 4}, "student")
    data = task.datasets()["val"]
    batch = {k: torch.stack([data[i][k] for i in range(3)]) for k in ("input", "target")}
    image = task.pictures(model.train(), batch)
    grid = 3 * 64 + 2 * 2
    assert image.dtype == np.uint8 and image.shape[1:] == (grid, 3)
    assert image.shape[0] > grid and (image[grid:] < 128).all(-1).any()  # a legend of the class names below
    assert model.training  # the mode is restored
    # each row is [input | prediction | ground truth] of one image, in batch order
    colours = palette()
    pred = task.predict(model.eval(), batch["input"], batch["target"].shape[-2:]).argmax(1)
    mean, std = np.array(data.mean)[:, None, None], np.array(data.std)[:, None, None]
    for row in range(3):
        top = row * 66
        shown = np.clip((batch["input"][row].numpy() * std + mean) * 255, 0, 255).astype(np.uint8)
        panels = (shown.transpose(1, 2, 0), colours[pred[row].numpy()], colours[batch["target"][row].numpy()])
        for col, expected in enumerate(panels):
            assert np.array_equal(image[top:top + 64, col * 66:col * 66 + 64], expected), (row, col)
    assert not np.array_equal(panels[1], panels[2])  # prediction and ground truth can be told apart


def test_class_count_disagreeing_with_the_data_set():
    task = task_for()
    with pytest.raises(UserError, match="num_classes|classes"):
        task.create_model({"name": "pspnet_r18", "base_width": 4, "num_classes": 19}, "student")
    assert task.create_model({"name": "pspnet_r18", "base_width": 4}, "student").num_classes == 11


CONFIGS = sorted((REPO / "configs").glob("digit_scenes/*.yaml")) + [
    REPO / "configs/cityscapes/apd_pspnet_r101_r18.yaml", REPO / "configs/ade20k/apd_pspnet_r101_r18.yaml"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_configs_validate(path):
    cfg = load_config(path)
    assert cfg.task == "segmentation"
    cls = METHODS.get(cfg.method["name"])
    params_from_dict(cls.Params, cfg.method, "method", str(path))
    accepted = inspect.signature(DATASETS.get(cfg.data["name"])).parameters
    assert set(cfg.data) - {"name", "batch_size", "eval_batch_size", "workers"} <= set(accepted)
    for spec in [cfg.student] + [t.model for t in cfg.all_teachers()]:
        assert set(spec) - {"name"} <= set(inspect.signature(MODELS.get(spec["name"])).parameters)
        if cfg.teacher and cfg.teacher.recipe:
            assert (path.parent / cfg.teacher.recipe).is_file()


def test_apd_trains_through_the_trainer(tmp_path):
    """One short epoch of APD with the real trainer (teacher weights from a saved state dict)."""
    from kdvision.engine.trainer import Trainer

    teacher = MODELS.get("pspnet_r18")(num_classes=11, base_width=4)
    torch.save(teacher.state_dict(), tmp_path / "teacher.pt")
    cfg = config_from_dict({
        "task": "segmentation",
        "data": {"name": "digit_scenes", "train_size": 8, "val_size": 4, "test_size": 4, "batch_size": 4},
        "student": {"name": "pspnet_r18", "base_width": 4},
        "teacher": {"model": {"name": "pspnet_r18", "base_width": 4}, "checkpoint": str(tmp_path / "teacher.pt")},
        "method": {"name": "apd", "proj_dim": 8},
        "train": {"epochs": 1, "tensorboard": False, "optimizer": {"name": "sgd", "lr": 0.01},
                  "schedule": {"name": "poly", "by": "step"}},
    }, "apd_test.yaml")
    summary = Trainer(cfg, tmp_path / "run", quiet=True).fit()
    assert 0 <= summary["test_last"]["miou"] <= 100
    assert list((tmp_path / "run").rglob("*.png"))  # the pictures were written
