"""FCN, ConvLSTM (Eq. 1) and ConvLSTM-FCN: shapes, weight transfer, a hand-stepped cell, checkpoints,
and what the ConvLSTM's bounded output does to cross-entropy."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facemask.models.encoder import make_encoder
from facemask.models.nets import FCN, ConvLSTM, ConvLSTMFCN, ce_floor, conv6_score_std
from facemask.models.registry import build_model, load_model, save_model

ENC = "resnet18"



@pytest.fixture(scope="module")
def fcn():
    torch.manual_seed(0)
    return FCN(ENC, classes=3)


@pytest.fixture(scope="module")
def lstm_fcn(fcn):
    torch.manual_seed(1)
    return ConvLSTMFCN.from_fcn(fcn)


# ------------------------------------------------------------------------------------------------
# Shapes


@pytest.mark.parametrize("size", [(64, 64), (96, 96), (100, 100), (72, 100)])
def test_fcn_output_shape(fcn, size):
    with torch.no_grad():
        out = fcn.eval()(torch.rand(2, 3, *size))
    assert out.shape == (2, 3, *size)
    # 20x20 features at 320x320 in the paper: output stride 16, rounded up at odd sizes
    assert fcn.features(torch.rand(1, 3, *size)).shape[-2:] == tuple(math.ceil(s / 16) for s in size)


@pytest.mark.parametrize("size", [(64, 64), (96, 96), (100, 100), (72, 100)])
def test_convlstm_fcn_output_shape(lstm_fcn, size):
    with torch.no_grad():
        out = lstm_fcn.eval()(torch.rand(2, 3, 3, *size))
    assert out.shape == (2, 3, 3, *size)


def test_fcn_takes_sequences_frame_by_frame(fcn):
    x = torch.rand(2, 3, 3, 64, 64)
    with torch.no_grad():
        fcn.eval()
        torch.testing.assert_close(fcn(x), fcn(x.flatten(0, 1)).reshape(2, 3, 3, 64, 64))


def test_convlstm_fcn_rejects_frames(lstm_fcn):
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        lstm_fcn(torch.rand(2, 3, 64, 64))


def test_paper_feature_map_size():
    """Sect. 3.1: ResNet-50 dilated at stage 5 gives 20x20 features at 320x320 (2048 channels)."""
    enc = make_encoder("resnet50", None, 16)
    with torch.no_grad():
        assert enc.eval()(torch.rand(1, 3, 320, 320))[-1].shape == (1, 2048, 20, 20)


# ------------------------------------------------------------------------------------------------
# Weight transfer FCN -> ConvLSTM-FCN


def test_transfer_keeps_every_weight_but_conv6(fcn, lstm_fcn):
    src, dst = fcn.state_dict(), lstm_fcn.state_dict()
    shared = [k for k in src if not k.startswith("conv6.")]
    assert len(shared) > 100 and set(shared) <= set(dst)
    for k in shared:
        assert torch.equal(src[k], dst[k]), k
        assert src[k].data_ptr() != dst[k].data_ptr(), f"{k} is shared, not copied"
    assert not any(k.startswith("conv6.") for k in dst)
    assert {k for k in dst if k not in src} == {
        "convlstm.conv_x.weight", "convlstm.conv_x.bias", "convlstm.conv_h.weight",
        "convlstm.w_ci", "convlstm.w_cf", "convlstm.w_co"}
    # Same filter settings as conv6: 1x1, C filters, on the encoder's last feature map.
    assert lstm_fcn.convlstm.kernel_size == fcn.conv6.kernel_size[0] == 1
    assert lstm_fcn.convlstm.hidden_channels == fcn.conv6.out_channels == 3
    assert lstm_fcn.convlstm.in_channels == fcn.conv6.in_channels
    # ... so the features below the ConvLSTM are the FCN's.
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(lstm_fcn.eval().features(x), fcn.eval().features(x), rtol=0, atol=0)


def test_transfer_without_peepholes(fcn):
    m = ConvLSTMFCN.from_fcn(fcn, peephole=False)
    assert not any(k.startswith("convlstm.w_c") for k in m.state_dict())
    assert m.convlstm.w_ci is None


# ------------------------------------------------------------------------------------------------
# The ConvLSTM against Eq. 1 stepped by hand


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def _eq1_by_hand(lstm: ConvLSTM, x: np.ndarray) -> np.ndarray:
    """Eq. 1 for a 1x1 ConvLSTM, written out in numpy (float64): a 1x1 convolution is, at every
    position, the matrix W (out, in) times the channel vector."""
    n = lstm.hidden_channels
    wx = lstm.conv_x.weight.detach().double().numpy()[:, :, 0, 0]  # (4n, C_in), blocks i, f, c, o
    wh = lstm.conv_h.weight.detach().double().numpy()[:, :, 0, 0]  # (4n, n)
    b = lstm.conv_x.bias.detach().double().numpy()
    W_xi, W_xf, W_xc, W_xo = (wx[k * n:(k + 1) * n] for k in range(4))
    W_hi, W_hf, W_hc, W_ho = (wh[k * n:(k + 1) * n] for k in range(4))
    b_i, b_f, b_c, b_o = (b[k * n:(k + 1) * n, None, None] for k in range(4))
    if lstm.peephole:
        W_ci, W_cf, W_co = (w.detach().double().numpy() for w in (lstm.w_ci, lstm.w_cf, lstm.w_co))
    else:
        W_ci = W_cf = W_co = np.zeros((n, 1, 1))

    def conv(w, t):  # (out, in) "*" (B, in, h, w) -> (B, out, h, w)
        return np.einsum("oi,bihw->bohw", w, t)

    B, T, _, h, w = x.shape
    H = np.zeros((B, n, h, w))
    C = np.zeros((B, n, h, w))
    out = []
    for t in range(T):
        X = x[:, t]
        i = _sig(conv(W_xi, X) + conv(W_hi, H) + W_ci * C + b_i)
        f = _sig(conv(W_xf, X) + conv(W_hf, H) + W_cf * C + b_f)
        C = f * C + i * np.tanh(conv(W_xc, X) + conv(W_hc, H) + b_c)
        o = _sig(conv(W_xo, X) + conv(W_ho, H) + W_co * C + b_o)  # peeps at the new C_t
        H = o * np.tanh(C)
        out.append(H)
    return np.stack(out, axis=1)


@pytest.mark.parametrize("peephole", [True, False])
def test_convlstm_matches_eq1_by_hand(peephole):
    torch.manual_seed(2)
    lstm = ConvLSTM(4, 3, kernel_size=1, peephole=peephole)
    with torch.no_grad():  # non-trivial values everywhere (the peepholes start at zero)
        for p in lstm.parameters():
            p.copy_(torch.randn_like(p))
    x = torch.randn(2, 2, 4, 3, 5)  # B=2, T=2 steps, C_in=4, 3x5 positions
    got = lstm(x)
    assert got.shape == (2, 2, 3, 3, 5)
    want = _eq1_by_hand(lstm, x.double().numpy())
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-5, atol=1e-6)
    # The peepholes do matter at the second step (the first starts from C = 0 except for W_co ∘ C_t).
    if peephole:
        with torch.no_grad():
            lstm.w_cf.zero_()
        assert not np.allclose(lstm(x)[:, 1].detach().numpy(), want[:, 1], atol=1e-4)


def test_convlstm_state_starts_at_zero_per_sequence():
    torch.manual_seed(3)
    lstm = ConvLSTM(4, 3, kernel_size=3)
    a, b = torch.randn(1, 3, 4, 5, 5), torch.randn(1, 3, 4, 5, 5)
    both = lstm(torch.cat([a, b]))
    torch.testing.assert_close(both[1:], lstm(b))  # no state leaks across the batch ...
    first = lstm(a)
    lstm(b)                                          # ... nor across calls: b leaves nothing behind for a
    torch.testing.assert_close(lstm(a), first)
    torch.testing.assert_close(both[:1], first)
    # H_0 depends on X_0 only: stepping from an explicit zero state gives the same first output
    h, _ = lstm.step(a[:, 0], lstm.zero_state(a[:, 0]))
    torch.testing.assert_close(h, both[:1, 0])


def test_convlstm_peepholes_are_per_channel():
    lstm = ConvLSTM(8, 5, peephole=True)
    assert lstm.w_ci.shape == lstm.w_cf.shape == lstm.w_co.shape == (5, 1, 1)
    for size in (3, 7):  # any feature-map size
        assert lstm(torch.randn(1, 2, 8, size, size)).shape == (1, 2, 5, size, size)


def test_convlstm_forget_bias_starts_at_one():
    lstm = ConvLSTM(8, 5)
    b = lstm.conv_x.bias.detach()
    assert torch.equal(b[5:10], torch.ones(5)) and torch.equal(b[:5], torch.zeros(5))


# ------------------------------------------------------------------------------------------------
# Bounded output


def test_ce_floor_by_hand():
    # target score +1, the C-1 others -1: p = e / (e + (C-1)/e) = 1 / (1 + (C-1) e^-2)
    # C=5: log(1 + 4 * 0.135335) = log(1.541341) = 0.432653
    # C=2: log(1 + 0.135335)     = log(1.135335) = 0.126928
    assert ce_floor(5) == pytest.approx(0.432653, abs=1e-6)
    assert ce_floor(2) == pytest.approx(0.126928, abs=1e-6)
    s = torch.tensor([[1.0, -1, -1, -1, -1]])
    assert F.cross_entropy(s, torch.tensor([0])).item() == pytest.approx(ce_floor(5), rel=1e-6)


def test_convlstm_fcn_scores_are_bounded(lstm_fcn):
    with torch.no_grad():
        s = lstm_fcn.eval()(torch.rand(1, 2, 3, 64, 64) * 50)  # far outside [0, 1]: still bounded
    assert s.abs().max() < 1


def test_scores_bounded_frame_by_frame():
    """From a zero state |C_t| < t + 1 (|C_{t-1}| plus i ∘ tanh(.) ∈ (-1, 1)), so |H_t| < tanh(t + 1)."""
    torch.manual_seed(6)
    lstm = ConvLSTM(4, 3)
    with torch.no_grad():  # gates and cell input driven into saturation
        lstm.conv_x.weight.mul_(100)
        lstm.conv_x.bias.fill_(50)
    h = lstm(torch.rand(2, 5, 4, 3, 3) + 1).detach()
    for t in range(5):
        bound = math.tanh(t + 1)  # 0.762, 0.964, 0.995, 0.9993, 0.9999
        assert bound * 0.99 < h[:, t].abs().max() <= bound + 1e-6  # reached (float32 saturates onto it)


@pytest.mark.parametrize("classes", [5, 2])
def test_bounded_output_cross_entropy_floor(classes, one_thread):
    """Fitting features that name each pixel's class, a ConvLSTM's CE stops at its floor, not at 0.

    Frame t can at best score tanh(t+1) for the target and -tanh(t+1) for the others, so its CE is at
    least ce_floor(C, tanh(t+1)): C=5: 0.627, 0.459, 0.436 for t = 0, 1, 2; C=2: 0.197, 0.136, 0.128.
    """
    torch.manual_seed(4)
    lstm = ConvLSTM(8, classes)
    y = torch.randint(0, classes, (2, 3, 4, 4))
    x = F.one_hot(y, 8).permute(0, 1, 4, 2, 3).float()
    opt = torch.optim.Adam(lstm.parameters(), lr=0.1)
    for _ in range(200):
        loss = F.cross_entropy(lstm(x).flatten(0, 1), y.flatten(0, 1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        s = lstm(x)
    per_frame = [F.cross_entropy(s[:, t], y[:, t]).item() for t in range(3)]
    floors = [ce_floor(classes, math.tanh(t + 1)) for t in range(3)]
    assert all(f < ce for f, ce in zip(floors, per_frame))
    assert per_frame[0] < 1.01 * floors[0]  # the first frame comes right down to its floor
    assert min(per_frame) > ce_floor(classes)
    assert (s.argmax(2) == y).all()  # the arg-max (and so the mIoU) is unaffected


def test_output_scale_lifts_the_bound(fcn):
    m = ConvLSTMFCN.from_fcn(fcn, output_scale=4.0).eval()
    ref = ConvLSTMFCN.from_fcn(fcn).eval()
    ref.load_state_dict(m.state_dict())
    x = torch.rand(1, 2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(m(x), 4.0 * ref(x))


# ------------------------------------------------------------------------------------------------
# Layer-wise learning rates, frozen backbone


def test_param_groups_cover_every_parameter_once(lstm_fcn):
    groups = lstm_fcn.param_groups(1e-3, 0.05)
    assert [g["lr"] for g in groups] == [1e-3, pytest.approx(5e-5)]
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(lstm_fcn.parameters()))
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in lstm_fcn.convlstm.parameters()}


def test_frozen_bn_keeps_statistics_but_trains_the_weights(fcn):
    m = ConvLSTMFCN.from_fcn(fcn).freeze_bn()
    bn = [(k, v.clone()) for k, v in m.encoder.state_dict().items() if "running" in k]
    affine = {k: v.detach().clone() for k, v in m.encoder.named_parameters() if "bn" in k}
    opt = torch.optim.SGD(m.param_groups(1e-2, 1.0), lr=1e-2)
    m.train()
    assert m.encoder.training and not m.encoder.bn1.training and m.convlstm.training
    x = torch.rand(1, 2, 3, 64, 64) * 3  # far from the statistics the FCN was built with
    loss = m(x).square().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert bn and all(torch.equal(m.encoder.state_dict()[k], v) for k, v in bn), "running statistics moved"
    assert any(not torch.equal(v, affine[k]) for k, v in m.encoder.named_parameters() if k in affine)
    # the same step without freeze_bn moves them (the check above can fail)
    free = ConvLSTMFCN.from_fcn(fcn).train()
    free(x)
    assert any(not torch.equal(free.encoder.state_dict()[k], v) for k, v in bn)


def test_frozen_backbone_keeps_weights_and_bn_statistics(fcn):
    m = ConvLSTMFCN.from_fcn(fcn).freeze_backbone()
    before = {k: v.clone() for k, v in m.encoder.state_dict().items()}
    groups = m.param_groups(1e-3, 0.05)
    assert len(groups) == 1
    opt = torch.optim.Adam(groups)
    m.train()
    assert not m.encoder.training and m.convlstm.training
    for _ in range(2):
        loss = m(torch.rand(1, 2, 3, 64, 64)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for k, v in m.encoder.state_dict().items():
        assert torch.equal(v, before[k]), k


# ------------------------------------------------------------------------------------------------
# Checkpoints and pretrained weights


@pytest.mark.parametrize("arch", ["fcn", "convlstm"])
def test_save_load_round_trip(tmp_path, arch):
    config = {"encoder": ENC, "classes": 2, "output_stride": 16, "peephole": False, "input_size": 64,
              "region": "eyes", "class_names": ["background", "eye"], "encoder_weights": None}
    torch.manual_seed(5)
    model = build_model(arch, config).eval()
    with torch.no_grad():  # not the statistics the rebuilt model would start with
        model.mean.fill_(0.5)
    path = tmp_path / "m" / f"{arch}.pt"
    save_model(path, model, arch, config, epoch=3, metrics={"miou": np.float32(0.25)})
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left behind
    loaded = load_model(path)
    assert loaded.phase == arch and loaded.config["region"] == "eyes"
    assert loaded.checkpoint == {"epoch": 3, "metrics": {"miou": 0.25}}
    assert not loaded.training
    x = torch.rand(1, 2, 3, 64, 64) if arch == "convlstm" else torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_build_model_rejects_unknown_arch():
    with pytest.raises(ValueError, match="fcn"):
        build_model("unet", {"encoder": ENC, "classes": 2})


def test_load_rejects_other_files(tmp_path):
    p = tmp_path / "x.pt"
    torch.save({"weights": 1}, p)
    with pytest.raises(ValueError, match="x.pt"):
        load_model(p)


def test_pretrained_weights_offline_error_is_plain(monkeypatch):
    import segmentation_models_pytorch.encoders as smp_enc
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*a, **k):
        raise LocalEntryNotFoundError("Name or service not known")

    monkeypatch.setattr(smp_enc, "hf_hub_download", offline)
    with pytest.raises(RuntimeError) as e:
        FCN(ENC, classes=2, encoder_weights="imagenet")
    msg = str(e.value)
    assert "internet" in msg and repr(ENC) in msg and "model.encoder_weights: null" in msg


# ------------------------------------------------------------------------------------------------
# Starting the ConvLSTM from conv6


def test_conv6_init_passes_the_fcn_through(fcn, one_thread):
    """By an independent route: the FCN's own scores, centred and scaled by 1 / CONV6_RANGE (no calibration
    frames: std 1), pushed through the closed form C_t = σ(−3) C_{t−1} + σ(3) tanh(s̃_t), H_t = σ(3) tanh(C_t)."""
    fcn.eval()
    m = ConvLSTMFCN.from_fcn(fcn, init="conv6").eval()
    torch.manual_seed(5)
    x = torch.rand(2, 4, 3, 64, 64)
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    with torch.no_grad():
        f = fcn.features(x.reshape(8, 3, 64, 64))
        s = fcn.conv6(f).reshape(2, 4, 3, *f.shape[-2:])
        s = (s - s.mean(dim=2, keepdim=True)) / 6.0
        c = torch.zeros_like(s[:, 0])
        want = []
        for t in range(4):
            c = sig(-3.0) * c + sig(3.0) * torch.tanh(s[:, t])
            want.append(sig(3.0) * torch.tanh(c))
        want = torch.stack(want, 1)
        want = F.interpolate(want.reshape(8, 3, *f.shape[-2:]), size=(64, 64), mode="bilinear",
                             align_corners=False).reshape(2, 4, 3, 64, 64)
        got = m(x)
        assert torch.allclose(got, want, atol=1e-5)
        # nearly linear in the FCN's scores: its arg-max after the resize, on every frame of the window
        agree = (got.argmax(2) == fcn(x).argmax(2)).float().mean()
        assert agree > 0.99


def test_auto_output_scale_starts_at_the_fcn_scores(fcn, one_thread):
    """`output_scale: auto` undoes the 1 / (CONV6_RANGE std) and the gates' σ(3)²: the converted model's first
    frame scores are the FCN's centred scores, up to tanh's curvature."""
    fcn.eval()
    torch.manual_seed(6)
    frames = torch.rand(4, 3, 64, 64)
    m = ConvLSTMFCN.from_fcn(fcn, init="conv6", output_scale="auto", calibration=frames).eval()
    with torch.no_grad():
        s = fcn(frames)
        s = s - s.mean(1, keepdim=True)
        got = m(frames[:, None])[:, 0]
        std = conv6_score_std(fcn, frames)
    assert m.output_scale == pytest.approx(6.0 * std / (1 / (1 + math.exp(-3.0))) ** 2)
    within = s.abs() <= 3 * std  # there |s̃| <= 0.5, where tanh(x) = x within 8 % (twice: i and o)
    assert within.float().mean() > 0.95
    rel = ((got - s).abs() / s.abs().clamp_min(1e-3))[within]
    assert rel.quantile(0.99) < 0.16 and rel.median() < 0.03
    with pytest.raises(ValueError, match="output_scale"):
        ConvLSTMFCN("resnet18", 3, output_scale="auto")


def test_conv6_init_weights_still_learn(fcn):
    m = ConvLSTMFCN.from_fcn(fcn, init="conv6").train()
    x = torch.rand(1, 3, 3, 32, 32)
    y = torch.randint(0, 3, (1 * 3, 32, 32))
    loss = F.cross_entropy(m(x).reshape(3, 3, 32, 32), y)
    loss.backward()
    lstm = m.convlstm
    n = lstm.hidden_channels
    for k in (0, 1, 3):  # the zeroed gate input weights
        assert lstm.conv_x.weight.grad[k * n:(k + 1) * n].abs().sum() > 0
    assert lstm.conv_h.weight.grad.abs().sum() > 0


def test_glorot_init_differs_from_conv6(fcn):
    torch.manual_seed(0)
    g = ConvLSTMFCN.from_fcn(fcn, init="glorot")
    assert g.convlstm.conv_h.weight.abs().sum() > 0  # orthogonal, as Keras
    with pytest.raises(ValueError, match="init"):
        ConvLSTMFCN.from_fcn(fcn, init="zeros")


def test_conv6_init_scale_comes_from_the_calibration_frames(fcn):
    """Cell-input block = centred conv6 / (6 std of the FCN's centred scores on the calibration frames),
    the std recomputed here from the FCN's own layers."""
    fcn.train()  # as the engine might hand it over: the calibration pass must not update its BatchNorm statistics
    stats = {k: v.clone() for k, v in fcn.state_dict().items() if "running" in k}
    torch.manual_seed(3)
    frames = torch.rand(6, 3, 64, 64)
    m = ConvLSTMFCN.from_fcn(fcn, init="conv6", calibration=frames)
    assert fcn.training is True  # the calibration pass leaves the FCN's mode as it was ...
    assert stats and all(torch.equal(fcn.state_dict()[k], v) for k, v in stats.items())  # ... and its statistics
    fcn.eval()
    with torch.no_grad():
        s = fcn.conv6(fcn.features(frames))
        std = float((s - s.mean(1, keepdim=True)).std())
        w = fcn.conv6.weight - fcn.conv6.weight.mean(0, keepdim=True)
    n = 3
    assert std > 0.0
    assert torch.allclose(m.convlstm.conv_x.weight[2 * n:3 * n], w / (6 * std), atol=1e-6)
