"""Every shipped recipe (not the base*.yaml presets) validates: known keys and types, registered models and methods, valid
method parameters and stage overrides. (Data folders are not needed to check this.)"""
from pathlib import Path

import pytest

import kdvision.models  # noqa: F401
from kdvision.config import load_config
from kdvision.engine.build import method_class, validate_method
from kdvision.registry import DATASETS, MODELS

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (REPO / "configs").rglob("*.yaml") if not p.name.startswith(("base", "_")))


def stated_data_facts(cfg) -> dict:
    """The data facts (``Task.dataset_info()``) a recipe states itself, so that no data folder is
    needed: its weather types (``data.domains``, or the keys of ``data.train_lists``)."""
    domains = cfg.data.get("domains") or list(cfg.data.get("train_lists") or {})
    return {"domains": list(domains)} if domains else {}


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(REPO / "configs")) for p in CONFIGS])
def test_recipe_validates(path):
    cfg = load_config(path)
    cls = method_class(cfg)
    validate_method(cfg, cls, stated_data_facts(cfg))  # as training checks first, cls.validate included
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
