"""The restoration task (losses, evaluation, pictures) and the ktdn / srktdn methods."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdvision.config import config_from_dict, params_from_dict
from kdvision.errors import UserError
from kdvision.losses import lab_mse, laplacian_pyramid_l1
from kdvision.methods.ktdn import KTDN, KTDNParams, SRKTDN
from kdvision.methods.loss_weights import parse_weight
from kdvision.metrics import psnr_per_image, ssim_per_image
from kdvision.models.restoration.ktdn import ktdn, ktdn_teacher, srktdn
from kdvision.registry import METHODS
from kdvision.tasks.restoration import RestorationTask


def make_task(**eval_options):
    cfg = config_from_dict({"task": "restoration", "data": {"name": "embedded_haze"},
                            "student": {"name": "ktdn"}, "method": {"name": "ktdn"}, "eval": eval_options})
    return RestorationTask(cfg)


def batch(n=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(n, 3, size, size, generator=g)
    return {"input": (0.6 * target + 0.35).clamp(0, 1), "target": target}


class Identity(nn.Module):
    input_multiple = 1

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return x * self.scale


class Shifted(nn.Module):
    """Not flip-equivariant: out(x) = x shifted by one pixel, so the x8 ensemble changes it."""

    input_multiple = 4

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return torch.roll(x, 1, dims=-1) * self.w


def test_task_loss_is_the_weighted_reference_sum():
    task = make_task()
    b = batch()
    out = torch.rand(2, 3, 32, 32) * 1.4 - 0.2  # partly outside [0, 1]
    terms = task.loss(out, b)
    pred = out.clamp(0, 1)
    assert set(terms) == {"l1", "laplacian", "lab"}
    assert float(terms["l1"]) == pytest.approx(float((pred - b["target"]).abs().mean()), rel=1e-6)
    assert float(terms["laplacian"]) == pytest.approx(0.3 * float(laplacian_pyramid_l1(pred, b["target"])), rel=1e-6)
    assert float(terms["lab"]) == pytest.approx(0.5 * float(lab_mse(pred, b["target"])), rel=1e-6)
    only_l1 = make_task(laplacian_weight=0.0, lab_weight=0.0, l1_weight=2.0).loss(out, b)
    assert set(only_l1) == {"l1"} and float(only_l1["l1"]) == pytest.approx(2 * float(terms["l1"]), rel=1e-6)


def test_task_options_are_validated():
    with pytest.raises(UserError) as e:
        make_task(colour="lab")
    assert "eval.colour" in str(e.value)
    with pytest.raises(UserError) as e:
        make_task(ensemble=True)
    assert "eval.ensemble" in str(e.value)


def test_evaluate_reports_psnr_ssim_and_colour_space():
    b = batch(3, size=36)  # not a multiple of anything: padded and cropped back
    loader = [b]
    for colour in ("rgb", "y"):
        report = make_task(colour=colour).evaluate(Identity(), loader, torch.device("cpu"), lambda: torch.no_grad())
        expected_psnr = psnr_per_image(b["input"], b["target"], channel=colour)
        expected_ssim = ssim_per_image(b["input"], b["target"], channel=colour)
        assert report["colour"] == colour and report["images"] == 3
        assert report["psnr"] == pytest.approx(float(expected_psnr.mean()), abs=1e-4)
        assert report["ssim"] == pytest.approx(float(expected_ssim.mean()), abs=1e-4)


def test_self_ensemble_averages_the_eight_symmetries():
    task = make_task(self_ensemble=True)
    x = torch.rand(1, 3, 8, 12)
    out = task.restore(Shifted(), x)
    outs = []
    for k in range(8):
        v = x
        v = v.flip(-1) if k & 1 else v
        v = v.flip(-2) if k & 2 else v
        v = v.transpose(-1, -2) if k & 4 else v
        y = torch.roll(v, 1, dims=-1)
        y = y.transpose(-1, -2) if k & 4 else y
        y = y.flip(-2) if k & 2 else y
        y = y.flip(-1) if k & 1 else y
        outs.append(y)
    assert torch.allclose(out, torch.stack(outs).mean(0).clamp(0, 1), atol=1e-6)
    assert not torch.allclose(out, make_task().restore(Shifted(), x))


def test_pictures_grid():
    model = Identity()
    with torch.no_grad():
        model.scale.fill_(0.5)  # the output differs from the input and the target
    b = batch(3, size=32)
    image = make_task().pictures(model, b)
    assert image.dtype == np.uint8 and image.shape == (3 * 32 + 2 * 2, 3 * 32 + 2 * 2, 3)

    def as_picture(t):
        return (t.numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)

    for row in range(3):  # each row is [input | output | target] of one image, in batch order
        top = row * 34
        for col, expected in enumerate((b["input"][row], 0.5 * b["input"][row], b["target"][row])):
            left = col * 34
            assert np.array_equal(image[top:top + 32, left:left + 32], as_picture(expected)), (row, col)
    assert (image[32:34] == 255).all() and (image[:, 32:34] == 255).all()  # white lines between


def make_method(cls=KTDN, student=None, weights=None, **params):
    torch.manual_seed(0)
    student = student or ktdn()
    method = cls(student, [ktdn_teacher()], make_task(), KTDNParams(**params))
    method.configure_weights(weights or {})
    return method


def test_ktdn_transfer_loss_touches_only_the_student():
    method = make_method()
    b = batch()
    method.setup(b)
    method.train()
    out, losses = method(b)
    assert set(losses) == {"l1", "laplacian", "lab", "kt"}
    assert not method.teacher.training  # the frozen teacher stays in eval mode
    losses["kt"].backward()
    student, teacher = method.student, method.teacher
    assert all(p.grad is None for p in teacher.parameters())
    assert not any(p.requires_grad for p in teacher.parameters())
    assert student.mid.conv1.weight.grad is not None and student.encoder.conv1[0].weight.grad.abs().sum() > 0
    # the transfer term reaches only what lies before the tapped feature
    assert all(p.grad is None for p in student.decoder.parameters())
    assert all(p.grad is None for p in student.tail.parameters())
    group_ids = {id(p) for g in method.param_groups() for p in g["params"]}
    assert group_ids == {id(p) for p in student.parameters()}


def test_ktdn_transfer_term_compares_with_the_teacher_on_the_clean_image():
    method = make_method(weights={"kt": 2.0})
    b = batch()
    method.eval()
    with torch.no_grad():
        _, losses = method(b)
        seen = {}
        hs = method.student.mid.register_forward_hook(lambda m, i, o: seen.__setitem__("s", o))
        ht = method.teacher.mid.register_forward_hook(lambda m, i, o: seen.__setitem__("t", o))
        method.student(b["input"])
        method.teacher(b["target"])
        hs.remove(), ht.remove()
    expected = 2.0 * F.l1_loss(seen["s"], seen["t"])
    assert float(losses["kt"]) == pytest.approx(float(expected), rel=1e-5)
    with torch.no_grad():  # with the hazy input the teacher's feature would differ
        _, (hazy,) = method.teacher_taps.run(method.teacher, b["input"])
    assert not torch.allclose(seen["t"], hazy)


def test_stage_switch_and_srktdn_registration():
    method = make_method(SRKTDN, student=srktdn())
    method.set_params({"weights": {"kt": parse_weight(0.0, "kt")}})
    _, losses = method(batch())
    assert "kt" not in losses and set(losses) == {"l1", "laplacian", "lab"}
    assert METHODS.get("srktdn") is SRKTDN and METHODS.get("ktdn") is KTDN
    assert KTDN.teachers_required == "one"


def test_mismatched_bottlenecks_are_named():
    torch.manual_seed(0)
    method = KTDN(ktdn(), [ktdn_teacher(student_width=512)], make_task(), KTDNParams())
    with pytest.raises(UserError) as e:
        method.setup(batch(1))
    assert "mid" in str(e.value) and "student_width" in str(e.value)
    with pytest.raises(UserError):
        KTDN(ktdn(), [ktdn_teacher()], make_task(), KTDNParams(teacher_tap="nowhere"))


@pytest.mark.parametrize("path", ["configs/embedded_haze/teacher_ae.yaml", "configs/embedded_haze/student.yaml",
                                  "configs/embedded_haze/ktdn.yaml", "configs/embedded_haze/srktdn.yaml",
                                  "configs/nh_haze/teacher_ae.yaml", "configs/nh_haze/srktdn.yaml"])
def test_recipes_validate(path):
    from pathlib import Path

    from kdvision.config import load_config, params_from_dict
    from kdvision.models import MODELS

    root = Path(__file__).resolve().parents[1]
    cfg = load_config(root / path)
    task = RestorationTask(cfg)  # validates the eval section
    cls = METHODS.get(cfg.method["name"])
    params_from_dict(cls.Params, cfg.method, "method", cfg.source)
    assert (cls.teachers_required == "one") == (cfg.teacher is not None)
    for spec in [cfg.student] + ([cfg.teacher.model] if cfg.teacher else []):
        assert spec["name"] in MODELS
    if cfg.teacher:
        assert (root / path).parent.joinpath(cfg.teacher.recipe).is_file()
    assert task.metric == "psnr"


def test_models_build_without_reading_the_data():
    cfg = config_from_dict({"task": "restoration", "data": {"name": "nh_haze", "root": "/nonexistent/NH-HAZE"},
                            "student": {"name": "srktdn"}, "method": {"name": "student"}})
    model = RestorationTask(cfg).create_model(cfg.student, "student")  # no UserError about the folder
    assert model.sr_branch is not None


def test_eval_mode_after_epoch_freezes_the_batch_norm_statistics():
    """The official SRKTDN script trains in eval mode from epoch 101 (``train_mode = 100``)."""
    method = make_method(eval_mode_after_epoch=2)
    b = batch()
    method.setup(b)
    method.train()
    bn = next(m for m in method.student.modules() if isinstance(m, nn.BatchNorm2d))
    method.set_progress(1.5)
    before = bn.running_mean.clone()
    method(b)
    assert method.student.training and not torch.equal(before, bn.running_mean)  # epoch 2: train mode
    method.set_progress(2.0)
    before = bn.running_mean.clone()
    _, losses = method(b)
    assert not method.student.training and torch.equal(before, bn.running_mean)  # epoch 3: statistics frozen
    method.train()  # the trainer's next epoch keeps it in eval mode
    assert not method.student.training
    sum(losses.values()).backward()  # and it still learns
    assert method.student.encoder.conv1[0].weight.grad.abs().sum() > 0
    with pytest.raises(UserError, match="'method.eval_mode_after_epoch' must be an integer >= 0"):
        params_from_dict(KTDNParams, {"name": "ktdn", "eval_mode_after_epoch": -1}, "method", "c.yaml")
