"""Every shipped recipe (not the base*.yaml presets) validates: known keys and types, registered models and methods, valid
method parameters and stage overrides. (Data folders are not needed to check this.)"""
from pathlib import Path

import pytest

import kdvision.models  # noqa: F401
from kdvision.config import load_config
from kdvision.engine.build import check_teacher_count, method_class, method_params, validate_stages
from kdvision.registry import DATASETS, MODELS

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (REPO / "configs").rglob("*.yaml") if not p.name.startswith(("base", "_")))


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(REPO / "configs")) for p in CONFIGS])
def test_recipe_validates(path):
    cfg = load_config(path)
    cls = method_class(cfg)
    check_teacher_count(cfg, cls)
    method_params(cfg, cls)  # Params and method.weights (old weight keys are refused)
    validate_stages(cfg, cls)
    assert DATASETS.get(cfg.data["name"])
    for spec in [cfg.student] + [t.model for t in cfg.all_teachers()]:
        assert MODELS.get(spec["name"])
    for t in cfg.all_teachers():
        assert t.checkpoint or t.recipe, f"{path}: a teacher needs a checkpoint or a recipe"
        if t.recipe:
            assert (path.parent / t.recipe).is_file(), f"{path}: recipe {t.recipe} missing"


TKL = [p for p in CONFIGS if load_config(p).method.get("name") == "tkl"]


@pytest.mark.parametrize("path", TKL, ids=[str(p.relative_to(REPO / "configs")) for p in TKL])
def test_each_weather_teacher_recipe_trains_on_its_weather_only(path):
    cfg = load_config(path)
    domains = [t.domain for t in cfg.all_teachers()]
    assert sorted(domains) == sorted(cfg.data["domains"])
    for t in cfg.all_teachers():
        teacher_cfg = load_config(path.parent / t.recipe)
        assert teacher_cfg.data["domains"] == [t.domain], f"{t.recipe} trains on {teacher_cfg.data['domains']}"
        assert teacher_cfg.data["name"] == cfg.data["name"] and teacher_cfg.student == t.model
