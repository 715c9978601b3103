"""mIoU, pixel accuracy and per-class IoU against a direct per-class computation."""
import math

import numpy as np
import pytest
import torch

from kdvision.metrics import ConfusionMatrix, miou


def direct_miou(pred, target, num_classes, ignore=255):
    pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel()
    keep = target != ignore
    pred, target = pred[keep], target[keep]
    ious = []
    for c in range(num_classes):
        inter = np.sum((pred == c) & (target == c))
        union = np.sum((pred == c) | (target == c))
        if union > 0:
            ious.append(inter / union)
    return 100 * float(np.mean(ious))


def test_miou_matches_direct_computation():
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 6, (3, 17, 13), generator=g)
    target[target == 5] = 255  # class 5 never in the ground truth ...
    pred = torch.randint(0, 5, (3, 17, 13), generator=g)
    pred[pred == 4] = 0  # ... and class 4 never predicted but in the ground truth
    target[0, 0, 0] = 4
    assert miou(pred, target, 7) == pytest.approx(direct_miou(pred, target, 7))
    # classes 5 and 6 are absent from both: left out of the mean, not counted as 0
    cm = ConfusionMatrix(7)
    cm.update(pred, target)
    iou = cm.per_class_iou()
    assert math.isnan(iou[5]) and math.isnan(iou[6]) and iou[4] == 0


def test_accumulated_over_batches_equals_whole_set():
    g = torch.Generator().manual_seed(1)
    target = torch.randint(0, 4, (4, 9, 9), generator=g)
    pred = torch.where(torch.rand(4, 9, 9, generator=g) < 0.7, target, torch.randint(0, 4, (4, 9, 9), generator=g))
    target[:, 0] = 255
    cm = ConfusionMatrix(4)
    cm.update(pred[:1], target[:1])
    cm.update(pred[1:], target[1:])
    assert cm.miou() == pytest.approx(direct_miou(pred, target, 4))
    keep = target != 255
    assert cm.pixel_accuracy() == pytest.approx(100 * float((pred[keep] == target[keep]).float().mean()))
    # averaging per-batch mIoUs would differ from the whole-set value
    assert cm.miou() != pytest.approx((miou(pred[:1], target[:1], 4) + miou(pred[1:], target[1:], 4)) / 2)


def test_label_outside_class_range_is_an_error():
    with pytest.raises(ValueError, match="outside"):
        miou(torch.zeros(2, 2, dtype=torch.long), torch.full((2, 2), 7), 4)
