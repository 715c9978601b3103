"""Paired restoration layouts, paired transforms, the embedded haze set and the haze model."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from kdvision.data.restoration.degradations import DEGRADATIONS, add_haze, scatter
from kdvision.data.restoration.embedded import embedded_haze
from kdvision.data.restoration.paired_dataset import nh_haze, paired_folder, reside
from kdvision.data.restoration.paired_transforms import PairedTransform
from kdvision.data.restoration.photos import DEFAULT_SPLITS, PHOTOS
from kdvision.errors import UserError


def write(path, h=40, w=48, value=None, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8) if value is None else np.full((h, w, 3), value, np.uint8)
    Image.fromarray(arr).save(path)
    return arr


def one_line_error(excinfo, *needles):
    message = str(excinfo.value)
    assert "\n" not in message
    for n in needles:
        assert n in message, message


# ------------------------------------------------------------------ NH-HAZE layout
def test_nh_haze_pairs_split_and_items(tmp_path):
    for i in range(1, 5):
        write(tmp_path / f"{i:02d}_hazy.png", value=10 * i)
        write(tmp_path / f"{i:02d}_GT.png", value=100 + 10 * i)
    sets = nh_haze(seed=0, root=str(tmp_path), crop=32, test_count=1)
    assert len(sets["train"]) == 3 and len(sets["test"]) == 1 and sets["val"] is sets["test"]
    item = sets["train"][1]
    assert item["input"].shape == (3, 32, 32) and item["target"].shape == (3, 32, 32)
    assert item["name"] == "02"
    assert torch.allclose(item["input"], torch.full((3, 32, 32), 20 / 255))
    assert torch.allclose(item["target"], torch.full((3, 32, 32), 120 / 255))
    test = sets["test"][0]
    assert test["name"] == "04" and test["input"].shape == (3, 40, 48)  # whole image
    held = nh_haze(seed=0, root=str(tmp_path), crop=32, test_ids=["01", 3])
    assert [p.name for p in held["test"].pairs] == ["01", "03"]
    ae = nh_haze(seed=0, root=str(tmp_path), crop=32, test_count=1, autoencoder=True)
    assert torch.equal(ae["train"][0]["input"], ae["train"][0]["target"])
    assert len(nh_haze(seed=0, root=str(tmp_path), crop=32, test_count=1, repeat=5)["train"]) == 15


def test_nh_haze_unpaired_and_strays(tmp_path):
    write(tmp_path / "01_hazy.png")
    write(tmp_path / "01_GT.png")
    write(tmp_path / "02_hazy.png")
    with pytest.raises(UserError) as e:
        nh_haze(seed=0, root=str(tmp_path), crop=16, test_count=0)
    one_line_error(e, "02_hazy.png", "cannot be paired")
    (tmp_path / "02_hazy.png").unlink()
    write(tmp_path / "03_clear.png")
    with pytest.raises(UserError) as e:
        nh_haze(seed=0, root=str(tmp_path), crop=16, test_count=0)
    one_line_error(e, "03_clear.png")


# ------------------------------------------------------------------ RESIDE layout
def test_reside_its_and_sots_prefix_pairing(tmp_path):
    its = tmp_path / "ITS"
    for i in (1, 2, 3):
        write(its / "clear" / f"{i}.png", value=50 * i)
    for name in ("1_1_0.90179.png", "1_2_0.8.png", "2_1_0.7.png", "3_1_0.95.png"):
        write(its / "hazy" / name, value=7)
    sots = tmp_path / "SOTS"
    write(sots / "gt" / "1400.png", value=200)
    write(sots / "hazy" / "1400_1.png", value=9)
    write(sots / "hazy" / "1400_2.png", value=9)
    sets = reside(seed=0, root=str(its), crop=32, test_root=str(sots))
    train_pairs = sets["train"].pairs
    assert [(p.input.name, p.target.name, p.group) for p in train_pairs] == [
        ("1_1_0.90179.png", "1.png", "1"), ("1_2_0.8.png", "1.png", "1"),
        ("2_1_0.7.png", "2.png", "2"), ("3_1_0.95.png", "3.png", "3")]
    assert [p.target.name for p in sets["test"].pairs] == ["1400.png", "1400.png"]
    assert torch.allclose(sets["test"][0]["target"], torch.full((3, 40, 48), 200 / 255))
    # scenes are held out whole: both hazy versions of scene 1 go to the test split
    split = reside(seed=0, root=str(its), crop=32, test_ids=["1"])
    assert [p.input.name for p in split["test"].pairs] == ["1_1_0.90179.png", "1_2_0.8.png"]
    assert all(p.group != "1" for p in split["train"].pairs)


def test_reside_hazy_without_target(tmp_path):
    write(tmp_path / "clear" / "1.png")
    write(tmp_path / "hazy" / "1_1_0.9.png")
    write(tmp_path / "hazy" / "7_1_0.9.png")
    with pytest.raises(UserError) as e:
        reside(seed=0, root=str(tmp_path), crop=16, test_count=0)
    one_line_error(e, "7_1_0.9.png", "cannot be paired")


# ------------------------------------------------------------------ generic paired folders
def make_folder(root, names=("a.png", "b.png", "c.png"), h=40, w=48):
    for i, n in enumerate(names):
        write(root / "input" / n, h, w, seed=i)
        write(root / "target" / n, h, w, seed=10 + i)


def test_paired_folder_pairs_by_name(tmp_path):
    make_folder(tmp_path)
    sets = paired_folder(seed=0, root=str(tmp_path), crop=24, test_count=1)
    assert [p.name for p in sets["train"].pairs] == ["a", "b"]
    item = sets["test"][0]
    expected = np.asarray(Image.open(tmp_path / "target" / "c.png")).transpose(2, 0, 1) / 255.0
    assert item["name"] == "c" and np.allclose(item["target"].numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("problem", ["unpaired", "size", "non_image", "small", "corrupt"])
def test_paired_folder_bad_inputs(tmp_path, problem):
    make_folder(tmp_path)
    crop = 32
    if problem == "unpaired":
        write(tmp_path / "input" / "d.png")
        bad = "d.png"
    elif problem == "size":
        write(tmp_path / "target" / "b.png", 41, 48)
        bad = "b.png"
    elif problem == "non_image":
        (tmp_path / "input" / "notes.txt").write_text("hello")
        bad = "notes.txt"
    elif problem == "small":
        crop, bad = 44, "a.png"
    else:
        (tmp_path / "input" / "b.png").write_bytes(b"not a png")
        bad = "b.png"
    with pytest.raises(UserError) as e:
        paired_folder(seed=0, root=str(tmp_path), crop=crop, test_count=1)
    one_line_error(e, bad)


def test_split_errors_name_the_key(tmp_path):
    make_folder(tmp_path)
    with pytest.raises(UserError) as e:
        paired_folder(seed=0, root=str(tmp_path), crop=16, test_ids=["zz"])
    one_line_error(e, "test_ids", "zz")
    with pytest.raises(UserError) as e:
        paired_folder(seed=0, root=str(tmp_path), crop=16, test_count=3)
    one_line_error(e, "test_count")


# ------------------------------------------------------------------ paired transforms
def test_paired_transform_keeps_pixels_aligned():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(3, 40, 50, generator=g)
    inp = 1.0 - target  # any pixel-wise relation must survive the joint transform
    transform = PairedTransform(crop=24)
    seen = set()
    for _ in range(40):
        a, b = transform(inp, target, generator=g)
        assert a.shape == (3, 24, 24) and torch.allclose(a, 1.0 - b)
        seen.add(b.sum().item())
    assert len(seen) > 20  # crops, flips and transposes vary
    # every output is a crop of one of the 8 symmetries of the image
    a, b = PairedTransform(crop=0)(inp, target, generator=torch.Generator().manual_seed(3))
    variants = [target, target.flip(-1), target.flip(-2), target.flip(-1).flip(-2)]
    variants += [v.transpose(-1, -2) for v in variants]
    assert any(v.shape == b.shape and torch.equal(v, b) for v in variants)


# ------------------------------------------------------------------ haze model and embedded set
def test_scattering_model_for_known_transmission_and_airlight():
    rng = np.random.default_rng(0)
    clean = rng.random((16, 20, 3)).astype(np.float32)
    t = np.linspace(0.2, 0.9, 16 * 20, dtype=np.float32).reshape(16, 20)
    airlight = np.array([0.9, 0.8, 0.7], np.float32)
    hazy = scatter(clean, t, airlight)
    for c in range(3):
        assert np.allclose(hazy[..., c], clean[..., c] * t + airlight[c] * (1 - t), atol=1e-6)
    depth = np.full((16, 20), 0.5, np.float32)
    hazy2, info = add_haze(clean, rng, beta=1.2, airlight=0.8, depth=depth)
    t_expected = np.exp(-1.2 * 0.5)
    assert np.allclose(info["transmission"], t_expected, atol=1e-6)
    assert np.allclose(hazy2, clean * t_expected + 0.8 * (1 - t_expected), atol=1e-6)
    assert info["domain"] == "haze"


def test_haze_draws_are_seeded_and_in_documented_ranges():
    clean = np.random.default_rng(1).random((48, 48, 3)).astype(np.float32)
    a, info_a = DEGRADATIONS["haze"](clean, np.random.default_rng(5))
    b, _ = DEGRADATIONS["haze"](clean, np.random.default_rng(5))
    assert np.array_equal(a, b)
    assert 0.5 <= info_a["beta"] <= 2.0 and np.all((info_a["airlight"] >= 0.65) & (info_a["airlight"] <= 1.0))
    assert 0.1 - 1e-6 <= info_a["depth"].min() and info_a["depth"].max() <= 1.0 + 1e-6
    _, nh = DEGRADATIONS["nh_haze"](clean, np.random.default_rng(5))
    assert np.ndim(nh["beta"]) == 2 and np.ptp(nh["beta"]) > 0.1  # density varies over the image


def test_embedded_haze_is_deterministic_and_splits_photographs():
    a = embedded_haze(seed=0, crop=32, train_size=8, val_size=4, test_size=4)
    b = embedded_haze(seed=123, crop=32, train_size=8, val_size=4, test_size=4)
    for split in ("train", "val", "test"):
        for i in range(4):
            da, clean_a, name_a, _ = a[split].make(i)
            db, clean_b, name_b, _ = b[split].make(i)
            assert name_a == name_b and np.array_equal(da, db) and np.array_equal(clean_a, clean_b)
    item = a["test"][0]
    assert set(item) == {"input", "target", "name", "domain"}
    assert item["input"].shape == (3, 32, 32) and item["input"].dtype == torch.float32
    assert float(item["input"].min()) >= 0 and float(item["input"].max()) <= 1
    assert not torch.equal(item["input"], item["target"])
    other = embedded_haze(seed=0, crop=32, train_size=8, val_size=4, test_size=4, data_seed=1)
    assert not np.array_equal(other["test"].make(0)[0], a["test"].make(0)[0])
    scenes = {s: {PHOTOS[n][1] for n in DEFAULT_SPLITS[s]} for s in DEFAULT_SPLITS}
    assert not (scenes["train"] & scenes["test"]) and not (scenes["train"] & scenes["val"])
    for split in ("train", "val", "test"):
        assert {a[split].make(i)[3]["photo"] for i in range(4)} <= set(DEFAULT_SPLITS[split])
    ae = embedded_haze(seed=0, crop=32, train_size=2, val_size=1, test_size=1, autoencoder=True)
    assert torch.equal(ae["test"][0]["input"], ae["test"][0]["target"])


def test_embedded_haze_bad_options():
    with pytest.raises(UserError) as e:
        embedded_haze(seed=0, train_photos=["astronaut", "motorcycle_left"], test_photos=["motorcycle_right"])
    one_line_error(e, "motorcycle_right", "test_photos")
    with pytest.raises(UserError) as e:
        embedded_haze(seed=0, degradations=["fog"])
    one_line_error(e, "fog", "data.degradations")
    with pytest.raises(UserError) as e:
        embedded_haze(seed=0, crop=4000)
    one_line_error(e, "data.crop")
