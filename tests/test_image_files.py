"""Image files of every bit depth and mode decode to the right 8-bit RGB (or are refused naming
the file); decompression bombs and pixel values above 255 are refused where they arrive."""
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from kdvision.data.classification.image_folder import build_image_folder
from kdvision.data.classification.tensor_dataset import ImageArrayDataset
from kdvision.data.image_files import DEFAULT_MAX_PIXELS, read_rgb
from kdvision.data.restoration.images import to_tensor
from kdvision.errors import UserError
from tests.conftest import TINY_DIGITS, run_cli, write_yaml
from tests.test_cli_errors import one_line_error


def write_png(path, pixels, color_type, bits=16, size=None):
    """A PNG written byte by byte (Pillow cannot write 16-bit RGB); ``size`` may claim another size."""
    h, w = size or pixels.shape[:2]
    rows = pixels.astype(">u2" if bits == 16 else "u1")
    raw = b"".join(b"\x00" + rows[i].tobytes() for i in range(rows.shape[0]))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, bits, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


def test_sixteen_bit_grey_is_scaled_by_1_over_257_not_clipped(tmp_path):
    grey = np.array([[0, 257, 1000, 32896, 65535]], np.uint16)
    path = write_png(tmp_path / "g16.png", grey, color_type=0)
    assert Image.open(path).mode == "I;16"
    rgb = read_rgb(path)
    assert rgb.shape == (1, 5, 3) and rgb.dtype == np.uint8
    assert rgb[0, :, 0].tolist() == [0, 1, 4, 128, 255]  # round(v / 257); convert("RGB") gives 0, 255, 255, 255, 255
    assert (rgb == rgb[..., :1]).all()
    Image.fromarray(np.array([[0, 65535, 514]], np.int32), mode="I").save(tmp_path / "i32.tif")
    assert read_rgb(tmp_path / "i32.tif")[0, :, 1].tolist() == [0, 255, 2]


def test_sixteen_bit_rgb_keeps_its_high_byte(tmp_path):
    rgb16 = np.array([[[0, 25700, 65535], [1000, 30000, 60000]]], np.uint16)
    out = read_rgb(write_png(tmp_path / "rgb16.png", rgb16, color_type=2))
    assert np.abs(out.astype(int) - np.round(rgb16 / 257)).max() <= 1


@pytest.mark.parametrize("mode", ["P", "LA", "RGBA", "CMYK", "1", "L"])
def test_other_modes_convert_to_the_same_rgb_pillow_gives(tmp_path, mode):
    base = Image.fromarray(np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8))
    image = base.convert(mode)
    path = tmp_path / f"x.{'tif' if mode == 'CMYK' else 'png'}"
    image.save(path)
    out = read_rgb(path)
    assert out.shape == (6, 7, 3) and out.dtype == np.uint8
    assert np.array_equal(out, np.asarray(Image.open(path).convert("RGB")))
    if mode in ("RGBA", "LA"):  # alpha dropped, colours kept
        assert np.array_equal(out, np.asarray(image.convert("RGB")))


def test_float_images_are_refused_naming_the_file(tmp_path):
    Image.fromarray(np.full((4, 4), 0.5, np.float32), mode="F").save(tmp_path / "f.tif")
    with pytest.raises(UserError, match=r"f\.tif: mode F cannot be converted to 8-bit RGB"):
        read_rgb(tmp_path / "f.tif")


def test_sixteen_bit_training_images_are_not_white(tmp_path):
    for split in ("train", "val"):
        (tmp_path / split / "a").mkdir(parents=True)
        write_png(tmp_path / split / "a" / "x.png", np.full((8, 8), 32896, np.uint16), color_type=0)
    item = build_image_folder(root=str(tmp_path), size=8)["val"][0]
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    pixels = item["input"] * std[:, None, None] + mean[:, None, None]
    assert torch.allclose(pixels, torch.full_like(pixels, 128 / 255), atol=1e-5)


def test_decompression_bomb_is_refused_from_its_header_by_infer(tmp_path):
    from tests.test_infer_validation import infer, saved_student

    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "in" / "a.png")
    write_png(tmp_path / "in" / "bomb.png", np.zeros((1, 1), np.uint8), 0, bits=8, size=(20000, 10000))
    result = infer(tmp_path, saved_student(tmp_path))
    one_line_error(result, "bomb.png", "10000x20000 = 200,000,000 pixels", f"{DEFAULT_MAX_PIXELS:,}",
                   "KDVISION_MAX_IMAGE_PIXELS", "nothing was written")
    assert not (tmp_path / "out").exists()


def test_pixel_limit_is_configurable_and_names_the_file_in_training(tmp_path, monkeypatch):
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (tmp_path / "imgs" / split / cls).mkdir(parents=True)
            Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(tmp_path / "imgs" / split / cls / "0.png")
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(tmp_path / "imgs" / "train" / "b" / "big.png")
    cfg = write_yaml(tmp_path / "c.yaml", {**TINY_DIGITS, "data": {"name": "imagefolder", "root": str(tmp_path / "imgs"),
                                                                   "size": 8, "batch_size": 8}})
    monkeypatch.setenv("KDVISION_MAX_IMAGE_PIXELS", "500")
    one_line_error(run_cli("train", str(cfg), "--out", str(tmp_path / "r"), "train.epochs=1"),
                   "big.png", "900 pixels", "limit of 500")


def test_pixel_values_above_255_are_refused_where_arrays_arrive():
    with pytest.raises(UserError, match=r"images: pixel values 0..300 lie outside 0..255"):
        ImageArrayDataset(np.array([0, 300] * 8, np.int64).reshape(1, 4, 4, 1), [0], 10, (0.5,), (0.5,))
    with pytest.raises(UserError, match=r"images: pixels must be uint8 .* got float32"):
        ImageArrayDataset(np.zeros((1, 4, 4, 3), np.float32), [0], 10, (0.5,), (0.5,))
    with pytest.raises(UserError, match=r"image array: pixel values 0..4095"):
        to_tensor(np.array([0, 4095] * 6, np.uint16).reshape(2, 2, 3))
    with pytest.raises(UserError, match=r"floats in \[0, 1\], got float32 values 0..2"):
        to_tensor(np.array([0, 2] * 6, np.float32).reshape(2, 2, 3))
    ok = ImageArrayDataset(np.array([0, 255] * 8, np.int64).reshape(1, 4, 4, 1), [0], 10, (0.0,), (1.0,))
    assert ok[0]["input"].max().item() == 1.0
