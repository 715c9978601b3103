"""FRSKD on segmentation networks: the dense self-teacher's shapes, loss terms against a direct
computation, gradient routing (KD and feature terms never reach the self-teacher; its CE reaches
the backbone)."""
import pytest
import torch
import torch.nn.functional as F

from kdvision.config import config_from_dict, params_from_dict
from kdvision.methods import METHODS
from kdvision.models import create, frskd_self_teacher
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
    m = cls(student, [], task, params_from_dict(cls.Params, method, "method", "test.yaml"))
    data = batch()
    m.setup(data)
    return m.train(), data


def batch(b=2, size=32):
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, NUM_CLASSES, (b, size, size), generator=g)
    y[0, :8] = 255
    return {"input": torch.randn(b, 3, size, size, generator=g), "target": y}


def test_dense_self_teacher_shapes_on_stride_4_8_8_8_stages():
    torch.manual_seed(0)
    channels, sizes = [4, 8, 16, 32], [16, 8, 8, 8]
    net = frskd_self_teacher(channels, 5, width=2, dense=True)
    with torch.no_grad():
        refined, logits = net([torch.randn(2, c, s, s).relu() for c, s in zip(channels, sizes)])
    assert [tuple(r.shape) for r in refined] == [(2, 2 * c, s, s) for c, s in zip(channels, sizes)]
    assert tuple(logits.shape) == (2, 5, 8, 8)


def test_method_detects_segmentation_and_uses_its_defaults():
    m, data = make()
    assert m.dense and m.self_teacher.dense
    assert m.self_teacher.channels == m.student.stage_channels
    assert m.weights() == (1.0, 50.0, 1.0)
    out, losses = m(data)
    assert set(losses) == {"ce", "ce_aux", "ce_self_teacher", "kd", "feature"}
    assert tuple(out["out"].shape) == (2, NUM_CLASSES, 32, 32)
    m.set_params({"alpha": 3.0})
    assert m.weights() == (3.0, 50.0, 1.0)


def attention(f):  # phi(F): per-sample L2-normalised mean over channels of F^2
    a = f.pow(2).mean(1).flatten(1)
    return a / a.norm(dim=1, keepdim=True)


def test_loss_terms_match_a_direct_computation():
    alpha, beta, t = 2.0, 30.0, 2.0
    m, data = make(alpha=alpha, beta=beta, temperature=t)
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
    # the self-teacher's CE: its stride-8 logits upsampled to the labels, ignore 255
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
    assert all(grads_nonzero(m.self_teacher.fc))
    assert any(grads_nonzero(m.student.backbone.layer1))  # its CE flows into the shared backbone
    assert not any(grads_nonzero(m.student.classifier)) and not any(grads_nonzero(m.student.decoder))
