"""Segmentation loaders on tiny trees in the real on-disk layouts; joint transforms; digit scenes."""
import numpy as np
import pytest
import torch
from PIL import Image

from kdvision.data.segmentation.ade20k import build_ade20k
from kdvision.data.segmentation.cityscapes import build_cityscapes
from kdvision.data.segmentation.digit_scenes import SOURCE_SPLIT, build_digit_scenes
from kdvision.data.segmentation.transforms import RandomCrop, RandomRotate, train_transform
from kdvision.data.segmentation.voc import build_voc
from kdvision.errors import UserError


H, W = 8, 12


def write_rgb(path, fmt="PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)).save(path, fmt)


def write_labels(path, values, palette=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.resize(np.asarray(values, dtype=np.uint8), (H, W))
    im = Image.fromarray(arr, mode="L")
    if palette:
        im = im.convert("P")
        im.putpalette([c for i in range(256) for c in (i, 255 - i, (7 * i) % 256)])
    im.save(path)
    return arr


def cityscapes_tree(root, values=(0, 7, 26, 33, 255, 24)):
    for split, city in (("train", "aachen"), ("train", "bonn"), ("val", "lindau")):
        name = f"{city}_000000_000019"
        write_rgb(root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png")
        write_labels(root / "gtFine" / split / city / f"{name}_gtFine_labelIds.png", values)


def test_cityscapes_label_ids_to_train_ids(tmp_path):
    cityscapes_tree(tmp_path)
    ds = build_cityscapes(root=str(tmp_path), crop_size=6)
    assert len(ds["train"]) == 2 and len(ds["val"]) == 1 and ds["val"].num_classes == 19
    item = ds["val"][0]
    assert item["input"].shape == (3, H, W) and item["input"].dtype == torch.float32
    expected = np.resize(np.array([255, 0, 13, 18, 255, 11]), (H, W))  # labelIds 0,7,26,33,255,24
    assert item["target"].dtype == torch.long and np.array_equal(item["target"].numpy(), expected)
    train = ds["train"][1]
    assert train["input"].shape == (3, 6, 6) and train["target"].shape == (6, 6)
    assert set(train["target"].unique().tolist()) <= {0, 11, 13, 18, 255}


def test_ade20k_shift_and_ignore(tmp_path):
    root = tmp_path / "ADEChallengeData2016"
    for split in ("training", "validation"):
        write_rgb(root / "images" / split / f"ADE_{split}_00000001.jpg", "JPEG")
        write_labels(root / "annotations" / split / f"ADE_{split}_00000001.png", (0, 1, 150, 75))
    ds = build_ade20k(root=str(tmp_path), crop_size=8)  # the parent folder is accepted too
    assert ds["val"].num_classes == 150
    assert np.array_equal(ds["val"][0]["target"].numpy(), np.resize(np.array([255, 0, 149, 74]), (H, W)))


def test_voc_palette_png_and_lists(tmp_path):
    root = tmp_path / "VOC2012"
    for i, split in (("2007_000032", "train"), ("2007_000039", "val")):
        write_rgb(root / "JPEGImages" / f"{i}.jpg", "JPEG")
        arr = write_labels(root / "SegmentationClass" / f"{i}.png", (0, 15, 255, 20), palette=True)
        (root / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text(i + "\n")
    assert Image.open(root / "SegmentationClass" / "2007_000039.png").mode == "P"
    ds = build_voc(root=str(tmp_path), crop_size=8)  # a VOCdevkit-style parent works
    assert ds["val"].num_classes == 21
    assert np.array_equal(ds["val"][0]["target"].numpy(), arr.astype(np.int64))


def test_image_without_label_map_is_named(tmp_path):
    cityscapes_tree(tmp_path)
    lonely = tmp_path / "leftImg8bit" / "val" / "lindau" / "lindau_000001_000019_leftImg8bit.png"
    write_rgb(lonely)
    with pytest.raises(UserError, match="lindau_000001_000019_leftImg8bit.png has no label map"):
        build_cityscapes(root=str(tmp_path))


def test_label_outside_class_range_names_the_file(tmp_path):
    cityscapes_tree(tmp_path, values=(7, 40))
    ds = build_cityscapes(root=str(tmp_path))
    with pytest.raises(UserError, match=r"lindau_000000_000019_gtFine_labelIds.png has label values 40"):
        ds["val"][0]
    root = tmp_path / "ade"
    write_rgb(root / "images" / "training" / "a.jpg", "JPEG")
    write_labels(root / "annotations" / "training" / "a.png", (0, 151))
    write_rgb(root / "images" / "validation" / "b.jpg", "JPEG")
    write_labels(root / "annotations" / "validation" / "b.png", (0, 1))
    with pytest.raises(UserError, match="a.png has label values 151"):
        build_ade20k(root=str(root))["train"][0]


def test_size_mismatch_and_rgb_mask(tmp_path):
    cityscapes_tree(tmp_path)
    mask = tmp_path / "gtFine" / "val" / "lindau" / "lindau_000000_000019_gtFine_labelIds.png"
    Image.fromarray(np.zeros((H + 1, W), np.uint8)).save(mask)
    with pytest.raises(UserError, match="size mismatch.*lindau_000000_000019_leftImg8bit.png"):
        build_cityscapes(root=str(tmp_path))["val"][0]
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(mask)
    with pytest.raises(UserError, match="RGB image"):
        build_cityscapes(root=str(tmp_path))["val"][0]


def test_missing_root_says_which_layout(tmp_path):
    with pytest.raises(UserError, match="leftImg8bit/<split>/<city>"):
        build_cityscapes(root=str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="images/"):
        build_ade20k(root=str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="ImageSets/Segmentation"):
        build_voc(root=str(tmp_path))


def test_joint_transforms_keep_labels_and_alignment():
    torch.manual_seed(0)
    mask = torch.zeros(40, 56, dtype=torch.long)
    mask[5:25, 8:30], mask[20:38, 30:50] = 3, 7
    image = mask[None].float().repeat(3, 1, 1)  # the image shows its own labels
    t = train_transform(32, rotate=10.0, blur=False)
    for _ in range(20):
        x, y = t(image, mask)
        assert x.shape == (3, 32, 32) and y.shape == (32, 32)
        assert set(y.unique().tolist()) <= {0, 3, 7, 255}
        # two pixels away from label boundaries (two resamplings), the image shows the label under it
        inner = (y != 255)
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                inner &= torch.roll(y, (dy, dx), (0, 1)) == y
        inner[:2], inner[-2:], inner[:, :2], inner[:, -2:] = False, False, False, False
        assert torch.allclose(x[0][inner], y[inner].float(), atol=0.5)


def test_rotation_fills_corners_with_ignore_and_crop_pads():
    torch.manual_seed(0)
    mask = torch.ones(30, 30, dtype=torch.long)
    _, y = RandomRotate(10.0, p=1.0)(torch.zeros(3, 30, 30), mask)
    assert y[0, 0] == 255 or y[0, -1] == 255
    assert set(y.unique().tolist()) == {1, 255}
    x, y = RandomCrop(40)(torch.ones(3, 30, 30), mask)
    assert (y == 255).sum() == 40 * 40 - 30 * 30 and (x == 0).sum() == 3 * (40 * 40 - 30 * 30)


def test_digit_scenes_deterministic_with_disjoint_sources():
    a = build_digit_scenes(train_size=6, val_size=3, test_size=3)
    b = build_digit_scenes(seed=5, train_size=6, val_size=3, test_size=3, augment=False)
    assert torch.equal(a["train"].images, b["train"].images) and torch.equal(a["val"].labels, b["val"].labels)
    assert not torch.equal(a["val"].images, a["test"].images)
    assert a["train"].num_classes == 11
    labels = torch.cat([a[s].labels.flatten() for s in ("train", "val", "test")])
    assert labels.min() == 0 and labels.max() <= 10 and len(labels.unique()) > 3
    ranges = sorted(SOURCE_SPLIT.values())
    assert all(r[1] <= s[0] for r, s in zip(ranges, ranges[1:])) and ranges[-1][1] == 1797
    item = a["val"][0]
    assert item["input"].shape == (3, 64, 64) and item["target"].dtype == torch.long
    c = build_digit_scenes(train_size=6, val_size=3, test_size=3, data_seed=1)
    assert not torch.equal(a["train"].images, c["train"].images)


def test_digit_scenes_digit_count_and_size():
    # one digit of 10-12 px per 32-px canvas: its labelled pixels fit a 12-px box and carry one class
    d = build_digit_scenes(size=32, train_size=1, val_size=20, test_size=1, digits_per_canvas=[1, 1],
                           digit_size=[10, 12])["val"]
    assert d.images.shape == (20, 3, 32, 32)
    for labels in d.labels:
        rows, cols = torch.nonzero(labels, as_tuple=True)
        assert 0 < rows.max() - rows.min() + 1 <= 12 and 0 < cols.max() - cols.min() + 1 <= 12
        assert len(labels[labels > 0].unique()) == 1
    many = build_digit_scenes(size=32, train_size=1, val_size=20, test_size=1, digits_per_canvas=[3, 3],
                              digit_size=[10, 12])["val"]
    assert (many.labels > 0).float().mean() > (d.labels > 0).float().mean()


@pytest.mark.parametrize("kwargs, message", [
    ({"digit_size": [20, 12]}, "'data.digit_size' must be [low, high] with low <= high (got [20, 12])"),
    ({"digit_size": [4, 12]}, "'data.digit_size' must lie in [8, data.size = 32] px (got [4, 12])"),
    ({"digit_size": [10, 40]}, "'data.digit_size' must lie in [8, data.size = 32] px (got [10, 40])"),
    ({"digits_per_canvas": [1, 2, 3]}, "'data.digits_per_canvas' must be [low, high] (got [1, 2, 3])"),
])
def test_digit_scenes_refuses_bad_shapes(kwargs, message):
    with pytest.raises(UserError) as e:
        build_digit_scenes(size=32, train_size=1, val_size=1, test_size=1, **kwargs)
    assert str(e.value) == message
