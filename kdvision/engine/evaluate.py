"""Evaluate a student checkpoint on a split of the config's data set."""
from __future__ import annotations

from torch.utils.data import DataLoader

from kdvision.config import Config
from kdvision.engine.build import build_task
from kdvision.engine.runtime import autocast_factory, pick_device
from kdvision.engine.weights import load_weights_into


def evaluate_checkpoint(cfg: Config, checkpoint: str, split: str = "test") -> dict:
    device = pick_device(cfg.train.device)
    task = build_task(cfg)
    model = task.create_model(cfg.student, "student").to(device)
    load_weights_into(model, checkpoint, f"--checkpoint ({cfg.student['name']})")
    dataset = task.datasets()[split]
    batch = int(cfg.data.get("eval_batch_size", 2 * cfg.data.get("batch_size", 64)))
    loader = DataLoader(dataset, batch_size=batch, shuffle=False, num_workers=int(cfg.data.get("workers", 0)))
    metrics = task.evaluate(model, loader, device, autocast_factory(device, cfg.train.precision))
    return {"split": split, **metrics}
