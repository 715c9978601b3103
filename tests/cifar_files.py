"""Writes tiny CIFAR folders in the exact on-disk format of the official python archives."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def write_cifar(root: Path, num_classes: int, per_file: int = 6, labels=None, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    if num_classes == 10:
        folder = root / "cifar-10-batches-py"
        files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        label_key, meta_file, meta = b"labels", "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)]}
    else:
        folder = root / "cifar-100-python"
        files = ["train", "test"]
        label_key, meta_file = b"fine_labels", "meta"
        meta = {b"fine_label_names": [f"c{i}".encode() for i in range(100)]}
    folder.mkdir(parents=True)
    for name in files:
        n = per_file
        lab = list(labels) if labels is not None else rng.integers(0, num_classes, n).tolist()
        batch = {b"batch_label": name.encode(), b"data": rng.integers(0, 256, (len(lab), 3072), dtype=np.uint8),
                 label_key: lab, b"filenames": [f"{name}_{i}.png".encode() for i in range(len(lab))]}
        if num_classes == 100:
            batch[b"coarse_labels"] = [x // 5 for x in lab]
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / meta_file, "wb") as f:
        pickle.dump(meta, f)
    return folder
