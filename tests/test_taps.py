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


def hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_taps_record_named_module_outputs_of_any_module():
    model = Foreign()
    taps = FeatureTaps(model, ["body.1", "body.2"])
    x = torch.randn(2, 3, 8, 8)
    with taps.recording() as record:
        model(x)
    relu, conv = record.take()
    assert relu.shape == (2, 4, 8, 8) and (relu >= 0).all()
    assert torch.equal(conv, model.body(x))
    assert torch.equal(record["body.2"], conv)


def test_input_tap_records_what_the_module_reads():
    model = Foreign()
    taps = FeatureTaps(model, ["head:input", "head"])
    x = torch.randn(2, 3, 8, 8)
    out, (pooled, logits) = taps.run(model, x)
    assert torch.equal(pooled, model.body(x).mean((2, 3)))
    assert torch.equal(logits, out)


def test_hooks_exist_only_inside_the_recording():
    model = Foreign()
    taps = FeatureTaps(model, ["body.1", "body.2", "head:input"])
    assert hook_count(model) == 0  # making taps installs nothing: evaluation and export run the bare model
    with taps.recording() as record:
        assert hook_count(model) == 3
        model(torch.randn(1, 3, 8, 8))
    assert hook_count(model) == 0
    model(torch.randn(5, 3, 8, 8))  # outside the scope: nothing is recorded
    assert record["body.1"].shape[0] == 1
    with pytest.raises(ValueError):  # hooks go even when the body fails
        with taps.recording():
            raise ValueError("boom")
    assert hook_count(model) == 0


def test_a_new_recording_never_sees_an_earlier_steps_tensors():
    model = Foreign()
    taps = FeatureTaps(model, ["body.1"])
    taps.run(model, torch.randn(2, 3, 8, 8))
    with taps.recording() as record:
        pass  # the tapped module does not run in this step
    with pytest.raises(RuntimeError, match="tap 'body.1' recorded nothing"):
        record.take()


def test_tap_naming_no_module_names_the_module():
    with pytest.raises(UserError, match=r"tap 'body.9' names no module of the student \(Foreign\)"):
        FeatureTaps(Foreign(), ["body.9"], owner="student")
