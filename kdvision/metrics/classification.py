"""Classification metrics."""
from __future__ import annotations

import torch


def accuracy(logits: torch.Tensor, target: torch.Tensor, topk: int = 1) -> float:
    """Top-k accuracy in percent."""
    pred = logits.topk(topk, dim=1).indices
    return (pred == target[:, None]).any(dim=1).float().mean().item() * 100.0
