"""PASCAL VOC 2012 segmentation (Everingham et al., IJCV 2010): 21 classes incl. background.

Layout under ``root`` (the VOC2012 folder, or a VOCdevkit folder that holds it)::

    JPEGImages/<id>.jpg
    SegmentationClass/<id>.png        palette PNG: pixel value = class index, 255 = boundary
    ImageSets/Segmentation/{train,val}.txt

``mask_dir`` / ``train_list`` select e.g. the SBD-augmented "SegmentationClassAug" / "train_aug".
The test split has no public labels, so "test" is val.
"""
from __future__ import annotations

from pathlib import Path

from kdvision.config_checks import ImageSide, PositiveFloat
from kdvision.data.segmentation.folder import SegmentationFolder, label_table, pair_or_error, require_dir
from kdvision.data.segmentation.transforms import train_transform
from kdvision.errors import UserError
from kdvision.registry import DATASETS

LAYOUT = "JPEGImages/<id>.jpg, SegmentationClass/<id>.png and ImageSets/Segmentation/{train,val}.txt"


def voc_table():
    mapping = {i: i for i in range(21)}
    mapping[255] = 255
    return label_table(mapping)


def voc_pairs(root: Path, list_name: str, mask_dir: str) -> list[tuple[Path, Path]]:
    list_file = root / "ImageSets" / "Segmentation" / f"{list_name}.txt"
    if not list_file.is_file():
        raise UserError(f"voc: image list {list_file} not found; expected the layout {root}/{LAYOUT}")
    ids = [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
    if not ids:
        raise UserError(f"voc: image list {list_file} is empty")
    pairs = []
    for i in ids:
        image = root / "JPEGImages" / f"{i}.jpg"
        if not image.is_file():
            raise UserError(f"voc: {list_file} names '{i}' but {image} does not exist")
        pairs.append(pair_or_error(image, root / mask_dir / f"{i}.png"))
    return pairs


@DATASETS.register("voc")
def build_voc(seed: int = 0, root: str = "data/VOCdevkit/VOC2012", crop_size: ImageSide = 512,
              scale_min: PositiveFloat = 0.5, scale_max: PositiveFloat = 2.0, rotate: float = 10.0, blur: bool = True,
              flip: bool = True,
              train_list: str = "train", val_list: str = "val", mask_dir: str = "SegmentationClass") -> dict:
    """PASCAL VOC 2012 (21 classes): train 1,464 / val 1,449 images; "test" = val."""
    base = Path(root)
    if (base / "VOC2012").is_dir():
        base = base / "VOC2012"
    require_dir(base, "voc", f"{root}/{LAYOUT}")
    table = voc_table()
    aug = train_transform(crop_size, scale_min, scale_max, rotate, blur, flip)
    raw = "0..20"
    train = SegmentationFolder(voc_pairs(base, train_list, mask_dir), table, 21, aug, raw)
    val = SegmentationFolder(voc_pairs(base, val_list, mask_dir), table, 21, None, raw)
    return {"train": train, "val": val, "test": val}
