"""APD's defaults and the PSPNet/APD upsampling (align_corners) against numbers from the
official code (tests/fixtures/official/apd_losses.json: dvlab-research/APD tool/train.py and
model/pspnet.py), on 8k+1 label maps (65 = 8 * 8 + 1, logits at 9 x 9)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from kdvision.config import load_config, params_from_dict
from kdvision.losses import pixel_kd_loss
from kdvision.methods.apd import APD
from kdvision.methods.pixel_kd import PixelKD, to_label_size
from kdvision.models import create
from kdvision.models.segmentation.heads import PyramidPooling
from official_fixtures import fill_seeded, load_fixture, seeded


@pytest.fixture(scope="module")
def fx():
    return load_fixture("apd_losses")


def labels():
    g = torch.Generator().manual_seed(24)
    y = torch.randint(0, 4, (2, 65, 65), generator=g)  # class 4 absent
    y[0, :20, :30] = 255
    y[1, 40:, :] = 1
    return y


@pytest.mark.parametrize("temperature,key", [(1.0, "kd"), (2.0, "kd_t2")])
def test_pixel_kd_with_apd_defaults_equals_official_criterion_kd(fx, temperature, key):
    p = APD.Params()
    s, t = seeded(20, 2, 5, 9, 9), seeded(21, 2, 5, 9, 9)
    kd = pixel_kd_loss(to_label_size(s, (65, 65), True), to_label_size(t, (65, 65), True), temperature,
                       p.kl_reduction)
    assert kd.item() == pytest.approx(fx[key], rel=1e-5)
    paper = pixel_kd_loss(to_label_size(s, (65, 65), True), to_label_size(t, (65, 65), True), temperature, "pixel")
    assert paper.item() == pytest.approx(5 * fx[key], rel=1e-5)  # the paper's pixel mean: C = 5 times larger
    misaligned = pixel_kd_loss(to_label_size(s, (65, 65), False), to_label_size(t, (65, 65), False), temperature,
                               p.kl_reduction)
    assert misaligned.item() != pytest.approx(fx[key], rel=1e-3)


def test_apd_default_perspective_losses_equal_official(fx):
    p = APD.Params()
    assert (p.pooling, p.pool_images, p.kl_reduction) == ("batch", 0, "element")
    method = SimpleNamespace(params=p, align_corners=True)  # a PSPNet student's convention
    pkl, align, reg = APD.perspective_losses(method, seeded(22, 2, 16, 9, 9), seeded(23, 2, 16, 9, 9), labels(), 5)
    assert pkl.item() == pytest.approx(fx["perspective_kl"], rel=1e-5)
    assert align.item() == pytest.approx(fx["align"], rel=1e-5)
    assert reg.item() == pytest.approx(fx["teacher_reg"], rel=1e-5)
    paper = SimpleNamespace(params=APD.Params(pooling="image", kl_reduction="pixel"), align_corners=True)
    assert APD.perspective_losses(paper, seeded(22, 2, 16, 9, 9), seeded(23, 2, 16, 9, 9), labels(), 5)[0].item() \
        != pytest.approx(fx["perspective_kl"], rel=1e-2)


def test_pyramid_pooling_with_align_corners_equals_official_ppm(fx):
    ppm = PyramidPooling(32, 512, align_corners=True)
    fill_seeded(ppm, 30)
    ppm.eval()
    with torch.no_grad():
        out = ppm(seeded(31, 2, 32, 9, 9))
    assert torch.allclose(out.mean((0, 2, 3)), torch.tensor(fx["ppm_channel_means"]), atol=1e-5, rtol=1e-4)
    assert torch.allclose(out.pow(2).mean((0, 2, 3)), torch.tensor(fx["ppm_channel_mean_squares"]), atol=1e-5,
                          rtol=1e-4)
    ppm.align_corners = False
    with torch.no_grad():
        other = ppm(seeded(31, 2, 32, 9, 9))
    assert not torch.allclose(other.mean((0, 2, 3)), torch.tensor(fx["ppm_channel_means"]), atol=1e-5, rtol=1e-4)


def test_pspnet_follows_the_official_upsampling_and_deeplab_keeps_false():
    psp = create("pspnet_r18", num_classes=3, base_width=4).eval()
    assert psp.align_corners and psp.decoder.align_corners
    assert not create("deeplabv3_r18", num_classes=3, base_width=4).align_corners
    assert not create("pspnet_r18", num_classes=3, base_width=4, align_corners=False).align_corners
    seen = {}
    psp.classifier.register_forward_hook(lambda m, i, o: seen.update(logits=o))
    x = seeded(40, 1, 3, 33, 33)  # 8k+1
    with torch.no_grad():
        out = psp(x)
    want = torch.nn.functional.interpolate(seen["logits"], (33, 33), mode="bilinear", align_corners=True)
    assert torch.allclose(out, want)
    assert torch.allclose(out[..., ::8, ::8], seen["logits"], atol=1e-6)  # 8k+1: corners and grid align


def test_methods_take_the_student_convention_unless_told():
    student = create("pspnet_r18", num_classes=3, base_width=4)
    teacher = create("pspnet_r18", num_classes=3, base_width=4)
    assert APD(student, [teacher], None, APD.Params()).align_corners is True
    assert APD(student, [teacher], None, APD.Params(align_corners=False)).align_corners is False
    dl = create("deeplabv3_r18", num_classes=3, base_width=4)
    assert APD(dl, [teacher], None, APD.Params()).align_corners is False
    assert PixelKD.Params().align_corners is None


@pytest.mark.parametrize("recipe", ["cityscapes/apd_pspnet_r101_r18", "ade20k/apd_pspnet_r101_r18"])
def test_shipped_apd_recipes_run_the_official_settings(recipe):
    cfg = load_config(recipe)
    p = params_from_dict(APD.Params, cfg.method, "method", cfg.source)
    assert (p.pooling, p.pool_images, p.kl_reduction, p.temperature, p.scale) == ("batch", 2, "element", 1.0, 10.0)
    assert cfg.student["name"].startswith("pspnet_") and "align_corners" not in cfg.student  # default true
    assert cfg.data["crop_size"] % 8 == 1  # 713 / 473: the 8k+1 crops align_corners is made for


def test_task_upsamples_small_logits_as_eval_align_corners_says():
    from kdvision.config import config_from_dict
    from kdvision.tasks import TASKS
    logits, y = seeded(50, 2, 5, 9, 9), labels()
    want = torch.nn.functional.cross_entropy(to_label_size(logits, (65, 65), True), y, ignore_index=255)
    for align, equal in ((True, True), (False, False)):
        cfg = config_from_dict({"task": "segmentation", "data": {"name": "digit_scenes"},
                                "student": {"name": "pspnet_r18"}, "eval": {"align_corners": align}})
        ce = TASKS.get("segmentation")(cfg).loss(logits, {"target": y})["ce"]
        assert (ce.item() == pytest.approx(want.item(), rel=1e-6)) is equal
