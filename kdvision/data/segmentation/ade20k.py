"""ADE20K SceneParsing (Zhou et al., CVPR 2017): 150 classes, label 0 ("other") ignored.

Layout under ``root`` (the ADEChallengeData2016 folder, or its parent)::

    images/{training,validation}/*.jpg
    annotations/{training,validation}/*.png     (same stem as the image)

Raw labels 1..150 become 0..149 and 0 becomes 255. "test" is the validation split.
"""
from __future__ import annotations

from pathlib import Path

from kdvision.config_checks import ImageSide, PositiveFloat
from kdvision.data.segmentation.folder import SegmentationFolder, label_table, pair_or_error, require_dir
from kdvision.data.segmentation.transforms import train_transform
from kdvision.errors import UserError
from kdvision.registry import DATASETS

LAYOUT = "images/{training,validation}/*.jpg and annotations/{training,validation}/*.png"


def ade20k_table():
    mapping = {0: 255, 255: 255}
    mapping.update({i: i - 1 for i in range(1, 151)})
    return label_table(mapping)


def ade20k_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    images_dir = root / "images" / split
    require_dir(images_dir, "ade20k", f"{root}/{LAYOUT}")
    pairs = [pair_or_error(image, root / "annotations" / split / f"{image.stem}.png")
             for image in sorted(images_dir.glob("*.jpg"))]
    if not pairs:
        raise UserError(f"ade20k: no .jpg images in {images_dir}; expected {LAYOUT}")
    return pairs


@DATASETS.register("ade20k")
def build_ade20k(seed: int = 0, root: str = "data/ADEChallengeData2016", crop_size: ImageSide = 473,
                 scale_min: PositiveFloat = 0.5, scale_max: PositiveFloat = 2.0, rotate: float = 10.0,
                 blur: bool = True,
                 flip: bool = True) -> dict:
    """ADE20K (150 classes): 20,210 training / 2,000 validation images; "test" = validation."""
    base = Path(root)
    if (base / "ADEChallengeData2016").is_dir():
        base = base / "ADEChallengeData2016"
    require_dir(base, "ade20k", f"{root}/{LAYOUT}")
    table = ade20k_table()
    aug = train_transform(crop_size, scale_min, scale_max, rotate, blur, flip)
    raw = "0..150"
    train = SegmentationFolder(ade20k_pairs(base, "training"), table, 150, aug, raw)
    val = SegmentationFolder(ade20k_pairs(base, "validation"), table, 150, None, raw)
    return {"train": train, "val": val, "test": val}
