"""Semantic segmentation: per-pixel cross-entropy (ignore 255) with PSPNet's auxiliary loss,
mIoU / pixel accuracy / per-class IoU over the whole evaluation set, colourised prediction
pictures. Per-class IoU (``iou/<class name>``) and the pictures' legend use the data set's
``class_names`` where it has them; the pictures use its ``colours`` (a user's palette) where given.

``eval:`` options read here: ``aux_weight`` (default 0.4, PSPNet/APD), ``ignore_index``
(default 255) and ``align_corners`` (default false): how logits smaller than the labels are
upsampled for the CE and for evaluation. The registered networks return logits at the input
size already (pspnet_* upsample with align_corners True as the official PSPNet/APD code,
deeplabv3_* with False), so this only concerns models that do not.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kdvision.config import from_dict
from kdvision.config_checks import NonNegativeFloat
from kdvision.errors import UserError
from kdvision.metrics.segmentation import ConfusionMatrix
from kdvision.registry import TASKS
from kdvision.outputs import main_output, per_pixel_ce
from kdvision.tasks.base import Task
from kdvision.tasks.pictures import picture_grid


def palette() -> np.ndarray:
    """[256, 3] uint8 colours: the PASCAL VOC bit-interleaving palette; 255 (ignore) is white."""
    colours = np.zeros((256, 3), dtype=np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colours[i] = (r, g, b)
    colours[255] = 255
    return colours


@dataclass
class SegmentationOptions:
    """The ``eval:`` section of a segmentation config."""

    aux_weight: NonNegativeFloat = 0.4  # weight of the auxiliary head's CE (PSPNet)
    ignore_index: int = 255  # label value that no loss or metric counts
    align_corners: bool = False  # upsampling of the logits to the labels in the CE (pspnet recipes: true)


@TASKS.register("segmentation")
class SegmentationTask(Task):
    """Per-pixel logits [B, C, H, W]; metric: mIoU (%) over the whole evaluation split."""
    loss_terms = ("ce", "ce_aux")  # the names ``loss`` returns (``method.weights`` keys)

    metric = "miou"
    metric_unit = "%"
    target_kind = (3, False, "a class label per pixel [batch, height, width]")

    def __init__(self, cfg):
        super().__init__(cfg)
        options = from_dict(SegmentationOptions, dict(cfg.eval or {}), "eval", cfg.source)
        self.aux_weight = options.aux_weight
        self.ignore_index = options.ignore_index
        self.align_corners = options.align_corners

    # -- models --------------------------------------------------------------------
    def create_model(self, spec: dict, where: str, load_pretrained: bool = False, new_head: bool = True) -> nn.Module:
        model = super().create_model(spec, where, load_pretrained, new_head)
        expected = self.dataset_info().get("num_classes")
        got = getattr(model, "num_classes", None)
        if expected is not None and got is not None and got != expected:
            raise UserError(f"{self.cfg.source}: {where} '{spec['name']}' predicts {got} classes but the data "
                            f"set '{self.cfg.data['name']}' has {expected}")
        return model

    # -- training ------------------------------------------------------------------
    def loss(self, output: Any, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """{"ce": CE(main), "ce_aux": aux_weight * CE(aux)} (the aux term only when the model
        returns one), both ignoring ``ignore_index`` pixels."""
        target = batch["target"]
        losses = {"ce": per_pixel_ce(main_output(output), target, self.ignore_index, self.align_corners)}
        if isinstance(output, dict) and output.get("aux") is not None and self.aux_weight > 0:
            losses["ce_aux"] = self.aux_weight * per_pixel_ce(output["aux"], target, self.ignore_index,
                                                              self.align_corners)
        return losses

    # -- evaluation ----------------------------------------------------------------
    def predict(self, model: nn.Module, x: torch.Tensor, size) -> torch.Tensor:
        logits = main_output(model(x)).float()
        if logits.shape[-2:] != tuple(size):
            logits = F.interpolate(logits, size, mode="bilinear", align_corners=self.align_corners)
        return logits

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader, device: torch.device, autocast) -> dict[str, float]:
        """Single-scale whole-image evaluation: {"miou", "pixel_acc", "loss"} (percent; loss = CE)."""
        model.eval()
        cm = None
        loss_sum, pixels = torch.zeros((), device=device, dtype=torch.float64), 0
        for batch in loader:
            x = batch["input"].to(device, non_blocking=True)
            y = batch["target"].to(device, non_blocking=True)
            with autocast():
                logits = self.predict(model, x, y.shape[-2:])
            if cm is None:
                cm = ConfusionMatrix(logits.shape[1], self.ignore_index)
            try:
                cm.update(logits.argmax(1), y)
            except ValueError as e:
                raise UserError(f"evaluation data does not fit the model: {e}") from None
            valid = int((y != self.ignore_index).sum())
            if valid:
                loss_sum += F.cross_entropy(logits, y, ignore_index=self.ignore_index, reduction="sum").double()
                pixels += valid
        if cm is None:
            raise UserError(f"{self.cfg.source}: the evaluation split of '{self.cfg.data['name']}' is empty")
        out = cm.compute()
        out["loss"] = float(loss_sum) / max(pixels, 1)
        out.update(per_class_iou(cm, class_names(getattr(loader, "dataset", None), cm.num_classes)))
        return out

    @torch.no_grad()
    def pictures(self, model: nn.Module, batch: dict[str, Any], max_images: int = 4) -> np.ndarray:
        """Rows of [input | prediction | ground truth] for up to ``max_images`` images, HxWx3 uint8."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        x = batch["input"][:max_images].to(device)
        y = batch["target"][:max_images]
        pred = self.predict(model, x, y.shape[-2:]).argmax(1).cpu()
        model.train(was_training)
        data = self.datasets().get("val") if self._datasets is not None else None
        mean = np.array(getattr(data, "mean", (0.5, 0.5, 0.5)))[:, None, None]
        std = np.array(getattr(data, "std", (0.5, 0.5, 0.5)))[:, None, None]
        colours = palette()
        given = getattr(data, "colours", None)
        if given is not None:
            colours[: len(given)] = given
        rows = []
        for i in range(x.shape[0]):
            image = np.clip((x[i].float().cpu().numpy() * std + mean) * 255, 0, 255).astype(np.uint8)
            rows.append([image.transpose(1, 2, 0), colours[pred[i].numpy()], colours[y[i].clamp(0, 255).numpy()]])
        grid = picture_grid(rows)
        names = class_names(data, 0)
        if names is None:
            return grid
        shown = sorted((set(pred.unique().tolist()) | set(y.unique().tolist())) - {self.ignore_index})
        return with_legend(grid, [(colours[c], names[c]) for c in shown if c < len(names)])


def class_names(dataset, num_classes: int) -> list[str] | None:
    """The data set's class names if it has them for at least ``num_classes`` classes, else None."""
    names = getattr(dataset, "class_names", None)
    return list(names) if names is not None and len(names) >= num_classes else None


def per_class_iou(cm: ConfusionMatrix, names: list[str] | None) -> dict[str, float]:
    """{"iou/<name or index>": IoU %} for each class present in the prediction or ground truth."""
    iou = cm.per_class_iou()
    return {f"iou/{names[c] if names else c}": float(iou[c]) for c in range(len(iou)) if not iou[c].isnan()}


def with_legend(grid: np.ndarray, entries: list[tuple[np.ndarray, str]]) -> np.ndarray:
    """``grid`` with a legend below it: one colour swatch and class name per line."""
    from PIL import Image, ImageDraw, ImageFont

    if not entries:
        return grid
    font = ImageFont.load_default()
    line = 14
    text_w = max(int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(name, font=font)) for _, name in entries)
    width = max(grid.shape[1], text_w + 20)
    legend = Image.new("RGB", (width, line * len(entries) + 4), (255, 255, 255))
    draw = ImageDraw.Draw(legend)
    for i, (colour, name) in enumerate(entries):
        top = 2 + i * line
        draw.rectangle([2, top + 1, 12, top + 11], fill=tuple(int(v) for v in colour), outline=(0, 0, 0))
        draw.text((16, top), name, fill=(0, 0, 0), font=font)
    padded = np.full((grid.shape[0], width, 3), 255, np.uint8)
    padded[:, : grid.shape[1]] = grid
    return np.concatenate([padded, np.asarray(legend)], axis=0)
