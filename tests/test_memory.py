"""Memory: a ConvLSTM that uses its past, the checks that fail when it does not, and the pieces behind them
(streams, the memoryless control, corrupted windows, the head-only phase, the probes and their scores)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facemask.core.methods import donor_clip, probe_frames
from facemask.data.clips.loaders import corrupt_window
from facemask.evaluation.memory import FOLLOW, GAIN, MIN_CHANGED, TO_HOLD, ablation_report, probe_report
from facemask.inference.probes import replacement
from facemask.models.nets import ConvLSTM, ConvLSTMFCN
from facemask.training.head import HeadBatches


def _masks(n: int, T: int, size: int, rng) -> np.ndarray:
    """(n, T, size, size) labels: a square of class 1 held still through each window, at a random place."""
    y = np.zeros((n, T, size, size), np.int64)
    for i in range(n):
        x0, y0 = rng.integers(0, size - 3, 2)
        y[i, :, y0:y0 + 3, x0:x0 + 3] = 1
    return y


def _features(labels: np.ndarray) -> torch.Tensor:
    """What an encoder would see: the one-hot labels as two feature channels, per frame."""
    return F.one_hot(torch.from_numpy(labels), 2).permute(0, 1, 4, 2, 3).float()


def test_a_trained_convlstm_holds_a_mask_through_a_blank_frame_and_a_memoryless_one_does_not(one_thread):
    """A 1x1 ConvLSTM trained on windows whose frame after the first is sometimes blank (all-zero features,
    the true labels kept) learns to hold the mask: on a window whose last frame is blank it segments that
    frame; the same weights with the state reset at every frame (the memoryless control) cannot."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    T, size = 5, 8
    lstm = ConvLSTM(2, 2, kernel_size=1)
    opt = torch.optim.Adam(lstm.parameters(), lr=0.05)
    for _ in range(300):
        y = _masks(16, T, size, rng)
        x = _features(y)
        for b in range(len(x)):
            if rng.random() < 0.5:
                x[b, rng.integers(1, T)] = 0.0           # a blank frame, its labels kept
        loss = F.cross_entropy(lstm(x).flatten(0, 1), torch.from_numpy(y).flatten(0, 1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    y = _masks(32, T, size, np.random.default_rng(1))
    x = _features(y)
    x[:, -1] = 0.0                                        # the last frame of every window blank
    with torch.no_grad():
        held = lstm(x)[:, -1].argmax(1)
        memoryless = lstm(x.reshape(-1, 1, *x.shape[2:])).reshape(*x.shape[:2], 2, size, size)[:, -1].argmax(1)
    truth = torch.from_numpy(y[:, -1])

    def iou(pred):
        return float(((pred == 1) & (truth == 1)).sum() / ((pred == 1) | (truth == 1)).sum().clamp(min=1))
    assert iou(held) > 0.9
    assert iou(memoryless) < 0.1


def test_the_state_carried_across_windows_is_one_long_sequence_and_memory_false_is_per_frame(one_thread):
    torch.manual_seed(0)
    model = ConvLSTMFCN("resnet18", 5, None, 8, encoder_depth=3).eval()
    with torch.no_grad():
        model.convlstm.conv_h.weight.normal_(0, 0.5)     # a state that matters
        model.convlstm.conv_x.bias[5:10] = 2.0            # forget gates open
        x = torch.rand(2, 6, 3, 32, 32)
        whole = model(x)
        first, state = model(x[:, :3], return_state=True)
        np.testing.assert_allclose(torch.cat([first, model(x[:, 3:], state)], 1), whole, atol=1e-5)
        assert not torch.allclose(model(x[:, 3:]), whole[:, 3:], atol=1e-3)   # a fresh state differs
        frames = torch.cat([model(x[:, t:t + 1]) for t in range(6)], 1)
        np.testing.assert_allclose(model(x, memory=False), frames, atol=1e-5)
        with pytest.raises(ValueError, match="no state"):
            model(x, state, memory=False)


def test_corrupt_window_replaces_one_frame_after_the_first():
    img = np.full((5, 4, 4, 3), 7, np.uint8)
    seen = set()
    for k in range(200):
        w = img.copy()
        got = corrupt_window(w, np.random.default_rng(k), share=0.5)
        if got is None:
            assert (w == 7).all()
            continue
        t, kind = got
        seen.add(kind)
        assert 1 <= t < 5 and (w[[i for i in range(5) if i != t]] == 7).all()
        assert (w[t] == 0).all() if kind == "black" else not (w[t] == 7).all()
    assert seen == {"black", "noise"}
    assert corrupt_window(img.copy(), np.random.default_rng(0), share=0.0) is None


def test_head_batches_corrupt_a_share_of_the_windows_with_the_cached_replacements():
    feats = torch.ones(10, 5, 3, 2, 2, dtype=torch.float16)
    labels = torch.zeros(10, 5, 4, 4, dtype=torch.uint8)
    extra = {"black": torch.full((1, 3, 2, 2), -1.0), "noise": torch.full((4, 3, 2, 2), -2.0)}
    batches = list(HeadBatches(feats, labels, extra, steps=400, n=2, corrupt=0.3, seed=0))
    assert len(batches) == 400 and batches[0][0].shape == (2, 5, 3, 2, 2) and batches[0][1].shape == (2, 5, 4, 4)
    x = torch.stack([b[0] for b in batches]).flatten(0, 1)          # (800 windows, T, ...)
    corrupted = (x != 1).flatten(2).any(-1)                          # (windows, T)
    assert not corrupted[:, 0].any() and (corrupted.sum(1) <= 1).all()
    assert 0.25 < corrupted.any(1).float().mean() < 0.35
    assert set(torch.unique(x).tolist()) == {-2.0, -1.0, 1.0}
    again = list(HeadBatches(feats, labels, extra, steps=400, n=2, corrupt=0.3, seed=0))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again))   # seeded


def test_probe_frames_and_replacements():
    assert probe_frames(30, 5) == [4, 9, 14, 19, 24, 29]
    assert probe_frames(12, 5) == [4, 9]                  # the short last window is not probed
    assert (replacement("black", (4, 4, 3), (0,)) == 0).all()
    a, b = replacement("noise", (64, 64, 3), (1, 2)), replacement("noise", (64, 64, 3), (1, 2))
    assert np.array_equal(a, b) and 100 < a.mean() < 155 and a.std() > 60
    with pytest.raises(ValueError, match="valid: black, noise, bars, checker, cut"):
        replacement("grey", (4, 4, 3), (0,))
    bars = replacement("bars", (3, 14, 3), (0,))          # 7 bars of 2 columns each
    assert bars[0, 0].tolist() == [191, 191, 191] and bars[2, 3].tolist() == [191, 191, 0]
    assert bars[1, 13].tolist() == [0, 0, 191] and (bars[0] == bars[2]).all()
    checker = replacement("checker", (16, 24, 3), (0,))
    assert checker[0, 0].tolist() == [0, 0, 0] and checker[0, 8].tolist() == [255] * 3
    assert checker[8, 0].tolist() == [255] * 3 and checker[15, 23].tolist() == [255] * 3 and checker.mean() == 127.5


def test_the_cut_takes_the_next_clip_of_another_subject():
    videos = ["001", "001", "002", "003", "003"]
    assert [donor_clip(videos, k) for k in range(5)] == [2, 2, 3, 0, 0]
    assert donor_clip(["001", "001"], 1) == 1             # nobody else: itself


def _cm(tp: int, fp: int, fn: int, rest: int) -> np.ndarray:
    """A 2-class confusion matrix whose class-1 IoU is tp / (tp + fp + fn)."""
    return np.array([[rest, fp], [fn, tp]])


def test_probe_report_passes_a_method_near_the_hold_and_well_above_the_fcn():
    cms = {"fcn": _cm(1, 0, 9, 90), "hold": _cm(8, 1, 1, 90), "primary": _cm(7, 1, 2, 90),
           "primary_stream": _cm(3, 0, 7, 90)}
    r = probe_report(cms, frames=6)
    assert r["miou"]["fcn"] == pytest.approx(0.1) and r["miou"]["hold"] == pytest.approx(0.8)
    assert r["checks"]["primary"]["gain_over_fcn"] == pytest.approx(0.6)
    assert r["checks"]["primary"]["below_hold"] == pytest.approx(0.1) and r["checks"]["primary"]["pass"]
    assert r["checks"]["primary_stream"]["gain_over_fcn"] == pytest.approx(0.2)
    assert not r["checks"]["primary_stream"]["pass"]      # +20 over the FCN, but 50 points under the hold
    assert (GAIN, TO_HOLD) == (0.20, 0.10)


def test_the_cut_must_be_followed_not_held():
    """On a cut the rule flips: the temporal method must score no more than FOLLOW under the FCN (which sees only
    the new face); holding the old face (as the hold does) fails."""
    cms = {"fcn": _cm(8, 1, 1, 90), "hold": _cm(1, 0, 9, 90), "primary": _cm(7, 1, 1, 91),
           "primary_stream": _cm(5, 2, 3, 90)}
    r = probe_report(cms, frames=6, kind="cut")
    assert r["miou"]["fcn"] == pytest.approx(0.8) and r["miou"]["primary"] == pytest.approx(7 / 9)
    assert r["checks"]["primary"]["gain_over_fcn"] == pytest.approx(7 / 9 - 0.8) and r["checks"]["primary"]["pass"]
    assert r["checks"]["primary_stream"]["gain_over_fcn"] == pytest.approx(-0.3)
    assert not r["checks"]["primary_stream"]["pass"] and FOLLOW == 0.05
    assert "follows the cut" in r["rule"] and "hold" in probe_report(cms, 6, kind="bars")["rule"]


def test_ablation_report_says_whether_the_memory_changes_anything():
    cms = {"primary": _cm(6, 2, 2, 90), "primary_reset": _cm(4, 2, 4, 90), "primary_stream": _cm(4, 2, 4, 90)}
    r = ablation_report(cms, {"primary": 5, "primary_stream": 0}, pixels=100, frames=3)
    assert r["methods"]["primary"] == {"control": "primary_reset", "miou": pytest.approx(0.6),
                                       "control_miou": pytest.approx(0.4), "changed_share": 0.05, "uses_memory": True}
    assert not r["methods"]["primary_stream"]["uses_memory"] and MIN_CHANGED == 0.01


def test_the_validation_probe_blacks_out_the_last_frame_of_each_window():
    """`loop.probe_evaluate` on 3 windows of 4 white 2 x 2 frames, all labelled class 1: a per-frame model (class 1
    where the frame is bright) sees a black last frame and calls its 4 pixels background; a model that takes the
    brightest frame of its window so far holds class 1."""
    from facemask.training.loop import probe_evaluate

    class PerFrame(torch.nn.Module):
        def forward(self, x):                                  # (B, T, 3, H, W) -> (B, T, 2, H, W)
            bright = x.mean(2, keepdim=True)
            return torch.cat([1 - bright, bright], dim=2)

    class Memory(PerFrame):
        def forward(self, x):
            return super().forward(x.cummax(dim=1).values)

    x = torch.full((3, 4, 3, 2, 2), 255, dtype=torch.uint8)
    y = torch.ones((3, 4, 2, 2), dtype=torch.uint8)
    loader = [(x, y)]
    assert probe_evaluate(PerFrame(), loader, 2, torch.device("cpu")).tolist() == [[0, 0], [3 * 4, 0]]
    assert probe_evaluate(Memory(), loader, 2, torch.device("cpu")).tolist() == [[0, 0], [0, 3 * 4]]
    assert (x == 255).all()                                    # the input is not changed
