"""PSNR / SSIM against scikit-image; Lab against skimage.color; the restoration losses against
independent computations (numpy / scipy loops, and numbers from the official SRKTDN code)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.color import rgb2lab, rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from kdvision.losses import feature_transfer_l1, l1, lab_mse, laplacian_pyramid_l1, rgb_to_lab
from kdvision.metrics import psnr, psnr_per_image, ssim, ssim_per_image


def pair(shape=(3, 3, 37, 50), seed=0, noise=0.1):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=g)
    pred = (target + noise * torch.randn(shape, generator=g)).clamp(0, 1)
    return pred, target


def sk_ssim(a, b, channel_axis=None):
    return structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, channel_axis=channel_axis)


@pytest.mark.parametrize("shape", [(3, 3, 37, 50), (2, 3, 11, 16), (1, 3, 64, 64)])
def test_psnr_and_ssim_match_scikit_image_rgb(shape):
    pred, target = pair(shape)
    p, t = pred.double().numpy(), target.double().numpy()
    ref_psnr = [peak_signal_noise_ratio(t[i], p[i], data_range=1.0) for i in range(shape[0])]
    ref_ssim = [sk_ssim(t[i], p[i], channel_axis=0) for i in range(shape[0])]
    assert np.allclose(psnr_per_image(pred, target).numpy(), ref_psnr, atol=1e-3)
    assert np.allclose(ssim_per_image(pred, target).numpy(), ref_ssim, atol=1e-3)
    assert abs(float(psnr(pred, target)) - np.mean(ref_psnr)) < 1e-3
    assert abs(float(ssim(pred, target)) - np.mean(ref_ssim)) < 1e-3


def test_psnr_and_ssim_match_scikit_image_on_luma():
    pred, target = pair((2, 3, 30, 41), seed=3, noise=0.05)
    y = lambda x: rgb2ycbcr(x.double().numpy().transpose(1, 2, 0))[..., 0] / 255.0  # noqa: E731
    ref_psnr = [peak_signal_noise_ratio(y(target[i]), y(pred[i]), data_range=1.0) for i in range(2)]
    ref_ssim = [sk_ssim(y(target[i]), y(pred[i])) for i in range(2)]
    assert np.allclose(psnr_per_image(pred, target, channel="y").numpy(), ref_psnr, atol=1e-3)
    assert np.allclose(ssim_per_image(pred, target, channel="y").numpy(), ref_ssim, atol=1e-3)
    # the colour space matters: Y and RGB scores differ
    assert abs(float(psnr(pred, target, channel="y")) - float(psnr(pred, target))) > 0.1


def test_metrics_on_known_values():
    target = torch.zeros(1, 3, 16, 16)
    pred = torch.full((1, 3, 16, 16), 0.1)
    assert abs(float(psnr(pred, target)) - 20.0) < 1e-5  # 10 log10(1 / 0.01)
    assert float(ssim(target + 0.5, target + 0.5)) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))  # smaller than the 11x11 window


def test_rgb_to_lab_matches_scikit_image():
    x = torch.rand(2, 3, 9, 13, dtype=torch.float64)
    x[0, :, 0, 0], x[0, :, 0, 1], x[0, :, 0, 2] = 0.0, 1.0, 0.02  # both sides of each kink
    ref = np.stack([rgb2lab(x[i].numpy().transpose(1, 2, 0)).transpose(2, 0, 1) for i in range(2)])
    assert np.abs(rgb_to_lab(x).numpy() - ref).max() < 1e-6


def test_lab_mse_against_scikit_image_and_gradients():
    pred, target = pair((2, 3, 12, 12), seed=1)
    lab = lambda t: np.stack([rgb2lab(t[i].double().numpy().transpose(1, 2, 0)) for i in range(t.shape[0])])  # noqa: E731
    diff = lab(pred) - lab(target)
    assert float(lab_mse(pred, target, normalized=False)) == pytest.approx(np.mean(diff ** 2), rel=1e-4)
    scaled = diff / np.array([100.0, 255.0, 255.0])
    assert float(lab_mse(pred, target)) == pytest.approx(np.mean(scaled ** 2), rel=1e-4)
    p = torch.zeros(1, 3, 4, 4, requires_grad=True)  # black: the linear branches
    lab_mse(p, torch.rand(1, 3, 4, 4)).backward()
    assert torch.isfinite(p.grad).all()


def numpy_laplacian_l1(pred: np.ndarray, target: np.ndarray, levels: int = 5) -> float:
    """Independent pyramid: scipy convolution with replicated borders, 2x2 block means."""
    g = np.exp(-0.5 * (np.arange(5) - 2.0) ** 2)
    kernel = np.outer(g, g) / np.outer(g, g).sum()

    def bands(img):
        out, cur = [], img
        for _ in range(levels):
            blurred = np.stack([ndimage.convolve(c, kernel, mode="nearest") for c in cur])
            out.append(cur - blurred)
            h, w = blurred.shape[1] // 2 * 2, blurred.shape[2] // 2 * 2
            b = blurred[:, :h, :w]
            cur = (b[:, 0::2, 0::2] + b[:, 1::2, 0::2] + b[:, 0::2, 1::2] + b[:, 1::2, 1::2]) / 4
        return out

    bp, bt = bands(pred), bands(target)
    return sum(2.0 ** (-2 * j) * np.mean(np.abs(bp[j] - bt[j])) for j in range(levels))


def test_laplacian_pyramid_l1_matches_independent_computation():
    pred, target = pair((1, 3, 45, 64), seed=2)
    ours = float(laplacian_pyramid_l1(pred.double(), target.double()))
    ref = numpy_laplacian_l1(pred[0].double().numpy(), target[0].double().numpy())
    assert ours == pytest.approx(ref, rel=1e-9)
    assert float(laplacian_pyramid_l1(target, target)) == 0.0


def test_losses_match_the_official_srktdn_code():
    """Numbers from running Errno1024/SRKT-ntire2021 src/loss.py (LapLoss, lab2loss) on these inputs."""
    h, w = 40, 52
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    pred = torch.stack([0.5 + 0.4 * torch.sin(xx / 3.0), 0.5 + 0.4 * torch.cos(yy / 5.0), (xx + yy) / (h + w)])[None]
    target = torch.stack([0.5 + 0.4 * torch.sin(xx / 4.0 + 0.3), 0.3 + 0.2 * torch.cos(yy / 2.0), (xx * yy) / (h * w)])[None]
    assert float(laplacian_pyramid_l1(pred, target)) == pytest.approx(0.02344963, abs=1e-7)
    assert float(lab_mse(pred, target)) == pytest.approx(0.05337775, abs=1e-6)


def test_l1_and_feature_transfer_l1():
    a, b = torch.rand(2, 8, 4, 4), torch.rand(2, 8, 4, 4, requires_grad=True)
    assert float(l1(a, b.detach())) == pytest.approx(float((a - b.detach()).abs().mean()))
    s = torch.rand(2, 8, 4, 4, requires_grad=True)
    loss = feature_transfer_l1(s, b)
    loss.backward()
    assert b.grad is None and s.grad is not None  # the teacher side is detached
    assert float(loss.detach()) == pytest.approx(float((s - b).abs().mean().detach()))
    with pytest.raises(ValueError):
        feature_transfer_l1(torch.rand(1, 8, 4, 4), torch.rand(1, 4, 4, 4))
