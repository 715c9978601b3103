"""SP (Tung & Mori, ICCV 2019): sp_loss against an explicit loop over sample pairs; the sp method."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdvision.errors import UserError
from kdvision.losses.similarity import sp_loss
from kdvision.methods.sp import SimilarityPreserving


def sp_loss_by_loop(fs: np.ndarray, ft: np.ndarray) -> float:
    """L_SP written out: G~[i,j] = <q_i, q_j>, rows L2-normalised, squared Frobenius distance / b^2."""
    b = fs.shape[0]

    def gram(f):
        q = f.reshape(b, -1).astype(np.float64)
        g = [[sum(q[i][k] * q[j][k] for k in range(q.shape[1])) for j in range(b)] for i in range(b)]
        out = []
        for row in g:
            norm = max(math.sqrt(sum(v * v for v in row)), 1e-12)
            out.append([v / norm for v in row])
        return out

    gs, gt = gram(fs), gram(ft)
    return sum((gt[i][j] - gs[i][j]) ** 2 for i in range(b) for j in range(b)) / b ** 2


@pytest.mark.parametrize("student_shape, teacher_shape", [
    ((5, 3, 4, 4), (5, 7, 2, 3)),   # different channels and spatial sizes
    ((4, 6, 3, 3), (4, 6, 3, 3)),   # same shapes
    ((3, 10), (3, 4, 2, 2)),        # a flat feature against a map
])
def test_sp_loss_matches_explicit_loop(student_shape, teacher_shape):
    g = torch.Generator().manual_seed(0)
    fs = torch.randn(student_shape, generator=g)
    ft = torch.randn(teacher_shape, generator=g).relu()
    expected = sp_loss_by_loop(fs.numpy(), ft.numpy())
    assert expected > 1e-3
    assert sp_loss(fs, ft).item() == pytest.approx(expected, rel=1e-5)


def test_sp_loss_is_zero_for_identical_similarities_and_scale_invariant():
    f = torch.randn(6, 4, 3, 3)
    assert sp_loss(f, 3.0 * f).item() == pytest.approx(0.0, abs=1e-10)


def test_sp_loss_batch_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="batch sizes differ.*student 4, teacher 5"):
        sp_loss(torch.randn(4, 3, 2, 2), torch.randn(5, 3, 2, 2))


def test_sp_loss_detaches_the_teacher():
    fs = torch.randn(4, 3, 2, 2, requires_grad=True)
    ft = torch.randn(4, 5, 2, 2, requires_grad=True)
    sp_loss(fs, ft).backward()
    assert ft.grad is None
    assert fs.grad.abs().sum() > 0


# ---------------------------------------------------------------------------- the sp method
class TinyNet(nn.Module):
    def __init__(self, width: int, num_classes: int = 5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU())
        self.layer1 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU())
        self.fc = nn.Linear(2 * width, num_classes)
        self.feature_tap = "layer1"

    def forward(self, x):
        return self.fc(self.layer1(self.stem(x)).mean((2, 3)))


class CETask:
    def loss(self, output, batch):
        return {"ce": F.cross_entropy(output, batch["target"])}


def make_sp(weights=None, **params):
    torch.manual_seed(0)
    student, teacher = TinyNet(4), TinyNet(8)
    method = SimilarityPreserving(student, [teacher], CETask(), SimilarityPreserving.Params(**params))
    method.configure_weights(weights or {})
    return method


def batch(n=6):
    return {"input": torch.randn(n, 3, 8, 8), "target": torch.arange(n) % 5}


def test_sp_method_losses_and_gradient_routing():
    method = make_sp(weights={"ce": 0.5})
    b = batch()
    out, losses = method(b)
    assert set(losses) == {"ce", "sp"}
    assert losses["ce"].item() == pytest.approx(0.5 * F.cross_entropy(out, b["target"]).item())
    with torch.no_grad():
        fs = method.student.layer1(method.student.stem(b["input"]))
        ft = method.teacher.layer1(method.teacher.stem(b["input"]))
    assert losses["sp"].item() == pytest.approx(3000.0 * sp_loss(fs, ft).item(), rel=1e-5)
    (losses["ce"] + losses["sp"]).backward()
    assert all(p.grad is None for p in method.teacher.parameters())
    assert method.student.stem[0].weight.grad.abs().sum() > 0


def test_sp_method_sums_several_layer_pairs():
    method = make_sp(layers=[["layer1", "layer1"], ["stem", "layer1"]], weights={"sp": 1.0})
    b = batch()
    _, losses = method(b)
    with torch.no_grad():
        s1 = method.student.stem(b["input"])
        t1 = method.teacher.layer1(method.teacher.stem(b["input"]))
        expected = sp_loss(method.student.layer1(s1), t1) + sp_loss(s1, t1)
    assert losses["sp"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_sp_method_names_a_bad_layer():
    with pytest.raises(UserError, match="'layer9'.*teacher"):
        make_sp(layers=[["layer1", "layer9"]])
    with pytest.raises(UserError, match=r"method.layers\[0\]"):
        make_sp(layers=[["layer1"]])


def test_sp_method_without_feature_tap_asks_for_layers():
    student, teacher = TinyNet(4), TinyNet(8)
    del student.feature_tap
    with pytest.raises(UserError, match="feature_tap.*method.layers"):
        SimilarityPreserving(student, [teacher], CETask(), SimilarityPreserving.Params())
