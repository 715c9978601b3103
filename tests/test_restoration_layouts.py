"""The layout registry and the ``pattern`` layout: templates reproduce the built-in layouts,
and every file that cannot be paired, or key that does not fit, is named in one line."""
from __future__ import annotations

import inspect

import numpy as np
import pytest
from PIL import Image

from kdvision.config import call_with_config
from kdvision.data.restoration.paired_dataset import nh_haze, paired, reside
from kdvision.data.restoration.paired_layouts import LAYOUTS
from kdvision.data.weather.builders import weather_mix
from kdvision.errors import UserError


def write(path, value=0, h=20, w=24):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(path)


def described(sets):
    return [(p.input.name, p.target.name, p.name, p.group) for split in ("train", "test")
            for p in sets[split].pairs]


def its_tree(root):
    for i in (1, 2, 3):
        write(root / "clear" / f"{i}.png", 50 * i)
    for name in ("1_1_0.90179.png", "1_2_0.8.png", "2_1_0.7.png", "3_1_0.95.png"):
        write(root / "hazy" / name, 7)


def test_pattern_pairs_reside_as_the_reside_layout_does(tmp_path):
    its_tree(tmp_path)
    by_pattern = paired(0, str(tmp_path), layout="pattern", input="hazy/{id}_*.png", target="clear/{id}.png",
                        crop=16, test_ids=["2"])
    by_layout = reside(0, str(tmp_path), crop=16, test_ids=["2"])
    assert described(by_pattern) == described(by_layout)
    assert described(by_pattern)[0] == ("1_1_0.90179.png", "1.png", "1_1_0.90179", "1")


def test_pattern_pairs_nh_haze_and_names_a_single_input_by_its_id(tmp_path):
    for i in (1, 2, 3):
        write(tmp_path / f"{i:02d}_hazy.png", i)
        write(tmp_path / f"{i:02d}_GT.png", 100 + i)
    by_pattern = paired(0, str(tmp_path), layout="pattern", input="{id}_hazy.png", target="{id}_GT.png",
                        crop=16, test_count=1)
    assert described(by_pattern) == described(nh_haze(0, str(tmp_path), crop=16, test_count=1))
    assert [p.name for p in by_pattern["train"].pairs] == ["01", "02"]


def test_pattern_wildcards_in_the_target_and_folders(tmp_path):
    write(tmp_path / "scene_a" / "rainy" / "a-1.png", 1)
    write(tmp_path / "scene_a" / "clean" / "a.jpg", 2)
    write(tmp_path / "scene_b" / "rainy" / "b-1.png", 3)
    write(tmp_path / "scene_b" / "clean" / "b.jpg", 4)
    write(tmp_path / "scene_b" / "clean" / "bb.jpg", 5)  # fits no input's id: not read
    pairs = LAYOUTS.get("pattern").pairs(tmp_path, {"input": "*/rainy/{id}-?.png", "target": "*/clean/{id}.*"})
    assert [(p.input.relative_to(tmp_path).as_posix(), p.target.relative_to(tmp_path).as_posix()) for p in pairs] == [
        ("scene_a/rainy/a-1.png", "scene_a/clean/a.jpg"), ("scene_b/rainy/b-1.png", "scene_b/clean/b.jpg")]


@pytest.mark.parametrize("problem, needles", [
    ("no_target", ["hazy/3_1_0.95.png", "cannot be paired", "clear/3.png"]),
    ("two_targets", ["1_1_0.90179.png", "clear/1.jpg", "clear/1.png", "both fit"]),
    ("no_id", ["pattern layout: target 'clear/1.png'", "{id}"]),
    ("nothing_fits", ["no image matches the input pattern 'haze/{id}_*.png'"]),
])
def test_pattern_errors_name_the_file_or_key(tmp_path, problem, needles):
    its_tree(tmp_path)
    options = {"input": "hazy/{id}_*.png", "target": "clear/{id}.*"}
    if problem == "no_target":
        (tmp_path / "clear" / "3.png").unlink()
        options["target"] = "clear/{id}.png"
    elif problem == "two_targets":
        write(tmp_path / "clear" / "1.jpg")
    elif problem == "no_id":
        options["target"] = "clear/1.png"
    else:
        options["input"] = "haze/{id}_*.png"
    with pytest.raises(UserError) as e:
        LAYOUTS.get("pattern").pairs(tmp_path, options)
    message = str(e.value)
    assert "\n" not in message and all(n in message for n in needles), message


def test_layout_options_are_config_keys_checked_by_name(tmp_path):
    its_tree(tmp_path)
    with pytest.raises(UserError, match=r"unknown key 'data.input_dir' \(known here.*layout 'pattern': .*input, target"):
        paired(0, str(tmp_path), layout="pattern", input="hazy/{id}_*.png", target="clear/{id}.png",
               input_dir="hazy")
    with pytest.raises(UserError, match="unknown layout 'csv'"):
        paired(0, str(tmp_path), layout="csv")
    # a preset data set takes its layout's options as keys of its own signature
    assert {"input_dir", "target_dir", "crop", "test_root"} <= set(inspect.signature(reside).parameters)
    with pytest.raises(UserError, match=r"c.yaml: unknown key 'data.input'"):
        call_with_config(reside, {"root": str(tmp_path), "input": "x"}, "data", "c.yaml", seed=0)
    with pytest.raises(UserError, match=r"'data.target_dir' must be a string"):
        call_with_config(reside, {"root": str(tmp_path), "target_dir": 3}, "data", "c.yaml", seed=0)


def test_weather_source_with_a_pattern_layout(tmp_path):
    its_tree(tmp_path / "haze")
    write(tmp_path / "rain" / "input" / "x.png", 1)
    write(tmp_path / "rain" / "input" / "y.png", 2)
    write(tmp_path / "rain" / "target" / "x.png", 3)
    write(tmp_path / "rain" / "target" / "y.png", 4)
    sets = weather_mix(0, crop=8, sources=[
        {"layout": "pattern", "root": str(tmp_path / "haze"), "input": "hazy/{id}_*.png",
         "target": "clear/{id}.png", "domain": "haze", "test_count": 1},
        {"layout": "rain13k", "root": str(tmp_path / "rain"), "test_count": 1}])
    assert sets["train"].domains == ["haze", "rain"]
    assert [p.group for p in sets["test"].pairs] == ["3", "y"]
    with pytest.raises(UserError, match=r"unknown key 'data.sources\[0\].inputs'"):
        weather_mix(0, sources=[{"layout": "pattern", "root": str(tmp_path / "haze"), "inputs": "x",
                                 "domain": "haze"}])
