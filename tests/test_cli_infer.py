"""`kdvision infer` through the real CLI: odd-sized images keep their size, inputs are never touched."""
import numpy as np
import torch
from PIL import Image

from kdvision.config import load_config
from kdvision.engine.build import build_task
from tests.conftest import REPO, run_cli


def test_infer_restores_odd_sized_images_and_never_overwrites(tmp_path):
    config = str(REPO / "configs" / "embedded_haze" / "student.yaml")
    cfg = load_config(config)
    torch.save(build_task(cfg).create_model(cfg.student, "student").state_dict(), tmp_path / "w.pt")
    (tmp_path / "in").mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 50, 3), dtype=np.uint8)).save(tmp_path / "in" / "a.png")
    before = (tmp_path / "in" / "a.png").read_bytes()
    args = ("infer", config, "--checkpoint", str(tmp_path / "w.pt"), "--input", str(tmp_path / "in"),
            "--out", str(tmp_path / "out"), "--quiet")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert Image.open(tmp_path / "out" / "a.png").size == (50, 37)
    again = run_cli(*args)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert (tmp_path / "in" / "a.png").read_bytes() == before
