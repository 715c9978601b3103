"""Packaged recipes: a non-editable install carries them, ``kdvision train NAME`` and ``base: NAME``
find them from any folder, ``kdvision recipes`` lists them; command-line overrides reach recipe
teachers (train and bench alike); a changed ``name`` override replaces its section."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kdvision.benchmarks_lib import accuracy_plan
from kdvision.cli import main
from kdvision.config import load_config, teacher_overrides
from kdvision.engine import build
from kdvision.errors import UserError
from kdvision.recipe_library import RECIPES, resolve_config
from tests.conftest import REPO, run_cli, write_yaml

SHIPPED = sorted(p.relative_to(REPO / "configs").with_suffix("").as_posix() for p in (REPO / "configs").rglob("*.yaml"))
QUICK = ["train.epochs=1", "data.train_size=100", "train.tensorboard=false"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``pip install --no-deps --no-build-isolation --target SITE .`` of a copy of the source tree
    (a copy, so that no build/ folder is left in the checkout)."""
    root = tmp_path_factory.mktemp("install")
    src = root / "src"
    shutil.copytree(REPO / "kdvision", src / "kdvision", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    site = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(src)], check=True, capture_output=True, timeout=300)
    return site


def run_installed(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The installed ``kdvision`` script, with nothing of the checkout on the path."""
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(site / "bin" / "kdvision"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_install_carries_every_recipe(installed):
    found = sorted(p.relative_to(installed / "kdvision" / "recipes").with_suffix("").as_posix()
                   for p in (installed / "kdvision" / "recipes").rglob("*.yaml"))
    assert found == SHIPPED


def test_packaged_recipe_trains_by_name_from_another_folder(installed, tmp_path):
    r = run_installed(installed, "train", "digits/kd", "--out", "runs/x", *QUICK, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert str(installed / "kdvision" / "recipes" / "digits" / "teacher.yaml") in r.stderr + r.stdout  # not the checkout's
    assert (tmp_path / "runs" / "x" / "student.safetensors").is_file()
    # the recipe's relative teacher checkpoint is relative to the working folder, and train.epochs=1 reached it
    teacher = tmp_path / "runs" / "digits" / "teacher"
    assert len((teacher / "metrics.jsonl").read_text().splitlines()) == 1
    assert yaml.safe_load((teacher / "config.yaml").read_text())["data"]["train_size"] == 100


def test_demo_of_an_install_reads_its_packaged_recipes(installed, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(installed)}
    code = ("import json, kdvision.demo as d; "
            "print(json.dumps([str(d.CONFIGS)] + [(d.CONFIGS / f).is_file() for _, f in d.RUNS]))")
    out = json.loads(subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                                    text=True, check=True).stdout)
    assert out[0] == str(installed / "kdvision" / "recipes" / "digits") and all(out[1:])


@pytest.mark.slow
def test_demo_runs_from_an_install(installed, tmp_path):
    r = run_installed(installed, "demo", "--out", "demo", "--scale", "0.05", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "| student+KD |" in r.stdout and (tmp_path / "demo" / "curves.png").is_file()


def test_an_existing_file_wins_over_a_recipe_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_config("digits/kd") == RECIPES / "digits" / "kd.yaml"
    assert resolve_config("digits/kd.yaml") == RECIPES / "digits" / "kd.yaml"
    (tmp_path / "digits").mkdir()
    (tmp_path / "digits" / "kd.yaml").write_text("task: classification\n")
    assert resolve_config("digits/kd.yaml") == Path("digits/kd.yaml")
    with pytest.raises(UserError, match="nor a packaged recipe"):
        resolve_config("../digits/kd")
    # a teacher recipe: beside the config, else by name
    assert build.teacher_recipe_path(tmp_path / "mine.yaml", "digits/teacher", "t") == RECIPES / "digits" / "teacher.yaml"
    assert build.teacher_recipe_path(tmp_path / "mine.yaml", "digits/kd.yaml", "t") == tmp_path / "digits" / "kd.yaml"


def test_an_unknown_name_is_one_line_with_close_names(tmp_path):
    r = run_cli("train", "cifar100/kd/resnet56_resnet2O", "--out", "runs/x", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert r.stderr.startswith("kdvision: error: config file not found: cifar100/kd/resnet56_resnet2O")
    assert "cifar100/kd/resnet56_resnet20" in r.stderr and "kdvision recipes" in r.stderr
    assert not (tmp_path / "runs").exists()


def test_recipes_lists_every_shipped_yaml_with_its_description(capsys):
    r = run_cli("recipes")
    assert r.returncode == 0, r.stderr
    rows = [line.split(None, 1) for line in r.stdout.splitlines()]
    assert [row[0] for row in rows] == SHIPPED
    kd = dict(rows)["cifar100/kd/resnet56_resnet20"]
    assert kd == (REPO / "configs/cifar100/kd/resnet56_resnet20.yaml").read_text().splitlines()[0].lstrip("# ")
    assert all(len(row) == 2 and row[1].strip() for row in rows)
    assert main(["recipes", "digits/"]) == 0
    only = capsys.readouterr().out.splitlines()
    assert only and all(line.startswith("digits/") for line in only)


def test_base_by_name_with_root(tmp_path):
    """A user's YAML bases a packaged recipe by name; its teacher recipe resolves inside the package,
    its relative teacher checkpoint under --root, --out under the working folder."""
    work, project = tmp_path / "work", tmp_path / "project"
    work.mkdir(), project.mkdir()
    write_yaml(work / "mine.yaml", {"base": "digits/kd", "method": {"temperature": 2.0}})
    r = run_cli("train", "mine.yaml", "--root", str(project), "--out", "runs/s", *QUICK, cwd=work)
    assert r.returncode == 0, r.stderr
    saved = yaml.safe_load((work / "runs" / "s" / "config.yaml").read_text())
    assert saved["method"] == {"name": "kd", "temperature": 2.0, "weights": {"ce": 0.1, "kd": 3.0}}
    assert Path(saved["teacher"]["recipe"]).resolve() == (RECIPES / "digits" / "teacher.yaml").resolve()
    teacher = project / "runs" / "digits" / "teacher"
    assert len((teacher / "metrics.jsonl").read_text().splitlines()) == 1
    assert not (work / "runs" / "digits").exists()


def test_train_and_bench_pass_the_same_overrides_to_teachers(tmp_path):
    kd = REPO / "configs" / "digits" / "kd.yaml"
    cli = ["train.epochs=1", "seed=3", "method.temperature=2", "student.name=resnet8", "data.train_size=50",
           "teacher.model.name=resnet8x4"]
    expected = ["train.epochs=1", "data.train_size=50"]
    assert teacher_overrides(cli) == expected
    assert load_config(kd, cli).teacher.overrides == expected
    recipes = accuracy_plan.recipe_names([kd])
    teachers, dirs = accuracy_plan.shared_teachers(recipes, cli, tmp_path / "runs", [0])
    assert teachers[0].overrides == expected
    assert accuracy_plan.recipe_data(recipes[0], cli, 0, dirs)["teacher"]["overrides"] == expected


def test_teacher_overrides_of_the_recipe_come_first(tmp_path):
    write_yaml(tmp_path / "mine.yaml", {"base": "digits/kd", "teacher": {"overrides": ["train.epochs=3"]}})
    assert load_config(tmp_path / "mine.yaml", ["train.epochs=1"]).teacher.overrides == ["train.epochs=3",
                                                                                          "train.epochs=1"]


def test_a_changed_name_override_replaces_the_section():
    kd = RECIPES / "digits" / "kd.yaml"
    assert load_config(kd, ["method.name=fitnet"]).method == {"name": "fitnet"}
    # name first whatever the order, so the section's other overrides stay
    for order in (["method.weights.hint=50", "method.name=fitnet"], ["method.name=fitnet", "method.weights.hint=50"]):
        assert load_config(kd, order).method == {"name": "fitnet", "weights": {"hint": 50}}
    assert load_config(kd, ["method.name=kd"]).method["temperature"] == 4.0  # same name: merged
    assert load_config(RECIPES / "digits" / "frskd.yaml", ["student.name=resnet14"]).student == {"name": "resnet14"}
    assert load_config(kd, ["teacher.name=mine"]).teacher.recipe  # a teacher's name is a label


def test_method_name_override_trains_through_the_cli(tmp_path):
    # digits/frskd's method options (weights, width...) would be unknown keys of 'student'
    r = run_cli("train", "digits/frskd", "--out", "runs/s", "method.name=student", *QUICK, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load((tmp_path / "runs" / "s" / "config.yaml").read_text())["method"] == {"name": "student"}


EMBEDDED = [n for n in SHIPPED if n.split("/")[0] in {"digits", "digit_scenes", "embedded_haze", "embedded_weather"}]


@pytest.mark.parametrize("name", EMBEDDED)
def test_embedded_recipes_pin_fp32_and_their_teachers_too(name):
    """The embedded benchmarks were measured in fp32; ``auto`` would pick bf16 on a CPU with
    native bf16 and change every figure, so each embedded recipe and each teacher recipe it
    trains first pins fp32."""
    cfg = load_config(name)
    assert cfg.train.precision == "fp32", name
    for t in cfg.all_teachers():
        if t.recipe:
            recipe = build.teacher_recipe_path(cfg.source, t.recipe, name)
            assert load_config(str(recipe)).train.precision == "fp32", (name, t.recipe)
