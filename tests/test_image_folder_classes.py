"""ImageFolder class folders through the real CLI: an empty class folder, and a class that only
the validation split has, are one line naming the folder."""
import numpy as np
from PIL import Image

from tests.conftest import TINY_DIGITS, run_cli, write_yaml
from tests.test_cli_errors import one_line_error


def tree(root, layout):
    for split, classes in layout.items():
        for cls, count in classes.items():
            (root / split / cls).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(root / split / cls / f"{i}.png")


def train(tmp_path):
    cfg = write_yaml(tmp_path / "c.yaml", {**TINY_DIGITS, "data": {"name": "imagefolder", "root": str(tmp_path / "imgs"),
                                                                   "size": 8, "batch_size": 4}})
    return run_cli("train", str(cfg), "--out", str(tmp_path / "run"), "train.epochs=1")


def test_an_empty_class_folder_is_named(tmp_path):
    tree(tmp_path / "imgs", {"train": {"cat": 2, "dog": 0}, "val": {"cat": 1, "dog": 1}})
    (tmp_path / "imgs" / "train" / "dog" / "notes.txt").write_text("no images here")
    one_line_error(train(tmp_path), "train/dog: class folder has no images")
    assert not (tmp_path / "run").exists()


def test_a_class_only_in_val_is_named(tmp_path):
    tree(tmp_path / "imgs", {"train": {"cat": 2, "dog": 2}, "val": {"cat": 1, "dog": 1, "emu": 1}})
    one_line_error(train(tmp_path), "val/emu: class 'emu' has no folder in the training split", "cat, dog")
    assert not (tmp_path / "run").exists()


def test_a_class_missing_from_val_is_allowed_and_hidden_folders_ignored(tmp_path):
    from kdvision.data.classification.image_folder import build_image_folder

    tree(tmp_path / "imgs", {"train": {"cat": 2, "dog": 2}, "val": {"dog": 1, ".ipynb_checkpoints": 0}})
    data = build_image_folder(root=str(tmp_path / "imgs"), size=8)
    assert data["train"].classes == ["cat", "dog"] and [label for _, label in data["val"].samples] == [1]
