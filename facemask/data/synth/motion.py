"""Expressions and head motion over time: talking, smiles, blinks, brow raises, gaze, pose.

Every track is drawn up front for the whole video from one random generator, so a
video is a pure function of its seed; the renderer only reads the arrays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from facemask.data.synth.face import Expression, Pose


def smooth_noise(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise with unit standard deviation (sigma in frames)."""
    pad = int(3 * sigma) + 1
    x = gaussian_filter1d(rng.standard_normal(n + 2 * pad), max(sigma, 0.3), mode="wrap")[pad: pad + n]
    return x / max(x.std(), 0.35)


def _episode(n: int, start: float, hold: float, ramp: float) -> np.ndarray:
    """0 -> 1 -> 0 with cosine ramps (all in frames)."""
    t = np.arange(n, dtype=np.float64)
    up = np.clip((t - start) / max(ramp, 1e-6), 0, 1)
    down = np.clip((start + ramp + hold + ramp - t) / max(ramp, 1e-6), 0, 1)
    return 0.5 - 0.5 * np.cos(np.pi * np.minimum(up, down))


@dataclass
class Tracks:
    """Per-frame arrays (length = frames)."""

    jaw_open: np.ndarray
    mouth_w: np.ndarray
    smile: np.ndarray
    teeth: np.ndarray
    blink_r: np.ndarray
    blink_l: np.ndarray
    brow: np.ndarray
    gaze_x: np.ndarray
    gaze_y: np.ndarray
    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    tx: np.ndarray
    ty: np.ndarray
    scale: np.ndarray

    def expression(self, t: int) -> Expression:
        return Expression(
            jaw_open=float(self.jaw_open[t]), mouth_w=float(self.mouth_w[t]), smile=float(self.smile[t]),
            teeth=float(self.teeth[t]), blink_r=float(self.blink_r[t]), blink_l=float(self.blink_l[t]),
            brow=float(self.brow[t]),
        )

    def pose(self, t: int) -> Pose:
        return Pose(yaw=float(self.yaw[t]), pitch=float(self.pitch[t]), roll=float(self.roll[t]),
                    tx=float(self.tx[t]), ty=float(self.ty[t]), scale=float(self.scale[t]))


def talking(rng: np.random.Generator, n: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Jaw opening and mouth width of speech: syllables at ~4-5 Hz in phrases with pauses."""
    jaw = np.zeros(n)
    width = np.zeros(n)
    if rng.random() < 0.12:                       # a silent video: small idle movements
        return np.clip(0.04 + 0.03 * smooth_noise(rng, n, fps * 0.4), 0, 1), 0.3 * smooth_noise(rng, n, fps * 0.5)
    t = -rng.uniform(0, 0.5) * fps
    t_axis = np.arange(n, dtype=np.float64)
    while t < n:
        phrase_end = t + rng.uniform(0.8, 3.0) * fps
        while t < min(phrase_end, n + fps):
            step = fps / rng.uniform(3.5, 6.0)
            amp = rng.uniform(0.12, 0.55) if rng.random() < 0.85 else rng.uniform(0.55, 0.95)
            half = step * rng.uniform(0.55, 0.8)
            bump = np.clip(1 - np.abs(t_axis - t) / half, 0, 1)
            bump = 0.5 - 0.5 * np.cos(np.pi * bump)
            jaw = np.maximum(jaw, amp * bump)
            width += rng.uniform(-1, 1) * bump
            t += step
        t += rng.uniform(0.25, 1.0) * fps          # pause between phrases
    return np.clip(jaw, 0, 1), np.clip(width, -1, 1)


def blinks(rng: np.random.Generator, n: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Blinks every ~1.5-4 s (a fast close, slower opening), now and then a longer closure."""
    b = np.zeros(n)
    t = rng.uniform(0.1, 2.0) * fps
    profile = np.array([0.3, 0.8, 1.0, 0.85, 0.55, 0.3, 0.1])
    while t < n:
        k = len(profile) * fps / 30.0
        x = np.linspace(0, len(profile) - 1, max(int(round(k)), 3))
        prof = np.interp(x, np.arange(len(profile)), profile)
        if rng.random() < 0.1:                      # eyes kept shut for a moment
            hold = int(rng.uniform(0.3, 0.7) * fps)
            prof = np.concatenate([prof[:3], np.ones(hold), prof[3:]])
        i0 = int(t)
        seg = prof[: max(0, min(len(prof), n - i0))]
        b[i0: i0 + len(seg)] = np.maximum(b[i0: i0 + len(seg)], seg)
        t += rng.uniform(1.2, 4.0) * fps
    diff = 0.06 * smooth_noise(rng, n, 2.0)
    return np.clip(b + diff * (b > 0), 0, 1), np.clip(b - diff * (b > 0), 0, 1)


def make_tracks(rng: np.random.Generator, n: int, fps: float, style: dict, width: int, height: int) -> Tracks:
    """All per-frame tracks of one video; `style` holds the category's motion ranges."""
    jaw, mouth_w = talking(rng, n, fps)
    # smiles: an episode or two, sometimes showing the teeth; some people smile a little throughout
    smile = np.full(n, max(0.0, rng.normal(0.05, 0.1)))
    teeth = np.zeros(n)
    for _ in range(rng.integers(0, 3)):
        ep = _episode(n, rng.uniform(-0.3, 0.9) * n, rng.uniform(0.3, 1.5) * fps, rng.uniform(0.15, 0.4) * fps)
        amp = rng.uniform(0.4, 1.0)
        smile = np.maximum(smile, amp * ep)
        if rng.random() < 0.6:
            teeth = np.maximum(teeth, rng.uniform(0.5, 1.0) * ep)
    blink_r, blink_l = blinks(rng, n, fps)
    brow = 0.12 * smooth_noise(rng, n, fps * 0.3) * (jaw.mean() > 0.1)
    for _ in range(rng.integers(0, 3)):
        ep = _episode(n, rng.uniform(-0.2, 0.9) * n, rng.uniform(0.2, 1.2) * fps, rng.uniform(0.1, 0.3) * fps)
        brow += (rng.uniform(0.5, 1.0) if rng.random() < 0.75 else -rng.uniform(0.5, 1.0)) * ep
    brow = np.clip(brow, -1, 1)
    # gaze: fixations with saccades, drifting towards the camera
    gx, gy = np.zeros(n), np.zeros(n)
    t = 0
    while t < n:
        d = int(rng.uniform(0.3, 1.5) * fps)
        gx[t: t + d], gy[t: t + d] = rng.uniform(-0.45, 0.45), rng.uniform(-0.25, 0.2)
        t += d
    # head pose
    yaw_max, pitch_max, roll_max = style["yaw"], style["pitch"], style["roll"]
    yaw = rng.uniform(-0.5, 0.5) * yaw_max + 0.45 * yaw_max * smooth_noise(rng, n, fps * rng.uniform(0.4, 0.9))
    if rng.random() < style.get("sweep", 0.0):        # a deliberate turn from one side to the other
        a, b = rng.uniform(0.6, 1.0) * yaw_max * rng.choice([-1, 1]), 0.0
        b = -a * rng.uniform(0.5, 1.0)
        ramp = _episode(n, rng.uniform(0.0, 0.3) * n, n, rng.uniform(0.3, 0.6) * n)
        yaw = a + (b - a) * ramp + 0.15 * yaw_max * smooth_noise(rng, n, fps * 0.5)
    yaw = np.clip(yaw, -yaw_max, yaw_max)
    pitch = np.clip(rng.uniform(-0.3, 0.3) * pitch_max + 0.5 * pitch_max * smooth_noise(rng, n, fps * 0.7),
                    -pitch_max, pitch_max)
    roll = np.clip(rng.uniform(-0.4, 0.4) * roll_max + 0.45 * roll_max * smooth_noise(rng, n, fps * 0.8)
                   - 0.1 * yaw, -roll_max, roll_max)
    gx = np.clip(gx - 0.35 * yaw / 45.0, -0.6, 0.6)
    # size and position
    face_frac = rng.uniform(*style["face_frac"])         # jaw width / frame width
    s0 = face_frac * width / 2.0
    scale = s0 * np.exp(style["zoom"] * smooth_noise(rng, n, fps * 0.8))
    m = style["move"]
    tx = width / 2 + rng.uniform(-0.12, 0.12) * width + m * width * smooth_noise(rng, n, fps * 0.8)
    ty = height / 2 + 0.55 * s0 + rng.uniform(-0.06, 0.06) * height + 0.6 * m * height * smooth_noise(rng, n, fps * 0.8)
    if style.get("shake", 0.0) > 0:
        tx += style["shake"] * smooth_noise(rng, n, 1.2)
        ty += style["shake"] * smooth_noise(rng, n, 1.2)
    return Tracks(jaw, mouth_w, smile, teeth, blink_r, blink_l, brow, gx, gy, yaw, pitch, roll, tx, ty, scale)
