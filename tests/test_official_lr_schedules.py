"""Learning-rate schedules that follow an official script: TKL's gradual warm-up then cosine."""
from pathlib import Path

import pytest
import torch

from kdvision.config import load_config
from kdvision.engine.optim import set_learning_rate

REPO = Path(__file__).resolve().parents[1]
# Running the official GradualWarmupScheduler (multiplier 1, total_epoch 3) with CosineAnnealingLR
# (T_max 247, eta_min 1e-6) on Adam lr 4e-4, stepped once before training and after every epoch
# (fingerk28/Two-stage-Knowledge-For-Multiple-Adverse-Weather-Removal utils/warmup_scheduler.py and
# train.py, commit 3370cd7ecdf72d52a77eab75fead18b1e3dc3710): the lr of epochs 1-3, 126 and 250.
OFFICIAL_WARMUP = [0.00013333333333333334, 0.0002666666666666667, 0.0004]
OFFICIAL_EPOCH_126, OFFICIAL_EPOCH_250 = 0.00020431415200481134, 1.0161372843952449e-06


@pytest.mark.parametrize("recipe", ["weather_setting1/tkl.yaml", "allweather/tkl.yaml"])
def test_tkl_recipes_warm_up_as_the_official_scheduler(recipe):
    train = load_config(REPO / "configs" / recipe).train
    assert train.epochs == 250 and train.optimizer.lr == 4e-4
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=train.optimizer.lr)
    lrs = [set_learning_rate(opt, train, epoch, 0, 100) for epoch in range(train.epochs)]
    assert lrs[:3] == pytest.approx(OFFICIAL_WARMUP, rel=1e-12)
    assert lrs[3] == 4e-4
    # afterwards the official chainable CosineAnnealingLR and the closed form agree to ~5e-5
    assert lrs[125] == pytest.approx(OFFICIAL_EPOCH_126, rel=1e-4)
    assert lrs[249] == pytest.approx(OFFICIAL_EPOCH_250, rel=1e-6)


def test_linear_warmup_is_unchanged():
    train = load_config(REPO / "configs" / "weather_setting1/tkl.yaml", ["train.schedule.warmup=linear"]).train
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=train.optimizer.lr)
    lrs = [set_learning_rate(opt, train, epoch, 0, 100) for epoch in range(3)]
    assert lrs == pytest.approx([4e-6, 1.36e-4, 2.68e-4], rel=1e-9)
