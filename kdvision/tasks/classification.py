"""Image classification: cross-entropy, top-1/top-5 accuracy."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kdvision.errors import UserError
from kdvision.registry import TASKS
from kdvision.outputs import main_output
from kdvision.tasks.base import Task


@TASKS.register("classification")
class ClassificationTask(Task):
    """Class logits [B, C]; metric: top-1 accuracy (%) on the evaluation split."""
    loss_terms = ("ce",)  # the names ``loss`` returns (``method.weights`` keys)

    metric = "acc"
    metric_unit = "%"
    target_kind = (1, False, "one class label per image")

    def loss(self, output: Any, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"ce": F.cross_entropy(main_output(output).float(), batch["target"])}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader, device: torch.device, autocast) -> dict[str, float]:
        model.eval()
        correct1 = correct5 = total = 0
        loss_sum = torch.zeros((), device=device)
        for batch in loader:
            x = batch["input"].to(device, non_blocking=True)
            y = batch["target"].to(device, non_blocking=True)
            with autocast():
                logits = main_output(model(x)).float()
            num_classes = logits.shape[1]
            if y.numel() and (int(y.max()) >= num_classes or int(y.min()) < 0):
                raise UserError(f"label {int(y.max())} is outside the model's {num_classes} classes")
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            top = logits.topk(min(5, num_classes), dim=1).indices
            hit = top == y[:, None]
            correct1 += int(hit[:, 0].sum())
            correct5 += int(hit.any(dim=1).sum())
            total += y.numel()
        total = max(total, 1)
        return {"acc": 100.0 * correct1 / total, "acc_top5": 100.0 * correct5 / total,
                "loss": float(loss_sum) / total}
