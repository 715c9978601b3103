"""Multi-contrastive regularisation and CKT losses against direct computations."""
import numpy as np
import torch
import torch.nn.functional as F

from kdvision.losses.collaborative import pfe_loss, pfv_loss
from kdvision.losses.contrastive import VGG_LAYER_WEIGHTS, contrastive_regularization


def tiny_extractor():
    """Two fixed feature maps: a 3x3 conv + ReLU, then 2x2 average pooling of it."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(4, 3, 3, 3, generator=g)

    def extract(x):
        f1 = F.relu(F.conv2d(x, w, padding=1))
        return [f1, F.avg_pool2d(f1, 2)]
    return extract


def direct(anchor, positive, negatives, extract, weights, c):
    """The formula with explicit loops over layers, negatives and elements (numpy)."""
    fa = [f.detach().numpy() for f in extract(anchor)]
    fp = [f.detach().numpy() for f in extract(positive)]
    fn = [[f.detach().numpy() for f in extract(n)] for n in negatives]
    total = 0.0
    for j, w in enumerate(weights):
        d_ap = np.abs(fa[j] - fp[j]).mean()
        d_an = 0.0
        for r in range(len(negatives)):
            neg = np.broadcast_to(fn[r][j], fa[j].shape)
            d_an += c[r] * np.abs(fa[j] - neg).mean()
        total += w * d_ap / (d_an + 1e-7)
    return total


def test_contrastive_regularization_matches_direct_computation():
    g = torch.Generator().manual_seed(1)
    a, p = torch.rand(3, 3, 8, 8, generator=g), torch.rand(3, 3, 8, 8, generator=g)
    negs = [torch.rand(3, 3, 8, 8, generator=g), torch.rand(1, 3, 8, 8, generator=g), torch.rand(3, 3, 8, 8, generator=g)]
    ext = tiny_extractor()
    weights = [0.25, 1.0]
    got = contrastive_regularization(a, p, negs, ext, weights)
    assert abs(got.item() - direct(a, p, negs, ext, weights, [1, 1, 1])) < 1e-5
    c = [0.5, 2.0, 0.1]
    got = contrastive_regularization(a, p, negs, ext, weights, negative_weights=c)
    assert abs(got.item() - direct(a, p, negs, ext, weights, c)) < 1e-5


def test_hard_cr_mean_form_equals_official_pairwise_expansion():
    """Official HCR: L1 between every anchor and every input of the batch (b x b expansion)."""
    g = torch.Generator().manual_seed(2)
    b = 4
    a, p, x = (torch.rand(b, 3, 8, 8, generator=g) for _ in range(3))
    ext = tiny_extractor()
    got = contrastive_regularization(a, p, [x[j:j + 1] for j in range(b)], ext, [1.0, 0.5],
                                     negative_weights=[1 / b] * b)
    expected = 0.0
    for w, fa, fp, fx in zip([1.0, 0.5], ext(a), ext(p), ext(x)):
        n, c, h, wd = fa.shape
        d_an = (fa.unsqueeze(1).expand(n, n, c, h, wd) - fx.expand(n, n, c, h, wd)).abs().mean()
        expected += w * (fa - fp).abs().mean() / (d_an + 1e-7)
    assert abs(got.item() - expected.item()) < 1e-5


def test_only_the_anchor_receives_gradients():
    g = torch.Generator().manual_seed(3)
    a = torch.rand(2, 3, 8, 8, generator=g, requires_grad=True)
    p = torch.rand(2, 3, 8, 8, generator=g, requires_grad=True)
    n = torch.rand(2, 3, 8, 8, generator=g, requires_grad=True)
    contrastive_regularization(a, p, [n], tiny_extractor(), [1.0, 1.0]).backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    assert p.grad is None and n.grad is None
    assert len(VGG_LAYER_WEIGHTS) == 5 and VGG_LAYER_WEIGHTS[0] == 1 / 32


def test_pfe_and_pfv_are_batch_mean_l1_summed_over_taps():
    g = torch.Generator().manual_seed(4)
    s = [torch.randn(4, 2, 3, 3, generator=g), torch.randn(4, 5, 2, 2, generator=g)]
    t = [torch.randn(4, 2, 3, 3, generator=g), torch.randn(4, 5, 2, 2, generator=g)]
    assert torch.isclose(pfe_loss(s, t), sum((a - b).abs().mean() for a, b in zip(s, t)))
    # two teachers of different widths at one tap: the mean runs over all their elements together
    rec = [[torch.randn(1, 2, 3, 3, generator=g), torch.randn(3, 4, 3, 3, generator=g)]]
    feat = [[torch.randn(1, 2, 3, 3, generator=g), torch.randn(3, 4, 3, 3, generator=g)]]
    diffs = np.concatenate([(r - f).abs().numpy().ravel() for r, f in zip(rec[0], feat[0])])
    assert abs(pfv_loss(rec, feat).item() - diffs.mean()) < 1e-6
