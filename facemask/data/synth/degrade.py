"""The three 300VW-like categories and the camera: light, blur, noise, resolution, compression.

Category 1: good light, mild motion. Category 2: poor or over-exposed light, side light,
colour casts, more noise. Category 3: unconstrained: large poses, occluders crossing the
face, motion blur, low resolution, compression artefacts. On top, every category has
transient degradations that last 1-6 frames (`TRANSIENTS`: blur and noise bursts, flashes,
flicker, dropped, damaged and badly coded frames, an occluder swept across the face): the
frames around one hold what it lacks.

Difficulty knobs (the `data.synthetic` params): `degrade_strength` scales every camera
degradation, `pose_scale` the pose ranges, `occluder_rate` the occluders crossing the
face (per second, category 3; categories 1/2 get a share of it), `transient_rate` the
rate of the stream of transient events (`plan_transients`), `transient_strength` their
severity and `transient_mix` the relative frequency of each kind (`TRANSIENTS`).
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

#: Transient events, as in 300VW's hard videos: short, frequent, and in every category.
#: blur: a motion-blur burst (or a focus hunt); noise: a sensor-noise burst (gain jump); flash: a flash
#: or a light switched on, washing the frame out; flicker: light flicker, frames alternately dark and
#: bright; drop: a dropped frame (black, grey, a decoder's green, or the last frame again: frozen);
#: corrupt: a damaged frame (lost macroblocks, blocks smeared down from a lost slice, blocks moved by
#: wrong motion vectors); glitch: a compression glitch (a frame coded at the lowest quality, or a frame
#: of big blocks); occluder: a hand or an object passing right in front of the face.
TRANSIENTS = ("blur", "noise", "flash", "flicker", "drop", "corrupt", "glitch", "occluder")
#: frames one event of each kind lasts (both ends included)
LENGTHS = {"blur": (2, 5), "noise": (2, 4), "flash": (1, 3), "flicker": (3, 6), "drop": (1, 3), "corrupt": (1, 3),
           "glitch": (1, 3), "occluder": (3, 6)}
#: the forms each kind takes (one drawn per event, uniformly)
VARIANTS = {"blur": ("motion", "motion", "defocus"), "drop": ("black", "grey", "green", "freeze"),
            "corrupt": ("blocks", "smear", "shift"), "glitch": ("jpeg", "mosaic")}
#: relative frequency of each kind among the transient events (`transient_mix`; normalised)
MIX = dict(blur=1.0, noise=0.5, flash=1.0, flicker=0.5, drop=1.0, corrupt=1.0, glitch=0.5, occluder=1.0)

#: defaults of the difficulty knobs (overridable in `data.synthetic`)
KNOBS = dict(degrade_strength=1.0, pose_scale=1.0, occluder_rate=0.5, transient_rate=7.0, transient_strength=1.3)


def transient_mix(cfg: dict) -> dict[str, float]:
    """The shares of the transient kinds (summing to 1) from the weights ``cfg["transient_mix"]``; a kind it
    does not name has its weight in `MIX` (set 0 to leave a kind out)."""
    mix = {**MIX, **dict(cfg.get("transient_mix") or {})}
    bad = sorted(set(mix) - set(TRANSIENTS))
    if bad:
        raise ValueError(f"data.synthetic.transient_mix: unknown kinds {bad}; valid: {list(TRANSIENTS)}")
    w = np.array([float(mix.get(k, 0.0)) for k in TRANSIENTS])
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"data.synthetic.transient_mix: weights must be >= 0, some > 0, got {mix!r}")
    return dict(zip(TRANSIENTS, (w / w.sum()).tolist()))


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


def plan_transients(rng: np.random.Generator, n: int, fps: float, rate: float, strength: float,
                    mix: dict[str, float] | None = None) -> list[Event]:
    """Non-overlapping events, each of a kind drawn by `mix` (shares; default `MIX`), lasting `LENGTHS` frames,
    in a form drawn from `VARIANTS`. The first starts after an exponential wait of mean 1 / `rate` s; after
    each event come 3 clean frames and another such wait, so the realised rate is below `rate` (the default
    7 gives 2.3 / 3.1 / 3.6 events per second in categories 1 / 2 / 3: DESIGN.md)."""
    events: list[Event] = []
    if rate <= 0:
        return events
    mix = transient_mix({"transient_mix": mix})
    kinds = [k for k in TRANSIENTS if mix[k] > 0]
    p = np.array([mix[k] for k in kinds])
    t = int(rng.exponential(fps / rate))
    while t < n - 1:
        kind = str(rng.choice(kinds, p=p / p.sum()))
        lo, hi = LENGTHS[kind]
        length = min(int(rng.integers(lo, hi + 1)), n - t)
        variant = str(rng.choice(VARIANTS[kind])) if kind in VARIANTS else ""
        if variant == "freeze" and t == 0:
            variant = "black"                          # nothing to freeze on before the first frame
        events.append(Event(kind, t, length, float(strength * rng.uniform(0.7, 1.3)), {
            "angle": float(rng.uniform(0, 180)), "variant": variant, "phase": int(rng.integers(2)),
            "seed": int(rng.integers(1 << 31))}))
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

    def lut(self, gain: float, gamma: float, contrast: float, cast, wash: float = 0.0) -> np.ndarray:
        x = np.arange(256, dtype=np.float64)[:, None] / 255.0
        y = np.clip(x * gain * np.asarray(cast)[None, :], 0, None) ** gamma
        y = np.clip((y - 0.5) * contrast + 0.5, 0, 1)
        if wash > 0:                                   # a flash: everything pulled towards white
            y = y + (1 - y) * wash
        return (y * 255 + 0.5).astype(np.uint8).reshape(256, 1, 3)

    def __call__(self, img: np.ndarray, t: int, velocity: np.ndarray, event: Event | None,
                 rng: np.random.Generator) -> np.ndarray:
        cam = self.cam
        H, W = img.shape[:2]
        gain, noise, defocus, contrast, wash = cam.gain * cam.flicker[t], cam.noise, cam.defocus, cam.contrast, 0.0
        mb = cam.motion_blur * norm(velocity)
        mb_angle = float(np.degrees(np.arctan2(velocity[1], velocity[0])))
        kind = event.kind if event is not None else ""
        variant = event.params.get("variant", "") if event is not None else ""
        if kind == "drop" and variant != "freeze":     # a frozen frame is the video driver's (render_frame)
            return _dropped(img, event, t)
        jpeg, peak, e = cam.jpeg, 0.0, 0.0
        if event is not None:
            e = event.strength
            ph = (t - event.start + 0.5) / event.length
            peak = float(np.sin(np.pi * ph)) ** 0.5
            if kind == "blur":
                if variant == "defocus":                  # on top of the camera's own blur
                    defocus = defocus + (3.0 + 4.0 * peak) * e * W / 320
                else:
                    mb, mb_angle = mb + (16 + 20 * peak) * e * W / 320, event.params["angle"]
            elif kind == "noise":
                noise = max(noise, (30 + 35 * peak) * e)
            elif kind == "flash":
                gain *= 1 + (2.5 + 2.5 * peak) * e
                contrast *= 0.7
                wash = min(0.92, (0.35 + 0.45 * peak) * e)
            elif kind == "flicker":                    # alternate frames dark and bright
                if (t - event.start + event.params["phase"]) % 2 == 0:
                    gain *= 1 + 2.0 * e
                    wash = min(0.8, 0.3 * e)
                else:
                    gain *= max(0.04, 0.3 - 0.15 * e)
            elif kind == "glitch" and variant == "jpeg":
                jpeg = int(np.clip(round(6 - 3 * e), 1, 5))
        out = img
        if mb > 1.5:
            out = cv2.filter2D(out, -1, _line_kernel(min(mb, 40.0), mb_angle), borderType=cv2.BORDER_REFLECT)
        if defocus > 0.3:
            out = cv2.GaussianBlur(out, (0, 0), defocus)
        out = cv2.LUT(out, self.lut(gain, cam.gamma, contrast, cam.cast, wash))
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
        if kind == "glitch" and variant == "mosaic":
            out = _mosaic(out, max(2, int(round((6 + 6 * peak) * e * W / 320))))
        if jpeg:
            ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, jpeg])
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        if kind == "corrupt":                          # damage in transmission: after the coding
            out = _corrupt(out, event, t)
        return out


def _dropped(img: np.ndarray, event: Event, t: int) -> np.ndarray:
    """A dropped frame: black, grey, or a decoder's green (YUV zeros), with a trace of noise."""
    rng = np.random.default_rng([event.params["seed"], t])
    base = {"black": (6, 6, 6), "grey": (128, 128, 128), "green": (0, 135, 0)}[event.params["variant"]]
    jitter = rng.integers(-4, 5, (1, 1, 3)) + rng.integers(-3, 4, img.shape)
    return np.clip(np.asarray(base)[None, None, :] + jitter, 0, 255).astype(np.uint8)


def _mosaic(img: np.ndarray, k: int) -> np.ndarray:
    """The frame in k x k blocks (a stream coded at a fraction of its resolution)."""
    H, W = img.shape[:2]
    small = cv2.resize(img, (max(1, -(-W // k)), max(1, -(-H // k))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (W, H), interpolation=cv2.INTER_NEAREST)


def _corrupt(img: np.ndarray, event: Event, t: int) -> np.ndarray:
    """A damaged frame, in 16 x 16 macroblocks: ``blocks`` lose their detail (`_block_loss`); ``smear``: from a
    block on, the rest of the frame (in scan order) repeats the last good row downwards, each block a little
    off in colour (a lost slice); ``shift``: a band of blocks copied from places a wrong motion vector points to."""
    variant = event.params["variant"]
    if variant == "blocks":
        return _block_loss(img, event, t)
    H, W = img.shape[:2]
    rng = np.random.default_rng([event.params["seed"], t, 1])
    bh, bw = (H + 15) // 16, (W + 15) // 16
    ys, xs = np.mgrid[0:H, 0:W]
    by, bx = ys // 16, xs // 16
    if variant == "smear":
        r0 = int(rng.integers(max(1, int(0.1 * bh)), max(2, int(0.5 * bh)) + 1))
        c0 = int(rng.integers(0, bw))
        lost = (by > r0) | ((by == r0) & (bx >= c0))
        top = np.where(np.arange(W) // 16 >= c0, r0 * 16 - 1, (r0 + 1) * 16 - 1)   # the last good row per column
        src_y = np.where(lost, np.minimum(top[None, :], H - 1), ys)
        out = img[src_y, xs]
        drift = rng.integers(-25, 26, (bh, bw, 3))
        shade = np.where(lost[..., None], drift[by, bx], 0)
        return np.clip(out.astype(np.int16) + shade, 0, 255).astype(np.uint8)
    # shift: a band of block rows, each block moved by the band's vector plus a little of its own
    rows = int(rng.integers(max(1, int(0.4 * bh)), bh + 1))
    r0 = int(rng.integers(0, bh - rows + 1))
    unit = W / 320
    v = rng.uniform(6, 24, 2) * unit * rng.choice([-1, 1], 2)
    jit = rng.uniform(-6, 6, (bh, bw, 2)) * unit
    band = (by >= r0) & (by < r0 + rows)
    dy = np.where(band, np.round(v[0] + jit[by, bx, 0]).astype(np.int64), 0)
    dx = np.where(band, np.round(v[1] + jit[by, bx, 1]).astype(np.int64), 0)
    return img[np.clip(ys + dy, 0, H - 1), np.clip(xs + dx, 0, W - 1)]


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
