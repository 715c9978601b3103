"""CIFAR-10/100 from the standard python-pickle folders (Krizhevsky, 2009).

Layouts read as they lie on disk after extracting the official archives:
  cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
  cifar-100-python/{train, test, meta}
``root`` may be that folder or its parent. Nothing is downloaded.

``normalize`` (both builders): "dataset" (default) standardises with the data set's own
channel mean/std (RepDistiller's); "cifar10_frskd" with the CIFAR-10 mean (0.4914, 0.4822,
0.4465) and std (0.2023, 0.1994, 0.2010) that FRSKD's official loader (MingiJi/FRSKD
classification/dataset.py) applies to CIFAR-100 as well.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from kdvision.data.classification.tensor_dataset import ImageArrayDataset
from kdvision.data.classification.transforms import RandomCropFlip
from kdvision.errors import UserError
from kdvision.registry import DATASETS
from kdvision.safe_load import load_restricted_pickle

CIFAR_MEAN = {10: (0.4914, 0.4822, 0.4465), 100: (0.5071, 0.4867, 0.4408)}
CIFAR_STD = {10: (0.2470, 0.2435, 0.2616), 100: (0.2675, 0.2565, 0.2761)}
#: the statistics FRSKD's official code normalises CIFAR-100 with (its CIFAR-10 numbers)
FRSKD_CIFAR10_MEAN_STD = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
Normalize = Literal["dataset", "cifar10_frskd"]
LAYOUT = {
    10: ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "batches.meta",
         b"labels", b"label_names"),
    100: ("cifar-100-python", ["train"], ["test"], "meta", b"fine_labels", b"fine_label_names"),
}


def _find_folder(root: Path, num_classes: int) -> Path:
    name = LAYOUT[num_classes][0]
    for candidate in (root, root / name):
        if (candidate / LAYOUT[num_classes][1][0]).is_file():
            return candidate
    if not root.exists():
        raise UserError(f"data.root: CIFAR-{num_classes} folder not found: {root} "
                        f"(expected {name}/ with {', '.join(LAYOUT[num_classes][1][:1] + LAYOUT[num_classes][2])})")
    raise UserError(f"data.root: no CIFAR-{num_classes} pickles in {root}: expected {root / name}/"
                    f"{LAYOUT[num_classes][1][0]} (the python version of the dataset)")


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"CIFAR file missing: {path}")
    return load_restricted_pickle(path, "CIFAR pickle")


def load_cifar_split(folder: Path, num_classes: int, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images as uint8 [N, 32, 32, 3] and labels, every batch file checked (see ``check_batch``)."""
    _, train_files, test_files, _, label_key, _ = LAYOUT[num_classes]
    images, labels = [], []
    for name in train_files if train else test_files:
        data, lab = check_batch(_unpickle(folder / name), folder / name, num_classes, label_key)
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(lab)
    return np.concatenate(images), np.concatenate(labels)


def check_batch(batch, path: Path, num_classes: int, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(b"data" as uint8 N x 3072, labels as int64 N) of one batch, or a ``UserError`` naming the file
    and key: images and labels in equal number, pixels uint8, labels integers in 0..num_classes-1."""
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        got = f"keys {list(batch)[:4]}" if isinstance(batch, dict) else f"a {type(batch).__name__}"
        raise UserError(f"{path}: not a CIFAR-{num_classes} batch (a dict with keys b'data' and {label_key!r} "
                        f"expected, got {got})")
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8:
        shape = f"{type(data).__name__} {getattr(data, 'dtype', '')} {getattr(data, 'shape', '')}".replace("  ", " ")
        above = ""
        if isinstance(data, np.ndarray) and data.dtype.kind in "iuf" and data.size and data.max() > 255:
            above = f"; pixel values up to {data.max()} (above 255)"
        raise UserError(f"{path}: b'data' must be a uint8 array of N x 3072, got {shape.strip()}{above}")
    raw = batch[label_key]
    lab = np.asarray(raw) if isinstance(raw, (list, tuple, np.ndarray)) else None
    if lab is None or lab.ndim != 1 or (lab.size and lab.dtype.kind not in "iu"):
        what = f"{lab.dtype} values" if lab is not None and lab.ndim == 1 else f"a {type(raw).__name__}"
        raise UserError(f"{path}: {label_key!r} must be a list of integer labels, got {what}")
    lab = lab.astype(np.int64)
    if len(lab) != len(data):
        raise UserError(f"{path}: {len(data)} images in b'data' but {len(lab)} labels in {label_key!r}")
    bad = np.flatnonzero((lab < 0) | (lab >= num_classes))
    if bad.size:
        raise UserError(f"{path}: label {lab[bad[0]]} at row {bad[0]} is outside 0..{num_classes - 1}")
    return data, lab


def _class_names(folder: Path, num_classes: int) -> list[str] | None:
    meta_file, name_key = LAYOUT[num_classes][3], LAYOUT[num_classes][5]
    path = folder / meta_file
    if not path.is_file():
        return None
    meta = _unpickle(path)
    if not isinstance(meta, dict):
        raise UserError(f"{path}: CIFAR meta must be a dict with key {name_key!r}, got a {type(meta).__name__}")
    names = meta.get(name_key)
    if names is None:
        return None
    if not isinstance(names, (list, tuple)) or len(names) != num_classes \
            or not all(isinstance(n, (bytes, str)) for n in names):
        if not isinstance(names, (list, tuple)):
            got = f"a {type(names).__name__}"
        elif len(names) != num_classes:
            got = f"{len(names)} entries"
        else:
            got = f"a {type(next(n for n in names if not isinstance(n, (bytes, str)))).__name__} entry"
        raise UserError(f"{path}: {name_key!r} must be a list of {num_classes} class names, got {got}")
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]


def build_cifar(num_classes: int, root: str, augment: bool = True, normalize: Normalize = "dataset") -> dict:
    """``normalize`` is one of Normalize's choices (checked by the config)."""
    folder = _find_folder(Path(root).expanduser(), num_classes)
    mean, std = (CIFAR_MEAN[num_classes], CIFAR_STD[num_classes]) if normalize == "dataset" else FRSKD_CIFAR10_MEAN_STD
    names = _class_names(folder, num_classes)
    x_train, y_train = load_cifar_split(folder, num_classes, train=True)
    x_test, y_test = load_cifar_split(folder, num_classes, train=False)
    aug = RandomCropFlip(32, padding=4) if augment else None
    train = ImageArrayDataset(x_train, y_train, num_classes, mean, std, augment=aug, classes=names)
    test = ImageArrayDataset(x_test, y_test, num_classes, mean, std, classes=names)
    # The community reports CIFAR results on the test set; there is no separate val split.
    return {"train": train, "val": test, "test": test}


@DATASETS.register("cifar10")
def build_cifar10(root: str, seed: int = 0, augment: bool = True, normalize: Normalize = "dataset") -> dict:
    """CIFAR-10 from cifar-10-batches-py/ (val = test, as in the community tables)."""
    return build_cifar(10, root, augment, normalize)


@DATASETS.register("cifar100")
def build_cifar100(root: str, seed: int = 0, augment: bool = True, normalize: Normalize = "dataset") -> dict:
    """CIFAR-100 from cifar-100-python/ (val = test, as in the community tables)."""
    return build_cifar(100, root, augment, normalize)
