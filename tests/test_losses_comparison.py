"""The comparison-table losses against their official implementations.

Expected values in fixtures/comparison_losses_official.json were computed by running the official
code on the seeded inputs rebuilt below (script kept out of the repo; nothing of it is copied):
- dkd_*: megvii-research/mdistiller a08d46f1 mdistiller/distillers/DKD.py dkd_loss (alpha, beta = 1, 0 and 0, 1)
- ls_*: sunshangquan/logit-standardization-KD f6e5aa51 mdistiller/distillers/{KD,DKD}.py with logit_stand=True
- rkd_*, pkt_*, nst_*, vid_*, ofd_*, hcl_*: mdistiller a08d46f1 distillers/{RKD,PKT,NST,VID,OFD,ReviewKD}.py
- dist_*: hunto/image_classification_sota 6f7a70a1 lib/models/losses/dist_kd.py DIST(beta, gamma, tau)
- cwd_*: open-mmlab/mmrazor 90c7af1f mmrazor/models/losses/cwd.py ChannelWiseDivergence(tau)
- camkd_*, avgkd_*: Rorozhl/CA-MKD c2f39a9f helper/loops.py (CAMKD and AVERAGE_LOSS branches) with
  distiller_zoo/KD.py DistillKL(T=4)
- crd_*: HobbitLong/RepDistiller b84f547c crd/criterion.py ContrastLoss, crd/memory.py ContrastMemory
"""
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from kdvision.losses.channel_wise import cwd_loss
from kdvision.losses.crd import ContrastMemory, nce_loss
from kdvision.losses.dist import dist_terms
from kdvision.losses.dkd import dkd_terms
from kdvision.losses.logit_standardization import standardize_logits
from kdvision.losses.kd import kd_loss
from kdvision.losses.multi_teacher import confidence_weights, multi_teacher_kd_loss
from kdvision.losses.nst import nst_loss
from kdvision.losses.overhaul import bn_margin, ofd_loss
from kdvision.losses.relational import pkt_loss, rkd_angle_loss, rkd_distance_loss
from kdvision.losses.review import hcl_loss
from kdvision.losses.variational import vid_log_scale_init, vid_loss

REF = json.loads((Path(__file__).parent / "fixtures" / "comparison_losses_official.json").read_text())


def inputs(seed, *shapes):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g) for s in shapes]


def close(value, key, rel=1e-5, abs_=1e-6):
    assert value == pytest.approx(REF[key], rel=rel, abs=abs_), key


@pytest.mark.parametrize("seed,shape,temperature", [(0, (6, 10), 4.0), (1, (3, 100), 2.0), (2, (8, 5), 1.0)])
def test_dkd_terms_equal_official(seed, shape, temperature):
    s, t = inputs(seed, shape, shape)
    target = torch.arange(shape[0]) % shape[1]
    tckd, nckd = dkd_terms(s, t, target, temperature)
    close(tckd.item(), f"dkd_{seed}_tckd")
    close(nckd.item(), f"dkd_{seed}_nckd")


def test_dkd_terms_sum_to_kd_when_weighted_by_the_target_probability():
    """Eq. 5 of the DKD paper: KD = TCKD + (1 - p_t^T) * NCKD per sample (checked with B = 1)."""
    s, t = inputs(20, (1, 7), (1, 7))
    target = torch.tensor([3])
    tckd, nckd = dkd_terms(s, t, target, 2.0)
    p_target_teacher = F.softmax(t / 2.0, dim=1)[0, 3]
    assert (tckd + (1 - p_target_teacher) * nckd).item() == pytest.approx(kd_loss(s, t, 2.0).item(), rel=1e-5)


def test_logit_standardisation_equals_official_kd_and_dkd():
    s, t = inputs(3, (5, 10), (5, 10))
    s, t = s * 3, t * 7 + 1
    zs, zt = standardize_logits(s), standardize_logits(t)
    close(kd_loss(zs, zt, 2.0).item(), "ls_kd_3")
    tckd, nckd = dkd_terms(zs, zt, torch.arange(5), 2.0)
    close((tckd + 8.0 * nckd).item(), "ls_dkd_3")
    assert torch.allclose(standardize_logits(s * 5 + 2), zs, atol=1e-5)  # invariant to scale and shift


@pytest.mark.parametrize("seed,shape", [(4, (6, 16)), (5, (5, 3, 2, 2))])
def test_rkd_and_pkt_equal_official(seed, shape):
    s, t = inputs(seed, shape, shape)
    close(rkd_distance_loss(s, t).item(), f"rkd_{seed}_d")
    close(rkd_angle_loss(s, t).item(), f"rkd_{seed}_a")
    close(pkt_loss(s, t).item(), f"pkt_{seed}", rel=1e-4)


def test_relational_losses_vanish_for_a_scaled_copy():
    (t,) = inputs(21, (6, 8))
    assert rkd_distance_loss(3.0 * t, t).item() < 1e-10  # distances normalised by their mean
    assert rkd_angle_loss(3.0 * t, t).item() < 1e-10
    assert pkt_loss(3.0 * t, t).item() < 1e-6  # cosine kernel


def test_nst_equals_official_and_pools_the_larger_map():
    s, t = inputs(6, (3, 4, 8, 8), (3, 6, 4, 4))
    close(nst_loss(s, t).item(), "nst_6")
    close(nst_loss(t, s).item(), "nst_6_rev")


@pytest.mark.parametrize("seed,tau", [(7, 1.0), (8, 4.0)])
def test_dist_terms_equal_official(seed, tau):
    s, t = inputs(seed, (6, 10), (6, 10))
    inter, intra = dist_terms(s, t, tau)
    close(inter.item(), f"dist_{seed}_inter")
    close(intra.item(), f"dist_{seed}_intra")


def test_dist_dense_logits_are_pixels_as_samples():
    s, t = inputs(22, (2, 5, 3, 3), (2, 5, 3, 3))
    rows = lambda z: z.permute(0, 2, 3, 1).reshape(-1, 5)  # noqa: E731
    for a, b in zip(dist_terms(s, t), dist_terms(rows(s), rows(t))):
        assert a.item() == pytest.approx(b.item(), rel=1e-6)


@pytest.mark.parametrize("seed,tau", [(9, 1.0), (10, 4.0)])
def test_cwd_equals_mmrazor(seed, tau):
    s, t = inputs(seed, (2, 3, 5, 4), (2, 3, 5, 4))
    close(cwd_loss(s, t, tau).item(), f"cwd_{seed}")


def test_cwd_refuses_maps_of_different_shapes():
    with pytest.raises(ValueError, match="one shape"):
        cwd_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 2, 2))


def test_multi_teacher_kd_equals_ca_mkd_official():
    s, t1, t2, t3 = inputs(11, (6, 10), (6, 10), (6, 10), (6, 10))
    target = torch.tensor([0, 3, 9, 2, 2, 7])
    close(multi_teacher_kd_loss(s, [t1, t2, t3], target, 4.0, "confidence").item(), "camkd_11")
    close(multi_teacher_kd_loss(s, [t1, t2, t3], None, 4.0, "average").item(), "avgkd_11")
    w = confidence_weights([t1, t2, t3], target)
    assert torch.allclose(w.sum(dim=0), torch.ones(6))  # (K - sum softmax) / (K - 1) = 1
    # the teacher with the lowest cross-entropy on a sample gets the largest weight there
    ce = torch.stack([F.cross_entropy(z, target, reduction="none") for z in (t1, t2, t3)])
    assert torch.equal(w.argmax(dim=0), ce.argmin(dim=0))


def test_vid_equals_official():
    fs, ft = inputs(12, (2, 3, 4, 4), (2, 5, 4, 4))
    torch.manual_seed(0)
    reg = torch.nn.Conv2d(3, 5, 1, bias=False)
    log_scale = vid_log_scale_init(5.0) * torch.ones(5) + torch.linspace(-1, 1, 5)
    close(vid_loss(reg(fs), ft, log_scale).item(), "vid_12")
    assert F.softplus(torch.tensor(vid_log_scale_init(5.0))).item() + 1e-5 == pytest.approx(5.0)


def test_ofd_margin_and_partial_l2_equal_official():
    gamma, beta = torch.tensor(REF["ofd_gamma_13"]), torch.tensor(REF["ofd_beta_13"])
    margin = bn_margin(gamma, beta)
    assert margin.tolist() == pytest.approx(REF["ofd_margin_13"], rel=1e-5)
    fs, ft = inputs(14, (3, 6, 4, 4), (3, 6, 4, 4))
    close(ofd_loss(fs, ft, margin).item(), "ofd_14")


def test_ofd_partial_l2_skips_student_below_a_negative_teacher():
    margin = torch.tensor([-1.0])
    t = torch.tensor([-0.5]).view(1, 1, 1, 1)
    assert ofd_loss(torch.tensor([-2.0]).view(1, 1, 1, 1), t, margin).item() == 0.0  # s <= t <= 0
    assert ofd_loss(torch.tensor([0.5]).view(1, 1, 1, 1), t, margin).item() == pytest.approx(1.0)


def test_hcl_equals_official():
    a1, b1, a2, b2 = inputs(15, (2, 3, 8, 8), (2, 3, 8, 8), (2, 4, 2, 2), (2, 4, 2, 2))
    close(hcl_loss([a1, a2], [b1, b2]).item(), "hcl_15")


def test_crd_nce_and_memory_equal_official():
    (x,) = inputs(16, (4, 9))
    close(nce_loss(x.abs() * 1e-3, 50).item(), "crd_nce_16")
    torch.manual_seed(17)
    memory = ContrastMemory(8, 20, temperature=0.07, momentum=0.5)
    v1, v2 = inputs(18, (3, 8), (3, 8))
    v1, v2 = F.normalize(v1, dim=1), F.normalize(v2, dim=1)
    y = torch.tensor([4, 11, 0])
    idx = torch.tensor([[4, 1, 2, 3, 5, 6], [11, 0, 7, 8, 9, 10], [0, 19, 18, 17, 16, 15]])
    out_s, out_t = memory.scores(v1, v2, idx)
    close(out_s[0, 0].item(), "crd_mem_out_s_00", rel=1e-4)
    close(out_t[1, 2].item(), "crd_mem_out_t_12", rel=1e-4)
    close((nce_loss(out_s, 20) + nce_loss(out_t, 20)).item(), "crd_loss_18", rel=1e-4)
    memory.update(v1, v2, y)
    close(memory.student_bank.sum().item(), "crd_mem_bank_s_sum", rel=1e-4)
    close(memory.teacher_bank.sum().item(), "crd_mem_bank_t_sum", rel=1e-4)
    assert torch.allclose(memory.student_bank[y].norm(dim=1), torch.ones(3))


@pytest.mark.parametrize("loss", [
    lambda s, t: sum(dkd_terms(s, t, torch.tensor([1, 2, 0, 4]))),
    lambda s, t: rkd_distance_loss(s, t) + rkd_angle_loss(s, t),
    lambda s, t: pkt_loss(s, t),
    lambda s, t: sum(dist_terms(s, t)),
    lambda s, t: multi_teacher_kd_loss(s, [t, t * 2], torch.tensor([1, 2, 0, 4]), weighting="confidence"),
])
def test_logit_and_embedding_losses_never_reach_the_teacher(loss):
    s = torch.randn(4, 5, requires_grad=True)
    t = torch.randn(4, 5, requires_grad=True)
    loss(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


@pytest.mark.parametrize("loss", [nst_loss, lambda s, t: cwd_loss(s, t, 2.0), lambda s, t: hcl_loss([s], [t]),
                                  lambda s, t: ofd_loss(s, t, torch.full((3,), -0.5))])
def test_feature_losses_never_reach_the_teacher(loss):
    s = torch.randn(2, 3, 4, 4, requires_grad=True)
    t = torch.randn(2, 3, 4, 4, requires_grad=True)
    loss(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


def test_reviewkd_abf_review_path_equals_official():
    """mdistiller a08d46f1 distillers/ReviewKD.py (ABF, forward_train's review loop, hcl_loss), same seed."""
    from kdvision.methods.reviewkd import build_abfs, review_fuse

    torch.manual_seed(0)
    abfs = build_abfs([16, 32, 64, 64], [64, 128, 256, 256])
    g = torch.Generator().manual_seed(30)
    s = [torch.randn(2, 16, 8, 8, generator=g), torch.randn(2, 32, 4, 4, generator=g),
         torch.randn(2, 64, 2, 2, generator=g), torch.randn(2, 64, 1, 1, generator=g)]
    t = [torch.randn(2, 64, 8, 8, generator=g), torch.randn(2, 128, 4, 4, generator=g),
         torch.randn(2, 256, 2, 2, generator=g), torch.randn(2, 256, 1, 1, generator=g)]
    fused = review_fuse(abfs, s, [(8, 8), (4, 4), (2, 2), (1, 1)])
    for f, expected in zip(fused, REF["review_fused_first_30"]):
        assert f.flatten()[:3].tolist() == pytest.approx(expected, rel=1e-4, abs=1e-5)
    close(hcl_loss(fused, t).item(), "review_hcl_30", rel=1e-5)
