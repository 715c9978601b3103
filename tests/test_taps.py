import pytest
import torch
from torch import nn

from kdvision.errors import UserError
from kdvision.taps import FeatureTaps


class Foreign(nn.Module):
    """A model kdvision has never seen: taps must work on it unchanged."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, padding=1))
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        f = self.body(x)
        return self.head(f.mean((2, 3)))


def test_taps_record_named_module_outputs_of_any_module():
    model = Foreign()
    taps = FeatureTaps(model, ["body.1", "body.2"])
    x = torch.randn(2, 3, 8, 8)
    model(x)
    relu, conv = taps.take()
    with pytest.raises(RuntimeError):
        taps.take()  # cleared: no stale tensor is handed out twice
    assert relu.shape == (2, 4, 8, 8) and (relu >= 0).all()
    assert torch.equal(conv, model.body(x))


def test_tap_naming_no_module_names_the_module():
    with pytest.raises(UserError, match=r"tap 'body.9' names no module of the student \(Foreign\)"):
        FeatureTaps(Foreign(), ["body.9"], owner="student")
