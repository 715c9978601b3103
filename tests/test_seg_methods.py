"""pixel_kd and APD: loss values vs independent computations, APD's gradient routing."""
import pytest
import torch
import torch.nn.functional as F

from kdvision.config import config_from_dict
from kdvision.engine.build import method_params
from kdvision.errors import UserError
from kdvision.losses import pixel_kd_loss
from kdvision.methods import METHODS
from kdvision.models import create
from kdvision.tasks import TASKS


NUM_CLASSES = 4


def make(method: dict, **student_kw):
    cfg = config_from_dict({"task": "segmentation", "data": {"name": "digit_scenes"},
                            "student": {"name": "pspnet_r18", "base_width": 4},
                            "teacher": {"model": {"name": "pspnet_r18", "base_width": 8}}, "method": method})
    torch.manual_seed(0)
    task = TASKS.get("segmentation")(cfg)
    student = create("pspnet_r18", num_classes=NUM_CLASSES, base_width=4, **student_kw)
    teacher = create("deeplabv3_r18", num_classes=NUM_CLASSES, base_width=8)
    cls = METHODS.get(method["name"])
    params, weights = method_params(cfg, cls)
    m = cls(student, [teacher], task, params)
    m.configure_weights(weights)
    return m


def batch(b=2, size=32):
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, NUM_CLASSES, (b, size, size), generator=g)
    y[0, :8] = 255
    y[y == 3] = 2
    y[-1, :, :4] = 3  # class 3 only in the last image
    return {"input": torch.randn(b, 3, size, size, generator=g), "target": y}


def test_pixel_kd_value_and_frozen_teacher():
    m = make({"name": "pixel_kd", "weights": {"pixel_kd": 2.0}, "temperature": 3.0}).train()
    data = batch()
    out, losses = m(data)
    assert set(losses) == {"ce", "ce_aux", "pixel_kd"}
    with torch.no_grad():
        t = m.teacher(data["input"])
    s = out["out"]
    assert losses["pixel_kd"].item() == pytest.approx(2.0 * pixel_kd_loss(s, t, 3.0).item(), rel=1e-5)
    sum(losses.values()).backward()
    assert all(p.grad is None for p in m.teacher.parameters())
    assert not m.teacher.training


def test_bad_choice_names_the_key():
    with pytest.raises(UserError, match="method.reduction"):
        make({"name": "pixel_kd", "reduction": "sum"})
    with pytest.raises(UserError, match="method.pooling"):
        make({"name": "apd", "pooling": "pixel"})


def grads(module):
    return [p.grad for p in module.parameters()]


def nonzero(gs):
    return any(g is not None and g.abs().sum() > 0 for g in gs)


@pytest.mark.parametrize("pooling", ["image", "batch"])
def test_apd_gradient_routing(pooling):
    m = make({"name": "apd", "pooling": pooling, "proj_dim": 16})
    data = batch()
    m.setup(data)
    m.train()
    _, losses = m(data)
    assert set(losses) == {"ce", "ce_aux", "kd", "pkl", "align", "teacher_reg"}
    # the regulariser reaches only the teacher projector
    losses["teacher_reg"].backward(retain_graph=True)
    assert nonzero(grads(m.teacher_proj))
    assert not nonzero(grads(m.student) + grads(m.student_proj) + grads(m.teacher))
    m.zero_grad(set_to_none=True)
    # student losses never reach the teacher or the teacher projector
    sum(v for k, v in losses.items() if k != "teacher_reg").backward()
    assert not nonzero(grads(m.teacher_proj) + grads(m.teacher))
    assert nonzero(grads(m.student_proj)) and nonzero(grads(m.student))


def test_apd_optimisers():
    m = make({"name": "apd", "proj_dim": 16}, head_lr_mult=10.0)
    m.setup(batch())
    (opt,) = m.extra_optimizers()
    assert m.extra_optimizers()[0] is opt
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["lr"] == 1e-5 and opt.defaults["betas"] == (0.9, 0.99)
    assert {id(p) for g in opt.param_groups for p in g["params"]} == {id(p) for p in m.teacher_proj.parameters()}
    groups = m.param_groups()
    ids = [{id(p) for p in g["params"]} for g in groups]
    assert ids[0] == {id(p) for p in m.student.backbone.parameters()} and groups[0]["lr_mult"] == 1.0
    assert {id(p) for p in m.student_proj.parameters()} <= ids[1] and groups[1]["lr_mult"] == 10.0
    everything = set().union(*ids)
    assert not everything & {id(p) for p in m.teacher.parameters()}
    assert not everything & {id(p) for p in m.teacher_proj.parameters()}


def official_style_losses(s, t, y, num_classes, scale=10.0):
    """An independent per-batch computation in the shape of the APD code (masks and means over
    pixels, conv2d with prototypes as kernels, KLDivLoss "mean", CE on scattered logits)."""
    s, t = F.normalize(s, dim=1), F.normalize(t, dim=1)
    yd = F.interpolate(y[:, None].float(), size=s.shape[-2:], mode="nearest")[:, 0]
    ps, pt, cls = [], [], []
    for c in yd.unique():
        if c == 255:
            continue
        mask = (yd == c)
        ps.append(F.normalize(s.permute(0, 2, 3, 1)[mask].mean(0), dim=0))
        pt.append(F.normalize(t.permute(0, 2, 3, 1)[mask].mean(0), dim=0))
        cls.append(int(c))
    ps, pt = torch.stack(ps), torch.stack(pt)
    ls = F.conv2d(s, ps[:, :, None, None]) * scale
    lt = F.conv2d(t, pt[:, :, None, None]) * scale
    pkl = torch.nn.KLDivLoss(reduction="mean")(F.log_softmax(ls, 1), F.softmax(lt, 1))
    align = 0.5 * (1 - (ps * pt).sum(1)).mean()
    full = torch.zeros(s.shape[0], num_classes, *s.shape[-2:])
    full[:, cls] = lt
    full = F.interpolate(full, size=y.shape[-2:], mode="bilinear", align_corners=False)
    return pkl, align, F.cross_entropy(full, y, ignore_index=255)


def test_apd_batch_pooling_matches_official_style_computation():
    m = make({"name": "apd", "pooling": "batch", "kl_reduction": "element", "proj_dim": 16, "align_corners": False})
    g = torch.Generator().manual_seed(3)
    s, t = torch.randn(2, 16, 4, 4, generator=g), torch.randn(2, 16, 4, 4, generator=g)
    y = batch()["target"]
    got = m.perspective_losses(s, t, y, NUM_CLASSES)
    want = official_style_losses(s, t, y, NUM_CLASSES)
    for a, b in zip(got, want):
        assert a.item() == pytest.approx(b.item(), rel=1e-5)


def test_apd_image_pooling_is_the_mean_of_single_images():
    m = make({"name": "apd", "pooling": "image", "proj_dim": 16})
    g = torch.Generator().manual_seed(4)
    s, t = torch.randn(2, 16, 4, 4, generator=g), torch.randn(2, 16, 4, 4, generator=g)
    y = batch()["target"]
    pkl, _, _ = m.perspective_losses(s, t, y, NUM_CLASSES)
    singles = [m.perspective_losses(s[i:i + 1], t[i:i + 1], y[i:i + 1], NUM_CLASSES)[0] for i in range(2)]
    assert pkl.item() == pytest.approx((singles[0].item() + singles[1].item()) / 2, rel=1e-5)
    batch_pkl = make({"name": "apd", "pooling": "batch"}).perspective_losses(s, t, y, NUM_CLASSES)[0]
    assert batch_pkl.item() != pytest.approx(pkl.item(), rel=1e-3)


def test_apd_all_ignored_batch_gives_zero_distillation():
    m = make({"name": "apd", "proj_dim": 16})
    data = batch()
    data["target"][:] = 255
    m.setup(data)
    _, losses = m.train()(data)
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["pkl"].item() == losses["align"].item() == losses["teacher_reg"].item() == 0.0


def test_apd_pools_of_two_images_match_per_pair_batches():
    m = make({"name": "apd", "pooling": "batch", "pool_images": 2})
    g = torch.Generator().manual_seed(5)
    s, t = torch.randn(4, 8, 4, 4, generator=g), torch.randn(4, 8, 4, 4, generator=g)
    y = torch.cat([batch()["target"], batch()["target"].flip(0)])
    whole = m.perspective_losses(s, t, y, NUM_CLASSES)
    m.params.pool_images = 0
    pairs = [m.perspective_losses(s[i:i + 2], t[i:i + 2], y[i:i + 2], NUM_CLASSES) for i in (0, 2)]
    assert whole[0].item() == pytest.approx((pairs[0][0].item() + pairs[1][0].item()) / 2, rel=1e-5)
    assert whole[2].item() != pytest.approx(pairs[0][2].item(), rel=1e-3)
