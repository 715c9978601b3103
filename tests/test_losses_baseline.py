"""KD and AT losses against independent computations (numpy loops, torch's kl_div)."""
import numpy as np
import torch
import torch.nn.functional as F

from kdvision.losses import at_loss, attention_map, fitnet_loss, kd_loss


def test_kd_loss_matches_numpy_definition():
    torch.manual_seed(0)
    s, t = torch.randn(5, 7), torch.randn(5, 7)
    T = 3.0
    ps = np.exp(s.numpy() / T) / np.exp(s.numpy() / T).sum(1, keepdims=True)
    pt = np.exp(t.numpy() / T) / np.exp(t.numpy() / T).sum(1, keepdims=True)
    expected = T * T * np.mean(np.sum(pt * (np.log(pt) - np.log(ps)), axis=1))
    assert abs(kd_loss(s, t, T).item() - expected) < 1e-5
    ref = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T * T
    assert torch.allclose(kd_loss(s, t, T), ref, atol=1e-6)


def test_kd_loss_is_zero_for_equal_logits_and_never_reaches_teacher():
    s = torch.randn(4, 10, requires_grad=True)
    t = s.detach().clone().requires_grad_(True)
    loss = kd_loss(s, t)
    assert loss.item() < 1e-6
    teacher = torch.randn(4, 10).requires_grad_()
    kd_loss(s, teacher).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert teacher.grad is None  # the teacher side is detached


def test_attention_map_and_at_loss_by_hand():
    torch.manual_seed(1)
    fs, ft = torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4)

    def phi(f):
        a = (f.numpy() ** 2).mean(axis=1).reshape(f.shape[0], -1)
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    assert np.allclose(attention_map(fs).numpy(), phi(fs), atol=1e-6)
    expected = ((phi(fs) - phi(ft)) ** 2).mean()
    assert abs(at_loss(fs, ft).item() - expected) < 1e-6


def test_at_loss_pools_the_larger_map_down():
    torch.manual_seed(2)
    fs, ft = torch.randn(2, 3, 8, 8), torch.randn(2, 6, 4, 4)
    pooled = F.avg_pool2d(fs, 2)  # adaptive pooling 8 -> 4 is a 2x2 average
    assert torch.allclose(at_loss(fs, ft), at_loss(pooled, ft), atol=1e-6)
    assert torch.allclose(at_loss(ft, fs), at_loss(ft, pooled), atol=1e-6)


def test_fitnet_loss_is_mse():
    a, b = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    assert torch.allclose(fitnet_loss(a, b), ((a - b) ** 2).mean())
