"""kdvision.infer.restore_folder: any image size, tiling, and never overwriting a file."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from kdvision.errors import UserError
from kdvision.infer import restore_folder
from kdvision.models.restoration.inference import pad_to_multiple, restore, restore_tiled
from kdvision.models.restoration.ktdn import ktdn, srktdn


class Pointwise(nn.Module):
    """A per-pixel network (no spatial context): tiles must not change its result."""

    input_multiple = 16
    min_input_size = 32

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        nn.init.eye_(self.conv.weight.data.view(3, 3))
        self.conv.weight.data.mul_(0.8)
        self.conv.bias.data.fill_(0.1)

    def forward(self, x):
        assert x.shape[-1] % 16 == 0 and x.shape[-2] % 16 == 0
        return self.conv(x)


def write_images(folder, sizes):
    folder.mkdir()
    rng = np.random.default_rng(0)
    arrays = {}
    for i, (h, w) in enumerate(sizes):
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        name = f"img{i}.{'png' if i % 2 == 0 else 'jpg'}"
        Image.fromarray(arr).save(folder / name)
        arrays[name] = np.asarray(Image.open(folder / name).convert("RGB"))
    return arrays


def test_restores_odd_sizes_at_their_own_size(tmp_path):
    sizes = [(37, 53), (50, 33), (17, 21)]
    inputs = write_images(tmp_path / "in", sizes)
    torch.manual_seed(0)
    written = restore_folder(srktdn().eval(), tmp_path / "in", tmp_path / "out", progress=False)
    assert sorted(p.name for p in written) == ["img0.png", "img1.png", "img2.png"]
    for name, arr in inputs.items():
        out = np.asarray(Image.open(tmp_path / "out" / (name.rsplit(".", 1)[0] + ".png")))
        assert out.shape == arr.shape and out.dtype == np.uint8


def test_tiles_blend_back_to_the_whole_image_result(tmp_path):
    model = Pointwise()
    x = torch.rand(1, 3, 75, 101)
    whole = restore(model, x)
    tiled = restore_tiled(model, x, tile=32, overlap=8)
    assert torch.allclose(whole, tiled, atol=1e-6)
    assert torch.allclose(whole, (0.8 * x + 0.1).clamp(0, 1), atol=1e-6)
    inputs = write_images(tmp_path / "in", [(70, 90)])
    restore_folder(model, tmp_path / "in", tmp_path / "out", tile=32, overlap=8, progress=False)
    out = np.asarray(Image.open(tmp_path / "out" / "img0.png")).astype(np.float64)
    expected = np.clip(np.round((0.8 * inputs["img0.png"] / 255.0 + 0.1) * 255), 0, 255)
    assert np.abs(out - expected).max() <= 1


def test_padding_reaches_the_multiple_and_the_minimum():
    x = torch.rand(1, 3, 5, 40)
    padded, size = pad_to_multiple(x, 16, 32)
    assert padded.shape[-2:] == (32, 48) and size == (5, 40)
    assert torch.equal(padded[..., :5, :40], x)


def test_never_overwrites(tmp_path):
    write_images(tmp_path / "in", [(20, 20), (24, 24)])
    before = {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()}
    with pytest.raises(UserError) as e:
        restore_folder(Pointwise(), tmp_path / "in", tmp_path / "in", progress=False)
    assert "input folder" in str(e.value)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "img1.png").write_bytes(b"keep me")
    with pytest.raises(UserError) as e:
        restore_folder(Pointwise(), tmp_path / "in", tmp_path / "out", progress=False)
    assert "img1.png" in str(e.value) and "\n" not in str(e.value)
    assert (tmp_path / "out" / "img1.png").read_bytes() == b"keep me"
    assert not (tmp_path / "out" / "img0.png").exists()  # refused before writing anything
    assert {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()} == before


def test_bad_inputs_are_named(tmp_path):
    write_images(tmp_path / "in", [(20, 20)])
    (tmp_path / "in" / "img0.jpg").write_bytes(b"x")  # same stem as img0.png -> same output name
    with pytest.raises(UserError) as e:
        restore_folder(Pointwise(), tmp_path / "in", tmp_path / "out", progress=False)
    assert "img0" in str(e.value)
    (tmp_path / "in" / "img0.jpg").unlink()
    (tmp_path / "in" / "readme.txt").write_text("hi")
    with pytest.raises(UserError) as e:
        restore_folder(Pointwise(), tmp_path / "in", tmp_path / "out", progress=False)
    assert "readme.txt" in str(e.value)
    with pytest.raises(UserError):
        restore_folder(Pointwise(), tmp_path / "missing", tmp_path / "out", progress=False)


def test_restore_folder_from_config_loads_the_student(tmp_path):
    from safetensors.torch import save_file

    from kdvision.config import config_from_dict
    from kdvision.infer import restore_folder_from_config

    cfg = config_from_dict({"task": "restoration", "data": {"name": "nh_haze", "root": str(tmp_path / "absent")},
                            "student": {"name": "ktdn"}, "method": {"name": "student"}})
    torch.manual_seed(1)
    model = ktdn().eval()
    save_file(model.state_dict(), str(tmp_path / "student.safetensors"))
    write_images(tmp_path / "in", [(33, 47)])
    restore_folder_from_config(cfg, str(tmp_path / "student.safetensors"), tmp_path / "in", tmp_path / "out",
                               device="cpu", progress=False)
    out = np.asarray(Image.open(tmp_path / "out" / "img0.png"))
    x = torch.from_numpy(np.array(Image.open(tmp_path / "in" / "img0.png"))).permute(2, 0, 1)[None] / 255.0
    expected = (restore(model, x)[0].permute(1, 2, 0).numpy() * 255).round()
    assert out.shape == (33, 47, 3) and np.abs(out - expected).max() <= 1
    with pytest.raises(UserError):  # the output now exists: refused before the model is built
        restore_folder_from_config(cfg, str(tmp_path / "missing.pt"), tmp_path / "in", tmp_path / "out")
