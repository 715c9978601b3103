"""Image restoration metrics: PSNR and SSIM, per image, averaged over the batch.

SSIM follows Wang et al., "Image quality assessment: from error visibility to structural
similarity", IEEE TIP 2004, Eq. 13, with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01,
K2 = 0.03, population (biased) variances, computed per channel and averaged over channels.
As in scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)``, the SSIM map is averaged only where the window lies fully
inside the image (a 5-pixel border is left out).

``channel="rgb"`` (default) scores the RGB image; ``channel="y"`` scores the luma of ITU-R
BT.601 (Y = 16 + 65.481 R + 128.553 G + 24.966 B, divided by 255, as MATLAB's rgb2ycbcr and
most deraining papers), keeping ``data_range``.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F

COLOURS = ("rgb", "y")


def to_luma(image: torch.Tensor) -> torch.Tensor:
    """NCHW RGB in [0, 1] -> N1HW BT.601 luma Y/255 (in [16/255, 235/255])."""
    r, g, b = image[:, 0:1], image[:, 1:2], image[:, 2:3]
    return (16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def _prepare(pred: torch.Tensor, target: torch.Tensor, channel: str) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if pred.dim() == 3:
        pred, target = pred[None], target[None]
    pred, target = pred.double(), target.double()
    if channel == "y":
        return to_luma(pred), to_luma(target)
    if channel != "rgb":
        raise ValueError(f"channel must be one of {COLOURS}, got {channel!r}")
    return pred, target


def psnr_per_image(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0,
                   channel: str = "rgb") -> torch.Tensor:
    """10 log10(R^2 / MSE) of each image of an NCHW batch (MSE over channels and pixels)."""
    pred, target = _prepare(pred, target, channel)
    mse = (pred - target).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(data_range ** 2 / mse)


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, channel: str = "rgb") -> torch.Tensor:
    """Peak signal-to-noise ratio in dB: the batch mean of per-image values."""
    return psnr_per_image(pred, target, data_range, channel).mean()


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype=torch.float64, device=None) -> torch.Tensor:
    """The normalised 1-D Gaussian of ``size`` taps."""
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def _filter(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filtering of each channel of an NCHW tensor."""
    c = x.shape[1]
    k = window.numel()
    x = F.conv2d(x, window.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(x, window.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def ssim_per_image(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0,
                   channel: str = "rgb", window_size: int = 11, sigma: float = 1.5,
                   k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Mean SSIM of each image of an NCHW batch (channels averaged)."""
    pred, target = _prepare(pred, target, channel)
    if min(pred.shape[-2:]) < window_size:
        raise ValueError(f"SSIM needs images of at least {window_size}x{window_size}, got "
                         f"{tuple(pred.shape[-2:])}")
    window = gaussian_window(window_size, sigma, pred.dtype, pred.device)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_x, mu_y = _filter(pred, window), _filter(target, window)
    var_x = _filter(pred * pred, window) - mu_x ** 2
    var_y = _filter(target * target, window) - mu_y ** 2
    cov = _filter(pred * target, window) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return s.flatten(2).mean(2).mean(1)


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, channel: str = "rgb") -> torch.Tensor:
    """Structural similarity: the batch mean of per-image values (see the module docstring)."""
    return ssim_per_image(pred, target, data_range, channel).mean()


__all__ = ["psnr", "ssim", "psnr_per_image", "ssim_per_image", "to_luma", "gaussian_window", "COLOURS"]
