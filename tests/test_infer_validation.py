"""`kdvision infer` checks its tiling and decodes every input before writing the first output."""
import numpy as np
import pytest
import torch
from PIL import Image

from kdvision.config import load_config
from kdvision.engine.build import build_task
from kdvision.errors import UserError
from kdvision.infer import restore_folder
from kdvision.models.restoration.inference import check_tiling
from tests.conftest import REPO, run_cli
from tests.test_cli_errors import one_line_error

CONFIG = str(REPO / "kdvision" / "recipes" / "embedded_haze" / "student.yaml")  # ktdn: input multiple 16


def saved_student(tmp_path):
    cfg = load_config(CONFIG)
    torch.save(build_task(cfg).create_model(cfg.student, "student").state_dict(), tmp_path / "w.pt")
    return tmp_path / "w.pt"


def infer(tmp_path, weights, *extra):
    return run_cli("infer", CONFIG, "--checkpoint", str(weights), "--input", str(tmp_path / "in"),
                   "--out", str(tmp_path / "out"), "--quiet", *extra)


def good_images(folder, names=("a.png", "c.png")):
    folder.mkdir()
    for i, name in enumerate(names):
        Image.fromarray(np.full((36, 40, 3), 40 * i, np.uint8)).save(folder / name)


def test_negative_overlap_is_refused_before_anything_is_written(tmp_path):
    good_images(tmp_path / "in")
    one_line_error(infer(tmp_path, tmp_path / "not_loaded.pt", "--tile", "64", "--overlap", "-40"),
                   "--overlap -40", "at least 0 and smaller than --tile 64")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("tile, overlap, multiple, fragment", [
    (64, 64, 1, "--overlap 64: must be at least 0 and smaller than --tile 64"),
    (64, 80, 1, "smaller than --tile 64"),
    (-8, 0, 1, "--tile -8: must be 0 (no tiling) or a positive multiple of 1"),
    (100, 8, 16, "--tile 100: must be 0 (no tiling) or a positive multiple of 16, the network's input multiple (e.g. 96)"),
])
def test_tile_and_overlap_rules(tile, overlap, multiple, fragment):
    with pytest.raises(UserError) as e:
        check_tiling(tile, overlap, multiple)
    assert fragment in str(e.value)
    check_tiling(96, 95, 16)
    check_tiling(0, 32, 16)  # 0: whole images


def test_tile_not_a_multiple_of_the_network_is_refused_before_writing(tmp_path):
    class Multiple16(torch.nn.Identity):
        input_multiple = 16

    good_images(tmp_path / "in")
    with pytest.raises(UserError, match=r"--tile 40: .* multiple of 16"):
        restore_folder(Multiple16(), tmp_path / "in", tmp_path / "out", tile=40, overlap=8, progress=False)
    assert not (tmp_path / "out").exists()
    restore_folder(Multiple16(), tmp_path / "in", tmp_path / "out", tile=32, overlap=8, progress=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]


def test_a_corrupt_image_among_good_ones_stops_before_anything_is_written(tmp_path):
    good_images(tmp_path / "in")
    (tmp_path / "in" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    weights = saved_student(tmp_path)
    one_line_error(infer(tmp_path, weights), "b.png", "nothing was written", "--skip-bad")
    assert not (tmp_path / "out").exists()
    result = infer(tmp_path, weights, "--skip-bad")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]
    skipped = [line for line in result.stderr.splitlines() if line.startswith("kdvision: skipped")]
    assert len(skipped) == 1 and "b.png" in skipped[0] and "not a readable image" in skipped[0], result.stderr
    assert "skipped 1" in result.stdout


def test_large_overlap_still_blends_exactly(tmp_path):
    class Pointwise(torch.nn.Module):
        def forward(self, x):
            return 0.5 * x + 0.25

    good_images(tmp_path / "in", ("a.png",))
    restore_folder(Pointwise(), tmp_path / "in", tmp_path / "out", tile=16, overlap=12, progress=False)
    out = np.asarray(Image.open(tmp_path / "out" / "a.png")).astype(float)
    assert out.shape == (36, 40, 3) and np.abs(out - np.round(0.25 * 255)).max() <= 1


def test_skip_bad_with_no_readable_image_is_an_error(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match=r"x\.png.*no input image is readable, nothing was written"):
        restore_folder(torch.nn.Identity(), tmp_path / "in", tmp_path / "out", skip_bad=True, progress=False)
    assert not (tmp_path / "out").exists()
