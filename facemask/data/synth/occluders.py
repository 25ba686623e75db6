"""Things that pass in front of the face: hands, cups, phones, microphones, papers, balls,
and out-of-focus blobs close to the lens. The landmarks (and so the labels) stay complete
behind them, as in 300VW.

An occluder moves along a path given in face units relative to the landmarks' centre, so
it crosses the face wherever the head goes.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facemask.core.exact import matmul
from facemask.data.synth.render import AA, SHIFT, SKIN_TONES, bgr, fill

KINDS = ("hand", "hand", "cup", "phone", "mic", "paper", "ball")


@dataclass
class Occluder:
    kind: str
    start: int
    length: int
    p0: np.ndarray            # path start, face units from the landmarks' centre
    p1: np.ndarray            # path end
    hold: float               # share of the time spent resting at the path's middle
    angle: float              # degrees
    size: float               # face units
    color: np.ndarray
    color2: np.ndarray
    blur: float               # defocus, face units

    def covers(self, t: int) -> bool:
        return self.start <= t < self.start + self.length

    def position(self, t: int) -> np.ndarray:
        u = (t - self.start + 0.5) / self.length
        mid = 0.5 * (self.p0 + self.p1)
        h = self.hold / 2
        if u < 0.5 - h:
            a = u / (0.5 - h)
            return self.p0 + (mid - self.p0) * (0.5 - 0.5 * np.cos(np.pi * a)) if self.hold > 0 else self.p0 + (self.p1 - self.p0) * u
        if u <= 0.5 + h:
            return mid
        a = (u - 0.5 - h) / (0.5 - h)
        return mid + (self.p1 - mid) * (0.5 - 0.5 * np.cos(np.pi * a))


def _random_skin(rng):
    return SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.9, 1.1, 3)


def make_occluder(rng: np.random.Generator, start: int, length: int, skin: np.ndarray, fast: bool = False) -> Occluder:
    """A random occluder crossing the face (through the eyes, nose or mouth) from outside."""
    kind = "blob" if fast and rng.random() < 0.5 else str(rng.choice(KINDS))
    target = np.array([rng.uniform(-0.5, 0.5), rng.choice([0.0, 0.5, 0.95, 1.2]) - 0.6])
    ang = rng.uniform(0, 2 * np.pi)
    far = rng.uniform(2.2, 3.2)
    p0 = target + far * np.array([np.cos(ang), np.sin(ang)])
    p1 = target - far * np.array([np.cos(ang), np.sin(ang)]) * rng.uniform(0.6, 1.0)
    hold = 0.0 if fast else float(rng.choice([0.0, 0.0, 0.4, 0.6]))
    if hold > 0:                                   # comes in, rests on the face (the path's middle), goes on
        p1 = 2 * target - p0
    color = skin * rng.uniform(0.85, 1.1, 3) if kind == "hand" and rng.random() < 0.6 else (
        _random_skin(rng) if kind == "hand" else rng.uniform(10, 240, 3))
    return Occluder(kind=kind, start=start, length=length, p0=p0, p1=p1, hold=hold,
                    angle=float(rng.uniform(-60, 60) + (180 if rng.random() < 0.2 else 0)),
                    size=float(rng.uniform(0.8, 1.2) * (1.8 if kind == "blob" else 1.0)),
                    color=np.asarray(color, dtype=np.float64), color2=rng.uniform(10, 240, 3),
                    blur=float(rng.uniform(0.15, 0.4) if kind == "blob" else rng.uniform(0.0, 0.03)))


def make_passing(rng: np.random.Generator, start: int, length: int, skin: np.ndarray,
                 strength: float = 1.0) -> Occluder:
    """A transient occluder: a hand, a sheet of paper or something close to the lens swept right across the
    face within a few frames, over it in every one of them (its path starts and ends on the face)."""
    kind = str(rng.choice(["hand", "hand", "paper", "blob", "blob", "phone"]))
    target = np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.4, 0.4)])
    ang = rng.uniform(0, 2 * np.pi)
    d = np.array([np.cos(ang), np.sin(ang)]) * rng.uniform(0.4, 0.8)
    color = skin * rng.uniform(0.85, 1.1, 3) if kind == "hand" and rng.random() < 0.6 else (
        _random_skin(rng) if kind == "hand" else rng.uniform(10, 240, 3))
    grow = float(np.clip(strength, 0.7, 1.5))
    return Occluder(kind=kind, start=start, length=length, p0=target + d, p1=target - d, hold=0.0,
                    angle=float(rng.uniform(-60, 60) + (180 if rng.random() < 0.2 else 0)),
                    size=float(rng.uniform(1.1, 1.5) * grow * (1.6 if kind == "blob" else 1.0)),
                    color=np.asarray(color, dtype=np.float64), color2=rng.uniform(10, 240, 3),
                    blur=float(rng.uniform(0.15, 0.4) if kind == "blob" else rng.uniform(0.0, 0.03)))


def plan_occluders(rng: np.random.Generator, n: int, fps: float, rate: float, skin: np.ndarray) -> list[Occluder]:
    """Occluders crossing the face over ~0.6-2 s each (a Poisson number of them)."""
    out = []
    count = rng.poisson(rate * n / fps)
    for _ in range(count):
        length = int(rng.uniform(0.6, 2.0) * fps)
        length = min(length, n)
        start = int(rng.integers(-length // 3, max(n - 2 * length // 3, 1)))
        out.append(make_occluder(rng, start, length, skin))
    return out


def _rot(angle):
    a = np.deg2rad(angle)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def draw(img: np.ndarray, mask: np.ndarray, occ: Occluder, centre: np.ndarray, s: float, t: int) -> None:
    """Draw one occluder at frame t (the face centre and scale given in pixels)."""
    c = centre + s * occ.position(t)
    R = _rot(occ.angle)
    k = s * occ.size
    P = lambda pts: c + matmul(np.asarray(pts, dtype=np.float64), R.T) * k
    H, W = img.shape[:2]
    if occ.blur > 0.05:          # defocused: draw on a layer, blur layer and mask, composite
        layer = img.copy()
        m = np.zeros((H, W), np.uint8)
        _shape(layer, m, occ, P, k)
        sig = max(0.5, occ.blur * s)
        layer = cv2.GaussianBlur(layer, (0, 0), sig)
        m = cv2.GaussianBlur(m, (0, 0), sig)
        a = (m.astype(np.float32) / 255.0)[..., None]
        img[:] = (img * (1 - a) + layer * a).astype(np.uint8)
        np.maximum(mask, m, out=mask)
    else:
        _shape(img, mask, occ, P, k)


def _thick(img, mask, p, q, w, color):
    pts = [tuple(int(v) for v in np.round(np.asarray(x) * (1 << SHIFT))) for x in (p, q)]
    cv2.line(img, pts[0], pts[1], bgr(color), max(1, int(w)), AA, SHIFT)
    cv2.line(mask, pts[0], pts[1], 255, max(1, int(w)), AA, SHIFT)


def _shape(img, mask, occ: Occluder, P, k):
    col = occ.color
    if occ.kind == "hand":
        _thick(img, mask, P([0, 0.3]), P([0, 3.5]), 0.75 * k, occ.color2)          # sleeve / forearm
        fill(img, P(_ellipse(0.42, 0.5)), col, mask)
        for i, (x, ln) in enumerate(zip((-0.3, -0.1, 0.1, 0.3), (0.62, 0.74, 0.7, 0.55))):
            _thick(img, mask, P([x, -0.3]), P([x * 1.15, -0.3 - ln]), 0.19 * k, col * 0.82)
            _thick(img, mask, P([x, -0.3]), P([x * 1.15, -0.3 - ln]), 0.13 * k, col)
        _thick(img, mask, P([-0.35, 0.05]), P([-0.8, -0.35]), 0.21 * k, col * 0.9)
        cv2.polylines(img, [np.round(P(_ellipse(0.42, 0.5)) * 16).astype(np.int32)], True, bgr(col * 0.7), 1, AA, SHIFT)
    elif occ.kind == "cup":
        body = P([[-0.35, -0.45], [0.35, -0.45], [0.3, 0.45], [-0.3, 0.45]])
        fill(img, body, col, mask)
        ring = P(_ellipse(0.2, 0.22) + np.array([0.45, -0.05]))
        cv2.polylines(img, [np.round(ring * 16).astype(np.int32)], True, bgr(col * 0.85), max(1, int(0.08 * k)), AA, SHIFT)
        cv2.polylines(mask, [np.round(ring * 16).astype(np.int32)], True, 255, max(1, int(0.08 * k)), AA, SHIFT)
        fill(img, P(_ellipse(0.35, 0.07) + np.array([0, -0.45])), col * 0.6)
    elif occ.kind == "phone":
        body = P([[-0.26, -0.5], [0.26, -0.5], [0.26, 0.5], [-0.26, 0.5]])
        fill(img, body, (25, 25, 28), mask)
        fill(img, P([[-0.22, -0.42], [0.22, -0.42], [0.22, 0.42], [-0.22, 0.42]]), occ.color2 * 0.7 + 40)
        _thick(img, mask, P([0.0, 0.45]), P([0.3, 2.5]), 0.5 * k, occ.color)          # the hand holding it
    elif occ.kind == "mic":
        _thick(img, mask, P([0, 0.2]), P([0, 2.2]), 0.16 * k, (20, 20, 20))
        fill(img, P(_ellipse(0.26, 0.26)), (120, 120, 125), mask)
        for dx in (-0.12, 0, 0.12):
            _thick(img, mask, P([dx, -0.22]), P([dx, 0.22]), max(1, 0.02 * k), (70, 70, 75))
    elif occ.kind == "paper":
        fill(img, P([[-0.7, -0.95], [0.7, -0.95], [0.7, 0.95], [-0.7, 0.95]]), (222, 225, 220), mask)
        for i in range(9):
            y = -0.8 + i * 0.17
            _thick(img, np.zeros_like(mask), P([-0.55, y]), P([0.5 - 0.3 * (i % 3 == 2), y]), max(1, 0.04 * k), (60, 60, 60))
    elif occ.kind == "ball":
        fill(img, P(_ellipse(0.45, 0.45)), col, mask)
        _thick(img, np.zeros_like(mask), P([-0.42, 0.0]), P([0.42, 0.0]), 0.1 * k, occ.color2)
    else:  # blob: something close to the lens
        fill(img, P(_ellipse(1.0, 0.7)), col * 0.5, mask)


def _ellipse(a, b, n=24):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([a * np.cos(t), b * np.sin(t)], axis=1)
