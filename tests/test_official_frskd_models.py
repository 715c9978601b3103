"""FRSKD's official networks and data normalisation against numbers from its code
(tests/fixtures/official/frskd_models.json, frskd_cifar_normalize.json: MingiJi/FRSKD)."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdvision.config import call_with_config, load_config
from kdvision.data.classification.cifar import build_cifar100
from kdvision.errors import UserError
from kdvision.models import count_parameters
from kdvision.models.cifar.frskd_wrn import frskd_wrn_16_2
from kdvision.models.cifar.resnet18_cifar import resnet18_cifar
from kdvision.models.cifar.wrn import wrn_16_2
from kdvision.taps import FeatureTaps
from cifar_files import write_cifar
from official_fixtures import fill_seeded, load_fixture, seeded


@pytest.fixture(scope="module")
def fx():
    return load_fixture("frskd_models")


def check_outputs(model, x, expected, relu_features: bool):
    taps = FeatureTaps(model, model.stages, owner="student")
    logits, feats = taps.run(model, x)
    if relu_features:
        feats = [F.relu(f) for f in feats]
    assert torch.allclose(logits.flatten(), torch.tensor(expected["logits"]), atol=1e-4, rtol=1e-4)
    for f, means in zip(feats, expected["feature_channel_means"], strict=True):
        assert torch.allclose(f.mean((0, 2, 3)), torch.tensor(means), atol=1e-5, rtol=1e-4)


def test_frskd_wrn_16_2_has_the_official_keys_and_parameter_count(fx):
    model = frskd_wrn_16_2(100)
    assert list(model.state_dict()) == fx["wrn_keys"]
    assert count_parameters(model) == fx["wrn_parameters"] == 703_060
    assert count_parameters(wrn_16_2(100)) == 703_284  # the community model stays as it was
    assert not any(p.requires_grad for p in model.bn1.parameters())  # unused by the official forward


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_frskd_wrn_16_2_outputs_and_self_teacher_features_equal_official(fx, mode):
    model = frskd_wrn_16_2(100)
    fill_seeded(model, 10)
    model.train(mode == "train")
    with torch.no_grad():
        # FRSKD hands relu(stage) to its self-teacher: the official relu(BN(group output))
        check_outputs(model, seeded(11, 2, 3, 32, 32), fx[f"wrn_{mode}"], relu_features=True)


def test_resnet18_pytorch_init_equals_the_official_init_for_a_seed(fx):
    torch.manual_seed(0)
    model = resnet18_cifar(100, init="pytorch")
    got = {k.replace("shortcut", "downsample").replace("linear.", "fc."): v
           for k, v in model.state_dict().items() if v.is_floating_point()}
    assert set(got) == set(fx["resnet_seed0_init_sum_sumsq"])
    for key, (total, squares) in fx["resnet_seed0_init_sum_sumsq"].items():
        v = got[key].double()
        assert v.sum().item() == pytest.approx(total, rel=1e-6, abs=1e-6), key
        assert v.pow(2).sum().item() == pytest.approx(squares, rel=1e-6, abs=1e-9), key
    assert count_parameters(model) == fx["resnet_parameters"]
    torch.manual_seed(0)
    kaiming = resnet18_cifar(100).state_dict()["layer2.0.conv1.weight"].double().pow(2).sum().item()
    assert kaiming != pytest.approx(fx["resnet_seed0_init_sum_sumsq"]["layer2.0.conv1.weight"][1], rel=0.1)


def test_resnet18_outputs_and_features_equal_official_with_the_same_state_dict(fx):
    model = resnet18_cifar(100)
    fill_seeded(model, 12)
    model.eval()
    with torch.no_grad():
        check_outputs(model, seeded(13, 2, 3, 32, 32), fx["resnet_eval"], relu_features=False)


def test_resnet18_rejects_an_unknown_init():
    with pytest.raises(UserError, match="init must be one of"):
        resnet18_cifar(100, init="xavier")


def test_cifar100_normalised_with_frskd_cifar10_statistics_equals_official_loader(tmp_path):
    fx = load_fixture("frskd_cifar_normalize")
    folder = write_cifar(tmp_path, 100)
    image = np.random.default_rng(14).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    with open(folder / "test", "rb") as f:
        batch = pickle.load(f)
    batch[b"data"][0] = image.transpose(2, 0, 1).reshape(-1)  # CIFAR rows: R, G, B planes
    with open(folder / "test", "wb") as f:
        pickle.dump(batch, f)
    x = build_cifar100(str(tmp_path), normalize="cifar10_frskd")["test"][0]["input"]
    assert torch.allclose(x.mean((1, 2)), torch.tensor(fx["channel_means"]), atol=1e-5)
    assert torch.allclose(x[:, 0, :], torch.tensor(fx["first_row"]), atol=1e-5)
    own = build_cifar100(str(tmp_path))["test"][0]["input"]
    assert not torch.allclose(own.mean((1, 2)), torch.tensor(fx["channel_means"]), atol=1e-2)
    with pytest.raises(UserError, match="'data.normalize' must be one of dataset, cifar10_frskd"):
        call_with_config(build_cifar100, {"root": str(tmp_path), "normalize": "imagenet"}, "data", "c.yaml")


def test_frskd_cifar_recipes_follow_the_official_code():
    wrn = load_config("cifar100/frskd/wrn_16_2")
    assert wrn.student["name"] == "frskd_wrn_16_2" and wrn.data["normalize"] == "cifar10_frskd"
    r18 = load_config("cifar100/frskd/resnet18_cifar")
    assert r18.student == {"name": "resnet18_cifar", "init": "pytorch"} and r18.data["normalize"] == "cifar10_frskd"
