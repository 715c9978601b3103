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

import pickle
from pathlib import Path

import numpy as np

from kdvision.data.classification.tensor_dataset import ImageArrayDataset
from kdvision.data.classification.transforms import RandomCropFlip
from kdvision.errors import UserError
from kdvision.registry import DATASETS

CIFAR_MEAN = {10: (0.4914, 0.4822, 0.4465), 100: (0.5071, 0.4867, 0.4408)}
CIFAR_STD = {10: (0.2470, 0.2435, 0.2616), 100: (0.2675, 0.2565, 0.2761)}
#: the statistics FRSKD's official code normalises CIFAR-100 with (its CIFAR-10 numbers)
FRSKD_CIFAR10_MEAN_STD = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
NORMALIZE = ("dataset", "cifar10_frskd")
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
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="bytes")
    except Exception as e:  # corrupt or truncated pickle
        raise UserError(f"cannot read CIFAR pickle {path}: {type(e).__name__}: {e}") from None


def load_cifar_split(folder: Path, num_classes: int, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images as uint8 [N, 32, 32, 3] and labels, checked against the class range."""
    _, train_files, test_files, _, label_key, _ = LAYOUT[num_classes]
    images, labels = [], []
    for name in train_files if train else test_files:
        batch = _unpickle(folder / name)
        if b"data" not in batch or label_key not in batch:
            raise UserError(f"{folder / name}: not a CIFAR-{num_classes} batch (keys b'data' and {label_key!r} expected)")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072:
            raise UserError(f"{folder / name}: b'data' must be N x 3072 uint8, got shape {data.shape}")
        lab = np.asarray(batch[label_key], dtype=np.int64)
        bad = np.flatnonzero((lab < 0) | (lab >= num_classes))
        if bad.size:
            raise UserError(f"{folder / name}: label {lab[bad[0]]} at row {bad[0]} is outside 0..{num_classes - 1}")
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(lab)
    return np.concatenate(images), np.concatenate(labels)


def _class_names(folder: Path, num_classes: int) -> list[str] | None:
    meta_file, name_key = LAYOUT[num_classes][3], LAYOUT[num_classes][5]
    if not (folder / meta_file).is_file():
        return None
    names = _unpickle(folder / meta_file).get(name_key)
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names] if names else None


def build_cifar(num_classes: int, root: str, augment: bool = True, normalize: str = "dataset") -> dict:
    if normalize not in NORMALIZE:
        raise UserError(f"data.normalize must be one of {', '.join(NORMALIZE)}, got '{normalize}'")
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
def build_cifar10(root: str, seed: int = 0, augment: bool = True, normalize: str = "dataset") -> dict:
    """CIFAR-10 from cifar-10-batches-py/ (val = test, as in the community tables)."""
    return build_cifar(10, root, augment, normalize)


@DATASETS.register("cifar100")
def build_cifar100(root: str, seed: int = 0, augment: bool = True, normalize: str = "dataset") -> dict:
    """CIFAR-100 from cifar-100-python/ (val = test, as in the community tables)."""
    return build_cifar(100, root, augment, normalize)
