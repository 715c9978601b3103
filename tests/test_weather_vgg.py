"""The project's VGG-19 extractor loads torchvision's vgg19 state-dict layout from a local file."""
import pytest
import torch
import torch.nn.functional as F

from kdvision.errors import UserError
from kdvision.models.restoration.vgg19_features import VGG19Features


# torchvision vgg19().features: conv indices and widths (cfg "E"), then the classifier
CONVS = {0: (3, 64), 2: (64, 64), 5: (64, 128), 7: (128, 128), 10: (128, 256), 12: (256, 256), 14: (256, 256),
         16: (256, 256), 19: (256, 512), 21: (512, 512), 23: (512, 512), 25: (512, 512), 28: (512, 512)}
# (torchvision's convs 30, 32, 34 after relu5_1 are not needed and left out to keep the file small)


def torchvision_layout_state_dict(seed=0):
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for i, (cin, cout) in CONVS.items():
        sd[f"features.{i}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * (2 / (9 * cin)) ** 0.5
        sd[f"features.{i}.bias"] = torch.randn(cout, generator=g) * 0.01
    sd["classifier.0.weight"] = torch.zeros(8, 4)  # extra keys of the full model are ignored
    return sd


def manual_features(sd, x):
    """relu1_1 .. relu5_1 computed directly with F.conv2d from the state dict."""
    def conv(i, h):
        return F.relu(F.conv2d(h, sd[f"features.{i}.weight"], sd[f"features.{i}.bias"], padding=1))
    out = []
    h = conv(0, x); out.append(h)
    h = conv(2, h); h = F.max_pool2d(h, 2); h = conv(5, h); out.append(h)
    h = conv(7, h); h = F.max_pool2d(h, 2); h = conv(10, h); out.append(h)
    for i in (12, 14, 16):
        h = conv(i, h)
    h = F.max_pool2d(h, 2); h = conv(19, h); out.append(h)
    for i in (21, 23, 25):
        h = conv(i, h)
    h = F.max_pool2d(h, 2); h = conv(28, h); out.append(h)
    return out


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_loads_torchvision_layout_and_matches_direct_convolutions(tmp_path, suffix):
    sd = torchvision_layout_state_dict()
    path = tmp_path / f"vgg19{suffix}"
    if suffix == ".pth":
        torch.save(sd, path)
    else:
        from safetensors.torch import save_file
        save_file(sd, str(path))
    vgg = VGG19Features(str(path))
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    got = vgg(x)
    want = manual_features(sd, x)
    assert [tuple(f.shape[1:]) for f in got] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 2, 2)]
    for a, b in zip(got, want):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    assert not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training  # frozen: stays in eval mode


def test_wrong_layout_names_the_missing_keys(tmp_path):
    sd = {k.replace("features.", "body."): v for k, v in torchvision_layout_state_dict().items()}
    path = tmp_path / "not_vgg.pth"
    torch.save(sd, path)
    with pytest.raises(UserError, match=r"missing 26 keys \(features\.0\.weight"):
        VGG19Features(str(path))
    with pytest.raises(UserError, match="not found"):
        VGG19Features(str(tmp_path / "absent.pth"))


def test_untrained_needs_an_explicit_option_and_warns():
    with pytest.raises(UserError, match="no VGG-19 weights"):
        VGG19Features(None)
    with pytest.warns(UserWarning, match="random weights"):
        VGG19Features(None, allow_untrained=True)
