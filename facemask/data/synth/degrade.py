"""The three 300VW-like categories and the camera: light, blur, noise, resolution, compression.

Category 1: good light, mild motion. Category 2: poor or over-exposed light, side light,
colour casts, more noise. Category 3: unconstrained: large poses, occluders crossing the
face, motion blur, low resolution, compression artefacts. On top, every category has
transient degradations that last a few frames (blur burst, noise burst, flash, dropout,
a passing occluder): the frames around one hold what it lacks.

Difficulty knobs (the `data.synthetic` params): `degrade_strength` scales every camera
degradation, `pose_scale` the pose ranges, `occluder_rate` the occluders crossing the
face (per second, category 3; categories 1/2 get a share of it), `transient_rate` the
transient events per second and `transient_strength` their severity.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from facemask.core.exact import norm
from facemask.data.synth.motion import smooth_noise

#: per category: motion ranges, scene light, camera, accessories, event factors
CATEGORY_STYLES: dict[int, dict] = {
    1: dict(yaw=22, pitch=10, roll=8, sweep=0.1, move=0.05, zoom=0.05, shake=0.0, face_frac=(0.25, 0.37),
            light_side=35, ambient=(0.5, 0.65), lights=("good",), noise=(1.0, 3.0), defocus=(0.0, 0.5),
            lowres=0.0, jpeg=0.0, motion_blur=0.3, glasses=0.2, sunglasses=0.0,
            occluders=0.15, transients=0.6),
    2: dict(yaw=30, pitch=14, roll=10, sweep=0.2, move=0.07, zoom=0.07, shake=0.5, face_frac=(0.23, 0.35),
            light_side=80, ambient=(0.2, 0.5), lights=("dark", "over", "side", "cast"), noise=(4.0, 10.0),
            defocus=(0.0, 1.0), lowres=0.25, jpeg=0.3, motion_blur=0.5, glasses=0.25, sunglasses=0.0,
            occluders=0.3, transients=1.0),
    3: dict(yaw=45, pitch=20, roll=25, sweep=0.5, move=0.12, zoom=0.15, shake=1.5, face_frac=(0.16, 0.34),
            light_side=70, ambient=(0.3, 0.6), lights=("good", "dark", "over", "side", "cast"), noise=(2.0, 9.0),
            defocus=(0.3, 1.4), lowres=0.6, jpeg=0.7, motion_blur=1.0, glasses=0.3, sunglasses=0.07,
            occluders=1.0, transients=1.4),
}

TRANSIENTS = ("blur", "noise", "flash", "dropout", "occluder")

#: defaults of the difficulty knobs (overridable in `data.synthetic`)
KNOBS = dict(degrade_strength=1.0, pose_scale=1.0, occluder_rate=0.5, transient_rate=0.8, transient_strength=1.0)


def category_style(category: int, cfg: dict) -> dict:
    """The category's settings with the difficulty knobs applied."""
    st = dict(CATEGORY_STYLES[category])
    k = float(cfg.get("pose_scale", KNOBS["pose_scale"]))
    st["yaw"], st["pitch"], st["roll"] = min(st["yaw"] * k, 80), st["pitch"] * k, st["roll"] * k
    return st


@dataclass
class Camera:
    """One video's camera and light, drawn once."""

    light: str
    gain: float
    gamma: float
    contrast: float
    cast: np.ndarray
    noise: float
    defocus: float
    lowres: float
    jpeg: int
    motion_blur: float
    vignette: float
    flicker: np.ndarray = field(repr=False)

    @classmethod
    def sample(cls, rng: np.random.Generator, style: dict, n: int, fps: float, strength: float) -> "Camera":
        light = str(rng.choice(style["lights"]))
        gain, gamma, contrast, cast_amt, flick = 1.0, 1.0, 1.0, 0.06, 0.0
        if light == "good":
            gain, gamma, contrast = rng.uniform(0.9, 1.1), rng.uniform(0.9, 1.1), rng.uniform(0.9, 1.1)
        elif light == "dark":
            gain, gamma, contrast = rng.uniform(0.35, 0.6), rng.uniform(1.0, 1.25), rng.uniform(0.75, 0.95)
            flick = 0.1
        elif light == "over":
            gain, gamma, contrast = rng.uniform(1.5, 2.4), rng.uniform(0.6, 0.9), rng.uniform(0.6, 0.9)
        elif light == "side":
            gain, gamma, contrast = rng.uniform(0.7, 1.1), rng.uniform(1.0, 1.3), rng.uniform(1.0, 1.3)
        elif light == "cast":
            gain, cast_amt = rng.uniform(0.7, 1.2), 0.22
            flick = 0.06
        # the knob pulls every setting away from a clean camera
        gain = float(np.exp(np.log(gain) * strength))
        gamma = float(np.exp(np.log(gamma) * strength))
        contrast = float(1 + (contrast - 1) * strength)
        cast = np.exp(rng.normal(0, cast_amt * strength, 3))
        cast /= cast.mean()
        lowres = 1.0
        if rng.random() < style["lowres"]:
            lowres = 1 + rng.uniform(0.6, 2.2) * strength
        jpeg = 0
        if rng.random() < style["jpeg"]:
            jpeg = int(np.clip(100 - rng.uniform(55, 88) * strength, 5, 95))
        return cls(
            light=light, gain=gain, gamma=gamma, contrast=contrast, cast=cast,
            noise=float(rng.uniform(*style["noise"]) * strength * (1.6 if light == "dark" else 1.0)),
            defocus=float(rng.uniform(*style["defocus"]) * strength),
            lowres=float(lowres), jpeg=jpeg, motion_blur=float(style["motion_blur"] * strength),
            vignette=float(rng.uniform(0.0, 0.35) * strength),
            flicker=1 + flick * strength * smooth_noise(rng, n, fps * 0.3),
        )

    def as_dict(self) -> dict:
        return dict(light=self.light, gain=round(self.gain, 3), gamma=round(self.gamma, 3),
                    contrast=round(self.contrast, 3), noise=round(self.noise, 2), defocus=round(self.defocus, 2),
                    lowres=round(self.lowres, 2), jpeg=self.jpeg, motion_blur=round(self.motion_blur, 2))


@dataclass
class Event:
    kind: str
    start: int
    length: int
    strength: float
    params: dict

    def covers(self, t: int) -> bool:
        return self.start <= t < self.start + self.length


def plan_transients(rng: np.random.Generator, n: int, fps: float, rate: float, strength: float) -> list[Event]:
    """Non-overlapping events of 2-6 frames, at least 3 clean frames apart."""
    events: list[Event] = []
    if rate <= 0:
        return events
    t = int(rng.exponential(fps / rate))
    while t < n - 1:
        kind = str(rng.choice(TRANSIENTS, p=[0.25, 0.2, 0.2, 0.15, 0.2]))
        length = int(rng.integers(2, 7))
        length = min(length, n - t)
        events.append(Event(kind, t, length, float(strength * rng.uniform(0.7, 1.3)), {
            "angle": float(rng.uniform(0, 180)), "blocks": bool(rng.random() < 0.5), "seed": int(rng.integers(1 << 31))}))
        t += length + 3 + int(rng.exponential(fps / rate))
    return events


def _line_kernel(length: float, angle_deg: float) -> np.ndarray:
    k = int(np.ceil(length)) | 1
    ker = np.zeros((k, k), np.float32)
    c = k // 2
    dx, dy = np.cos(np.deg2rad(angle_deg)), np.sin(np.deg2rad(angle_deg))
    cv2.line(ker, (int(round(c - dx * length / 2)), int(round(c - dy * length / 2))),
             (int(round(c + dx * length / 2)), int(round(c + dy * length / 2))), 1.0, 1, cv2.LINE_AA)
    return ker / max(ker.sum(), 1e-6)


class Pipeline:
    """Camera effects on a rendered frame: blur, exposure/colour (LUT), vignette, noise, resolution, JPEG."""

    def __init__(self, cam: Camera, width: int, height: int, rng: np.random.Generator):
        self.cam = cam
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        r2 = ((xx - width / 2) / (width / 2)) ** 2 + ((yy - height / 2) / (height / 2)) ** 2
        self.vignette = cv2.merge([(1 - cam.vignette * 0.5 * r2).astype(np.float32)] * 3)
        # a bank of noise fields; each frame takes a random window (cheaper than fresh noise)
        self.noise = rng.standard_normal((3, height + 32, width + 32, 3)).astype(np.float32)

    def lut(self, gain: float, gamma: float, contrast: float, cast) -> np.ndarray:
        x = np.arange(256, dtype=np.float64)[:, None] / 255.0
        y = np.clip(x * gain * np.asarray(cast)[None, :], 0, None) ** gamma
        y = np.clip((y - 0.5) * contrast + 0.5, 0, 1)
        return (y * 255 + 0.5).astype(np.uint8).reshape(256, 1, 3)

    def __call__(self, img: np.ndarray, t: int, velocity: np.ndarray, event: Event | None,
                 rng: np.random.Generator) -> np.ndarray:
        cam = self.cam
        H, W = img.shape[:2]
        gain, noise, defocus, contrast = cam.gain * cam.flicker[t], cam.noise, cam.defocus, cam.contrast
        mb = cam.motion_blur * norm(velocity)
        mb_angle = float(np.degrees(np.arctan2(velocity[1], velocity[0])))
        if event is not None:
            e = event.strength
            ph = (t - event.start + 0.5) / event.length
            peak = float(np.sin(np.pi * ph)) ** 0.5
            if event.kind == "blur":
                if event.params["blocks"]:
                    defocus = max(defocus, (2.5 + 3.5 * peak) * e * W / 320)
                else:
                    mb, mb_angle = max(mb, (10 + 14 * peak) * e * W / 320), event.params["angle"]
            elif event.kind == "noise":
                noise = max(noise, (22 + 25 * peak) * e)
            elif event.kind == "flash":
                gain *= 1 + (1.8 + 2.0 * peak) * e
                contrast *= 0.75
            elif event.kind == "dropout" and not event.params["blocks"]:
                gain *= max(0.04, 0.25 - 0.15 * peak * e)
                noise = max(noise, 6.0)
        out = img
        if mb > 1.5:
            out = cv2.filter2D(out, -1, _line_kernel(min(mb, 40.0), mb_angle), borderType=cv2.BORDER_REFLECT)
        if defocus > 0.3:
            out = cv2.GaussianBlur(out, (0, 0), defocus)
        out = cv2.LUT(out, self.lut(gain, cam.gamma, contrast, cam.cast))
        if cam.vignette > 0 or noise > 0.3:
            f = out.astype(np.float32)
            if cam.vignette > 0:
                f *= self.vignette
            if noise > 0.3:  # NumPy, not cv2.scaleAdd: the same bits on every CPU (`facemask.core.exact`)
                k = rng.integers(len(self.noise))
                oy, ox = rng.integers(0, 32, 2)
                f += self.noise[k, oy: oy + H, ox: ox + W] * np.float32(noise)
            out = np.clip(f, 0, 255, out=f).astype(np.uint8)
        if cam.lowres > 1.05:
            small = cv2.resize(out, (max(8, int(W / cam.lowres)), max(8, int(H / cam.lowres))), interpolation=cv2.INTER_AREA)
            out = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
        if event is not None and event.kind == "dropout" and event.params["blocks"]:
            out = _block_loss(out, event, t)
        if cam.jpeg:
            ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, cam.jpeg])
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        return out


def _block_loss(img: np.ndarray, event: Event, t: int) -> np.ndarray:
    """Packet loss: a share of 16x16 blocks lose their detail (flat block colour), some shifted."""
    H, W = img.shape[:2]
    rng = np.random.default_rng([event.params["seed"], t])
    bh, bw = (H + 15) // 16, (W + 15) // 16
    lost = rng.random((bh, bw)) < min(0.95, 0.55 * event.strength + 0.1)
    small = cv2.resize(img, (bw, bh), interpolation=cv2.INTER_AREA)
    small = np.clip(small.astype(np.int16) + rng.integers(-40, 40, (bh, bw, 1)), 0, 255).astype(np.uint8)
    flat = cv2.resize(small, (bw * 16, bh * 16), interpolation=cv2.INTER_NEAREST)[:H, :W]
    m = cv2.resize(lost.astype(np.uint8), (bw * 16, bh * 16), interpolation=cv2.INTER_NEAREST)[:H, :W].astype(bool)
    out = img.copy()
    out[m] = flat[m]
    return out
