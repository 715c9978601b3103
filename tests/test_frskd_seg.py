"""FRSKD on segmentation networks: the official self-teacher (second BiFPN + 3x3 head on the
finest level) against the official modules, shapes, loss terms against a direct computation,
gradient routing (KD and feature terms never reach the self-teacher; its CE reaches the backbone)."""
import pytest
import torch
import torch.nn.functional as F

from kdvision.config import config_from_dict
from kdvision.engine.build import method_params
from kdvision.methods import METHODS
from kdvision.methods.loss_weights import parse_weight
from kdvision.models import count_parameters, create, frskd_self_teacher
from kdvision.models.frskd_seg_self_teacher import FRSKDSegSelfTeacher
from kdvision.models.frskd_self_teacher import FRSKDSelfTeacher
from kdvision.tasks import TASKS


NUM_CLASSES = 4


def make(**params):
    method = {"name": "frskd", **params}
    cfg = config_from_dict({"task": "segmentation", "data": {"name": "digit_scenes"},
                            "student": {"name": "pspnet_r18", "base_width": 4}, "method": method})
    torch.manual_seed(0)
    task = TASKS.get("segmentation")(cfg)
    student = create("pspnet_r18", num_classes=NUM_CLASSES, base_width=4)
    cls = METHODS.get("frskd")
    params, weights = method_params(cfg, cls)
    m = cls(student, [], task, params)
    m.configure_weights(weights)
    data = batch()
    m.setup(data)
    return m.train(), data


def batch(b=2, size=32):
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, NUM_CLASSES, (b, size, size), generator=g)
    y[0, :8] = 255
    return {"input": torch.randn(b, 3, size, size, generator=g), "target": y}


def test_official_self_teacher_shapes_on_stride_4_8_8_8_stages():
    torch.manual_seed(0)
    channels, sizes = [4, 8, 16, 32], [16, 8, 8, 8]
    net = FRSKDSegSelfTeacher(channels, 5, channels=12, head_channels=20)
    with torch.no_grad():
        refined, logits = net([torch.randn(2, c, s, s).relu() for c, s in zip(channels, sizes)])
    assert [tuple(r.shape) for r in refined] == [(2, 12, s, s) for s in sizes]
    assert tuple(logits.shape) == (2, 5, 16, 16)  # the head reads the finest level (stride 4)
    assert len(net.bifpn) == 2 and net.bifpn[-1].last and not net.bifpn[0].last


def test_stage_bifpn_variant_shapes():
    torch.manual_seed(0)
    channels, sizes = [4, 8, 16, 32], [16, 8, 8, 8]
    net = frskd_self_teacher(channels, 5, width=2, dense=True)
    with torch.no_grad():
        refined, logits = net([torch.randn(2, c, s, s).relu() for c, s in zip(channels, sizes)])
    assert [tuple(r.shape) for r in refined] == [(2, 2 * c, s, s) for c, s in zip(channels, sizes)]
    assert tuple(logits.shape) == (2, 5, 8, 8)


# Computed by running the official module (MingiJi/FRSKD segmentation/utils/BiFPN.py and the
# classifier2 of segmentation/utils/efficientdet.py, commit 98b87e5182be9b9aba905369efa23c85987e08ad):
# nn.Sequential(BiFPNSeg(64), BiFPNSeg(64, True)) + classifier2(64 -> 256 -> 21 classes).
OFFICIAL_PARAMS_B0 = 200981
# The same official modules at C = 8, 5 classes, every parameter (sorted by official name) drawn
# from torch.randn(generator seeded 123) * 0.5, then six ReLU(randn) levels 32, 16, 8, 4, 2, 1 px
# (batch 2, same generator), train mode: sum of each output level and of the logits.
OFFICIAL_LEVEL_SUMS = [3752.565918, 1189.142334, 281.405396, 77.971245, 23.587288, 4.758189]
OFFICIAL_LOGIT_SUM, OFFICIAL_LOGIT_ABS_SUM = -24322.30078125, 84470.9453125


def official_name(name: str) -> str:
    """kdvision's bifpn/head parameter names -> the official BiFPNSeg / classifier2 names."""
    parts = name.split(".")
    if parts[0] == "bifpn":
        layer, kind, level = parts[1], parts[2], int(parts[3])
        node = f"conv{level + 2}up" if kind == "up" else f"conv{level + 3}dw"
        return ".".join(["bifpn", layer, node] + parts[4:])
    return name


def test_self_teacher_bifpn_and_head_are_the_official_modules():
    net = FRSKDSegSelfTeacher([64] * 6, 21, channels=64, head_channels=256)
    assert count_parameters(net.bifpn) + count_parameters(net.head) == OFFICIAL_PARAMS_B0
    net = FRSKDSegSelfTeacher([8] * 6, 5, channels=8, head_channels=256)
    named = {official_name(f"bifpn.{k}"): v for k, v in net.bifpn.named_parameters()}
    named.update({f"head.{k}": v for k, v in net.head.named_parameters()})
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for k in sorted(named):
            named[k].copy_(torch.randn(named[k].shape, generator=g) * 0.5)
        xs = [torch.randn(2, 8, s, s, generator=g).relu() for s in (32, 16, 8, 4, 2, 1)]
        levels = net.bifpn(xs)
        logits = net.head(levels[0])
    assert [float(x.sum()) for x in levels] == pytest.approx(OFFICIAL_LEVEL_SUMS, rel=1e-5)
    assert float(logits.sum()) == pytest.approx(OFFICIAL_LOGIT_SUM, rel=1e-5)
    assert float(logits.abs().sum()) == pytest.approx(OFFICIAL_LOGIT_ABS_SUM, rel=1e-5)


def test_method_detects_segmentation_and_uses_its_defaults():
    m, data = make()
    assert m.dense and isinstance(m.self_teacher, FRSKDSegSelfTeacher)
    assert m.self_teacher.channels == m.student.stage_channels
    assert (m.weight("kd"), m.weight("feature"), m.temperature()) == (1.0, 50.0, 1.0)
    out, losses = m(data)
    assert set(losses) == {"ce", "ce_aux", "ce_self_teacher", "kd", "feature"}
    assert tuple(out["out"].shape) == (2, NUM_CLASSES, 32, 32)
    m.set_params({"weights": {"kd": parse_weight(3.0, "kd")}})
    assert (m.weight("kd"), m.weight("feature")) == (3.0, 50.0)
    legacy, _ = make(dense_self_teacher="stage_bifpn")
    assert isinstance(legacy.self_teacher, FRSKDSelfTeacher) and legacy.self_teacher.dense


def attention(f):  # phi(F): per-sample L2-normalised mean over channels of F^2
    a = f.pow(2).mean(1).flatten(1)
    return a / a.norm(dim=1, keepdim=True)


def test_loss_terms_match_a_direct_computation():
    alpha, beta, t = 2.0, 30.0, 2.0
    m, data = make(weights={"kd": alpha, "feature": beta}, temperature=t)
    captured = []
    hooks = [m.student.get_submodule(p).register_forward_hook(lambda mod, i, o: captured.append(o))
             for p in m.student.stages]
    out, losses = m(data)
    for h in hooks:
        h.remove()
    refined, st_logits = m.self_teacher(captured)  # same inputs, same BN batch statistics
    y = data["target"]
    up = lambda z: F.interpolate(z, size=y.shape[-2:], mode="bilinear", align_corners=False)
    zs, zt = up(out["out"]), up(st_logits)
    # KD: T^2 * per-pixel KL(p_t || p_s), summed over classes, averaged over all B*H*W pixels
    ps, pt = torch.softmax(zs / t, 1), torch.softmax(zt / t, 1)
    kl = (pt * (pt.log() - ps.log())).sum(1)
    assert losses["kd"].item() == pytest.approx(alpha * t * t * kl.mean().item(), rel=1e-4)
    # feature: sum over stages of the mean squared attention-map difference
    feature = sum((attention(f.relu()) - attention(r)).pow(2).mean() for f, r in zip(captured, refined))
    assert losses["feature"].item() == pytest.approx(beta * feature.item(), rel=1e-4)
    # the self-teacher's CE: its stride-4 logits upsampled to the labels, ignore 255
    valid = y != 255
    logp = torch.log_softmax(zt, 1).permute(0, 2, 3, 1)[valid]
    ce = -logp.gather(1, y[valid][:, None]).mean()
    assert losses["ce_self_teacher"].item() == pytest.approx(ce.item(), rel=1e-4)


def grads_nonzero(module):
    return [p.grad is not None and bool(p.grad.abs().sum() > 0) for p in module.parameters()]


def test_gradient_routing():
    m, data = make()
    _, losses = m(data)
    (losses["kd"] + losses["feature"]).backward(retain_graph=True)
    assert not any(grads_nonzero(m.self_teacher))  # distillation terms never train the self-teacher
    assert any(grads_nonzero(m.student.backbone)) and any(grads_nonzero(m.student.classifier))
    m.zero_grad(set_to_none=True)
    losses["ce_self_teacher"].backward()
    assert all(grads_nonzero(m.self_teacher.head))
    assert any(grads_nonzero(m.student.backbone.layer1))  # its CE flows into the shared backbone
    assert not any(grads_nonzero(m.student.classifier)) and not any(grads_nonzero(m.student.decoder))
