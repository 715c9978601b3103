"""Image restoration (dehazing, deraining, ...): the model maps a degraded image to a clean one.

Training loss (KTDN / SRKTDN, reference sheet): l1_weight * L1 + laplacian_weight *
Laplacian-pyramid L1 + lab_weight * MSE in CIE Lab, on the output clamped to [0, 1] (as the
official SRKTDN code, ``clamp_in_loss``). Methods add their distillation terms to these.

Evaluation: PSNR and SSIM of the clamped output, per image then averaged, in the colour
space ``colour`` ("rgb" or "y"), which the report names (key "colour"). Images are padded
with reflection to the network's multiple and cropped back, so any size works; the x8
self-ensemble (flips and transposes averaged) is ``self_ensemble: true``.

Options are read from the config's ``eval:`` section (see ``RestorationOptions``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kdvision.config import from_dict
from kdvision.config_checks import MAX_IMAGE_SIDE, ImageSide, NonNegativeFloat, Range
from kdvision.errors import UserError
from kdvision.losses.restoration import l1, lab_mse, laplacian_pyramid_l1
from kdvision.metrics.restoration import psnr_per_image, ssim_per_image
from kdvision.models.restoration.inference import restore
from kdvision.registry import TASKS
from kdvision.outputs import main_output
from kdvision.tasks.base import Task
from kdvision.tasks.pictures import picture_grid


@dataclass
class RestorationOptions:
    """The ``eval:`` section of a restoration config."""

    colour: Literal["rgb", "y"] = "rgb"  # the colour space of PSNR / SSIM
    self_ensemble: bool = False  # x8 flips/transposes averaged at evaluation
    #: pad evaluation images to this multiple (0: the model's input_multiple)
    multiple: Annotated[int, Range(ge=0, le=MAX_IMAGE_SIDE)] = 0
    l1_weight: NonNegativeFloat = 1.0
    laplacian_weight: NonNegativeFloat = 0.3
    lab_weight: NonNegativeFloat = 0.5
    lab_normalized: bool = True  # official SRKTDN scaling (L/100, a/255, b/255)
    clamp_in_loss: bool = True  # losses see the output clamped to [0, 1] (official SRKTDN)
    picture_size: ImageSide = 256  # longest side of each panel of the pictures grid


@TASKS.register("restoration")
class RestorationTask(Task):
    """Degraded image in, clean image out; metric: PSNR (dB)."""
    loss_terms = ("l1", "laplacian", "lab")  # the names ``loss`` returns (``method.weights`` keys)

    metric = "psnr"
    metric_unit = "dB"
    secondary_metric = "ssim"
    target_kind = (4, True, "clean images [batch, channels, height, width]")

    def __init__(self, cfg):
        super().__init__(cfg)
        self.options = from_dict(RestorationOptions, dict(cfg.eval or {}), "eval", cfg.source)

    def dataset_info(self) -> dict[str, Any]:
        """Restoration models need no facts from the data, so building a model never reads a
        data set (``kdvision infer`` works without the training data); once the data sets are
        built, their attributes (e.g. "domains") are reported as usual."""
        if self._datasets is None:
            return {}
        return super().dataset_info()

    # -- training ------------------------------------------------------------------
    def loss(self, output: Any, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """{"l1", "laplacian", "lab"}, each already weighted (zero-weight terms are left out)."""
        o = self.options
        pred = main_output(output).float()
        target = batch["target"].float()
        if pred.shape != target.shape:
            raise UserError(f"the model's output {tuple(pred.shape)} does not match the target "
                            f"{tuple(target.shape)}")
        if o.clamp_in_loss:
            pred = pred.clamp(0, 1)
        terms = {}
        if o.l1_weight:
            terms["l1"] = o.l1_weight * l1(pred, target)
        if o.laplacian_weight:
            terms["laplacian"] = o.laplacian_weight * laplacian_pyramid_l1(pred, target)
        if o.lab_weight:
            terms["lab"] = o.lab_weight * lab_mse(pred, target, o.lab_normalized)
        if not terms:
            raise UserError(f"{self.cfg.source}: eval.l1_weight, laplacian_weight and lab_weight are all 0")
        return terms

    # -- evaluation ----------------------------------------------------------------
    def restore(self, model: nn.Module, x: torch.Tensor, self_ensemble: bool | None = None) -> torch.Tensor:
        ensemble = self.options.self_ensemble if self_ensemble is None else self_ensemble
        return restore(model, x, self.options.multiple or None, ensemble)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader, device: torch.device, autocast) -> dict[str, Any]:
        """{"psnr", "ssim" (means over images), "psnr_std", "ssim_std", "images", "colour",
        "self_ensemble"}.

        When the batches carry "domain" (the weather type, multi-weather data), also the means
        per type, named by the data set's ``domains`` ("psnr_haze", "ssim_rain", ...; "domain<i>"
        if the data set names none), and their unweighted mean over the types present
        ("psnr_domain_mean", "ssim_domain_mean": the "average" column of the two-stage paper's
        tables; equal to "psnr" / "ssim" when every type has as many test images).
        """
        was_training = model.training
        model.eval()
        colour = self.options.colour
        psnrs, ssims, domains = [], [], []
        for batch in loader:
            x = batch["input"].to(device, non_blocking=True)
            y = batch["target"].to(device, non_blocking=True).float()
            with autocast():
                out = self.restore(model, x)
            out = out.float()
            psnrs.append(psnr_per_image(out, y, 1.0, colour).cpu())
            ssims.append(ssim_per_image(out, y, 1.0, colour).cpu())
            if "domain" in batch:
                domains.append(torch.as_tensor(batch["domain"]).view(-1).long().cpu())
        model.train(was_training)
        if not psnrs:
            raise UserError(f"{self.cfg.source}: the evaluation split of '{self.cfg.data['name']}' is empty")
        p, s = torch.cat(psnrs), torch.cat(ssims)
        result = {"psnr": float(p.mean()), "ssim": float(s.mean()),
                  "psnr_std": float(p.std(unbiased=False)), "ssim_std": float(s.std(unbiased=False)),
                  "images": int(p.numel()), "colour": colour, "self_ensemble": self.options.self_ensemble}
        if domains and len(domains) == len(psnrs):
            result.update(per_domain_means(p, s, torch.cat(domains), getattr(loader, "dataset", None)))
        return result

    # -- pictures ------------------------------------------------------------------
    @torch.no_grad()
    def pictures(self, model: nn.Module, batch: dict[str, Any], max_images: int = 4) -> np.ndarray:
        """Rows of [input | output | target] for up to ``max_images`` images, HxWx3 uint8
        (panels shrunk to ``picture_size`` on their longest side)."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        x = batch["input"][:max_images].to(device)
        out = self.restore(model, x, self_ensemble=False).float()
        model.train(was_training)
        panels = [x.float().clamp(0, 1), out, batch["target"][:max_images].to(device).float().clamp(0, 1)]
        h, w = x.shape[-2:]
        scale = min(1.0, self.options.picture_size / max(h, w))
        if scale < 1.0:
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            panels = [F.interpolate(p, size=size, mode="area") for p in panels]
        return picture_grid([[(p[i].cpu().numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8) for p in panels]
                             for i in range(x.shape[0])])


def per_domain_means(psnr: torch.Tensor, ssim: torch.Tensor, domain: torch.Tensor, dataset=None) -> dict[str, float]:
    """Per-image values grouped by domain index: {"psnr_<name>", "ssim_<name>", "images_<name>"}
    for each domain present, plus "psnr_domain_mean" / "ssim_domain_mean" (mean over domains)."""
    names = list(getattr(dataset, "domains", None) or [])
    out: dict[str, float] = {}
    p_means, s_means = [], []
    for d in sorted(int(i) for i in domain.unique().tolist()):
        name = names[d] if 0 <= d < len(names) else f"domain{d}"
        mask = domain == d
        p_means.append(float(psnr[mask].mean()))
        s_means.append(float(ssim[mask].mean()))
        out[f"psnr_{name}"], out[f"ssim_{name}"] = p_means[-1], s_means[-1]
        out[f"images_{name}"] = int(mask.sum())
    out["psnr_domain_mean"] = sum(p_means) / len(p_means)
    out["ssim_domain_mean"] = sum(s_means) / len(s_means)
    return out
