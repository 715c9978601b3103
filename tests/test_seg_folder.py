"""Segmentation on the user's own classes: the ``seg_folder`` layout, through the CLI and the builder."""
import json
import shutil

import numpy as np
import onnx
import pytest
from PIL import Image
from safetensors import safe_open

from kdvision.config import call_with_config
from kdvision.data.segmentation.seg_folder import build_seg_folder
from kdvision.errors import UserError
from tests.conftest import run_cli, write_yaml
from tests.seg_folder_files import CLASSES, COLOURS, H, W, seg_config, write_seg_folder, write_split
from tests.test_cli_errors import one_line_error


def test_own_classes_train_and_evaluate_through_the_cli(tmp_path):
    write_seg_folder(tmp_path / "data")
    cfg = write_yaml(tmp_path / "seg.yaml", seg_config(tmp_path / "data"))
    done = run_cli("train", str(cfg), "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(f"val/iou/{name}" in row for row in rows for name in CLASSES)

    done = run_cli("eval", str(cfg), "--checkpoint", str(tmp_path / "run"), "--split", "val", "--json")
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)
    per_class = {k[4:]: v for k, v in metrics.items() if k.startswith("iou/")}
    assert set(per_class) <= set(CLASSES) and "background" in per_class  # every val image has background
    assert metrics["miou"] == pytest.approx(np.mean(list(per_class.values())))

    with safe_open(str(tmp_path / "run" / "student.safetensors"), "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["class_names"]) == list(CLASSES) and meta["task"] == "segmentation"
    assert json.loads(meta["input_size"]) == [3, H, W] and len(json.loads(meta["mean"])) == 3
    picture = np.asarray(Image.open(next((tmp_path / "run" / "pictures").glob("*.png"))))
    assert picture.shape[0] >= H + 18 and (picture[H:] < 128).all(-1).any()  # the legend of class names

    shutil.rmtree(tmp_path / "data")  # a deployment machine without the data: the names come from the run
    done = run_cli("export", str(tmp_path / "run"), "--format", "onnx", "--out", str(tmp_path / "s.onnx"),
                   "--input-size", "3,32,32")
    assert done.returncode == 0, done.stderr
    exported = {p.key: p.value for p in onnx.load(str(tmp_path / "s.onnx")).metadata_props}
    assert json.loads(exported["class_names"]) == list(CLASSES) and exported["mean"] == meta["mean"]
    assert json.loads(exported["input_size"]) == [3, 32, 32]


def test_index_masks_map_ignore_and_keep_class_labels(tmp_path):
    maps = write_seg_folder(tmp_path, class_file=False)
    ds = build_seg_folder(root=str(tmp_path), num_classes=3, crop_size=16)
    assert len(ds["train"]) == 4 and len(ds["val"]) == 2 and ds["test"] is ds["val"]
    assert not hasattr(ds["val"], "class_names")
    item = ds["val"][1]
    assert item["input"].shape == (3, H, W)
    assert np.array_equal(item["target"].numpy(), maps["val"][1])  # 0, 1, 2 as written; 255 ignored
    assert ds["train"][0]["target"].shape == (16, 16)


def test_list_files_config_class_names_and_another_ignore_value(tmp_path):
    maps = write_split(tmp_path, (".png", ".jpg", ".tiff"))
    for k, labels in enumerate(maps):  # ignore written as 7 instead of 255
        relabelled = np.where(labels == 255, 7, labels).astype(np.uint8)
        Image.fromarray(relabelled, mode="L").save(tmp_path / "masks" / f"s{k}.png")
    (tmp_path / "train.txt").write_text("s0\ns1.jpg\n\n")
    (tmp_path / "val.txt").write_text("s2\n")
    (tmp_path / "classes.txt").write_text("a\nb\nc\n")
    ds = build_seg_folder(root=str(tmp_path), ignore_index=7, classes=["sky", "car", "road"], crop_size=16)
    assert [p[0].name for p in ds["train"].pairs] == ["s0.png", "s1.jpg"]
    assert ds["val"].class_names == ("sky", "car", "road")  # the config wins over classes.txt
    assert np.array_equal(ds["val"][0]["target"].numpy(), maps[2])  # 7 -> 255
    (tmp_path / "val.txt").write_text("s2\ns9\n")
    with pytest.raises(UserError, match=r"val.txt:2 names 's9'"):
        build_seg_folder(root=str(tmp_path), ignore_index=7, num_classes=3)
    with pytest.raises(UserError, match="ignore_index 2 is a class label"):
        build_seg_folder(root=str(tmp_path), ignore_index=2, num_classes=3)


def test_palette_masks_map_colours_to_classes(tmp_path):
    maps = write_seg_folder(tmp_path, palette=True)
    palette = [list(c) for c in COLOURS]
    ds = build_seg_folder(root=str(tmp_path), palette=palette, unknown_colour="ignore", crop_size=16)
    assert ds["val"].num_classes == 3  # from the palette (and classes.txt agrees)
    assert np.array_equal(ds["val"][0]["target"].numpy(), maps["val"][0])  # white is not in the palette: ignored
    strict = build_seg_folder(root=str(tmp_path), palette=palette, crop_size=16)
    with pytest.raises(UserError, match=r"mask .*s0.png has colour \(255, 255, 255\) that is not in data.palette"):
        strict["val"][0]


def test_palette_variant_trains_through_the_cli(tmp_path):
    write_seg_folder(tmp_path / "data", palette=True, class_file=False)
    palette = [list(c) for c in COLOURS]
    data = {"palette": palette, "classes": list(CLASSES), "unknown_colour": "ignore"}
    cfg = write_yaml(tmp_path / "seg.yaml", seg_config(tmp_path / "data", **data))
    done = run_cli("train", str(cfg), "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert "iou/background" in summary["test_last"]
    cfg = write_yaml(tmp_path / "strict.yaml", seg_config(tmp_path / "data", palette=palette))
    one_line_error(run_cli("train", str(cfg), "--out", str(tmp_path / "run2")), "masks/s", "(255, 255, 255)")


def test_missing_mask_is_one_line_naming_the_file(tmp_path):
    write_seg_folder(tmp_path / "data")
    (tmp_path / "data" / "train" / "masks" / "s2.png").unlink()
    cfg = write_yaml(tmp_path / "seg.yaml", seg_config(tmp_path / "data"))
    one_line_error(run_cli("train", str(cfg), "--out", str(tmp_path / "run")), "s2.bmp has no mask",
                   str(tmp_path / "data" / "train" / "masks" / "s2.png"))


@pytest.mark.parametrize("options, fragment", [
    ({"num_classes": 4}, "data.num_classes 4, the class names 3"),
    ({"palette": [[0, 0, 0], [1, 2]]}, "data.palette[1]"),
    ({"palette": [[0, 0, 0], [0, 0, 0], [1, 1, 1]]}, "data.palette[1] [0, 0, 0] is the same colour"),
    ({"classes": ["a", "a", "b"]}, "'a' more than once"),
    ({"unknown_colour": "skip"}, "'data.unknown_colour' must be one of error, ignore (got 'skip')"),
])
def test_inconsistent_class_settings_are_named(tmp_path, options, fragment):
    write_seg_folder(tmp_path)
    with pytest.raises(UserError) as e:  # through the config's check of the builder's options
        call_with_config(build_seg_folder, {"root": str(tmp_path), **options}, "data", "seg.yaml")
    assert fragment in str(e.value)


def test_jpeg_mask_and_missing_class_count_are_refused(tmp_path):
    write_seg_folder(tmp_path, class_file=False)
    with pytest.raises(UserError, match="set data.num_classes"):
        build_seg_folder(root=str(tmp_path))
    mask = tmp_path / "val" / "masks" / "s0.png"
    Image.open(mask).save(mask.with_suffix(".jpg"))
    mask.unlink()
    with pytest.raises(UserError, match="s0.jpg is a JPEG"):
        build_seg_folder(root=str(tmp_path), num_classes=3)
