"""Restoration losses of KTDN / SRKTDN.

KTDN: Wu et al., "Knowledge Transfer Dehazing Network for NonHomogeneous Dehazing", CVPRW 2020.
SRKTDN: the super-resolution + knowledge-transfer network of the NTIRE 2021 NonHomogeneous
Dehazing Challenge (Ancuti et al., challenge report, CVPRW 2021; official code
Errno1024/SRKT-ntire2021, src/loss.py). The total loss of the reference sheet:

    L = 1 * L1(y, gt) + 0.3 * L_lap(y, gt) + 0.5 * MSE(Lab(y), Lab(gt)) + 1 * L1(f_S, f_T)

- ``laplacian_pyramid_l1``: 5 band-pass levels; 5x5 Gaussian (sigma 1) with replicated borders,
  band j = G_j - blur(G_j), G_{j+1} = avgpool2(blur(G_j)); level j weighted 2^(-2j); the final
  low-pass image is not compared (as in the official code).
- ``lab_mse``: MSE in CIE Lab (sRGB, D65, 2-degree observer). The official code compares
  (L/100, (a+128)/255, (b+128)/255) (``normalized=True``, the default); ``normalized=False``
  compares raw Lab values (L in [0, 100]).
- ``feature_transfer_l1``: L1 between the student's and the frozen teacher's mid features.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# sRGB (linear) -> XYZ, and the D65 / 2-degree reference white (as scikit-image's rgb2lab)
XYZ_FROM_RGB = ((0.412453, 0.357580, 0.180423),
                (0.212671, 0.715160, 0.072169),
                (0.019334, 0.119193, 0.950227))
D65_WHITE = (0.95047, 1.0, 1.08883)


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error."""
    return F.l1_loss(pred, target)


def gaussian_kernel_2d(size: int = 5, sigma: float = 1.0, dtype=torch.float32, device=None) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    k = g[:, None] * g[None, :]
    return k / k.sum()


def laplacian_pyramid(image: torch.Tensor, levels: int = 5, size: int = 5, sigma: float = 1.0) -> list[torch.Tensor]:
    """Band-pass levels [G_0 - blur(G_0), ...] of an NCHW image, then the last low-pass image."""
    c = image.shape[1]
    kernel = gaussian_kernel_2d(size, sigma, image.dtype, image.device).expand(c, 1, size, size)
    pad = size // 2
    pyramid, current = [], image
    for _ in range(levels):
        blurred = F.conv2d(F.pad(current, (pad, pad, pad, pad), mode="replicate"), kernel, groups=c)
        pyramid.append(current - blurred)
        current = F.avg_pool2d(blurred, 2)
    pyramid.append(current)
    return pyramid


def laplacian_pyramid_l1(pred: torch.Tensor, target: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """sum_j 2^(-2j) * L1(band_j(pred), band_j(target)) over the ``levels`` band-pass levels."""
    pp, tp = laplacian_pyramid(pred, levels), laplacian_pyramid(target, levels)
    return sum(2.0 ** (-2 * j) * F.l1_loss(pp[j], tp[j]) for j in range(levels))


def rgb_to_lab(image: torch.Tensor) -> torch.Tensor:
    """NCHW sRGB in [0, 1] -> CIE Lab (D65, 2 degrees): L in [0, 100], a and b about [-128, 127].

    Same formulas as scikit-image's ``rgb2lab``; both branches of each piecewise function are
    evaluated on safe inputs so that gradients stay finite.
    """
    x = image
    linear = torch.where(x > 0.04045, ((x.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, x / 12.92)
    m = torch.tensor(XYZ_FROM_RGB, dtype=x.dtype, device=x.device)
    xyz = torch.einsum("ij,njhw->nihw", m, linear)
    white = torch.tensor(D65_WHITE, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    xyz = xyz / white
    f = torch.where(xyz > 0.008856, xyz.clamp(min=0.008856) ** (1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def lab_mse(pred: torch.Tensor, target: torch.Tensor, normalized: bool = True) -> torch.Tensor:
    """MSE between the CIE Lab images; ``normalized`` scales L by 1/100 and a, b by 1/255
    (the official SRKTDN code; the +128 offsets it adds cancel in a difference)."""
    lp, lt = rgb_to_lab(pred), rgb_to_lab(target)
    if normalized:
        scale = torch.tensor([1 / 100, 1 / 255, 1 / 255], dtype=lp.dtype, device=lp.device).view(1, 3, 1, 1)
        lp, lt = lp * scale, lt * scale
    return F.mse_loss(lp, lt)


def feature_transfer_l1(student_feature: torch.Tensor, teacher_feature: torch.Tensor) -> torch.Tensor:
    """KTDN knowledge transfer: L1(f_S, f_T) with the teacher's feature detached."""
    if student_feature.shape != teacher_feature.shape:
        raise ValueError(f"student feature {tuple(student_feature.shape)} and teacher feature "
                         f"{tuple(teacher_feature.shape)} differ in shape")
    return F.l1_loss(student_feature.float(), teacher_feature.detach().float())
