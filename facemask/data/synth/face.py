"""A parametric 3-D face whose 68 landmarks follow the iBUG layout.

The head frame: x to the image right in a frontal view, y down, z towards the camera;
one unit is half the face width at eye level (about 7 cm). A face is a mean shape,
deformed by an `Identity` (face width, jaw, chin, eye size and spacing, brows, nose,
mouth, lips), then by an `Expression` (jaw opening, mouth width, smile, blinks, brow
raise), then rotated (yaw, pitch, roll) and projected with a mild perspective.

The jaw contour is the face's silhouette, as annotators place it: on the side that
turns away, each jaw point slides along its horizontal cross-section (an ellipse) to
where the line of sight grazes the face; on the near side it stays on the jaw.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from facemask.core.exact import matmul

# Mirror partner of every iBUG-68 point (0-based).
MIRROR = np.array(
    [16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
     26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
     27, 28, 29, 30, 35, 34, 33, 32, 31,
     45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
     54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,
     64, 63, 62, 61, 60, 67, 66, 65]
)

# The image-left half and the centre line of the mean shape: index -> (x, y, z).
_HALF = {
    # jaw: z is the cross-section's centre (see _JAW_DEPTH)
    0: (-1.00, 0.02, -0.90), 1: (-0.99, 0.28, -0.85), 2: (-0.96, 0.55, -0.78),
    3: (-0.90, 0.81, -0.66), 4: (-0.80, 1.05, -0.52), 5: (-0.64, 1.27, -0.34),
    6: (-0.45, 1.45, -0.16), 7: (-0.23, 1.59, -0.02), 8: (0.00, 1.63, 0.12),
    # right brow (image left), outer to inner
    17: (-0.81, -0.18, -0.32), 18: (-0.69, -0.28, -0.16), 19: (-0.52, -0.31, -0.03),
    20: (-0.35, -0.28, 0.04), 21: (-0.19, -0.22, 0.08),
    # nose bridge to tip, then the nostril line
    27: (0.00, -0.02, 0.06), 28: (0.00, 0.15, 0.17), 29: (0.00, 0.32, 0.29), 30: (0.00, 0.50, 0.42),
    31: (-0.20, 0.61, 0.14), 32: (-0.11, 0.65, 0.22), 33: (0.00, 0.68, 0.27),
    # right eye: outer corner, upper lid, inner corner, lower lid
    36: (-0.61, 0.00, -0.24), 37: (-0.51, -0.065, -0.13), 38: (-0.38, -0.065, -0.08),
    39: (-0.27, 0.02, -0.06), 40: (-0.39, 0.045, -0.09), 41: (-0.51, 0.045, -0.14),
    # outer lips
    48: (-0.39, 0.93, 0.08), 49: (-0.25, 0.87, 0.18), 50: (-0.11, 0.845, 0.24), 51: (0.00, 0.87, 0.25),
    57: (0.00, 1.15, 0.21), 58: (-0.115, 1.13, 0.20), 59: (-0.25, 1.065, 0.15),
    # inner lips (a closed mouth: upper and lower inner contours almost touch)
    60: (-0.33, 0.945, 0.07), 61: (-0.105, 0.945, 0.19), 62: (0.00, 0.95, 0.20),
    66: (0.00, 0.958, 0.195), 67: (-0.105, 0.953, 0.185),
}


def _mean_shape() -> np.ndarray:
    pts = np.full((68, 3), np.nan)
    for i, p in _HALF.items():
        pts[i] = p
    for i in range(68):
        if np.isnan(pts[i, 0]):
            x, y, z = pts[MIRROR[i]]
            pts[i] = (-x, y, z)
    assert not np.isnan(pts).any()
    return pts


MEAN_SHAPE = _mean_shape()

#: depth semi-axis of the horizontal cross-section through each jaw point (0..8, mirrored)
_JAW_DEPTH_HALF = np.array([1.00, 0.98, 0.95, 0.85, 0.72, 0.52, 0.32, 0.16, 0.0])
JAW_DEPTH = np.concatenate([_JAW_DEPTH_HALF, _JAW_DEPTH_HALF[-2::-1]])

#: cross-sections above the jaw (temples, forehead) used for the head outline:
#: (y, half width, section centre z, depth semi-axis), top last
FOREHEAD_SECTIONS = np.array([
    [-0.30, 0.99, -0.92, 1.02],
    [-0.62, 0.95, -0.95, 1.00],
    [-0.92, 0.84, -0.95, 0.96],
    [-1.15, 0.62, -0.92, 0.88],
    [-1.28, 0.32, -0.90, 0.82],
])

#: head rotation pivot (roughly the centre of the head, a little low)
PIVOT = np.array([0.0, 0.45, -0.95])

# iBUG groups used below
JAW = np.arange(0, 17)
BROWS = np.arange(17, 27)
NOSE = np.arange(27, 36)
EYE_R = np.arange(36, 42)
EYE_L = np.arange(42, 48)
MOUTH = np.arange(48, 68)
# pairs (upper lid point, lower lid point facing it)
_LIDS = [(37, 41), (38, 40), (43, 47), (44, 46)]
_LOWER_LIP = np.array([55, 56, 57, 58, 59, 65, 66, 67])
_CORNERS = np.array([48, 54, 60, 64])
_UPPER_LIP = np.array([49, 50, 51, 52, 53, 61, 62, 63])


@dataclass
class Identity:
    """Shape of one person: multiplicative (1 = mean) and additive (0 = mean) knobs."""

    face_w: float = 1.0        # width of the lower face
    face_len: float = 1.0      # chin length below the eyes
    jaw_square: float = 0.0    # -1 pointed .. +1 square jaw
    eye_w: float = 1.0         # eye size
    eye_h: float = 1.0         # eye opening (height / width)
    eye_sep: float = 0.0       # eye centres moved outwards
    eye_tilt: float = 0.0      # outer corners up (+) or down
    brow_h: float = 0.0        # brows moved up (+)
    brow_arch: float = 0.0     # brow middle up (+)
    nose_len: float = 1.0
    nose_w: float = 1.0
    nose_depth: float = 1.0
    mouth_w: float = 1.0
    mouth_y: float = 0.0       # mouth moved down (+)
    lip_upper: float = 1.0     # lip thickness
    lip_lower: float = 1.0

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Identity":
        n = rng.normal
        return cls(
            face_w=float(np.clip(n(1.0, 0.06), 0.86, 1.16)),
            face_len=float(np.clip(n(1.0, 0.06), 0.86, 1.16)),
            jaw_square=float(np.clip(n(0.0, 0.5), -1, 1)),
            eye_w=float(np.clip(n(1.0, 0.08), 0.82, 1.2)),
            eye_h=float(np.clip(n(1.0, 0.15), 0.7, 1.4)),
            eye_sep=float(np.clip(n(0.0, 0.035), -0.07, 0.07)),
            eye_tilt=float(np.clip(n(0.0, 0.02), -0.04, 0.04)),
            brow_h=float(np.clip(n(0.0, 0.035), -0.07, 0.08)),
            brow_arch=float(np.clip(n(0.0, 0.025), -0.04, 0.06)),
            nose_len=float(np.clip(n(1.0, 0.08), 0.82, 1.2)),
            nose_w=float(np.clip(n(1.0, 0.12), 0.8, 1.35)),
            nose_depth=float(np.clip(n(1.0, 0.12), 0.75, 1.3)),
            mouth_w=float(np.clip(n(1.0, 0.08), 0.82, 1.2)),
            mouth_y=float(np.clip(n(0.0, 0.03), -0.06, 0.06)),
            lip_upper=float(np.clip(n(1.0, 0.2), 0.55, 1.5)),
            lip_lower=float(np.clip(n(1.0, 0.2), 0.6, 1.5)),
        )

    def as_dict(self) -> dict:
        return {f.name: round(getattr(self, f.name), 4) for f in fields(self)}


@dataclass
class Expression:
    """One frame's facial action, each knob 0 at rest."""

    jaw_open: float = 0.0      # 0 closed .. 1 wide open
    mouth_w: float = 0.0       # -1 rounded ("oo") .. +1 spread ("ee")
    smile: float = 0.0         # 0 .. 1
    teeth: float = 0.0         # 0 .. 1: lips part in a smile, showing the teeth
    blink_r: float = 0.0       # 0 open .. 1 closed (the subject's right eye, 36-41)
    blink_l: float = 0.0
    brow: float = 0.0          # -1 frown .. +1 raised


@dataclass
class Pose:
    """Head pose (degrees) and where the head pivot lands in the image (pixels)."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    tx: float = 0.0
    ty: float = 0.0
    scale: float = 50.0        # pixels per head unit


def identity_shape(idn: Identity) -> np.ndarray:
    """The (68, 3) neutral face of one person."""
    p = MEAN_SHAPE.copy()
    sgn = np.sign(p[:, 0])
    # lower face: width grows towards the chin line, the chin stretches down
    low = np.clip((p[JAW, 1] - 0.2) / 1.4, 0, 1)
    p[JAW, 0] *= 1 + (idn.face_w - 1) * (0.4 + 0.6 * low)
    p[JAW, 1] = np.where(p[JAW, 1] > 0.3, 0.3 + (p[JAW, 1] - 0.3) * idn.face_len, p[JAW, 1])
    # square jaw: push the jaw corners (4-6, 10-12) out and down
    corner = np.exp(-((np.abs(np.arange(17) - 8) - 3.3) ** 2) / 1.2)
    p[JAW, 0] += idn.jaw_square * 0.07 * corner * sgn[JAW]
    p[JAW, 1] += idn.jaw_square * 0.05 * corner
    # chin and mouth follow the face length
    below = p[:, 1] > 0.6
    below[JAW] = False
    p[below, 1] = 0.6 + (p[below, 1] - 0.6) * (0.5 + 0.5 * idn.face_len)
    # eyes: size about each eye's centre, spacing, tilt
    for eye, side in ((EYE_R, -1.0), (EYE_L, 1.0)):
        c = p[eye].mean(0)
        d = p[eye] - c
        d[:, 0] *= idn.eye_w
        d[:, 1] *= idn.eye_w * idn.eye_h
        d[:, 1] -= idn.eye_tilt * d[:, 0] * side / 0.17
        p[eye] = c + d
        p[eye, 0] += side * idn.eye_sep
    # brows
    p[BROWS, 1] -= idn.brow_h
    arch = np.array([0.0, 0.6, 1.0, 0.6, 0.1])
    p[17:22, 1] -= idn.brow_arch * arch
    p[22:27, 1] -= idn.brow_arch * arch[::-1]
    p[BROWS, 0] += np.sign(p[BROWS, 0]) * idn.eye_sep * 0.7
    # nose: length from the bridge, width of the nostrils, protrusion
    top = p[27, 1]
    p[28:36, 1] = top + (p[28:36, 1] - top) * idn.nose_len
    p[31:36, 0] *= idn.nose_w
    p[NOSE, 2] = p[27, 2] + (p[NOSE, 2] - p[27, 2]) * idn.nose_depth
    # mouth: width, height, lip thickness about the lip line
    p[MOUTH, 0] *= idn.mouth_w
    p[MOUTH, 1] += idn.mouth_y + (idn.nose_len - 1) * 0.15
    line = p[62, 1]
    up = np.array([49, 50, 51, 52, 53])
    p[up, 1] = line + (p[up, 1] - line) * idn.lip_upper
    lo = np.array([55, 56, 57, 58, 59])
    p[lo, 1] = line + (p[lo, 1] - line) * idn.lip_lower
    return p


def apply_expression(p: np.ndarray, e: Expression) -> np.ndarray:
    """Deform a neutral (68, 3) face by one frame's expression (returns a copy)."""
    p = p.copy()
    mouth_c = p[[48, 54], 0].mean()
    # mouth width (visemes) and smile: corners out / in, up; lips follow partly
    w = np.zeros(68)
    w[_CORNERS] = 1.0
    w[[49, 53, 59, 55, 61, 63, 65, 67]] = 0.55
    w[[50, 52, 56, 58]] = 0.25
    side = np.sign(p[:, 0] - mouth_c)
    p[:, 0] += w * side * (0.06 * e.mouth_w + 0.09 * e.smile) * np.abs(p[:, 0] - mouth_c) / 0.39
    p[:, 1] -= w * 0.10 * e.smile
    p[:, 2] -= w * 0.05 * e.smile
    p[MOUTH, 2] += 0.05 * max(-e.mouth_w, 0.0)          # rounded lips protrude
    # a smile raises the cheeks: lower lids up a little, lower jaw slightly wider
    for _, lo in _LIDS:
        p[lo, 1] -= 0.018 * e.smile
    # teeth showing: inner lips part
    p[[61, 62, 63], 1] -= 0.03 * e.teeth
    p[[65, 66, 67], 1] += 0.06 * e.teeth
    p[[60, 64], 1] += 0.01 * e.teeth
    # jaw opening: chin, lower jaw and lower lip go down and a little back
    o = e.jaw_open
    if o > 0:
        wj = np.zeros(68)
        wj[JAW] = np.clip((p[JAW, 1] - 0.35) / (p[8, 1] - 0.35), 0, 1) ** 1.2
        wj[_LOWER_LIP] = 0.92
        wj[[55, 59, 65, 67]] = 0.8
        wj[_CORNERS] = 0.42
        drop = 0.55 * o
        p[:, 1] += wj * drop
        p[:, 2] -= wj * 0.18 * o
        p[_CORNERS, 0] -= np.sign(p[_CORNERS, 0] - mouth_c) * 0.05 * o
        p[_UPPER_LIP, 1] -= 0.025 * o
        # lips stretch thinner when wide open
        p[[56, 57, 58], 1] -= 0.03 * o
    # blinks: the upper lid comes down onto the lower one
    for (up, lo), b in zip(_LIDS, (e.blink_r, e.blink_r, e.blink_l, e.blink_l)):
        b = float(np.clip(b, 0, 1))
        p[lo, 1] -= 0.012 * b
        p[up, 1] += b * 0.96 * (p[lo, 1] - p[up, 1])
    # brows: raised (surprise) or lowered and drawn together (frown)
    r = e.brow
    if r > 0:
        lift = np.array([0.07, 0.10, 0.12, 0.11, 0.09])
        p[17:22, 1] -= r * lift
        p[22:27, 1] -= r * lift[::-1]
        for up, _ in _LIDS:
            p[up, 1] -= 0.02 * r * (1 - max(e.blink_r, e.blink_l))
    elif r < 0:
        pull = np.array([0.0, 0.01, 0.025, 0.04, 0.05])
        p[17:22, 1] += -r * pull
        p[22:27, 1] += -r * pull[::-1]
        p[17:22, 0] += -r * pull * 0.6
        p[22:27, 0] -= -r * pull[::-1] * 0.6
    return p


#: superellipse exponent of the horizontal cross-sections: faces are flatter in front than an ellipse
SECTION_EXP = 2.6
_PHI = np.linspace(0.0, np.pi / 2, 65)


def silhouette_sections(x: np.ndarray, zc: np.ndarray, depth: np.ndarray, yaw_deg: float):
    """Slide points on the turned-away side to the silhouette of their cross-sections.

    A point (x, zc) is the widest point of the horizontal superellipse
    |x / a|^e + |(z - zc) / depth|^e = 1 (a = |x|, e = SECTION_EXP). After a yaw, the side
    that turns away shows the section's outermost point in the rotated view; the near side
    keeps the jaw point itself (annotators follow the jaw there, not the back of the head).
    """
    psi = np.deg2rad(yaw_deg)
    a = np.abs(np.asarray(x, dtype=np.float64))
    far = np.sign(x) * np.sign(psi) > 0
    p = 2.0 / SECTION_EXP
    cs, sn = np.cos(_PHI) ** p, np.sin(_PHI) ** p                       # (K,)
    proj = a[:, None] * cs * np.cos(psi) + np.asarray(depth)[:, None] * sn * abs(np.sin(psi))
    k = np.where(far, proj.argmax(1), 0)
    return np.sign(x) * a * cs[k], zc + depth * sn[k]


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Rz(roll) Rx(pitch) Ry(yaw), angles in degrees; yaw > 0 turns the image-right side away."""
    y, p, r = np.deg2rad([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return matmul(matmul(rz, rx), ry)


#: camera distance in head units (~85 cm): a mild perspective
CAMERA_DIST = 12.0


class Projector:
    """Head frame -> image pixels for one pose."""

    def __init__(self, pose: Pose):
        self.pose = pose
        self.R = rotation(pose.yaw, pose.pitch, pose.roll)

    def to_camera(self, pts: np.ndarray) -> np.ndarray:
        return matmul(np.asarray(pts, dtype=np.float64) - PIVOT, self.R.T)

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        """(N, 3) head-frame points -> (N, 2) 0-based pixel coordinates."""
        c = self.to_camera(pts)
        f = CAMERA_DIST / (CAMERA_DIST - c[:, 2])
        s = self.pose.scale
        return np.stack([self.pose.tx + s * f * c[:, 0], self.pose.ty + s * f * c[:, 1]], axis=1)

    def facing(self, normal) -> float:
        """z of a head-frame direction after rotation: > 0 faces the camera."""
        return float(matmul(self.R, np.asarray(normal, dtype=np.float64))[2])


def face_points(idn_shape: np.ndarray, expr: Expression, yaw: float) -> np.ndarray:
    """The (68, 3) head-frame landmarks of one frame, jaw on the silhouette for this yaw."""
    p = apply_expression(idn_shape, expr)
    x, z = silhouette_sections(p[JAW, 0], p[JAW, 2], JAW_DEPTH, yaw)
    p[JAW, 0], p[JAW, 2] = x, z
    return p


def landmarks_2d(idn_shape: np.ndarray, expr: Expression, pose: Pose) -> np.ndarray:
    """The 68 iBUG landmarks of one frame in 0-based pixel coordinates."""
    return Projector(pose)(face_points(idn_shape, expr, pose.yaw))
