"""The MSBDN-style U-Net of two-stage knowledge learning ("tkl_unet")."""
import torch

from kdvision.models import count_parameters, create
from kdvision.taps import FeatureTaps


def test_taps_at_quarter_eighth_and_twice_sixteenth_and_any_input_size():
    model = create("tkl_unet", width=4, bottleneck_blocks=2, level_blocks=1)
    taps = FeatureTaps(model, model.stages)
    x = torch.rand(2, 3, 64, 48)
    out, feats = taps.run(model, x)
    assert out.shape == x.shape
    shapes = [tuple(f.shape) for f in feats]
    assert shapes == [(2, 16, 16, 12), (2, 32, 8, 6), (2, 64, 4, 3), (2, 64, 4, 3)]
    odd = torch.rand(1, 3, 21, 37)
    assert model(odd).shape == odd.shape


def test_default_width_has_the_official_parameter_count():
    # 28,712,861 = sum of numel over the official MSBDN-RDFF Net() (models/MSBDN-RDFF.py of
    # fingerk28/Two-stage-Knowledge-For-Multiple-Adverse-Weather-Removal), counted by running it
    assert count_parameters(create("tkl_unet")) == 28_712_861
