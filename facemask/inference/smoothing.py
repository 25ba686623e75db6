"""The "FCN + temporal smoothing" baseline (Sect. 4.2): softmax outputs averaged over a window of T
frames with Gaussian weights (sigma = 0.6 in the paper) centred on the current frame.
"""
from __future__ import annotations

import numpy as np


def gaussian_weights(window: int, sigma: float) -> np.ndarray:
    """Weights of the frames t − ⌊window/2⌋ ... t + ⌊window/2⌋: exp(−d² / 2σ²), summing to 1."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"the smoothing window must be odd and positive (centred on the frame), got {window}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    d = np.arange(window) - window // 2
    w = np.exp(-(d ** 2) / (2.0 * sigma ** 2))
    return w / w.sum()


def temporal_smooth(probs: np.ndarray, sigma: float, window: int) -> np.ndarray:
    """Average per-frame class probabilities over a window of frames centred on each frame.

    Frame t gets ``Σ_d w(d) p[t + d] / Σ_d w(d)`` over the offsets d = −⌊window/2⌋ ... ⌊window/2⌋
    with w(d) = exp(−d² / 2σ²), the sum taken over the frames that exist: at the ends of a sequence the
    window is cut and the remaining weights renormalised to 1 (no padding, no wrap-around).

    Args:
        probs: (L, ...) float array, the frames of one sequence along axis 0 (e.g. (L, C, H, W) softmax).
        sigma: standard deviation of the Gaussian, in frames (paper: 0.6).
        window: frames in the window, odd (paper: 5, the ConvLSTM's T).
    """
    probs = np.asarray(probs)
    w = gaussian_weights(window, sigma)
    half, n = window // 2, probs.shape[0]
    out = np.empty(probs.shape, dtype=np.result_type(probs.dtype, np.float32))
    for t in range(n):
        lo, hi = max(0, t - half), min(n, t + half + 1)
        wt = w[lo - t + half:hi - t + half]
        out[t] = np.tensordot(wt / wt.sum(), probs[lo:hi], axes=(0, 0))
    return out

