"""Appearance: draw a person (head, hair, ears, neck, shoulders) and a cluttered room.

Everything is drawn from the projected 3-D face: the landmark outlines (the same
splines the labels use) bound the skin, eyes, lips and inner mouth, but what fills them
is appearance, not a label colour: shaded skin of varied tone, sclera, iris, pupil and
lash lines, brows below the brow landmarks, lips with a darker upper lip and a lit lower
lip, a dark mouth cavity with teeth and tongue; beyond the landmarks come hair (several
styles), ears, a forehead, neck, clothes and a moving, cluttered background. Lighting
is Lambertian on an ellipsoid that follows the head, plus blurred occlusion shadows
(eye sockets, beside the nose, under the lip).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from facemask.data.synth import contours as C
from facemask.core import exact
from facemask.data.synth.face import CAMERA_DIST, FOREHEAD_SECTIONS, Pose, Projector, silhouette_sections
from facemask.data.synth.motion import smooth_noise

AA = cv2.LINE_AA
SHIFT = 4

# skin tones (BGR), light to dark; a person's tone is a random point between neighbours
SKIN_TONES = np.array([[196, 214, 246], [168, 192, 232], [140, 170, 214], [110, 142, 190],
                  [82, 110, 160], [58, 80, 122], [42, 56, 88]], dtype=np.float64)
_HAIR = {"black": (22, 22, 26), "dark brown": (28, 40, 62), "brown": (45, 72, 112),
         "blond": (92, 150, 196), "red": (36, 70, 140), "grey": (150, 150, 152), "white": (200, 205, 210)}
_IRIS = [(28, 58, 100), (18, 30, 52), (150, 115, 70), (80, 125, 90), (50, 95, 125), (120, 110, 90)]
HAIR_STYLES = ("short", "long", "bald", "bun", "fringe", "curly")


def bgr(col) -> tuple:
    if np.isscalar(col):
        return (float(col),) * 3
    return tuple(float(v) for v in col)


def fill(img, pts, color, mask=None):
    p = [C.to_cv(pts, SHIFT)]
    cv2.fillPoly(img, p, bgr(color), AA, SHIFT)
    if mask is not None:
        cv2.fillPoly(mask, p, 255, AA, SHIFT)


def polyline(img, pts, color, thick, closed=False):
    cv2.polylines(img, [C.to_cv(pts, SHIFT)], closed, bgr(color), max(1, int(round(thick))), AA, SHIFT)


def ellipse_pts(center3, u3, v3, n=24) -> np.ndarray:
    """Points of a 3-D ellipse centre + u cos t + v sin t."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)[:, None]
    return np.asarray(center3) + np.cos(t) * np.asarray(u3) + np.sin(t) * np.asarray(v3)


def ellipsoid_outline(proj: Projector, center, axes, n=40) -> np.ndarray:
    """The image outline of an ellipsoid (orthographic conic, scaled by the centre's perspective)."""
    R = proj.R
    M = exact.matmul(exact.matmul(R, np.diag(1.0 / np.asarray(axes, dtype=np.float64) ** 2)), R.T)
    A2 = M[:2, :2] - np.outer(M[:2, 2], M[2, :2]) / M[2, 2]
    w, V = exact.eigh2(A2)
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    circ = exact.matmul(np.stack([np.cos(t) / np.sqrt(w[0]), np.sin(t) / np.sqrt(w[1])], axis=1), V.T)
    c = proj.to_camera(np.asarray(center)[None])[0]
    f = CAMERA_DIST / (CAMERA_DIST - c[2])
    s = proj.pose.scale * f
    return np.array([proj.pose.tx + s * c[0], proj.pose.ty + s * c[1]]) + s * circ


@dataclass
class Appearance:
    """How one person looks, and the scene light on them."""
    skin: np.ndarray
    lip: np.ndarray
    hair: np.ndarray
    brow: np.ndarray
    iris: np.ndarray
    sclera: np.ndarray
    teeth: np.ndarray
    shirt: np.ndarray
    hair_style: str
    hairline: float
    brow_thick: float
    beard: str
    glasses: str
    glasses_color: np.ndarray
    blush: float
    light_dir: np.ndarray
    ambient: float
    diffuse: float
    specular: float
    names: dict = field(default_factory=dict)

    @classmethod
    def sample(cls, rng: np.random.Generator, style: dict) -> "Appearance":
        tone = rng.uniform(0, len(SKIN_TONES) - 1)
        i = int(tone)
        skin = SKIN_TONES[i] + (tone - i) * (SKIN_TONES[min(i + 1, len(SKIN_TONES) - 1)] - SKIN_TONES[i])
        skin = skin * rng.uniform(0.9, 1.08) * (1 + rng.uniform(-0.03, 0.03, 3))   # brightness, a little hue
        lip_contrast = rng.uniform(0.25, 1.0)
        lip_target = skin * np.array([0.62, 0.58, 0.92]) + np.array([8, 0, 10])
        lip = skin + lip_contrast * (lip_target - skin)
        hair_name = rng.choice(list(_HAIR), p=[0.3, 0.22, 0.18, 0.12, 0.06, 0.08, 0.04])
        hair = np.array(_HAIR[hair_name], dtype=np.float64) * rng.uniform(0.85, 1.15)
        brow = hair * 0.8 if hair.mean() < 120 else np.array(_HAIR["brown"]) * rng.uniform(0.7, 1.2)
        style_name = str(rng.choice(HAIR_STYLES, p=[0.3, 0.25, 0.08, 0.1, 0.15, 0.12]))
        hairline = -1.28 + rng.normal(0, 0.06) - (0.25 if style_name == "bald" else 0.0)
        beard = str(rng.choice(["none", "stubble", "beard", "moustache"], p=[0.74, 0.12, 0.1, 0.04]))
        g = rng.random()
        glasses = "sun" if g < style["sunglasses"] else "clear" if g < style["sunglasses"] + style["glasses"] else "none"
        # light: direction in camera space (x right, y down, z towards the camera)
        az = np.deg2rad(rng.uniform(-1, 1) * style["light_side"])
        el = np.deg2rad(rng.uniform(10, 45))
        light = np.array([np.sin(az) * np.cos(el), -np.sin(el), np.cos(az) * np.cos(el)])
        amb = rng.uniform(*style["ambient"])
        return cls(
            skin=skin, lip=lip, hair=hair, brow=brow,
            iris=np.array(_IRIS[rng.integers(len(_IRIS))], dtype=np.float64) * rng.uniform(0.8, 1.2),
            sclera=np.array([205, 215, 222.0]) * rng.uniform(0.9, 1.02),
            teeth=np.array([190, 212, 225.0]) * rng.uniform(0.85, 1.02),
            shirt=rng.uniform(20, 230, 3),
            hair_style=style_name, hairline=float(hairline),
            brow_thick=float(rng.uniform(0.06, 0.12)), beard=beard, glasses=glasses,
            glasses_color=rng.choice([np.array([20, 20, 20.0]), np.array([60, 40, 30.0]),
                                      np.array([150, 150, 150.0]), rng.uniform(20, 200, 3)]),
            blush=float(rng.uniform(0, 0.12)),
            light_dir=light, ambient=float(amb), diffuse=float(1.0 - amb) * rng.uniform(0.9, 1.15),
            specular=float(rng.uniform(0.0, 0.25)),
            names={"skin_tone": round(float(tone), 2), "hair": str(hair_name), "lip_contrast": round(float(lip_contrast), 2)},
        )


class Background:
    """A cluttered room, bigger than the frame; the camera pans over it and things move in it."""
    def __init__(self, rng: np.random.Generator, width: int, height: int, frames: int, fps: float, move: float):
        self.w, self.h = width, height
        W, H = int(width * 1.6), int(height * 1.6)
        wall = rng.uniform(40, 220, 3)
        yy = np.linspace(0, 1, H)[:, None, None]
        canvas = wall * (0.75 + 0.4 * yy) * rng.uniform(0.8, 1.1, 3)
        canvas = np.repeat(canvas, W, axis=1).astype(np.float32)
        canvas = np.clip(canvas, 0, 255).astype(np.uint8)
        unit = width / 320.0
        for _ in range(rng.integers(14, 30)):
            col = bgr(rng.uniform(0, 255, 3))
            kind = rng.random()
            x, y = rng.uniform(0, W), rng.uniform(0, H)
            if kind < 0.35:                             # shelves, frames, windows, doors
                w, h = rng.uniform(15, 140) * unit, rng.uniform(10, 120) * unit
                cv2.rectangle(canvas, (int(x), int(y)), (int(x + w), int(y + h)), col, -1)
                if rng.random() < 0.5:
                    cv2.rectangle(canvas, (int(x), int(y)), (int(x + w), int(y + h)),
                                  bgr(rng.uniform(0, 255, 3)), max(1, int(rng.uniform(1, 5) * unit)))
                if rng.random() < 0.4:                  # books on a shelf
                    bx = x
                    while bx < x + w - 3:
                        bw = rng.uniform(3, 9) * unit
                        cv2.rectangle(canvas, (int(bx), int(y + rng.uniform(0, h * 0.3))), (int(bx + bw), int(y + h)),
                                      bgr(rng.uniform(0, 255, 3)), -1)
                        bx += bw + 1
            elif kind < 0.6:                            # lamps, plants, clocks
                cv2.circle(canvas, (int(x), int(y)), int(rng.uniform(5, 45) * unit), col, -1, AA)
            elif kind < 0.8:                            # cables, edges, poles
                cv2.line(canvas, (int(x), int(y)), (int(x + rng.uniform(-150, 150) * unit), int(y + rng.uniform(-150, 150) * unit)),
                         col, max(1, int(rng.uniform(1, 8) * unit)), AA)
            else:                                       # posters with text-like marks
                w, h = rng.uniform(30, 90) * unit, rng.uniform(30, 110) * unit
                cv2.rectangle(canvas, (int(x), int(y)), (int(x + w), int(y + h)), col, -1)
                for k in range(int(h // (7 * unit))):
                    yy_ = int(y + 4 * unit + k * 7 * unit)
                    cv2.line(canvas, (int(x + 3 * unit), yy_), (int(x + rng.uniform(0.3, 0.9) * w), yy_),
                             bgr(rng.uniform(0, 255, 3)), max(1, int(2 * unit)))
        noise = rng.normal(0, 6, (H // 4 + 1, W // 4 + 1, 3)).astype(np.float32)
        canvas = np.clip(canvas + exact.resize_linear(noise, (W, H)), 0, 255).astype(np.uint8)
        self.defocus = float(rng.uniform(0.5, 2.5) * unit)
        self.canvas = cv2.GaussianBlur(canvas, (0, 0), self.defocus)
        # camera pan (pixels of canvas) and a few things moving across the room
        self.ox = (W - width) / 2 + move * width * 0.8 * smooth_noise(rng, frames, fps * 1.0)
        self.oy = (H - height) / 2 + move * height * 0.5 * smooth_noise(rng, frames, fps * 1.0)
        self.ox = np.clip(self.ox, 0, W - width - 1)
        self.oy = np.clip(self.oy, 0, H - height - 1)
        self.movers = []
        for _ in range(rng.integers(0, 3)):
            self.movers.append(dict(
                y=rng.uniform(0.1, 0.9) * height, x0=rng.uniform(-0.3, 1.3) * width,
                vx=rng.uniform(-3, 3) * unit * 30 / fps, size=rng.uniform(15, 50) * unit,
                color=bgr(rng.uniform(0, 255, 3)), rect=bool(rng.random() < 0.5)))

    def frame(self, t: int) -> np.ndarray:
        ox, oy = int(round(self.ox[t])), int(round(self.oy[t]))
        img = self.canvas[oy: oy + self.h, ox: ox + self.w].copy()
        for m in self.movers:
            x = m["x0"] + m["vx"] * t
            if m["rect"]:
                cv2.rectangle(img, (int(x), int(m["y"])), (int(x + m["size"]), int(m["y"] + 2 * m["size"])), m["color"], -1)
            else:
                cv2.circle(img, (int(x), int(m["y"])), int(m["size"]), m["color"], -1, AA)
        return img


def _composite(img, layer, mask_u8, x0, y0):
    """Blend `layer` into img[y0:, x0:] through a soft uint8 mask."""
    h, w = mask_u8.shape
    roi = img[y0: y0 + h, x0: x0 + w]
    m = (mask_u8.astype(np.float32) / 255.0)[..., None]
    roi[:] = (roi * (1 - m) + layer * m).astype(np.uint8)


def _padded_box(pts, pad, w, h):
    x0, y0 = np.floor(pts.min(0) - pad).astype(int)
    x1, y1 = np.ceil(pts.max(0) + pad).astype(int)
    return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)


class PersonRenderer:
    """Draws one person for one frame onto an image; keeps a mask of the person's pixels."""
    def __init__(self, app: Appearance, idn_shape: np.ndarray):
        self.app = app
        self.shape = idn_shape

    # -- helpers in head coordinates -------------------------------------------------
    def _forehead(self, proj: Projector, yaw: float, lm: np.ndarray) -> np.ndarray:
        """The face outline above the jaw ends: temples and hairline, slid to the silhouette."""
        sec = FOREHEAD_SECTIONS[FOREHEAD_SECTIONS[:, 0] > self.app.hairline + 0.05]
        right = np.stack([sec[:, 1], sec[:, 0], sec[:, 2]], axis=1)
        left = right * np.array([-1, 1, 1])
        pts = []
        for side in (right, left):
            x, z = silhouette_sections(side[:, 0], side[:, 2], sec[:, 3], yaw)
            pts.append(np.stack([x, side[:, 1], z], axis=1))
        top = np.array([[0.0, self.app.hairline, 0.0]])
        top[0, 2] = -0.92 + 0.9 * np.sqrt(max(0.0, 1 - ((self.app.hairline + 0.42) / 1.25) ** 2))
        ring = np.concatenate([pts[0], top, pts[1][::-1]])
        ring2d = proj(ring)
        knots = np.concatenate([lm[16:17], ring2d, lm[0:1]])
        n = len(knots)
        return exact.matmul(exact.spline_matrix(n, C.DENSITY), knots)

    # -- the drawing -----------------------------------------------------------------
    def draw(self, img: np.ndarray, pose: Pose, body: Pose, lm: np.ndarray, pts3: np.ndarray,
             gaze: tuple[float, float], rng: np.random.Generator) -> tuple[np.ndarray, tuple]:
        """Draw the person, back to front; returns the person mask (uint8) and the head box (x0, y0, x1, y1)."""
        H, W = img.shape[:2]
        proj = Projector(pose)
        s = pose.scale
        pmask = np.zeros((H, W), np.uint8)
        self._body(img, proj, Projector(body), pmask, s)
        cran = self._head(img, proj, pmask, s)
        self._face(img, proj, pose, lm, gaze, rng, pmask)
        self._hair_in_front(img, proj, pmask)
        if self.app.glasses != "none":
            self._glasses(img, proj, pts3, s)
        # lighting on the head (within the person's bounding box)
        box = _padded_box(np.concatenate([lm, cran]), 0.3 * s, W, H)
        self._light(img, pmask, box, proj, lm, s)
        return pmask, box

    def _body(self, img, proj: Projector, bproj: Projector, pmask, s: float) -> None:
        """Shoulders and shirt (body frame), long hair falling behind the shoulders, the neck."""
        app, skin = self.app, self.app.skin
        torso = bproj(np.array([[-0.62, 2.3, -0.8], [-1.5, 2.75, -0.9], [-2.5, 3.2, -0.9], [-3.0, 4.5, -0.9],
                                [-3.0, 8.0, -0.9], [3.0, 8.0, -0.9], [3.0, 4.5, -0.9], [2.5, 3.2, -0.9],
                                [1.5, 2.75, -0.9], [0.62, 2.3, -0.8]]))
        fill(img, torso, app.shirt * 0.9)
        collar = bproj(np.array([[-0.7, 2.35, -0.7], [0.0, 3.0, -0.5], [0.7, 2.35, -0.7]]))
        fill(img, collar, skin * 0.72)
        polyline(img, torso[1:4], app.shirt * 0.6, 0.04 * s)
        polyline(img, torso[6:9], app.shirt * 0.6, 0.04 * s)
        if app.hair_style == "long":
            back = proj(np.array([[-1.12, -0.6, -1.0], [-1.3, 0.6, -1.1], [-1.35, 1.6, -1.2], [-1.15, 2.5, -1.2],
                                  [1.15, 2.5, -1.2], [1.35, 1.6, -1.2], [1.3, 0.6, -1.1], [1.12, -0.6, -1.0]]))
            fill(img, back, app.hair * 0.8, pmask)
        # neck: top follows the head, bottom the body
        top = proj(np.array([[-0.56, 0.95, -0.78], [0.56, 0.95, -0.78]]))
        bot = bproj(np.array([[0.64, 2.45, -0.8], [-0.64, 2.45, -0.8]]))
        fill(img, np.concatenate([top, bot]), skin * 0.8, pmask)

    def _head(self, img, proj: Projector, pmask, s: float) -> np.ndarray:
        """The cranium (hair, or skin for a bald head) and the ears (behind long hair, in front of short);
        returns the cranium's outline."""
        app, skin = self.app, self.app.skin

        def ears():
            for side in (-1.0, 1.0):
                c = np.array([side * 1.02, 0.24, -0.98])
                u = np.array([0, 0.32, 0])
                v = np.array([side * 0.08, 0, -0.2])
                if proj.facing([side * 0.8, 0, 0.6]) < -0.35:
                    continue
                fill(img, proj(ellipse_pts(c, u, v, 20)), skin * 0.88, pmask)
                inner = proj(ellipse_pts(c + np.array([side * 0.02, 0.02, 0.02]), u * 0.6, v * 0.55, 16))
                polyline(img, inner, skin * 0.6, max(1.0, 0.03 * s), closed=True)

        long_hair = app.hair_style in ("long", "curly")
        if long_hair:
            ears()
        cran_axes = (1.1, 1.18, 1.2) if app.hair_style != "curly" else (1.28, 1.3, 1.32)
        cran = ellipsoid_outline(proj, (0.0, -0.42, -0.92), cran_axes)
        if app.hair_style == "bald":
            fill(img, cran, skin * 0.95, pmask)
            band = ellipsoid_outline(proj, (0.0, 0.05, -1.05), (1.08, 0.45, 1.1))
            fill(img, band, app.hair, pmask)
        else:
            fill(img, cran, app.hair, pmask)
            if app.hair_style == "bun":
                bun = ellipsoid_outline(proj, (0.0, -1.35, -1.5), (0.42, 0.38, 0.42))
                fill(img, bun, app.hair * 0.9, pmask)
        if not long_hair:
            ears()
        return cran

    def _face(self, img, proj: Projector, pose: Pose, lm: np.ndarray, gaze: tuple[float, float],
              rng: np.random.Generator, pmask) -> None:
        """Face skin (jaw silhouette, temples, hairline), cheeks, facial hair, nose, eyes, brows, mouth."""
        app, skin, s = self.app, self.app.skin, pose.scale
        jaw = C.curve(lm, "jaw")
        fore = self._forehead(proj, pose.yaw, lm)
        fill(img, np.concatenate([jaw, fore[1:-1]]), skin, pmask)
        if app.blush > 0:
            for i in (2, 14):
                cc = 0.55 * lm[i] + 0.45 * lm[30]
                r = 0.22 * s
                layer = img.copy()
                cv2.circle(layer, tuple(int(v) for v in cc), int(r), bgr(skin * 0.8 + np.array([0, 0, 40])), -1, AA)
                exact.blend(layer, app.blush, img, 1 - app.blush)
        if app.beard != "none":
            self._beard(img, lm, s, rng)
        self._nose(img, lm, s, proj.facing([1, 0, 0]))  # > 0: the image-right side faces the camera
        for name, idx in (("r", np.arange(36, 42)), ("l", np.arange(42, 48))):
            self._eye(img, lm, idx, name, s, gaze, pose)
        for name in ("brow_r", "brow_l"):
            self._brow(img, C.curve(lm, name), s, inner_last=(name == "brow_r"))
        self._mouth(img, lm, s)

    def _hair_in_front(self, img, proj: Projector, pmask) -> None:
        """Hair over the forehead (fringe) or down the sides (long, curly)."""
        app = self.app
        if app.hair_style == "fringe":
            fr = proj(np.array([[-0.98, -0.55, -0.45], [-0.75, -0.5 - 0.05, -0.1], [-0.4, -0.47, 0.08],
                                [0.0, -0.5, 0.12], [0.4, -0.47, 0.08], [0.75, -0.55, -0.1], [0.98, -0.55, -0.45],
                                [0.95, -1.25, -0.6], [0.0, -1.45, -0.3], [-0.95, -1.25, -0.6]]))
            fill(img, fr, app.hair * 1.05, pmask)
        if app.hair_style in ("long", "curly"):
            for side in (-1.0, 1.0):
                if proj.facing([side, 0, 0.3]) < -0.2:
                    continue
                strand = proj(np.array([[side * 0.92, -0.9, -0.5], [side * 1.02, -0.2, -0.55], [side * 1.1, 0.7, -0.72],
                                        [side * 1.18, 1.8, -0.85], [side * 1.45, 1.9, -0.9], [side * 1.35, 0.4, -0.9],
                                        [side * 1.2, -0.8, -0.8]]))
                fill(img, strand, app.hair * 0.95, pmask)

    def _beard(self, img, lm, s, rng):
        app = self.app
        jaw = C.curve(lm, "jaw")
        if app.beard == "moustache":
            region = np.concatenate([lm[[31, 32, 33, 34, 35]] + [0, 0.02 * s], lm[[54, 53, 52, 51, 50, 49, 48]] + [0, -0.01 * s]])
            pts = region
            alpha = 0.7
        else:
            under_nose = lm[[35, 34, 33, 32, 31]] + np.array([0, 0.03 * s])
            cheek_r = 0.5 * lm[3] + 0.5 * lm[31]
            cheek_l = 0.5 * lm[13] + 0.5 * lm[35]
            pts = np.concatenate([jaw[8:-8], [cheek_l], under_nose, [cheek_r]])
            alpha = 0.3 if app.beard == "stubble" else 0.85
        x0, y0, x1, y1 = _padded_box(pts, 2, img.shape[1], img.shape[0])
        if x1 <= x0 or y1 <= y0:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        fill(mask, pts - [x0, y0], 255)
        mask = cv2.GaussianBlur(mask, (0, 0), max(0.6, 0.02 * s))
        tex = rng.normal(0, 18, (y1 - y0, x1 - x0, 1)).astype(np.float32)
        layer = np.clip(app.hair * 0.9 + tex, 0, 255)
        _composite(img, layer, (mask * alpha).astype(np.uint8), x0, y0)

    def _nose(self, img, lm, s, right_away):
        skin = self.app.skin
        # the side of the nose away from the camera: a soft line from the bridge to the wing
        side = 35 if right_away < 0 else 31
        line = np.stack([lm[28], 0.5 * (lm[29] + lm[side]), lm[side]])
        layer = img.copy()
        polyline(layer, line, skin * 0.7, max(1.0, 0.03 * s))
        exact.blend(layer, 0.35, img, 0.65)
        # the tip catches the light
        tip = tuple(C.to_cv(lm[30] + np.array([0, 0.02 * s]), SHIFT))
        layer = img.copy()
        cv2.circle(layer, tip, int(0.09 * s * 16), bgr(np.minimum(skin * 1.12, 255)), -1, AA, SHIFT)
        exact.blend(layer, 0.4, img, 0.6)
        # wings (a soft crease around each) and nostrils
        layer = img.copy()
        for wing, nostril in ((31, 32), (35, 34)):
            c = 0.55 * lm[wing] + 0.45 * lm[nostril] + np.array([0, -0.03 * s])
            ang = 200 if wing == 31 else -20
            cv2.ellipse(layer, tuple(C.to_cv(c, SHIFT)), (int(0.08 * s * 16), int(0.07 * s * 16)), 0,
                        ang - 110, ang + 110, bgr(skin * 0.7), max(1, int(0.025 * s)), AA, SHIFT)
            n = lm[nostril] + 0.35 * (lm[33] - lm[nostril]) + np.array([0, -0.012 * s])
            cv2.ellipse(layer, tuple(C.to_cv(n, SHIFT)), (max(1, int(0.045 * s * 16)), max(1, int(0.022 * s * 16))),
                        0, 0, 360, bgr(skin * 0.35), -1, AA, SHIFT)
        exact.blend(layer, 0.7, img, 0.3)

    def _eye(self, img, lm, idx, name, s, gaze, pose):
        app = self.app
        eye = C.curve(lm, "eye_" + name)
        H, W = img.shape[:2]
        x0, y0, x1, y1 = _padded_box(eye, 0.12 * s, W, H)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        ew = exact.norm(lm[idx[3]] - lm[idx[0]])
        axis = (lm[idx[3]] - lm[idx[0]]) / (ew + 1e-9)
        up = np.array([axis[1], -axis[0]])
        if up[1] > 0:
            up = -up
        upper = C.curve(lm, "upper_lid_" + name)
        lower = C.curve(lm, "lower_lid_" + name)
        # lid crease and a soft shadow in the socket
        polyline(img, upper + up * 0.07 * s, app.skin * 0.72, max(1.0, 0.025 * s))
        # eyeball through the lid opening
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        fill(mask, eye - [x0, y0], 255)
        layer = np.empty((y1 - y0, x1 - x0, 3), np.float32)
        layer[:] = app.sclera
        centre = 0.5 * (lm[idx[0]] + lm[idx[3]]) + gaze[0] * 0.28 * ew * axis - gaze[1] * 0.1 * ew * up
        # the iris is foreshortened like the eye; its height is not
        rx = max(0.24 * ew, 0.5)
        ry = 0.24 * ew / max(0.6, np.cos(np.deg2rad(pose.yaw)))
        ang = float(np.degrees(np.arctan2(axis[1], axis[0])))
        cc = C.to_cv(centre - [x0, y0], SHIFT)
        cv2.ellipse(layer, tuple(cc), (int(rx * 16), int(ry * 16)), ang, 0, 360, bgr(app.iris), -1, AA, SHIFT)
        cv2.ellipse(layer, tuple(cc), (int(rx * 16), int(ry * 16)), ang, 0, 360, bgr(app.iris * 0.5),
                    max(1, int(0.15 * ry)), AA, SHIFT)
        cv2.ellipse(layer, tuple(cc), (int(rx * 7), int(ry * 7)), ang, 0, 360, (12, 10, 10), -1, AA, SHIFT)
        if ry > 2.5:
            glint = C.to_cv(centre - [x0, y0] + np.array([0.3 * rx, -0.3 * ry]), SHIFT)
            cv2.circle(layer, tuple(glint), int(0.18 * ry * 16), (245, 245, 245), -1, AA, SHIFT)
        # the upper lid shades the top of the eyeball
        shade = np.zeros_like(mask)
        polyline(shade, upper - [x0, y0], 255, max(1.0, 0.05 * s))
        shade = cv2.GaussianBlur(shade, (0, 0), max(0.5, 0.03 * s)).astype(np.float32)[..., None] / 255.0
        layer *= 1 - 0.45 * shade
        _composite(img, layer, mask, x0, y0)
        # lashes and lid margins
        polyline(img, upper, app.brow * 0.5, max(1.0, 0.04 * s))
        polyline(img, lower, app.skin * 0.6, max(1.0, 0.02 * s))

    def _brow(self, img, curve, s, inner_last):
        app = self.app
        n = len(curve)
        # thicker towards the inner end; the landmarks run along the brow's upper edge
        t = np.linspace(0, 1, n)
        prof = app.brow_thick * s * (0.55 + 0.45 * (t if inner_last else 1 - t))
        tang = np.gradient(curve, axis=0)
        tang /= np.linalg.norm(tang, axis=1, keepdims=True) + 1e-9
        normal = np.stack([-tang[:, 1], tang[:, 0]], axis=1)
        normal *= np.where(normal[:, 1:2] < 0, -1, 1)                 # pointing down the face
        lower = curve + normal * prof[:, None]
        poly = np.concatenate([curve + normal * 0.01 * s, lower[::-1]])
        H, W = img.shape[:2]
        x0, y0, x1, y1 = _padded_box(poly, 3, W, H)
        if x1 <= x0 or y1 <= y0:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        fill(mask, poly - [x0, y0], 255)
        mask = cv2.GaussianBlur(mask, (0, 0), max(0.5, 0.015 * s))
        _composite(img, np.broadcast_to(app.brow.astype(np.float32), (y1 - y0, x1 - x0, 3)), (mask * 0.9).astype(np.uint8), x0, y0)

    def _mouth(self, img, lm, s):
        app = self.app
        outer = C.curve(lm, "lips")
        inner = C.curve(lm, "inner_mouth")
        fill(img, outer, app.lip)
        # the upper lip is in shadow, the lower lip catches the light
        upper = np.concatenate([C.curve(lm, "upper_inner")[::-1], C.curve(lm, "upper_outer")])
        fill(img, upper, app.lip * 0.82)
        hl = 0.5 * (lm[57] + lm[66])
        cv2.ellipse(img, tuple(C.to_cv(hl, SHIFT)), (int(0.12 * s * 16), max(1, int(0.03 * s * 16))), 0, 0, 360,
                    bgr(np.minimum(app.lip * 1.18, 255)), -1, AA, SHIFT)
        H, W = img.shape[:2]
        x0, y0, x1, y1 = _padded_box(inner, 2, W, H)
        gap = exact.norm(lm[66] - lm[62])
        if gap < 0.6 or x1 - x0 < 2 or y1 - y0 < 2:
            polyline(img, C.curve(lm, "upper_inner"), app.lip * 0.45, max(1.0, 0.02 * s))
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        fill(mask, inner - [x0, y0], 255)
        layer = np.empty((y1 - y0, x1 - x0, 3), np.float32)
        layer[:] = np.array([28, 22, 48.0]) * (0.6 + 0.4 * app.skin.mean() / 200)
        down = lm[57] - lm[51]
        down = down / (exact.norm(down) + 1e-9)
        # tongue at the bottom of a wide mouth
        if gap > 0.12 * s:
            tc = 0.5 * (lm[66] + lm[62]) + down * 0.35 * gap - [x0, y0]
            cv2.ellipse(layer, tuple(C.to_cv(tc, SHIFT)), (int(0.22 * s * 16), int(0.3 * gap * 16)), 0, 0, 360,
                        (70, 75, 150), -1, AA, SHIFT)
        # upper teeth under the upper lip, lower teeth above the lower lip
        ui = C.curve(lm, "upper_inner") - [x0, y0]
        th = min(0.1 * s, 0.55 * gap)
        teeth = np.concatenate([ui, (ui + down * th)[::-1]])
        fill(layer, teeth, app.teeth)
        for k in range(1, 6):                       # gaps between teeth
            p = ui[int(len(ui) * k / 6)]
            cv2.line(layer, tuple(C.to_cv(p, SHIFT)), tuple(C.to_cv(p + down * th, SHIFT)), bgr(app.teeth * 0.7), 1, AA, SHIFT)
        if gap > 0.25 * s:
            li = C.curve(lm, "lower_inner") - [x0, y0]
            lt = np.concatenate([li, (li - down * 0.05 * s)[::-1]])
            fill(layer, lt, app.teeth * 0.85)
        # darker deep inside
        edge = cv2.GaussianBlur(mask, (0, 0), max(0.7, 0.25 * gap)).astype(np.float32)[..., None] / 255.0
        layer *= 0.55 + 0.45 * (1 - edge) + 0.2
        _composite(img, np.clip(layer, 0, 255), mask, x0, y0)
        polyline(img, C.curve(lm, "upper_inner"), app.lip * 0.5, 1.0)

    def _glasses(self, img, proj, pts3, s):
        app = self.app
        col = app.glasses_color
        thick = max(1.0, 0.03 * s)
        rims = []
        for eye in (np.arange(36, 42), np.arange(42, 48)):
            c = pts3[eye].mean(0) + np.array([0, 0.02, 0.22])
            c[2] = max(c[2], pts3[27, 2] + 0.12)
            rim = proj(ellipse_pts(c, [0.26, 0, 0], [0, 0.17, 0], 28))
            rims.append((c, rim))
        for c, rim in rims:
            if app.glasses == "sun":
                layer = img.copy()
                fill(layer, rim, (20, 25, 25))
                exact.blend(layer, 0.85, img, 0.15)
            else:
                layer = img.copy()
                fill(layer, rim, (230, 230, 220))
                exact.blend(layer, 0.12, img, 0.88)
            polyline(img, rim, col, thick, closed=True)
        bridge = proj(np.array([rims[0][0] + [0.24, -0.03, 0.0], [0, -0.04, rims[0][0][2] + 0.03], rims[1][0] + [-0.24, -0.03, 0.0]]))
        polyline(img, bridge, col, thick)
        for c, side in ((rims[0][0], -1), (rims[1][0], 1)):
            if proj.facing([side, 0, 0.2]) > -0.3:
                arm = proj(np.array([c + [side * 0.26, -0.02, 0], [side * 1.0, 0.05, -0.75]]))
                polyline(img, arm, col, thick)

    def _light(self, img, pmask, box, proj, lm, s):
        """Lambert + specular on an ellipsoid following the head, with blurred occlusion shadows."""
        app = self.app
        x0, y0, x1, y1 = box
        if x1 - x0 < 4 or y1 - y0 < 4:
            return
        q = 3                                        # shading is smooth: compute it at 1/q resolution
        h, w = (y1 - y0 + q - 1) // q, (x1 - x0 + q - 1) // q
        centre = np.array([0.0, 0.35, -0.55])
        axes = np.array([1.02, 1.4, 0.95])
        c = proj.to_camera(centre[None])[0]
        f = CAMERA_DIST / (CAMERA_DIST - c[2])
        sc = s * f
        cu, cv_ = proj.pose.tx + sc * c[0], proj.pose.ty + sc * c[1]
        M = exact.matmul(exact.matmul(proj.R, np.diag(1 / axes ** 2)), proj.R.T).astype(np.float32)
        X = (((x0 + q * np.arange(w) + q / 2) - cu) / sc).astype(np.float32)[None, :]
        Y = (((y0 + q * np.arange(h) + q / 2) - cv_) / sc).astype(np.float32)[:, None]
        A = M[2, 2]
        B = M[0, 2] * X + M[1, 2] * Y
        Cq = M[0, 0] * X * X + 2 * M[0, 1] * X * Y + M[1, 1] * Y * Y - 1
        disc = np.maximum(B * B - A * Cq, 0)
        t = (-B + np.sqrt(disc)) / A
        n = np.stack([M[0, 0] * X + M[0, 1] * Y + M[0, 2] * t,
                      M[1, 0] * X + M[1, 1] * Y + M[1, 2] * t,
                      M[2, 0] * X + M[2, 1] * Y + M[2, 2] * t], axis=-1)
        n /= np.linalg.norm(n, axis=-1, keepdims=True) + 1e-9
        L = (app.light_dir / exact.norm(app.light_dir)).astype(np.float32)
        ndl = exact.dot3(n, L)
        diff = np.maximum(ndl, 0)
        hv = L + np.array([0, 0, 1.0])
        hv = (hv / exact.norm(hv)).astype(np.float32)
        spec = np.maximum(exact.dot3(n, hv), 0) ** 24 * app.specular
        shade = (app.ambient + app.diffuse * diff).astype(np.float32)
        # occlusion shadows, drawn at half resolution
        ao = np.zeros((h, w), np.float32)
        off = np.array([x0, y0], dtype=np.float64)
        half = lambda p: (np.asarray(p) - off) / q
        for eye in (np.arange(36, 42), np.arange(42, 48)):
            ce = half(0.6 * lm[eye].mean(0) + 0.4 * lm[[19 if eye[0] == 36 else 24]].mean(0))
            r = exact.norm(lm[eye[3]] - lm[eye[0]]) * 0.75 / 2
            cv2.ellipse(ao, (int(ce[0]), int(ce[1])), (max(1, int(r)), max(1, int(r * 0.55))), 0, 0, 360, 0.22, -1)
        side = 35 if proj.facing([1, 0, 0]) < 0 else 31
        nose_side = half(np.stack([lm[27], lm[30], lm[side], 0.7 * lm[side] + 0.3 * lm[39 if side == 31 else 42]]))
        cv2.fillPoly(ao, [np.round(nose_side).astype(np.int32)], 0.2)
        lip = half(lm[57] + (lm[57] - lm[51]) * 0.25)
        cv2.ellipse(ao, (int(lip[0]), int(lip[1])), (max(1, int(0.18 * s / q)), max(1, int(0.08 * s / q))), 0, 0, 360, 0.15, -1)
        ao = exact.gaussian_blur(ao, max(0.6, 0.1 * s / q))
        shade *= 1 - ao
        full = exact.resize_linear(shade, (x1 - x0, y1 - y0))
        spec_full = exact.resize_linear(spec * 90, (x1 - x0, y1 - y0))
        m = pmask[y0:y1, x0:x1].astype(np.float32) * (1 / 255.0)
        # person pixels: roi * shade + specular; elsewhere unchanged
        gain = cv2.merge([1 + (full - 1) * m] * 3)
        add = cv2.merge([spec_full * m] * 3)
        roi = img[y0:y1, x0:x1].astype(np.float32)
        img[y0:y1, x0:x1] = np.clip(roi * gain + add, 0, 255).astype(np.uint8)
