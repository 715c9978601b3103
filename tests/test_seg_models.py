"""Segmentation models: output shapes, aux outputs, documented taps, local pretrained weights."""
import pytest
import torch

from kdvision.errors import UserError
from kdvision.models import create
from kdvision.models.segmentation.pretrained import MBV2_BLOCKS
from kdvision.taps import FeatureTaps


SMALL = [("pspnet_r18", {"base_width": 8}), ("pspnet_r50", {"base_width": 4}), ("pspnet_r101", {"base_width": 2}),
         ("deeplabv3_r18", {"base_width": 8}), ("deeplabv3_r101", {"base_width": 2}),
         ("deeplabv3_mbv2", {"width": 0.25}), ("pspnet_mbv2", {"width": 0.25})]


@pytest.mark.parametrize("name,kw", SMALL)
def test_outputs_and_taps(name, kw):
    torch.manual_seed(0)
    m = create(name, num_classes=5, **kw)
    x = torch.randn(2, 3, 40, 48)
    taps = FeatureTaps(m, m.stages + [m.feature_tap])
    m.train()
    out, (*stages, feature) = taps.run(m, x)
    assert set(out) == {"out", "aux"}
    assert out["out"].shape == out["aux"].shape == (2, 5, 40, 48)
    assert [s.shape[1] for s in stages] == m.stage_channels
    assert [s.shape[-1] for s in stages] == [12, 6, 6, 6]  # strides 4, 8, 8, 8 (output stride 8)
    assert feature.shape == (2, m.feature_channels, 5, 6)
    m.eval()
    with torch.no_grad():
        assert m(x).shape == (2, 5, 40, 48)


def test_no_aux_returns_tensor_in_training():
    m = create("pspnet_r18", num_classes=3, base_width=8, aux=False).train()
    assert isinstance(m(torch.randn(2, 3, 32, 32)), torch.Tensor)


def test_full_width_channels():
    m = create("pspnet_r18", num_classes=19)
    assert m.feature_channels == 512 and m.stage_channels == [64, 128, 256, 512]


def test_pretrained_resnet_backbone_loads(tmp_path):
    src = create("pspnet_r18", num_classes=3, base_width=8)
    state = {k: v for k, v in src.backbone.state_dict().items()}
    state["fc.weight"] = torch.zeros(10, 64)  # an ImageNet classifier is ignored
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "r18.pth")
    m = create("pspnet_r18", num_classes=3, base_width=8, pretrained=str(tmp_path / "r18.pth"))
    for k, v in src.backbone.state_dict().items():
        assert torch.equal(m.backbone.state_dict()[k], v)
    with pytest.raises(UserError, match="r18.pth.*shape"):
        create("pspnet_r18", num_classes=3, base_width=16, pretrained=str(tmp_path / "r18.pth"))
    with pytest.raises(UserError, match="not found"):
        create("pspnet_r18", num_classes=3, base_width=8, pretrained=str(tmp_path / "missing.pth"))


def test_pretrained_mobilenetv2_torchvision_layout(tmp_path):
    src = create("deeplabv3_mbv2", num_classes=3, width=0.25)
    position = {b: i for i, b in enumerate(MBV2_BLOCKS)}
    state = {}
    for k, v in src.backbone.state_dict().items():  # rename to torchvision's features.N.*
        stage, idx, rest = k.split(".", 2)
        state[f"features.{position[f'{stage}.{idx}']}.{rest}"] = v
    state["features.18.0.weight"] = torch.zeros(1280, 80, 1, 1)
    state["classifier.1.weight"] = torch.zeros(1000, 1280)
    torch.save(state, tmp_path / "mbv2.pth")
    m = create("deeplabv3_mbv2", num_classes=3, width=0.25, pretrained=str(tmp_path / "mbv2.pth"))
    for k, v in src.backbone.state_dict().items():
        assert torch.equal(m.backbone.state_dict()[k], v)


@pytest.mark.parametrize("size", [(8, 8), (5, 7), (13, 2)])
def test_pyramid_pooling_matches_adaptive_avg_pool(size):
    from kdvision.models.segmentation.heads import adaptive_avg_pool

    x = torch.randn(2, 3, *size)
    for bins in (1, 2, 3, 6):
        assert torch.allclose(adaptive_avg_pool(x, bins), torch.nn.functional.adaptive_avg_pool2d(x, bins), atol=1e-6)
