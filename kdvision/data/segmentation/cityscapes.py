"""Cityscapes fine annotations (Cordts et al., CVPR 2016): 34 labelIds -> 19 trainIds.

Layout under ``root``::

    leftImg8bit/{train,val}/<city>/<name>_leftImg8bit.png
    gtFine/{train,val}/<city>/<name>_gtFine_labelIds.png

Label ids that are not evaluated (void, licence plate ...) become 255. The public test split has
no labels, so "test" is the val split (the split every paper reports).
"""
from __future__ import annotations

from pathlib import Path

from kdvision.config_checks import ImageSide, PositiveFloat
from kdvision.data.segmentation.folder import SegmentationFolder, label_table, pair_or_error, require_dir
from kdvision.data.segmentation.transforms import train_transform
from kdvision.errors import UserError
from kdvision.registry import DATASETS

#: labelId -> trainId for the 19 evaluated classes (cityscapesScripts helpers/labels.py)
TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
             25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
CLASS_NAMES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
               "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
               "motorcycle", "bicycle")
LAYOUT = "leftImg8bit/<split>/<city>/*_leftImg8bit.png and gtFine/<split>/<city>/*_gtFine_labelIds.png"


def cityscapes_table():
    mapping = {i: TRAIN_IDS.get(i, 255) for i in range(34)}
    mapping[255] = 255  # licence plate (id -1) as written by cityscapesScripts
    return label_table(mapping)


def cityscapes_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    images_dir = root / "leftImg8bit" / split
    require_dir(images_dir, "cityscapes", f"{root}/{LAYOUT}")
    pairs = []
    for image in sorted(images_dir.glob("*/*_leftImg8bit.png")):
        name = image.name[: -len("_leftImg8bit.png")]
        pairs.append(pair_or_error(image, root / "gtFine" / split / image.parent.name / f"{name}_gtFine_labelIds.png"))
    if not pairs:
        raise UserError(f"cityscapes: no images in {images_dir}; expected {LAYOUT}")
    return pairs


@DATASETS.register("cityscapes")
def build_cityscapes(seed: int = 0, root: str = "data/cityscapes", crop_size: ImageSide = 713,
                     scale_min: PositiveFloat = 0.5, scale_max: PositiveFloat = 2.0, rotate: float = 10.0,
                     blur: bool = True, flip: bool = True) -> dict:
    """Cityscapes fine (19 classes): train 2,975 / val 500 images at 2048x1024; "test" = val."""
    base = Path(root)
    require_dir(base, "cityscapes", f"{root}/{LAYOUT}")
    table = cityscapes_table()
    aug = train_transform(crop_size, scale_min, scale_max, rotate, blur, flip)
    raw = "labelIds 0..33"
    train = SegmentationFolder(cityscapes_pairs(base, "train"), table, 19, aug, raw)
    val = SegmentationFolder(cityscapes_pairs(base, "val"), table, 19, None, raw)
    for ds in (train, val):
        ds.class_names = CLASS_NAMES
    return {"train": train, "val": val, "test": val}
