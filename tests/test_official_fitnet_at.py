"""FitNet's regressor and AT with odd p against numbers from the official code
(tests/fixtures/official/fitnet_convreg.json, at_loss.json: RepDistiller / mdistiller)."""
from __future__ import annotations

import pytest
import torch

from kdvision.errors import UserError
from kdvision.losses import at_loss, fitnet_loss
from kdvision.methods.at import AttentionTransfer
from kdvision.methods.fitnet import ConvRegressor, FitNet
from kdvision.models.cifar.vgg import vgg8, vgg13
from official_fixtures import fill_seeded, load_fixture, seeded


def test_fitnet_vgg13_vgg8_hint_loss_equals_official_convreg():
    fx = load_fixture("fitnet_convreg")
    teacher, student = vgg13(100), vgg8(100)
    fill_seeded(teacher, 1)
    fill_seeded(student, 2)
    x = seeded(3, 4, 3, 32, 32)
    method = FitNet(student, [teacher], params=FitNet.Params())
    method.setup({"input": x})
    assert method.pairs == [("block2", "block2")]  # RepDistiller hint_layer 2
    reg = method.regressors[0]
    fill_seeded(reg, 4)  # the official ConvReg's key names: conv.weight, conv.bias, bn.*
    method.train()
    _, (fs,) = method.student_taps.run(method.student, x)
    _, (ft,) = method.teacher_taps.run(method.run_teacher, x)
    hint = fitnet_loss(reg(fs), ft).item()
    assert hint == pytest.approx(fx["vgg13_vgg8_hint_layer2_mse"], rel=1e-5)


@pytest.mark.parametrize("case", ["double", "half", "equal", "larger"])
def test_conv_regressor_matches_official_convreg(case):
    c = load_fixture("fitnet_convreg")["cases"][case]
    reg = ConvRegressor(c["student_shape"][1:], c["teacher_shape"][1:])
    assert type(reg.conv).__name__ == c["conv"] and list(reg.conv.kernel_size) == c["kernel_size"]
    assert reg.conv.bias is not None
    fill_seeded(reg, 5)
    reg.train()
    out = reg(seeded(6, *c["student_shape"]))
    assert list(out.shape) == c["teacher_shape"]
    assert torch.allclose(out.flatten(), torch.tensor(c["output"]), atol=1e-5)


def test_conv_regressor_refuses_a_smaller_map_that_is_not_half():
    with pytest.raises(ValueError, match="smaller"):
        ConvRegressor((4, 3, 3), (4, 8, 8))


def test_conv_regressor_without_relu_can_go_negative():
    reg = ConvRegressor((4, 4, 4), (4, 4, 4), relu=False).train()
    assert (reg(seeded(0, 2, 4, 4, 4)) < 0).any()


@pytest.mark.parametrize("p", [2, 3])
def test_at_loss_on_signed_features_equals_official(p):
    fx = load_fixture("at_loss")
    fs, ft = seeded(7, 2, 6, 8, 8), seeded(8, 2, 10, 4, 4)
    assert at_loss(fs, ft, p).item() == pytest.approx(fx[f"p{p}"], rel=1e-5)  # 8x8 pooled to 4x4
    ft8 = seeded(9, 2, 10, 8, 8)
    assert at_loss(fs, ft8, p).item() == pytest.approx(fx[f"p{p}_same_size"], rel=1e-5)
    # the paper's |F|^p = the official formula applied to |F|
    assert at_loss(fs, ft8, p, absolute=True).item() == pytest.approx(fx[f"p{p}_same_size_abs_features"], rel=1e-5)


def test_at_method_defaults_to_the_official_signed_power():
    assert AttentionTransfer.Params().absolute is False
    fx = load_fixture("at_loss")
    assert fx["p3_same_size"] != pytest.approx(fx["p3_same_size_abs_features"], rel=0.1)  # odd p: the variants differ


def test_fitnet_names_the_layers_it_cannot_bridge():
    params = FitNet.Params(layers=[["block4", "block0"]])  # student 4x4, teacher 32x32
    method = FitNet(vgg8(10), [vgg13(10)], params=params)
    with pytest.raises(UserError, match="'block4'.*'block0'"):
        method.setup({"input": seeded(0, 2, 3, 32, 32)})
