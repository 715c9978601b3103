"""Classification model zoo: every built-in model against the community reference definitions.

Each model is checked for its parameter count, its state-dict layout (names and shapes, so
reference checkpoints load), its logits and its tapped stage features under a deterministic
weight fill, and the shapes / channel counts of ``model.stages`` and ``model.feature_tap``.
"""
from __future__ import annotations

import hashlib
import math
from typing import NamedTuple

import pytest
import torch

from kdvision.models import MODELS, count_parameters, create
from kdvision.taps import FeatureTaps


class Reference(NamedTuple):
    params: int
    layout: str  # sha256 (first 16 hex digits) of the state dict's "key:shape" lines, in order
    logits0: tuple[float, ...]  # first 4 logits of sample 0 under fill_deterministic, train mode
    stage_abs: tuple[float, ...] = ()  # mean |feature| of each stage output, same run


# Counted by running HobbitLong/RepDistiller models/<file> with torch 2.13 (double precision) on
# our own input (input_for below) and weights (fill_deterministic below), at 100 classes:
# resnet.py (resnet8..resnet32x4), wrn.py, vgg.py (vgg*_bn), mobilenetv2.py (mobile_half),
# ShuffleNetv1.py (ShuffleV1), ShuffleNetv2.py (ShuffleV2), resnetv2.py (ResNet18 ->
# resnet18_cifar); stage_abs are its returned features feat[1:-1]. megvii-research/mdistiller
# mdistiller/models/cifar has the same definitions. The ImageNet ResNets (1000 classes, 64x64
# input) were counted by running pytorch/vision torchvision/models/resnet.py the same way.
REFERENCE = {
    "resnet8": Reference(params=83892, layout="ac039310c98e68d8", logits0=(-0.47181691083, 0.286217555547, 0.851156718851, 0.875594956104), stage_abs=(0.57784835423, 0.490622697517, 0.514623579103)),
    "resnet14": Reference(params=181108, layout="92530df46a51a173", logits0=(-0.598961434564, 0.302577101304, 1.00376780458, 1.05480279755), stage_abs=(0.823987772592, 0.688639309687, 0.761572827791)),
    "resnet20": Reference(params=278324, layout="48702a589dcc22ab", logits0=(-0.987890041018, 0.451907421878, 1.62047421787, 1.77095691081), stage_abs=(1.06530115989, 0.903909030911, 1.12593773099)),
    "resnet32": Reference(params=472756, layout="e488f60b23a4db1c", logits0=(-2.16908411337, -1.22931556389, 0.471792036636, 1.8646815345), stage_abs=(1.38712638897, 1.2204701352, 1.61347927437)),
    "resnet44": Reference(params=667188, layout="fcf7a5a278e22506", logits0=(-2.16090772037, -1.31181506762, 0.382779988302, 1.84824632301), stage_abs=(1.60280294518, 1.61474818, 2.04319734631)),
    "resnet56": Reference(params=861620, layout="1d3465ca54c565c3", logits0=(-1.70150217919, -2.09052151009, -1.17335321026, 0.470673138699), stage_abs=(1.7597158066, 1.88513638055, 2.35508888141)),
    "resnet110": Reference(params=1736564, layout="932a055377884f91", logits0=(-2.14548119434, -1.27656741189, 0.415482959034, 1.8560078651), stage_abs=(3.16511795379, 2.46308504393, 2.56788697253)),
    "resnet8x4": Reference(params=1233540, layout="4b191cfaf50907ea", logits0=(-0.949275860608, 0.489698236467, -0.339953375519, 0.0375014358939), stage_abs=(0.540732378621, 0.50033287695, 0.538043439588)),
    "resnet32x4": Reference(params=7433860, layout="670cd82105052059", logits0=(-4.82002614143, 4.49395566941, -4.4432830872, 4.03376995065), stage_abs=(1.26006958906, 1.47056054478, 1.7341019688)),
    "wrn_16_1": Reference(params=180916, layout="cc273e84a60cb768", logits0=(-0.199642812656, 0.367434931214, 0.702520491456, 0.604128518373), stage_abs=(1.97927705979, 1.81267647439, 3.08553602999)),
    "wrn_16_2": Reference(params=703284, layout="28fc720be1913fd2", logits0=(-0.0928989217809, 1.09777611369, 0.0923706827484, -0.945630910846), stage_abs=(1.55222192487, 2.33085123356, 4.29842304271)),
    "wrn_40_1": Reference(params=569780, layout="f8967803e64be646", logits0=(-0.212500943815, 0.300426005935, 0.615737575572, 0.545079256398), stage_abs=(3.12954836755, 3.3986467753, 7.40519254458)),
    "wrn_40_2": Reference(params=2255156, layout="029bbe2cbcd6d721", logits0=(-0.174686953439, 1.08313510917, 0.115125316759, -0.943075115749), stage_abs=(3.51843168494, 6.20977504621, 9.12367357528)),
    "vgg8": Reference(params=3965028, layout="792c36c85a183c23", logits0=(-0.145654055225, 0.360946278296, 0.877540244981, 1.34775053276), stage_abs=(0.385288562758, 0.359001474287, 0.436458780421, 0.419533539229)),
    "vgg11": Reference(params=9277284, layout="7edcbfd7d4b24633", logits0=(-0.130054252486, 0.39608222683, 0.85902313911, 1.22609785926), stage_abs=(0.385288562758, 0.400920236167, 0.419405150716, 0.405747569075)),
    "vgg13": Reference(params=9462180, layout="adbafd0e22ce9038", logits0=(-0.0278813670434, 0.426484655636, 0.831184963257, 1.18644958544), stage_abs=(0.300526320226, 0.405071105946, 0.429086440524, 0.425124896089)),
    "vgg16": Reference(params=14774436, layout="4b0f395fe5fbd954", logits0=(-0.186636888411, 0.293046835838, 0.793645638078, 1.27181597101), stage_abs=(0.300526320226, 0.417853782438, 0.414069067308, 0.436897961635)),
    "vgg19": Reference(params=20086692, layout="0820bef0b1c3cee0", logits0=(-0.216562121284, 0.316693299128, 0.806019803492, 1.20286482373), stage_abs=(0.300526320226, 0.416582657745, 0.400773529621, 0.404402436491)),
    "mobilenetv2": Reference(params=812836, layout="67dd5adb2196190e", logits0=(-0.421469891622, -1.46350124552, 2.54712497496, -2.61722906263), stage_abs=(0.770033785915, 1.48941945301, 1.41125736032, 0.87556446806)),
    "shufflev1": Reference(params=949258, layout="542ef1e4af09fe27", logits0=(-5.16285002302, -5.30757042305, -4.9900572192, -4.25809329153), stage_abs=(1.12811809658, 1.60421907357, 1.41722916778)),
    "shufflev2": Reference(params=1355528, layout="db138f467cd82af3", logits0=(-0.242615375822, 1.118557556, 2.20839139408, 2.73752186919), stage_abs=(0.358880542053, 0.403726714259, 0.40421002933)),
    "resnet18_cifar": Reference(params=11220132, layout="15776a9a917d8d66", logits0=(-2.44305554383, -1.49888301768, -0.484745049731, 0.556669336526), stage_abs=(0.904433875776, 0.761006109145, 0.868454631286, 0.864021957285)),
    "resnet18": Reference(params=11689512, layout="3e58b0798c806a0c", logits0=(-2.05844218742, -1.16328153535, -0.220445763713, 0.732111926149)),
    "resnet34": Reference(params=21797672, layout="97e365907d64da74", logits0=(-3.79042857225, -3.06941696708, -2.11215795071, -0.974292828104)),
    "resnet50": Reference(params=25557032, layout="781bb16f43b8f96f", logits0=(-6.12040162553, -0.408889163252, 5.66778277832, 6.20601954858)),
}

IMAGENET = {"resnet18", "resnet34", "resnet50"}

# Documented stage taps: (module paths, channels, spatial size) at a 32x32 input (64x64 for ImageNet).
STAGES = {
    **{f"resnet{d}": (["layer1", "layer2", "layer3"], [16, 32, 64], [32, 16, 8])
       for d in (8, 14, 20, 32, 44, 56, 110)},
    "resnet8x4": (["layer1", "layer2", "layer3"], [64, 128, 256], [32, 16, 8]),
    "resnet32x4": (["layer1", "layer2", "layer3"], [64, 128, 256], [32, 16, 8]),
    "wrn_16_1": (["block1", "block2", "block3"], [16, 32, 64], [32, 16, 8]),
    "wrn_40_1": (["block1", "block2", "block3"], [16, 32, 64], [32, 16, 8]),
    "wrn_16_2": (["block1", "block2", "block3"], [32, 64, 128], [32, 16, 8]),
    "wrn_40_2": (["block1", "block2", "block3"], [32, 64, 128], [32, 16, 8]),
    **{f"vgg{d}": (["block1", "block2", "block3", "block4"], [128, 256, 512, 512], [16, 8, 4, 4])
       for d in (8, 11, 13, 16, 19)},
    "mobilenetv2": (["blocks.1", "blocks.2", "blocks.4", "blocks.6"], [12, 16, 48, 160], [16, 8, 4, 2]),
    "shufflev1": (["layer1", "layer2", "layer3"], [240, 480, 960], [16, 8, 4]),
    "shufflev2": (["layer1", "layer2", "layer3"], [116, 232, 464], [16, 8, 4]),
    "resnet18_cifar": (["layer1", "layer2", "layer3", "layer4"], [64, 128, 256, 512], [32, 16, 8, 4]),
    "resnet18": (["layer1", "layer2", "layer3", "layer4"], [64, 128, 256, 512], [16, 8, 4, 2]),
    "resnet34": (["layer1", "layer2", "layer3", "layer4"], [64, 128, 256, 512], [16, 8, 4, 2]),
    "resnet50": (["layer1", "layer2", "layer3", "layer4"], [256, 512, 1024, 2048], [16, 8, 4, 2]),
}


def fill_deterministic(model: torch.nn.Module) -> None:
    """Set every floating tensor of the state dict from its position (i) in it: an input-independent,
    implementation-independent weight set, so two definitions with one layout compute the same thing."""
    with torch.no_grad():
        for i, (name, t) in enumerate(model.state_dict().items()):
            if not t.is_floating_point():
                continue
            s = torch.sin(torch.arange(t.numel(), dtype=torch.float64) * 0.7 + i)
            if name.endswith("running_var"):
                v = 1.0 + 0.5 * s.abs()
            elif name.endswith("running_mean") or name.endswith("bias"):
                v = 0.1 * s
            elif t.dim() == 1:
                v = 1.0 + 0.2 * s
            else:
                v = s * math.sqrt(2.0 / t[0].numel())
            t.copy_(v.view_as(t).to(t.dtype))


def layout_digest(model: torch.nn.Module) -> str:
    lines = [f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items()]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def input_for(name: str) -> torch.Tensor:
    size = 64 if name in IMAGENET else 32
    return torch.sin(torch.arange(2 * 3 * size * size, dtype=torch.float64) * 0.3).view(2, 3, size, size)


def test_every_zoo_model_is_registered():
    missing = [name for name in REFERENCE if name not in MODELS]
    assert not missing
    assert all(MODELS.doc(name) for name in REFERENCE)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_model_matches_reference(name):
    ref = REFERENCE[name]
    model = create(name)
    classes = 1000 if name in IMAGENET else 100
    assert count_parameters(model) == ref.params
    assert layout_digest(model) == ref.layout

    model.double().train()  # batch statistics keep activations well scaled at every depth
    fill_deterministic(model)
    paths, channels, sizes = STAGES[name]
    assert model.stages == paths
    assert model.feature_tap == paths[-1]
    taps = FeatureTaps(model, model.stages)
    last = FeatureTaps(model, [model.feature_tap])
    with torch.no_grad(), taps.recording() as record, last.recording() as last_record:
        logits = model(input_for(name))
    feats = record.take()
    (tap,) = last_record.take()

    assert logits.shape == (2, classes)
    assert logits[0, :4].tolist() == pytest.approx(ref.logits0, rel=1e-8, abs=1e-9)
    assert [tuple(f.shape) for f in feats] == [(2, c, s, s) for c, s in zip(channels, sizes)]
    assert model.stage_channels == channels
    assert tap.shape == (2, channels[-1], sizes[-1], sizes[-1])
    if ref.stage_abs:
        assert [f.abs().mean().item() for f in feats] == pytest.approx(ref.stage_abs, rel=1e-8)


@pytest.mark.parametrize("name, classes", [("resnet20", 10), ("mobilenetv2", 7), ("shufflev2", 5)])
def test_num_classes_sets_the_logit_count(name, classes):
    model = create(name, num_classes=classes)
    assert model(torch.randn(3, 3, 32, 32)).shape == (3, classes)


def test_default_class_counts():
    assert create("resnet20").fc.out_features == 100
    assert create("resnet20", num_classes=100).fc.out_features == 100
    assert MODELS.get("resnet18")().fc.out_features == 1000


def test_block_relu_tap_is_the_post_relu_block_output():
    model = create("resnet20").eval()
    taps = FeatureTaps(model, ["layer3", "layer3.2.relu", "layer2"])
    with torch.no_grad():
        _, (layer3, relu, layer2) = taps.run(model, torch.randn(2, 3, 32, 32))
    assert torch.equal(layer3, relu)
    assert layer2.min() >= 0 and layer3.min() >= 0


def test_vgg_pools_once_more_for_64_pixel_inputs():
    model = create("vgg8").eval()
    taps = FeatureTaps(model, ["block3", "block4"])
    with torch.no_grad():
        _, (block3, block4) = taps.run(model, torch.randn(1, 3, 64, 64))
    assert block3.shape[-1] == 8 and block4.shape[-1] == 4


def torchvision_resnet18_keys() -> list[str]:
    """torchvision's resnet18 state-dict keys, written out from its module layout."""
    conv, bn = ["weight"], ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    modules = [("conv1", conv), ("bn1", bn)]
    for stage in (1, 2, 3, 4):
        for block in (0, 1):
            p = f"layer{stage}.{block}"
            modules += [(f"{p}.conv1", conv), (f"{p}.bn1", bn), (f"{p}.conv2", conv), (f"{p}.bn2", bn)]
            if stage > 1 and block == 0:
                modules += [(f"{p}.downsample.0", conv), (f"{p}.downsample.1", bn)]
    modules.append(("fc", ["weight", "bias"]))
    return [f"{m}.{suffix}" for m, suffixes in modules for suffix in suffixes]


def test_imagenet_resnet18_uses_torchvision_names():
    model = create("resnet18")
    assert list(model.state_dict()) == torchvision_resnet18_keys()
    for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer4", "avgpool", "fc"):
        assert hasattr(model, name)
    # a checkpoint with exactly these names and shapes loads strictly
    donor = create("resnet18")  # another random initialisation
    result = model.load_state_dict(donor.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(model.fc.weight, donor.fc.weight)
