"""Segmentation on the user's own classes: ``images/`` and ``masks/`` with the same stems.

Layout under ``root``, split by folders::

    train/images/<stem>.{jpg,jpeg,png,bmp,tif,tiff,webp}    train/masks/<stem>.png
    val/images/...                                          val/masks/...
    test/...                                                (optional; else test = val)

or by list files (one stem or file name per line)::

    images/...   masks/...   train.txt   val.txt   test.txt (optional)

Masks are index PNGs (pixel value = class, ``ignore_index`` = not labelled; palette "P" or
greyscale), or colour images mapped through ``palette`` (colour i = class i). Class names come
from ``classes`` in the config, else ``classes.txt`` in ``root`` (one name a line). The
``ignore_index`` value becomes 255, kdvision's ignore label, so losses, methods and metrics
need no setting of their own.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import numpy as np

from kdvision.config_checks import ImageSide, NonNegativeInt, PositiveFloat
from kdvision.data.restoration.images import list_images
from kdvision.data.segmentation.folder import IGNORE, SegmentationFolder, label_table, require_dir
from kdvision.data.segmentation.transforms import train_transform
from kdvision.errors import UserError
from kdvision.registry import DATASETS

LAYOUT = ("{train,val}/images/<stem>.<ext> + {train,val}/masks/<stem>.png, or images/, masks/ and "
          "train.txt, val.txt")
LOSSY = (".jpg", ".jpeg")


def read_class_names(root: Path, classes: Optional[list]) -> Optional[list[str]]:
    """``data.classes`` if given, else ``root/classes.txt`` (one name a line), else None."""
    if classes is not None:
        if not isinstance(classes, list) or not all(isinstance(c, str) and c.strip() for c in classes):
            raise UserError("data.classes must be a list of non-empty class names")
        names, where = [c.strip() for c in classes], "data.classes"
    else:
        path = root / "classes.txt"
        if not path.is_file():
            return None
        try:
            names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"cannot read class names {path}: {e}") from None
        where = str(path)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UserError(f"{where} names the class '{dup[0]}' more than once")
    if not names:
        raise UserError(f"{where} names no classes")
    return names


def read_palette(palette: Optional[list]) -> Optional[np.ndarray]:
    """``data.palette`` as a [K, 3] uint8 array (colour i = class i), checked entry by entry."""
    if palette is None:
        return None
    if not isinstance(palette, list) or not palette:
        raise UserError("data.palette must be a list of [r, g, b] colours, one per class")
    for i, c in enumerate(palette):
        if (not isinstance(c, list) or len(c) != 3
                or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in c)):
            raise UserError(f"data.palette[{i}] must be [r, g, b] with integers 0..255, got {c!r}")
    seen: dict[tuple, int] = {}
    for i, c in enumerate(palette):
        if tuple(c) in seen:
            raise UserError(f"data.palette[{i}] {c} is the same colour as data.palette[{seen[tuple(c)]}]")
        seen[tuple(c)] = i
    return np.asarray(palette, dtype=np.uint8)


def resolve_num_classes(num_classes: int, names: Optional[list[str]], colours: Optional[np.ndarray],
                        root: Path) -> int:
    """The class count: ``data.num_classes``, or the count of class names / palette colours;
    every source that is given must agree."""
    counts = {}
    if num_classes:
        counts["data.num_classes"] = num_classes
    if names is not None:
        counts["the class names"] = len(names)
    if colours is not None:
        counts["data.palette"] = len(colours)
    if not counts:
        raise UserError(f"seg_folder: set data.num_classes (or data.classes, {root / 'classes.txt'} "
                        f"or data.palette)")
    if len(set(counts.values())) > 1:
        raise UserError("seg_folder: the class counts disagree: "
                        + ", ".join(f"{k} {v}" for k, v in counts.items()))
    n = next(iter(counts.values()))
    if not 1 <= n <= 255:
        raise UserError(f"seg_folder: {n} classes; 1..255 are supported (255 is kdvision's ignore label)")
    return n


def index_table(num_classes: int, ignore_index: int) -> np.ndarray:
    """Raw mask value -> label: 0..num_classes-1 stay, ``ignore_index`` becomes IGNORE."""
    if not 0 <= ignore_index <= 65535:
        raise UserError(f"data.ignore_index must be 0..65535, got {ignore_index}")
    if ignore_index < num_classes:
        raise UserError(f"data.ignore_index {ignore_index} is a class label (0..{num_classes - 1}); "
                        f"choose a value of at least {num_classes}, e.g. 255")
    mapping = {i: i for i in range(num_classes)}
    mapping[ignore_index] = IGNORE
    return label_table(mapping, max(256, ignore_index + 1))


def by_stem(files: list[Path], what: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in files:
        if p.stem in out:
            raise UserError(f"{what}: {out[p.stem].name} and {p.name} have the same stem '{p.stem}'")
        out[p.stem] = p
    return out


def pair_masks(images: list[Path], masks: dict[str, Path], mask_dir: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for image in images:
        mask = masks.get(image.stem)
        if mask is None:
            raise UserError(f"image {image} has no mask: expected {mask_dir / (image.stem + '.png')}")
        if mask.suffix.lower() in LOSSY:
            raise UserError(f"mask {mask} is a JPEG: its compression changes label values; save masks as PNG")
        pairs.append((image, mask))
    return pairs


def folder_split(split_dir: Path, image_dir: str, mask_dir: str) -> list[tuple[Path, Path]]:
    images = list_images(split_dir / image_dir, "seg_folder image folder")
    if not images:
        raise UserError(f"seg_folder: no images in {split_dir / image_dir}")
    masks = by_stem(list_images(split_dir / mask_dir, "seg_folder mask folder"), split_dir / mask_dir)
    by_stem(images, split_dir / image_dir)
    return pair_masks(images, masks, split_dir / mask_dir)


def list_split(root: Path, list_file: Path, image_dir: str, mask_dir: str) -> list[tuple[Path, Path]]:
    images = list_images(root / image_dir, "seg_folder image folder")
    stems = by_stem(images, root / image_dir)
    names = {p.name: p for p in images}
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read list file {list_file}: {e}") from None
    chosen = []
    for number, line in enumerate(lines, 1):
        entry = line.strip()
        if not entry:
            continue
        image = names.get(Path(entry).name) or stems.get(entry)
        if image is None:
            raise UserError(f"{list_file}:{number} names '{entry}' but {root / image_dir} has no such image")
        chosen.append(image)
    if not chosen:
        raise UserError(f"seg_folder: list file {list_file} is empty")
    masks = by_stem(list_images(root / mask_dir, "seg_folder mask folder"), root / mask_dir)
    return pair_masks(chosen, masks, root / mask_dir)


def layout_splits(root: Path, image_dir: str, mask_dir: str, lists: dict[str, str]) -> dict[str, list]:
    """{"train", "val", "test"?: pairs} from split folders or, failing those, list files."""
    if (root / "train" / image_dir).is_dir():
        splits = {"train": folder_split(root / "train", image_dir, mask_dir)}
        require_dir(root / "val", "seg_folder", f"{root}/{LAYOUT}")
        splits["val"] = folder_split(root / "val", image_dir, mask_dir)
        if (root / "test" / image_dir).is_dir():
            splits["test"] = folder_split(root / "test", image_dir, mask_dir)
        return splits
    if not (root / image_dir).is_dir():
        raise UserError(f"seg_folder: neither {root / 'train' / image_dir} nor {root / image_dir} exists; "
                        f"expected the layout {LAYOUT}")
    splits = {}
    for split, name in lists.items():
        path = root / name
        if path.is_file():
            splits[split] = list_split(root, path, image_dir, mask_dir)
        elif split != "test":
            raise UserError(f"seg_folder: list file {path} not found (the {split} split of {root})")
    return splits


@DATASETS.register("seg_folder")
def build_seg_folder(seed: int = 0, root: str = "data/segmentation", num_classes: NonNegativeInt = 0,
                     ignore_index: int = 255, classes: Optional[list] = None, palette: Optional[list] = None,
                     unknown_colour: Literal["error", "ignore"] = "error", image_dir: str = "images", mask_dir: str = "masks",
                     train_list: str = "train.txt", val_list: str = "val.txt", test_list: str = "test.txt",
                     crop_size: ImageSide = 512, scale_min: PositiveFloat = 0.5, scale_max: PositiveFloat = 2.0,
                     rotate: float = 10.0,
                     blur: bool = True, flip: bool = True) -> dict:
    """Your own classes: images/ + masks/ (index or palette PNGs), split by folders or list files."""
    base = Path(root).expanduser()
    require_dir(base, "seg_folder", f"{root}/{LAYOUT}")
    names = read_class_names(base, classes)
    colours = read_palette(palette)
    n = resolve_num_classes(num_classes, names, colours, base)
    table = index_table(n, ignore_index)
    splits = layout_splits(base, image_dir, mask_dir, {"train": train_list, "val": val_list, "test": test_list})
    aug = train_transform(crop_size, scale_min, scale_max, rotate, blur, flip)
    common = dict(table=table, num_classes=n, raw_labels=f"0..{n - 1}", raw_ignore=ignore_index,
                  colours=colours, unknown_ignored=unknown_colour == "ignore", class_names=names)
    out = {split: SegmentationFolder(pairs, transform=aug if split == "train" else None, **common)
           for split, pairs in splits.items()}
    out.setdefault("test", out["val"])
    return out
