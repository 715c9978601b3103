"""Two-stage knowledge learning ("tkl"): routing, projector shapes, stages, bad input."""
import warnings

import pytest
import torch

from kdvision.config import params_from_dict
from kdvision.errors import UserError
from kdvision.methods.two_stage import TwoStageKnowledgeLearning, TwoStageParams
from kdvision.models.restoration.restoration_unet import WeatherUNet


DOMAINS = ["haze", "rain", "snow"]


#: the facts about the training data tkl's setup reads (``Task.method_info()``)
INFO = {"domains": DOMAINS, "data_name": "embedded_weather"}


class TinyPerceptual(torch.nn.Module):
    """Stands in for VGG-19 (same constructor, five feature maps) to keep the tests fast."""

    def __init__(self, weights=None, allow_untrained=False, normalize_input=False):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.requires_grad_(False)

    def forward(self, x):
        f = torch.relu(self.conv(x))
        return [f, f * 0.5, torch.nn.functional.avg_pool2d(f, 2), f.mean(1, keepdim=True), f ** 2]


@pytest.fixture
def tiny_vgg(monkeypatch):
    monkeypatch.setattr("kdvision.methods.two_stage.VGG19Features", TinyPerceptual)


def tiny(width=2):
    return WeatherUNet(width=width, bottleneck_blocks=1, level_blocks=1)


def make_method(teacher_domains=("haze", "rain", "snow"), teacher_width=4, weights=None,
                **params):
    torch.manual_seed(0)
    teachers = [tiny(teacher_width) for _ in teacher_domains]
    seen = [[] for _ in teachers]
    for k, t in enumerate(teachers):
        t.register_forward_pre_hook(lambda _m, args, k=k: seen[k].append(args[0].clone()))
    p = TwoStageParams(allow_untrained_vgg=True, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = TwoStageKnowledgeLearning(tiny(2), teachers, params=p, teacher_domains=list(teacher_domains))
        m.configure_weights(weights or {})
    return m, seen


def batch(domain_ids, size=32):
    g = torch.Generator().manual_seed(5)
    n = len(domain_ids)
    return {"input": torch.rand(n, 3, size, size, generator=g), "target": torch.rand(n, 3, size, size, generator=g),
            "domain": torch.tensor(domain_ids)}


def test_each_teacher_receives_only_its_samples_and_the_student_all(tiny_vgg):
    m, seen = make_method(teacher_domains=("snow", "haze", "rain"))  # order differs from the data's
    b = batch([2, 0, 1, 0, 2, 1, 1])
    m.setup(b, INFO)
    for s in seen:
        s.clear()
    out, losses = m(b)
    assert out.shape == b["input"].shape
    assert set(losses) == {"l1_teacher", "pfe", "pfv", "scr"}
    for k, name in enumerate(("snow", "haze", "rain")):
        idx = [i for i, d in enumerate(b["domain"].tolist()) if DOMAINS[d] == name]
        assert len(seen[k]) == 1 and torch.equal(seen[k][0], b["input"][idx])
    sum(losses.values()).backward()
    assert all(p.grad is None for t in m.teachers for p in t.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.student.parameters())
    assert all(p.grad is not None for p in m.teacher_projectors.parameters())  # PFE and PFV train them


def test_projector_shapes_follow_the_taps(tiny_vgg):
    m, _ = make_method(teacher_width=4)  # teachers twice as wide as the student (width 2)
    b = batch([0, 1, 2])
    m.setup(b, INFO)
    student_channels = [8, 16, 32, 32]  # enc2, enc3, enc4, bottleneck of width 2
    teacher_channels = [16, 32, 64, 64]
    assert len(m.student_projectors) == 4 and len(m.teacher_projectors) == 3
    for q, (cs, ct) in enumerate(zip(student_channels, teacher_channels)):
        sp = m.student_projectors[q]
        assert (sp[0].in_channels, sp[0].out_channels, sp[2].out_channels) == (cs, cs // 2, cs // 2)
        for k in range(3):
            tp, ip = m.teacher_projectors[k][q], m.inverse_projectors[k][q]
            assert (tp[0].in_channels, tp[0].out_channels, tp[2].out_channels) == (ct, cs // 2, cs // 2)
            assert (ip[0].in_channels, ip[0].out_channels, ip[2].out_channels) == (cs // 2, ct, ct)
            assert tp[0].bias is None and tp[0].kernel_size == (3, 3)


def test_stage_switch_to_knowledge_examination_and_state_dict(tiny_vgg):
    m, seen = make_method()
    b = batch([0, 1, 2, 0, 1, 2])
    m.setup(b, INFO)
    for s in seen:
        s.clear()
    m.set_params({"collation": False})
    out, losses = m(b)
    assert set(losses) == {"l1", "hcr"}
    assert torch.isclose(losses["l1"], (out - b["target"]).abs().mean())
    assert all(len(s) == 0 for s in seen)  # no teacher runs in stage 2
    state = m.trainable_state_dict()
    assert not any(k.startswith(("teachers.", "perceptual.")) for k in state)
    assert any(k.startswith("teacher_projectors.") for k in state)
    m2, _ = make_method()
    m2.setup(b, INFO)
    m2.load_trainable_state_dict(state)
    assert torch.equal(m2.student.head[1].weight, m.student.head[1].weight)


def test_official_variants_select_target_positive_and_own_negative():
    """With the real (untrained) VGG-19."""
    m, _ = make_method(scr_positive="target", scr_negatives="own",
                       weights={"pfe": 0.0, "pfv": 0.0, "l1_teacher": 0.0})
    b = batch([0, 1, 2])
    m.setup(b, INFO)
    _, losses = m(b)
    assert set(losses) == {"scr"}
    from kdvision.losses.contrastive import contrastive_regularization
    assert type(m.perceptual).__name__ == "VGG19Features"
    with torch.no_grad():
        pred = m.student(b["input"])
        want = 0.1 * contrastive_regularization(pred, b["target"], [b["input"]], m.perceptual)
    assert torch.isclose(losses["scr"], want, rtol=1e-4)


def test_bad_input_is_one_line_user_error(tiny_vgg):
    m, _ = make_method(teacher_domains=("haze", "rain", "fog"))
    with pytest.raises(UserError, match="'fog' is not a weather type of data"):
        m.setup(batch([0, 1, 2]), INFO)
    m, _ = make_method(teacher_domains=("haze", "rain"))
    with pytest.raises(UserError, match="'snow' samples but no teacher serves them"):
        m.setup(batch([0, 1, 2]), INFO)
    m, _ = make_method()
    m.setup(batch([0, 1, 2]), INFO)
    with pytest.raises(UserError, match="has no 'rain' samples"):
        m(batch([0, 2, 2]))
    with pytest.raises(UserError, match="'method.scr_positive' must be one of teacher, target"):
        params_from_dict(TwoStageParams, {"name": "tkl", "scr_positive": "gt"}, "method", "c.yaml")


def test_setup_reads_the_weather_types_from_info_and_forward_needs_it(tiny_vgg):
    m, _ = make_method()
    with pytest.raises(UserError, match="names no weather types"):
        m.setup(batch([0, 1, 2]), {"data_name": "plain"})
    m, _ = make_method(teacher_domains=("snow", "haze", "rain"))
    with pytest.raises(RuntimeError, match="setup"):
        m(batch([0, 1, 2]))
    m.setup(batch([0, 1, 2]), {"domains": ["snow", "rain", "haze"]})  # the data's own order
    assert m.domain_to_teacher == {0: 0, 1: 2, 2: 1}
