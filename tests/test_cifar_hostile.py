"""Hostile and damaged CIFAR folders through the real CLI: no pickled code ever runs, and every
batch is checked (counts, shapes, dtypes, label range, meta); one line naming file and key, exit 2."""
import os
import pickle

import numpy as np
import pytest

from kdvision.data.classification.cifar import build_cifar10, build_cifar100
from kdvision.errors import UserError
from tests.cifar_files import write_cifar
from tests.conftest import TINY_DIGITS, run_cli, write_yaml
from tests.test_cli_errors import one_line_error


class WritesMarker:
    """Unpickling this runs os.system: the classic pickle payload."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def train_on_cifar(tmp_path, num_classes=10):
    name = "cifar10" if num_classes == 10 else "cifar100"
    cfg = write_yaml(tmp_path / "c.yaml", {**TINY_DIGITS, "data": {"name": name, "root": str(tmp_path / "data"),
                                                                   "batch_size": 2}})
    return run_cli("train", str(cfg), "--out", str(tmp_path / "run"), "train.epochs=1")


def rewrite(folder, name, obj):
    with open(folder / name, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def test_pickled_code_in_a_batch_never_runs(tmp_path):
    folder = write_cifar(tmp_path / "data", 10)
    marker = tmp_path / "code_ran"
    rewrite(folder, "data_batch_1", {b"data": WritesMarker(marker), b"labels": [0]})
    line = one_line_error(train_on_cifar(tmp_path), "data_batch_1", "refused to unpickle", "system")
    assert not marker.exists(), line
    assert not (tmp_path / "run").exists()


def test_pickled_code_in_meta_never_runs(tmp_path):
    folder = write_cifar(tmp_path / "data", 100)
    marker = tmp_path / "code_ran"
    rewrite(folder, "meta", WritesMarker(marker))
    with pytest.raises(UserError, match=r"cifar-100-python/meta: refused to unpickle the global posix\.system"):
        build_cifar100(root=str(tmp_path / "data"))
    assert not marker.exists()


def batch(n_images=4, labels=(0, 1, 2, 3), data=None):
    return {b"batch_label": b"x", b"labels": list(labels), b"filenames": [b"f.png"] * len(labels),
            b"data": np.zeros((n_images, 3072), np.uint8) if data is None else data}


@pytest.mark.parametrize("bad, fragments", [
    (batch(n_images=20, labels=range(5)), ["20 images in b'data' but 5 labels in b'labels'"]),
    (batch(labels=[0.0, 1.5, 2.0, 3.0]), ["b'labels' must be a list of integer labels", "float64"]),
    (batch(labels=[0, 1, 2, 10]), ["label 10 at row 3 is outside 0..9"]),
    (batch(data=np.zeros((4, 3, 32, 32), np.uint8)), ["b'data' must be a uint8 array of N x 3072", "(4, 3, 32, 32)"]),
    (batch(data=np.full((4, 3072), 300, np.int64)), ["b'data' must be a uint8 array", "int64", "above 255"]),
    (batch(data=np.zeros((4, 3072), np.float32)), ["b'data' must be a uint8 array", "float32"]),
    ([1, 2, 3], ["not a CIFAR-10 batch", "a list"]),
])
def test_every_batch_is_checked(tmp_path, bad, fragments):
    folder = write_cifar(tmp_path / "data", 10)
    rewrite(folder, "data_batch_3", bad)
    with pytest.raises(UserError) as e:
        build_cifar10(root=str(tmp_path / "data"))
    for f in ["data_batch_3", *fragments]:
        assert f in str(e.value), str(e.value)


def test_images_and_labels_out_of_step_stop_the_cli(tmp_path):
    folder = write_cifar(tmp_path / "data", 10)
    rewrite(folder, "test_batch", batch(n_images=20, labels=range(5)))
    one_line_error(train_on_cifar(tmp_path), "test_batch", "20 images in b'data' but 5 labels")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("meta, fragment", [
    ([b"c0", b"c1"], "CIFAR meta must be a dict with key b'label_names', got a list"),
    ({b"label_names": b"c0"}, "b'label_names' must be a list of 10 class names, got a bytes"),
    ({b"label_names": [b"c0", b"c1"]}, "got 2 entries"),
    ({b"label_names": [b"c0"] * 9 + [7]}, "got a int entry"),
])
def test_meta_of_the_wrong_type(tmp_path, meta, fragment):
    folder = write_cifar(tmp_path / "data", 10)
    rewrite(folder, "batches.meta", meta)
    if isinstance(meta, list):  # through the CLI once; the other cases through the loader
        one_line_error(train_on_cifar(tmp_path), "batches.meta", fragment)
    else:
        with pytest.raises(UserError) as e:
            build_cifar10(root=str(tmp_path / "data"))
        assert "batches.meta" in str(e.value) and fragment in str(e.value), str(e.value)
