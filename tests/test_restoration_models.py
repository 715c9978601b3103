"""KTDN / SRKTDN students and the teacher autoencoder: shapes, taps, sizes, encoder weights."""
from __future__ import annotations

import pytest
import torch

from kdvision.errors import UserError
from kdvision.models import count_parameters
from kdvision.models.restoration.blocks import DehazeBlock, SRBranch
from kdvision.models.restoration.encoders import load_encoder_weights
from kdvision.models.restoration.ktdn import ktdn, ktdn_teacher, srktdn
from kdvision.registry import MODELS
from kdvision.taps import FeatureTaps


def test_small_models_restore_and_expose_matching_bottlenecks():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 48)
    student, sr_student, teacher = ktdn(), srktdn(), ktdn_teacher()
    feats = []
    for model in (student, sr_student, teacher):
        model.eval()
        taps = FeatureTaps(model, [model.feature_tap])
        with torch.no_grad():
            y, (feature,) = taps.run(model, x)
        assert y.shape == x.shape and float(y.abs().max()) <= 1.0  # tanh output
        feats.append(feature)
    assert feats[0].shape == feats[1].shape == feats[2].shape == (2, 256, 4, 3)  # 1/16, student width
    assert sr_student.sr_branch is not None and student.sr_branch is None
    assert {"ktdn", "srktdn", "ktdn_teacher"} <= set(MODELS.names())


def test_paper_layouts():
    """Res2Net-101 student (bottleneck 1024 at 1/16) and ResNet-18 teacher widened to 1024;
    the parameter counts equal the official SRKTDN model's (src/model.py: DehazeSR 49,483,458;
    Teacher 26,067,534), checked by building it outside the repository."""
    student, teacher = srktdn(size="paper").eval(), ktdn_teacher(size="paper").eval()
    assert count_parameters(student) == 49_483_458
    assert count_parameters(teacher) == 26_067_534
    assert [len(getattr(student.encoder, f"layer{i}")) for i in (1, 2, 3)] == [3, 4, 23]
    taps_s, taps_t = FeatureTaps(student, ["mid"]), FeatureTaps(teacher, ["mid"])
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        (ys, (fs,)), (yt, (ft,)) = taps_s.run(student, x), taps_t.run(teacher, x)
    assert ys.shape == x.shape and yt.shape == x.shape
    assert fs.shape == ft.shape == (1, 1024, 2, 3)


def test_input_size_rules_and_bad_options():
    model = ktdn().eval()
    with pytest.raises(UserError) as e:
        model(torch.rand(1, 3, 40, 64))
    assert "multiples of 16" in str(e.value)
    with pytest.raises(UserError):
        model(torch.rand(1, 3, 16, 64))  # smaller than the enhancer's 32-pixel pool
    with pytest.raises(UserError) as e:
        ktdn(size="huge")
    assert "ktdn.size" in str(e.value)
    with pytest.raises(UserError) as e:
        ktdn(planes=12)  # widths that PixelShuffle cannot divide
    assert "do not fit" in str(e.value)


def test_dehaze_block_attention_shapes_and_sr_branch():
    block = DehazeBlock(16)
    x = torch.rand(2, 16, 8, 8)
    assert block(x).shape == x.shape
    assert block.channel_attention.weights[1].out_channels == 2  # c/8
    assert block.pixel_attention.weights[2].out_channels == 1
    sr = SRBranch()
    assert sr(torch.rand(2, 3, 32, 20)).shape == (2, 4, 32, 20)


def test_encoder_weights_load_from_a_local_file(tmp_path):
    source = ktdn()
    path = tmp_path / "encoder.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.encoder.state_dict().items()}
                | {"fc.weight": torch.zeros(3)}}, path)
    target = ktdn(encoder_weights=str(path))
    for k, v in source.encoder.state_dict().items():
        assert torch.equal(target.encoder.state_dict()[k], v)
    with pytest.raises(UserError):
        load_encoder_weights(target.encoder, str(tmp_path / "missing.pt"))
    torch.save({"other": torch.zeros(2)}, tmp_path / "wrong.pt")
    with pytest.raises(UserError) as e:
        load_encoder_weights(target.encoder, str(tmp_path / "wrong.pt"))
    assert "wrong.pt" in str(e.value)
