"""Classification loaders on small files written in the real on-disk formats."""
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from kdvision.data.classification.cifar import CIFAR_MEAN, CIFAR_STD, build_cifar10, build_cifar100
from kdvision.data.classification.digits import build_digits
from kdvision.data.classification.image_folder import build_image_folder
from kdvision.errors import UserError
from tests.cifar_files import write_cifar


@pytest.mark.parametrize("num_classes", [10, 100])
def test_cifar_pickles_load_as_on_disk(tmp_path, num_classes):
    folder = write_cifar(tmp_path, num_classes, labels=[0, 1, 2, num_classes - 1])
    build = build_cifar10 if num_classes == 10 else build_cifar100
    for root in (tmp_path, folder):  # the folder itself or its parent
        data = build(root=str(root), augment=False)
        n_train = 4 * (5 if num_classes == 10 else 1)
        assert len(data["train"]) == n_train and len(data["test"]) == 4
        assert data["train"].num_classes == num_classes and data["train"].classes[1] == "c1"
    # pixel (row 0, col 0) of the first image: R, G, B planes are 1024 bytes apart in a row of b"data"
    with open(folder / ("test_batch" if num_classes == 10 else "test"), "rb") as f:
        raw = pickle.load(f, encoding="bytes")[b"data"][0]
    item = data["test"][0]
    mean, std = torch.tensor(CIFAR_MEAN[num_classes]), torch.tensor(CIFAR_STD[num_classes])
    expected = (torch.tensor([raw[0], raw[1024], raw[2048]], dtype=torch.float32) / 255 - mean) / std
    assert torch.allclose(item["input"][:, 0, 0], expected, atol=1e-5)
    assert item["input"].shape == (3, 32, 32) and item["target"].item() == 0


def test_cifar_label_outside_range_names_file_and_row(tmp_path):
    write_cifar(tmp_path, 10, labels=[0, 10, 1])
    with pytest.raises(UserError, match=r"data_batch_1: label 10 at row 1 is outside 0..9"):
        build_cifar10(root=str(tmp_path))


def test_cifar_missing_folder_says_what_was_expected(tmp_path):
    with pytest.raises(UserError, match=r"cifar-100-python"):
        build_cifar100(root=str(tmp_path / "nowhere"))


def test_cifar_augmentation_is_crop_and_flip_of_the_image(tmp_path):
    write_cifar(tmp_path, 10)
    plain = build_cifar10(root=str(tmp_path), augment=False)["train"]
    aug = build_cifar10(root=str(tmp_path), augment=True)["train"]
    torch.manual_seed(0)
    x = aug[0]["input"]
    base = plain[0]["input"]
    # an augmented view equals a shifted (possibly flipped) window of the zero-padded original
    padded = torch.nn.functional.pad(base * torch.tensor(CIFAR_STD[10])[:, None, None]
                                     + torch.tensor(CIFAR_MEAN[10])[:, None, None], (4, 4, 4, 4))
    x_raw = x * torch.tensor(CIFAR_STD[10])[:, None, None] + torch.tensor(CIFAR_MEAN[10])[:, None, None]
    found = any(torch.allclose(v, x_raw, atol=1e-5)
                for top in range(9) for left in range(9)
                for v in (padded[:, top:top + 32, left:left + 32], padded[:, top:top + 32, left:left + 32].flip(-1)))
    assert found


def test_digits_split_is_fixed_and_disjoint():
    a, b = build_digits(seed=0), build_digits(seed=5)
    assert [len(a[s]) for s in ("train", "val", "test")] == [1077, 360, 360]
    assert torch.equal(a["test"].images, b["test"].images)  # the split does not depend on the run seed
    counts = torch.bincount(a["test"].labels, minlength=10)
    assert counts.min() >= 35  # stratified
    small = build_digits(seed=0, train_size=100)["train"]
    assert len(small) == 100 and torch.bincount(small.labels, minlength=10).min() >= 9


@pytest.mark.parametrize("key, value, message", [
    ("train_size", 5, "data.train_size must be between 10 and 1077, got 5"),
    # found by the config property test: padding 10**6 made the crop allocate 40 GB
    ("padding", 10 ** 6, r"data.padding must be at most data.resolution \(16\), got 1000000"),
])
def test_digits_options_out_of_range_are_one_user_error(key, value, message):
    with pytest.raises(UserError, match=message):
        build_digits(seed=0, **{key: value})
    assert len(build_digits(seed=0, padding=16)["train"]) == 1077  # the bound itself is allowed


def test_image_folder_reads_classes_and_names_a_corrupt_image(tmp_path):
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.fromarray(np.full((20, 30, 3), 128, np.uint8)).save(tmp_path / split / cls / "a.png")
    data = build_image_folder(root=str(tmp_path), size=16)
    assert data["train"].classes == ["cat", "dog"] and len(data["val"]) == 2
    assert data["val"][1]["input"].shape == (3, 16, 16) and data["val"][1]["target"].item() == 1
    (tmp_path / "val" / "dog" / "broken.jpg").write_bytes(b"not a jpeg")
    data = build_image_folder(root=str(tmp_path), size=16)
    with pytest.raises(UserError, match=r"cannot read image .*broken.jpg"):
        [data["val"][i] for i in range(len(data["val"]))]
