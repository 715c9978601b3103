"""FRSKD (Ji et al., CVPR 2021): the BiFPN self-teacher's size and shapes; the method's gradient routing."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdvision.config import params_from_dict
from kdvision.errors import UserError
from kdvision.methods.loss_weights import parse_weight
from kdvision.losses import at_loss, kd_loss
from kdvision.methods.frskd import FRSKD
from kdvision.models import count_parameters, frskd_self_teacher

# Parameter counts of the official self-teacher, BiFPNc(network_channels, 100, args) with
# repeat=1, depth=[2, 2, 2] (main.py defaults), from MingiJi/FRSKD classification/models/bifpnc.py,
# measured by running that file on our own inputs. Channels are the official models'
# `network_channels`: cifarresnet18 [64, 128, 256, 512], wrn16x2 [32, 64, 128].
OFFICIAL_PARAMS = [
    ([64, 128, 256, 512], 2, 6375794),
    ([64, 128, 256, 512], 1, 1983730),
    ([32, 64, 128], 2, 411885),
    ([32, 64, 128], 3, 832813),
]


@pytest.mark.parametrize("channels, width, expected", OFFICIAL_PARAMS)
def test_self_teacher_parameter_count_matches_official(channels, width, expected):
    assert count_parameters(frskd_self_teacher(channels, 100, width=width)) == expected


@pytest.mark.parametrize("channels, sizes", [
    ([64, 128, 256, 512], [8, 4, 2, 1]),     # CIFAR ResNet18 channels (small maps keep the test fast)
    ([32, 64, 128], [16, 8, 4]),             # WRN-16-2 channels
    ([8, 12, 16], [14, 7, 4]),               # odd sizes (the official x2 resampling cannot do these)
    ([8, 8], [6, 6]),                        # two stages of equal size
])
def test_self_teacher_output_shapes(channels, sizes):
    torch.manual_seed(0)
    net = frskd_self_teacher(channels, 10, width=2)
    feats = [torch.randn(2, c, s, s).relu() for c, s in zip(channels, sizes)]
    with torch.no_grad():
        refined, logits = net(feats)
    assert [tuple(r.shape) for r in refined] == [(2, 2 * c, s, s) for c, s in zip(channels, sizes)]
    assert tuple(logits.shape) == (2, 10)
    assert all(r.min() >= 0 for r in refined)  # outputs are R(T_i)


# Outputs of the official BiFPNc([4, 8, 16], 3, width=2, depth=[2, 2, 2]) after loading the
# parameters set by `deterministic_init` below into it (names mapped one to one), on the seeded
# inputs below; measured by running MingiJi/FRSKD classification/models/bifpnc.py.
OFFICIAL_OUTPUTS = {
    "eval": ([1.7322, 7.3426, -2.4895, -1.5943, 4.9387, -2.4065], [0.99458, 1.62515, 1.96872]),
    "train": ([-1.6449, -0.9677, -2.5994, -1.8407, -1.627, -2.6343], [0.3, 0.31941, 0.38082]),
}


def deterministic_init(net):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if t.is_floating_point():
                positive = "running_var" in name or "_weights." in name
                t.copy_(torch.rand(t.shape, generator=g) + 0.5 if positive
                        else torch.rand(t.shape, generator=g) * 2 - 1)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_self_teacher_forward_matches_official(mode):
    net = frskd_self_teacher([4, 8, 16], 3, width=2)
    deterministic_init(net)
    net.train(mode == "train")
    g = torch.Generator().manual_seed(1)
    feats = [torch.randn(2, c, s, s, generator=g) for c, s in zip([4, 8, 16], [8, 4, 2])]
    with torch.no_grad():
        refined, logits = net(feats)
    logits_expected, means_expected = OFFICIAL_OUTPUTS[mode]
    assert logits.flatten().tolist() == pytest.approx(logits_expected, abs=2e-4)
    assert [r.mean().item() for r in refined] == pytest.approx(means_expected, abs=2e-5)


def test_fusion_weights_are_fast_normalised():
    net = frskd_self_teacher([4, 8], 3)
    fusion = net.top_down_weights[0]
    fusion.weight.data = torch.tensor([3.0, -1.0])  # relu -> [3, 0] -> [~1, 0]
    a, b = torch.full((1, 1, 1, 1), 2.0), torch.full((1, 1, 1, 1), 5.0)
    assert fusion([a, b]).item() == pytest.approx(2.0 * 3.0 / (3.0 + 1e-6))
    assert [len(m.weight) for m in net.bottom_up_weights] == [2]


# ---------------------------------------------------------------------------- the method
class TinyNet(nn.Module):
    """Three stages at 8, 4, 2 pixels, post-ReLU; global pooling + linear head."""

    def __init__(self, num_classes: int = 5):
        super().__init__()
        self.layer1 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.layer2 = nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.layer3 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.fc = nn.Linear(16, num_classes)
        self.stages = ["layer1", "layer2", "layer3"]

    def forward(self, x):
        return self.fc(self.layer3(self.layer2(self.layer1(x))).mean((2, 3)))


class CETask:
    def loss(self, output, batch):
        return {"ce": F.cross_entropy(output, batch["target"])}


def make_frskd(weights=None, **params):
    torch.manual_seed(0)
    method = FRSKD(TinyNet(), [], CETask(), FRSKD.Params(**params))
    method.configure_weights(weights or {})
    b = {"input": torch.randn(6, 3, 8, 8), "target": torch.arange(6) % 5}
    method.setup(b)
    method.train()
    return method, b


def grads(module):
    return [p.grad for p in module.parameters()]


def nonzero(g):
    return g is not None and g.abs().sum() > 0


def test_frskd_builds_the_self_teacher_outside_the_student():
    method, _ = make_frskd()
    assert method.self_teacher.channels == [4, 8, 16]
    assert method.self_teacher.fc.out_features == 5
    student_ids = {id(p) for p in method.student.parameters()}
    assert not any(id(p) in student_ids for p in method.self_teacher.parameters())
    optimised = {id(p) for g in method.param_groups() for p in g["params"]}
    assert all(id(p) in optimised for p in method.self_teacher.parameters())
    assert not any(k.startswith("self_teacher") for k in method.student.state_dict())


def test_frskd_loss_terms_follow_the_official_code():
    method, b = make_frskd(weights={"kd": 2.0, "feature": 100.0})
    out, losses = method(b)
    assert set(losses) == {"ce", "ce_self_teacher", "kd", "feature"}
    with torch.no_grad():
        x = b["input"]
        f1 = method.student.layer1(x)
        f2 = method.student.layer2(f1)
        f3 = method.student.layer3(f2)
        refined, z_t = method.self_teacher([f1, f2, f3])
    assert losses["ce_self_teacher"].item() == pytest.approx(F.cross_entropy(z_t, b["target"]).item(), rel=1e-5)
    assert losses["kd"].item() == pytest.approx(2.0 * kd_loss(out, z_t, 4.0).item(), rel=1e-5)
    at = sum(at_loss(f, r) for f, r in zip([f1, f2, f3], refined))
    assert losses["feature"].item() == pytest.approx(100.0 * at.item(), rel=1e-5)


@pytest.mark.parametrize("feature_loss", ["attention", "l2"])
def test_frskd_gradient_routing(feature_loss):
    method, b = make_frskd(feature_loss=feature_loss)
    student, self_teacher = method.student, method.self_teacher

    _, losses = method(b)
    (losses["kd"] + losses["feature"]).backward()
    assert all(g is None or g.abs().sum() == 0 for g in grads(self_teacher))  # untouched by KD/feature
    assert nonzero(student.fc.weight.grad) and nonzero(student.layer1[0].weight.grad)
    if feature_loss == "l2":
        assert all(nonzero(g) for g in grads(method.feature_regressors)[:1])

    method.zero_grad(set_to_none=True)
    _, losses = method(b)
    losses["ce_self_teacher"].backward()
    assert nonzero(student.layer1[0].weight.grad)  # the self-teacher's CE reaches the shared backbone
    assert student.fc.weight.grad is None          # ... but not the classifier's head
    assert nonzero(self_teacher.fc.weight.grad) and nonzero(self_teacher.lateral[0][0].weight.grad)


def test_frskd_user_errors():
    with pytest.raises(UserError, match="'method.feature_loss' must be one of attention, l2"):
        params_from_dict(FRSKD.Params, {"name": "frskd", "feature_loss": "cosine"}, "method", "c.yaml")
    with pytest.raises(UserError, match="'layer7'"):
        FRSKD(TinyNet(), [], CETask(), FRSKD.Params(stages=["layer1", "layer7"]))
    bare = TinyNet()
    del bare.stages
    with pytest.raises(UserError, match="method.stages"):
        FRSKD(bare, [], CETask(), FRSKD.Params())
    method, _ = make_frskd()
    with pytest.raises(UserError, match="method.width"):
        method.set_params({"width": 3})
    method.set_params({"weights": {"kd": parse_weight(1.0, "kd")}})
    assert method.weight("kd") == 1.0 and method.weight("feature") == 100.0


def test_frskd_setup_rejects_stages_that_are_not_feature_maps():
    method = FRSKD(TinyNet(), [], CETask(), FRSKD.Params(stages=["layer1", "fc"]))
    with pytest.raises(UserError, match="'fc'"):
        method.setup({"input": torch.randn(2, 3, 8, 8), "target": torch.zeros(2, dtype=torch.long)})
