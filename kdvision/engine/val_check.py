"""Before training: every image file of the evaluation splits opens, so that a damaged
validation image stops the run at once, not after the first epoch.

The check reads each file's header and structure with Pillow (``Image.verify``: chunk
checksums for PNG, markers for JPEG) without decoding pixels, which keeps it cheap next to a
training epoch. Data sets held in memory (digits, CIFAR) have no files and are skipped.
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from kdvision.errors import UserError


def image_files(dataset) -> list[Path]:
    """The image files an evaluation data set reads: ``samples`` (path, label) or ``pairs``."""
    while hasattr(dataset, "dataset") and not hasattr(dataset, "samples") and not hasattr(dataset, "pairs"):
        dataset = dataset.dataset  # Subset and similar wrappers
    files: list[Path] = []
    for item in getattr(dataset, "samples", None) or []:
        if isinstance(item, (tuple, list)) and item and isinstance(item[0], (str, Path)):
            files.append(Path(item[0]))
    for pair in getattr(dataset, "pairs", None) or []:
        parts = (pair.input, pair.target) if hasattr(pair, "input") else tuple(pair)
        files.extend(Path(p) for p in parts if isinstance(p, (str, Path)))
    return list(dict.fromkeys(files))


def check_split_files(dataset, split: str) -> int:
    """Raise one line naming the first file of ``split`` that Pillow cannot open; returns the count."""
    files = image_files(dataset)
    for path in files:
        try:
            with Image.open(path) as im:
                im.verify()
        except Exception as e:  # Pillow raises many types for damaged files
            raise UserError(f"{path}: cannot be read as an image ({type(e).__name__}); found while checking the "
                            f"{split} split before training (nothing was trained)") from None
    return len(files)
