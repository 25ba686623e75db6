"""The IoU loss (Eq. 3) and the Segmentation Loss (Eq. 7 with Eq. 8 / Eq. 9) against hand-computed values,
their gradients, and a few optimisation steps of every loss."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from facemask.training.losses import LOSSES, CrossEntropyLoss, IoULoss, SegLoss, build_loss

LN3 = math.log(3.0)



def _image(pixels, targets):
    """N=1 image from per-pixel score rows [(s_0, ..., s_C-1), ...] in row-major order over an H x W grid."""
    s = torch.tensor(pixels, dtype=torch.float64)
    h = 2 if len(pixels) == 4 else 1
    scores = s.T.reshape(1, s.shape[1], h, -1)
    target = torch.tensor(targets).reshape(1, h, -1)
    return scores, target


# ------------------------------------------------------------------------------------------------
# Eq. 3


def test_iou_loss_by_hand():
    # 2x2 pixels, C=2; softmax of (0, 0) is (1/2, 1/2), of (0, ln3) is (1/4, 3/4), of (ln3, 0) is (3/4, 1/4).
    #   pixel   scores      PR            target
    #   a       (0, 0)      (.5, .5)      0
    #   b       (0, ln3)    (.25, .75)    1
    #   c       (ln3, 0)    (.75, .25)    0
    #   d       (0, 0)      (.5, .5)      0
    # class 0: GT = (1,0,1,1); inter = .5 + .75 + .5 = 1.75; union = Σ PR + GT − PR·GT = 1 + .25 + 1 + 1 = 3.25
    # class 1: GT = (0,1,0,0); inter = .75;               union = .5 + 1 + .25 + .5 = 2.25
    # loss = 1 − (1.75/3.25 + .75/2.25)/2 = 1 − (7/13 + 1/3)/2 = 1 − 17/39 = 22/39
    scores, target = _image([(0, 0), (0, LN3), (LN3, 0), (0, 0)], [0, 1, 0, 0])
    assert IoULoss()(scores, target).item() == pytest.approx(22 / 39, rel=1e-12)


def test_iou_loss_sums_over_the_whole_batch():
    # Two 1x1 images, C=2, scores (0, 0): PR = (.5, .5) everywhere; targets 0 and 1.
    # class 0: inter .5, union 1 + .5 = 1.5 -> 1/3; class 1 the same -> loss 2/3.
    # (Per-image IoUs averaged would differ: image 1 alone has IoU_0 = .5, IoU_1 = 0 -> loss .75.)
    scores = torch.zeros(2, 2, 1, 1)
    target = torch.tensor([0, 1]).reshape(2, 1, 1)
    assert IoULoss()(scores, target).item() == pytest.approx(2 / 3)


# ------------------------------------------------------------------------------------------------
# Eq. 7 with Eq. 9 / Eq. 8, C = 2

# 2x2 pixels, C=2:
#   pixel  scores (s0, s1)   target  arg-max
#   a      ( .5, -.5)        0       0
#   b      ( .2,  .6)        1       1
#   c      ( .4,  .1)        1       0     (false negative of 1, false positive of 0)
#   d      (-.3,  .3)        1       1
# A_0 = {a, c}, B_0 = {a}:       |∩| = 1, |∪| = 2  ->  W_p^0 = 1/2, W_n^0 = 1/4
# A_1 = {b, d}, B_1 = {b, c, d}: |∩| = 2, |∪| = 3  ->  W_p^1 = 1/3, W_n^1 = 2/9
# K = 4; denominator K Σ_t (W_p^t + W_n^t) = 4 (1/2 + 1/4 + 1/3 + 2/9) = 4 · 47/36 = 47/9
C2 = ([(.5, -.5), (.2, .6), (.4, .1), (-.3, .3)], [0, 1, 1, 1])
DEN2 = 47 / 9


def test_segloss_eq9_by_hand():
    # L_p = −s_y: class 0 positives {a}: 1/2 · (−.5) = −.25; class 1 positives {b, c, d}: 1/3 · (−.6 −.1 −.3) = −1/3
    # L_n^0 on the negatives of 0 {b, c, d}: 0 if s_y > s_0 else s_0:  b: .6 > .2 -> 0;  c: .1 > .4? no -> .4;
    #   d: .3 > −.3 -> 0; W_n^0 · .4 = .1.   L_n^1 on {a}: .5 > −.5 -> 0.
    # numerator −.25 − 1/3 + .1 = −29/60; loss = −29/60 / (47/9) = −261/2820
    scores, target = _image(*C2)
    assert SegLoss("eq9", g=0.0)(scores, target).item() == pytest.approx(-261 / 2820, rel=1e-12)


def test_segloss_eq9_margin_by_hand():
    # g = .5: L_n^0: b: .6 > .2 + .5? no -> .2;  c: .1 > .9? no -> .4;  d: .3 > .2 -> 0;  1/4 · .6 = .15
    #         L_n^1: a: .5 > −.5 + .5 -> 0
    # numerator −.25 − 1/3 + .15 = −13/30; loss = −13/30 · 9/47 = −117/1410
    scores, target = _image(*C2)
    assert SegLoss("eq9", g=0.5)(scores, target).item() == pytest.approx(-117 / 1410, rel=1e-12)


def test_segloss_eq8_by_hand():
    # L_p = max(max_{c≠y} s_c − s_y + g, 0), g = 0: a: −.5 − .5 -> 0; b: .2 − .6 -> 0; c: .4 − .1 = .3; d: −.6 -> 0
    #   class 1 positives: 1/3 · .3 = .1
    # L_n^0 = max(s_0 − s_y, 0) on {b, c, d}: 0, .3, 0 -> 1/4 · .3 = .075;  L_n^1 on {a}: max(−1, 0) = 0
    # numerator .175; loss = .175 · 9/47 = 1.575/47
    scores, target = _image(*C2)
    assert SegLoss("eq8", g=0.0)(scores, target).item() == pytest.approx(1.575 / 47, rel=1e-12)


def test_segloss_eq9_gradient_by_hand():
    # With W_p, W_n constants, d loss / d s = (1/den) · (−W_p^y at s_y of every pixel, +W_n^t at s_t where
    # L_n^t = s_t is active): a: (−1/2, 0); b: (0, −1/3); c: (+1/4, −1/3); d: (0, −1/3); den = 47/9.
    scores, target = _image(*C2)
    scores.requires_grad_(True)
    SegLoss("eq9")(scores, target).backward()
    want = torch.tensor([[-1 / 2, 0], [0, -1 / 3], [1 / 4, -1 / 3], [0, -1 / 3]], dtype=torch.float64) / DEN2
    torch.testing.assert_close(scores.grad[0].permute(1, 2, 0).reshape(4, 2), want, rtol=1e-12, atol=1e-15)


def test_segloss_class_with_empty_union_takes_no_part():
    # A third class that nobody predicts (score −5) nor has as target: |A_2 ∪ B_2| = 0, so it adds nothing
    # (no 1/0) and the loss is the C=2 value.
    pixels, targets = C2
    scores, target = _image([(*p, -5.0) for p in pixels], targets)
    assert SegLoss("eq9")(scores, target).item() == pytest.approx(-261 / 2820, rel=1e-12)
    assert SegLoss("eq8")(scores, target).item() == pytest.approx(1.575 / 47, rel=1e-12)


# ------------------------------------------------------------------------------------------------
# Eq. 7 with Eq. 8 / Eq. 9, C = 3: the max over non-target classes, a class with only false positives

# 1x3 pixels, C=3:
#   pixel  scores            target  arg-max
#   p      (.1, .7, .3)      2       1
#   q      (.9, 0, -.2)      0       0
#   r      (.2, .1, .5)      2       2
# A_0 = {q}, B_0 = {q}: ∩ 1, ∪ 1 -> W_p = 1, W_n = 1
# A_1 = {p}, B_1 = {}:  ∩ 0, ∪ 1 -> W_p = 1, W_n = 0
# A_2 = {r}, B_2 = {p, r}: ∩ 1, ∪ 2 -> W_p = 1/2, W_n = 1/4
# K = 3; denominator 3 (1 + 1 + 1 + 0 + 1/2 + 1/4) = 11.25
C3 = ([(.1, .7, .3), (.9, 0, -.2), (.2, .1, .5)], [2, 0, 2])


def test_segloss_eq8_three_classes_by_hand():
    # g = .1. L_p: p: max(.1, .7) − .3 + .1 = .5;  q: max(0, −.2) − .9 + .1 < 0 -> 0;  r: max(.2, .1) − .5 + .1 < 0 -> 0
    #   class 2 positives {p, r}: 1/2 · .5 = .25
    # L_n^0 on {p, r}: .1 − .3 + .1 < 0, .2 − .5 + .1 < 0 -> 0;  L_n^1 (W_n = 0) nothing;
    # L_n^2 on {q}: −.2 − .9 + .1 < 0 -> 0.   loss = .25 / 11.25 = 1/45
    scores, target = _image(*C3)
    assert SegLoss("eq8", g=0.1)(scores, target).item() == pytest.approx(1 / 45, rel=1e-12)


def test_segloss_eq9_three_classes_by_hand():
    # g = .1. L_p = −s_y: class 0 {q}: 1 · (−.9); class 2 {p, r}: 1/2 · (−.3 − .5) = −.4
    # L_n^0 on {p, r}: .3 > .1 + .1 -> 0, .5 > .2 + .1 -> 0; L_n^2 on {q}: .9 > −.2 + .1 -> 0
    # loss = −1.3 / 11.25
    scores, target = _image(*C3)
    assert SegLoss("eq9", g=0.1)(scores, target).item() == pytest.approx(-1.3 / 11.25, rel=1e-12)


def test_segloss_soft_weights_by_hand():
    # 1x2 pixels, C=2: x1 scores (0, 0) -> PR (.5, .5), target 0; x2 scores (0, ln3) -> PR (.25, .75), target 1.
    # soft A_t = PR: class 0: ∩ = .5, ∪ = (.5 + 1 − .5) + .25 = 1.25  -> W_p = .8,  W_n = .5/1.5625 = .32
    #                class 1: ∩ = .75, ∪ = .5 + (.75 + 1 − .75) = 1.5 -> W_p = 2/3, W_n = .75/2.25 = 1/3
    # Eq. 9, g = 0: L_p: x1 −0, x2 −ln3 -> 2/3 · (−ln3); L_n^0 on x2: ln3 > 0 -> 0; L_n^1 on x1: 0 > 0? no -> s_1 = 0.
    # loss = −(2/3) ln3 / (2 (.8 + .32 + 2/3 + 1/3)) = −(2/3) ln3 / 4.24
    scores, target = _image([(0, 0), (0, LN3)], [0, 1])
    want = -(2 / 3) * LN3 / 4.24
    assert SegLoss("eq9", weights="soft")(scores, target).item() == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("lfun", ["eq8", "eq9"])
def test_no_gradient_through_the_weights(lfun):
    """The gradient equals that of the same loss with W_p, W_n (soft: they depend on the scores) plugged
    in as constants — and differs from letting the gradient flow through them."""
    torch.manual_seed(0)
    scores = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 3, (2, 4, 4))
    loss_fn = SegLoss(lfun, g=0.2, weights="soft")
    (got,) = torch.autograd.grad(loss_fn(scores, target), scores)

    def by_hand(track: bool):
        s = scores.permute(0, 2, 3, 1).reshape(-1, 3)
        y = target.reshape(-1)
        gt = F.one_hot(y, 3).double()
        pr = s.softmax(1) if track else s.detach().softmax(1)
        inter, union = (pr * gt).sum(0), (pr + gt - pr * gt).sum(0)
        w_p, w_n = 1 / union, inter / union**2
        l_p, l_n = loss_fn.pixel_losses(s, y, gt)
        return ((w_p[y] * l_p).sum() + ((1 - gt) * l_n * w_n).sum()) / (s.shape[0] * (w_p + w_n).sum())

    (const,) = torch.autograd.grad(by_hand(False), scores)
    (through,) = torch.autograd.grad(by_hand(True), scores)
    torch.testing.assert_close(got, const)
    assert not torch.allclose(got, through, atol=1e-6)


def test_segloss_eq9_is_unbounded_below_on_unbounded_scores():
    """Eq. 9 is linear and keeps its branches under positive scaling (g = 0): loss(λ s) = λ loss(s).
    On the FCN's unbounded scores it has no minimum; the ConvLSTM's tanh bound is what makes it well-posed."""
    torch.manual_seed(1)
    target = torch.randint(0, 3, (1, 8, 8))
    scores = torch.randn(1, 3, 8, 8) + F.one_hot(target, 3).permute(0, 3, 1, 2)  # mostly right
    base = SegLoss("eq9")(scores, target)
    assert base < 0
    for lam in (10.0, 1000.0):
        assert SegLoss("eq9")(lam * scores, target).item() == pytest.approx(lam * base.item(), rel=1e-5)


# ------------------------------------------------------------------------------------------------
# Shapes, registry


@pytest.mark.parametrize("name", list(LOSSES))
def test_sequences_are_flattened(name):
    torch.manual_seed(2)
    scores = torch.randn(2, 3, 4, 6, 6)
    target = torch.randint(0, 4, (2, 3, 6, 6))
    loss = build_loss(name)
    torch.testing.assert_close(loss(scores, target), loss(scores.flatten(0, 1), target.flatten(0, 1)))


def test_losses_run_in_float32_under_bf16():
    torch.manual_seed(3)
    scores = torch.randn(2, 3, 5, 5).bfloat16().requires_grad_(True)
    target = torch.randint(0, 3, (2, 5, 5))
    for name in LOSSES:
        out = build_loss(name)(scores, target)
        assert out.dtype == torch.float32 and torch.isfinite(out)


def test_cross_entropy_is_torchs():
    scores, target = _image(*C2)
    assert CrossEntropyLoss()(scores, target).item() == pytest.approx(F.cross_entropy(scores, target).item())


def test_build_loss_registry():
    assert isinstance(build_loss("segloss", lfun="eq8", g=0.5, weights="soft"), SegLoss)
    with pytest.raises(ValueError, match=r"'ce', 'iou', 'segloss'"):
        build_loss("dice")
    with pytest.raises(ValueError, match="eq8"):
        SegLoss(lfun="eq10")
    with pytest.raises(ValueError, match="soft"):
        SegLoss(weights="fuzzy")


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        IoULoss()(torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 5, dtype=torch.long))


# ------------------------------------------------------------------------------------------------
# A few optimisation steps lower every loss


def _tiny_batch():
    """Two 2-frame sequences of 32x32 with 3 classes in blocks, and 8x8 "encoder features" (16 channels)
    that carry the labels with noise: the paper's exploration (a ConvLSTM on a frozen backbone) in small."""
    torch.manual_seed(4)
    y = torch.zeros(2, 2, 32, 32, dtype=torch.long)
    y[..., 8:24, 4:16] = 1
    y[..., 12:28, 18:30] = 2
    y[1, 1] = y[1, 1].roll(4, dims=-1)  # something moves
    onehot = F.one_hot(y, 16).permute(0, 1, 4, 2, 3).float()
    feats = F.avg_pool2d(onehot.flatten(0, 1), 4).reshape(2, 2, 16, 8, 8)
    return feats + 0.3 * torch.randn_like(feats), y


@pytest.mark.parametrize("name,kw", [("ce", {}), ("iou", {}), ("segloss", {"lfun": "eq8"}),
                                     ("segloss", {"lfun": "eq9"}), ("segloss", {"lfun": "eq9", "weights": "soft"})])
def test_adam_steps_lower_the_loss(name, kw, one_thread):
    from facemask.models.nets import ConvLSTM

    feats, y = _tiny_batch()
    torch.manual_seed(5)
    head = ConvLSTM(16, 3)  # scores bounded in (-1, 1), as in the ConvLSTM-FCN

    def scores():  # (B, T, C, 8, 8) -> bilinear to (B, T, C, 32, 32), as ConvLSTMFCN.forward
        h = head(feats)
        return F.interpolate(h.flatten(0, 1), size=(32, 32), mode="bilinear").reshape(2, 2, 3, 32, 32)

    loss_fn = build_loss(name, **kw)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    first = loss_fn(scores(), y).item()
    for _ in range(10):
        loss = loss_fn(scores(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss_fn(scores(), y).item() < first - 1e-3


# ------------------------------------------------------------------------------------------------
# Starting from a head that already classifies well, no loss may unlearn it (issue 11, item 6)


def _good_head_setup():
    """Frozen "encoder features" of 5 classes (class means + noise, 4-frame sequences) and a `ConvLSTM`
    started by `init_from_conv6` from the nearest-class-mean classifier: the converted ConvLSTM-FCN's
    situation in small. Returns (features, labels, head, output scale, classifier's mIoU)."""
    from facemask.core.iou import mean_iou
    from facemask.models.nets import ConvLSTM, auto_output_scale, init_from_conv6

    g = torch.Generator().manual_seed(11)
    C, Fc, B, T, H, W = 5, 16, 4, 4, 8, 8
    y = torch.multinomial(torch.tensor([0.45, 0.35, 0.05, 0.1, 0.05]), B * (H // 2) * (W // 2),
                          replacement=True, generator=g).view(B, 1, H // 2, W // 2)
    y = y.repeat_interleave(2, -1).repeat_interleave(2, -2).expand(B, T, H, W).contiguous()
    means = torch.randn(C, Fc, generator=g)
    feats = means[y].permute(0, 1, 4, 2, 3) + 0.9 * torch.randn(B, T, Fc, H, W, generator=g)
    conv6 = torch.nn.Conv2d(Fc, C, 1)
    with torch.no_grad():  # nearest class mean: argmax_c (2 m_c·x − |m_c|²)
        conv6.weight.copy_(2 * means[:, :, None, None])
        conv6.bias.copy_(-(means ** 2).sum(1))
        s = conv6(feats.flatten(0, 1))
        std = float((s - s.mean(1, keepdim=True)).std())
    head = ConvLSTM(Fc, C, 1)
    init_from_conv6(head, conv6, 1.0 / (6.0 * std))

    def miou(scores):
        pred = scores.argmax(2)
        cm = torch.bincount((y * C + pred).flatten(), minlength=C * C).reshape(C, C).numpy()
        return mean_iou(cm)

    return feats, y, head, auto_output_scale(std), miou(s.unflatten(0, (B, T))), miou


@pytest.mark.parametrize("name,kw", [("ce", {}), ("iou", {}),
                                     ("segloss", {"lfun": "eq8", "on": "softmax"}),
                                     ("segloss", {"lfun": "eq9", "on": "softmax"}),
                                     ("segloss", {"lfun": "eq8", "on": "scores"}),
                                     ("segloss", {"lfun": "eq9", "on": "scores"})])
def test_a_good_head_stays_good(name, kw, one_thread):
    """300 Adam steps of each loss from a converted head that already classifies well: its arg-max stays
    (≥ 90 % of the pixels keep their class) and its mIoU does not fall by more than 0.02. The classifier
    scores well above chance (checked), so a loss that pushes every class's scores up together, or
    squashes the gaps (the failure the "loss goes down" tests above cannot see), fails here."""
    feats, y, head, scale, fcn_miou, miou = _good_head_setup()
    assert fcn_miou > 0.7  # the start really is good (5 classes: chance is far below)
    with torch.no_grad():
        start = head(feats) * scale
    assert miou(start) > fcn_miou - 0.02  # the conversion keeps it (init_from_conv6)
    loss_fn = build_loss(name, **kw)
    torch.manual_seed(0)
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    for _ in range(300):
        loss = loss_fn(head(feats) * scale, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        end = head(feats) * scale
    agree = (end.argmax(2) == start.argmax(2)).float().mean().item()
    assert agree >= 0.9, f"{name} {kw}: only {agree:.2f} of the pixels keep their class"
    assert miou(end) >= miou(start) - 0.02, f"{name} {kw}: mIoU {miou(start):.3f} -> {miou(end):.3f}"
