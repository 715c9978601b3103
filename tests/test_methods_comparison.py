"""The comparison-table methods: each term equals its loss on the tensors the taps should record,
gradients reach the student and the connectors but never the teacher, defaults are the official ones."""
import pytest
import torch
import torch.nn.functional as F

from kdvision.losses.dkd import dkd_terms
from kdvision.losses.multi_teacher import multi_teacher_kd_loss
from kdvision.losses.nst import nst_loss
from kdvision.losses.relational import pkt_loss, rkd_angle_loss, rkd_distance_loss
from kdvision.methods import METHODS
from kdvision.models import create


class CETask:
    loss_terms = ("ce",)

    def loss(self, output, batch):
        return {"ce": F.cross_entropy(output, batch["target"])}


#: the training-data facts a method's setup reads (CRD: every sample's class)
INFO = {"labels": torch.arange(40) % 10, "num_samples": 40}


def pair(seed=0):
    torch.manual_seed(seed)
    return create("resnet8", num_classes=10), create("resnet8x4", num_classes=10)


def batch(n=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {"input": torch.randn(n, 3, 8, 8, generator=g), "target": torch.arange(n) % 10,
            "index": torch.arange(n) * 3 % 40}


def build(name, teachers=1, **params):
    student, teacher = pair()
    cls = METHODS.get(name)
    extra = [create("resnet8x4", num_classes=10) for _ in range(teachers - 1)]
    method = cls(student, [teacher] + extra, CETask(), cls.Params(**params))
    b = batch()
    method.setup(b, INFO)
    method.train()
    return method, b


def pooled(model, x):
    """The fc input of a CIFAR ResNet, by hand."""
    h = model.relu(model.bn1(model.conv1(x)))
    return model.avgpool(model.layer3(model.layer2(model.layer1(h)))).flatten(1)


def stage_outputs(model, x):
    h = model.relu(model.bn1(model.conv1(x)))
    out = []
    for layer in (model.layer1, model.layer2, model.layer3):
        h = layer(h)
        out.append(h)
    return out


def assert_routing(method, b, extra_modules=()):
    _, losses = method(b)
    sum(losses.values()).backward()
    assert all(p.grad is None for t in method.teachers for p in t.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.student.parameters())
    for m in extra_modules:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters()), type(m).__name__


def test_dkd_terms_defaults_and_warmup():
    method, b = build("dkd")
    _, raw = method.compute(b)
    with torch.no_grad():
        expected = dkd_terms(method.student(b["input"]), method.teacher(b["input"]), b["target"], 4.0)
    method.train()
    assert set(raw) == {"ce", "tckd", "nckd"}
    assert raw["nckd"].item() == pytest.approx(expected[1].item(), rel=1e-4)
    # mdistiller: min(epoch / 20, 1) * beta with 1-based epochs
    for epoch, factor in [(0, 1 / 20), (4, 5 / 20), (19, 1.0), (100, 1.0)]:
        method.set_progress(epoch + 0.5)
        assert method.weight("nckd") == pytest.approx(8.0 * factor)
        assert method.weight("tckd") == pytest.approx(1.0 * factor)
    assert method.weight("ce") == 1.0
    assert_routing(method, b)


def test_dist_terms_on_the_logits():
    method, b = build("dist")
    _, raw = method.compute(b)
    assert set(raw) == {"ce", "inter", "intra"} and method.weight("inter") == 2.0
    assert_routing(method, b)


@pytest.mark.parametrize("name", ["rkd", "pkt"])
def test_embedding_methods_use_the_classifier_input(name):
    method, b = build(name)
    _, raw = method.compute(b)
    method.eval()
    with torch.no_grad():
        fs = pooled(method.student.train(), b["input"])
        ft = pooled(method.teacher, b["input"])
    if name == "rkd":
        assert raw["rkd_distance"].item() == pytest.approx(rkd_distance_loss(fs, ft).item(), rel=1e-4)
        assert raw["rkd_angle"].item() == pytest.approx(rkd_angle_loss(fs, ft).item(), rel=1e-4)
        assert (method.weight("rkd_distance"), method.weight("rkd_angle")) == (25.0, 50.0)
    else:
        assert raw["pkt"].item() == pytest.approx(pkt_loss(fs, ft).item(), rel=1e-4)
        assert method.weight("pkt") == 30000.0
    method.train()
    assert_routing(method, b)


def test_nst_sums_over_all_stages():
    method, b = build("nst")
    _, raw = method.compute(b)
    with torch.no_grad():
        s = stage_outputs(method.student, b["input"])
        t = stage_outputs(method.teacher, b["input"])
    assert raw["nst"].item() == pytest.approx(sum(nst_loss(x, y) for x, y in zip(s, t)).item(), rel=1e-4)
    assert method.weight("nst") == 50.0
    assert_routing(method, b)


def test_vid_builds_a_regressor_and_variance_per_stage_and_trains_them():
    method, b = build("vid")
    assert len(method.regressors) == 3 and [p.numel() for p in method.log_scales] == [64, 128, 256]
    assert F.softplus(method.log_scales[0][0]).item() + 1e-5 == pytest.approx(5.0, rel=1e-5)
    assert_routing(method, b, list(method.regressors))
    assert method.log_scales[2].grad is not None


def test_ofd_margins_come_from_the_teachers_bn_and_the_teacher_runs_in_train_mode():
    method, b = build("ofd")
    assert len(method.connectors) == 3
    assert method.teacher.training  # official: batch statistics in the teacher
    from kdvision.losses.overhaul import bn_margin
    bn = method.teacher.layer3[-1].bn2
    assert torch.allclose(method.margins()[2].flatten(), bn_margin(bn.weight, bn.bias))
    assert_routing(method, b, list(method.connectors))
    m2, _ = build("ofd", teacher_mode="eval")
    assert not m2.teacher.training


def test_reviewkd_fuses_to_the_teachers_levels():
    method, b = build("reviewkd")
    _, student_features = method.student_taps.run(method.student, b["input"])
    fused = method.fuse(student_features)
    _, teacher = method.teacher_taps.run(method.run_teacher, b["input"])
    assert [f.shape[1:] for f in fused] == [torch.Size(t.shape[1:]) if t.dim() == 4 else
                                          torch.Size([t.shape[1], 1, 1]) for t in teacher]
    _, raw = method.compute(b)
    assert raw["reviewkd"].item() > 0
    assert method.weight("reviewkd") == pytest.approx(5.0 / 20)
    assert_routing(method, b, list(method.abfs))


def test_crd_contrasts_against_other_classes_and_updates_only_the_batchs_rows():
    method, b = build("crd", num_negatives=16)
    before = method.memory.student_bank.clone()
    contrast = method.sampler(b["index"], 200)
    labels = INFO["labels"]
    assert torch.equal(contrast[:, 0], b["index"])
    assert (labels[contrast[:, 1:]] != labels[b["index"]].unsqueeze(1)).all()  # "exact": other classes only
    _, raw = method.compute(b)
    changed = (method.memory.student_bank != before).any(dim=1)
    assert set(torch.nonzero(changed).flatten().tolist()) == set(b["index"].tolist())
    assert raw["crd"].item() > 0 and method.weight("crd") == 0.8
    assert_routing(method, b, [method.embed_student, method.embed_teacher])
    assert "memory.student_bank" in method.trainable_state_dict()


def test_multi_teacher_kd_live_equals_cached_and_confidence_weighting():
    method, b = build("multi_teacher_kd", teachers=3, weighting="confidence")
    with torch.no_grad():
        logits = [t(b["input"]) for t in method.teachers]
    _, raw = method.compute(b)
    _, cached = method.compute({**b, "teacher_logits": torch.stack(logits, dim=1)})
    assert raw["kd"].item() == pytest.approx(cached["kd"].item(), rel=1e-5)
    with torch.no_grad():
        expected = multi_teacher_kd_loss(method.student(b["input"]), logits, b["target"], 4.0, "confidence")
    assert raw["kd"].item() == pytest.approx(expected.item(), rel=1e-4)
    assert_routing(method, b)


def test_cwd_on_the_segmentation_classifier_maps():
    torch.manual_seed(0)
    student = create("pspnet_r18", num_classes=4, base_width=8, aux=False)
    teacher = create("pspnet_r18", num_classes=4, base_width=16, aux=False)

    class SegTask:
        def loss(self, output, b):
            return {"ce": F.cross_entropy(output, b["target"])}

    cls = METHODS.get("cwd")
    method = cls(student, [teacher], SegTask(), cls.Params())
    b = {"input": torch.randn(2, 3, 33, 33), "target": torch.randint(0, 4, (2, 33, 33))}
    method.train()
    _, raw = method.compute(b)
    assert raw["cwd"].item() > 0 and method.weight("cwd") == 5.0
    assert_routing(method, b)


def test_crd_needs_the_training_labels_from_setup_info():
    student, teacher = pair()
    method = METHODS.get("crd")(student, [teacher], CETask())
    with pytest.raises(Exception, match=r"info\['labels'\]"):
        method.setup(batch(), {"num_samples": 40})


@pytest.mark.parametrize("name", ["at", "fitnet", "sp", "nst", "vid", "ofd", "rkd", "pkt", "crd", "reviewkd"])
def test_taps_hook_the_models_only_inside_the_training_step(name):
    method, b = build(name)
    seen = []
    for model in (method.student, method.teacher):
        model.register_forward_pre_hook(lambda m, args: seen.append(sum(len(x._forward_hooks) for x in m.modules())))
    method(b)
    assert seen[0] > 0 and seen[1] > 0  # the step records both networks' features ...
    hooks = sum(len(x._forward_hooks) for model in (method.student, method.teacher) for x in model.modules())
    assert hooks == 0  # ... and nothing stays on them for evaluation, export or timing
