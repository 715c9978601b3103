"""Pixel KD, class prototypes and perspective logits against explicit loops."""
import math

import numpy as np
import pytest
import torch

from kdvision.losses import class_prototypes, perspective_logits, pixel_kd_loss


def test_pixel_kd_matches_per_pixel_loop():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 4, 3, 5, generator=g), torch.randn(2, 4, 3, 5, generator=g)
    T = 2.0
    total, n = 0.0, 0
    for b in range(2):
        for i in range(3):
            for j in range(5):
                zs, zt = s[b, :, i, j].double().numpy() / T, t[b, :, i, j].double().numpy() / T
                ps = np.exp(zs - zs.max()) / np.exp(zs - zs.max()).sum()
                pt = np.exp(zt - zt.max()) / np.exp(zt - zt.max()).sum()
                total += float(np.sum(pt * np.log(pt / ps)))
                n += 1
    expected = T * T * total / n
    assert pixel_kd_loss(s, t, T).item() == pytest.approx(expected, rel=1e-5)
    # the APD code's KLDivLoss(reduction="mean") over B*C*H*W
    official = torch.nn.KLDivLoss(reduction="mean")(torch.log_softmax(s / T, 1), torch.softmax(t / T, 1)) * T * T
    assert pixel_kd_loss(s, t, T, reduction="element").item() == pytest.approx(official.item(), rel=1e-5)
    assert pixel_kd_loss(s, t, T, reduction="element").item() == pytest.approx(expected / 4, rel=1e-5)


def test_pixel_kd_teacher_detached_and_zero_at_equality():
    s = torch.randn(1, 3, 2, 2, requires_grad=True)
    t = torch.randn(1, 3, 2, 2, requires_grad=True)
    pixel_kd_loss(s, t).backward()
    assert t.grad is None and s.grad is not None
    assert pixel_kd_loss(s, s).item() == pytest.approx(0.0, abs=1e-6)


def prototypes_by_loop(features, labels, num_classes, ignore=255):
    b, d, h, w = features.shape
    H, W = labels.shape[-2:]
    out = torch.zeros(num_classes, d, dtype=torch.float64)
    present = torch.zeros(num_classes, dtype=torch.bool)
    for k in range(num_classes):
        vecs = []
        for n in range(b):
            for i in range(h):
                for j in range(w):
                    # nearest-neighbour downsampling: source pixel floor(i * H / h)
                    if int(labels[n, math.floor(i * H / h), math.floor(j * W / w)]) == k:
                        v = features[n, :, i, j].double()
                        vecs.append(v / v.norm())
        if vecs:
            m = torch.stack(vecs).mean(0)
            out[k], present[k] = m / m.norm(), True
    return out, present


def test_class_prototypes_with_absent_classes_and_ignored_pixels():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 6, 4, 5, generator=g)
    labels = torch.randint(0, 3, (2, 8, 10), generator=g)  # classes 3 and 4 absent
    labels[0, :4] = 255  # ignored pixels
    labels[1, 0, 0] = 4  # one pixel of class 4, kept by the nearest downsampling ((0, 0) -> (0, 0))
    protos, present = class_prototypes(features, labels, 5)
    ref, ref_present = prototypes_by_loop(features, labels, 5)
    assert present.tolist() == ref_present.tolist() == [True, True, True, False, True]
    assert torch.allclose(protos.double(), ref, atol=1e-6)
    assert torch.all(protos[3] == 0)
    # features scaled per pixel give the same prototypes (they are normalised per pixel first)
    scale = torch.rand(2, 1, 4, 5, generator=g) + 0.5
    assert torch.allclose(class_prototypes(features * scale, labels, 5)[0], protos, atol=1e-6)


def test_perspective_logits_are_scaled_cosines():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(2, 5, 3, 4, generator=g)
    p = torch.randn(3, 5, generator=g)
    out = perspective_logits(f, p, scale=10.0)
    assert out.shape == (2, 3, 3, 4)
    for b in range(2):
        for k in range(3):
            for i in range(3):
                for j in range(4):
                    cos = torch.nn.functional.cosine_similarity(f[b, :, i, j], p[k], dim=0)
                    assert out[b, k, i, j].item() == pytest.approx(10 * cos.item(), abs=1e-5)
