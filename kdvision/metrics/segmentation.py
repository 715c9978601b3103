"""Segmentation metrics from a confusion matrix: mIoU, pixel accuracy, per-class IoU.

IoU_c = TP_c / (TP_c + FP_c + FN_c) over pixels whose ground truth is not ``ignore_index``;
mIoU averages IoU_c over the classes that occur in the prediction or the ground truth
(a class absent from both has no IoU and is left out of the mean). Values are in percent.
"""
from __future__ import annotations

import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int = 255) -> torch.Tensor:
    """[num_classes, num_classes] int64 counts, rows = ground truth, columns = prediction."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    valid = target != ignore_index
    t = target[valid].long()
    p = pred[valid].long()
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        bad = int(t.max()) if int(t.max()) >= num_classes else int(t.min())
        raise ValueError(f"target label {bad} is outside 0..{num_classes - 1} and is not {ignore_index}")
    if p.numel() and (int(p.min()) < 0 or int(p.max()) >= num_classes):
        raise ValueError(f"predicted label outside 0..{num_classes - 1}")
    return torch.bincount(t * num_classes + p, minlength=num_classes ** 2).view(num_classes, num_classes)


class ConfusionMatrix:
    """Accumulates a confusion matrix over a whole evaluation set (on the tensors' device)."""

    def __init__(self, num_classes: int, ignore_index: int = 255):
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.matrix: torch.Tensor | None = None

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        m = confusion_matrix(pred, target, self.num_classes, self.ignore_index)
        self.matrix = m if self.matrix is None else self.matrix + m.to(self.matrix.device)

    def _counts(self):
        m = (self.matrix if self.matrix is not None
             else torch.zeros(self.num_classes, self.num_classes, dtype=torch.long)).double().cpu()
        tp = m.diag()
        return tp, m.sum(1), m.sum(0)  # true positives, ground-truth pixels, predicted pixels

    def per_class_iou(self) -> torch.Tensor:
        """IoU per class in percent; NaN for classes absent from prediction and ground truth."""
        tp, gt, pr = self._counts()
        union = gt + pr - tp
        return torch.where(union > 0, 100.0 * tp / union.clamp(min=1), torch.full_like(union, float("nan")))

    def miou(self) -> float:
        iou = self.per_class_iou()
        present = ~iou.isnan()
        return float(iou[present].mean()) if present.any() else float("nan")

    def pixel_accuracy(self) -> float:
        tp, gt, _ = self._counts()
        total = gt.sum()
        return float(100.0 * tp.sum() / total) if total > 0 else float("nan")

    def compute(self) -> dict[str, float]:
        return {"miou": self.miou(), "pixel_acc": self.pixel_accuracy()}


def miou(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 255) -> float:
    """Mean IoU (percent) of label maps ``pred`` vs ``target`` (same shape), ignoring ``ignore_index``."""
    cm = ConfusionMatrix(num_classes, ignore_index)
    cm.update(pred, target)
    return cm.miou()
