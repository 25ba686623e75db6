"""Face localisation for `facemask predict` and the landmark tracker, with nothing downloaded at run time.

Three detectors, one interface (`candidates(frame)` -> boxes, `__call__(frame)` -> the largest face as
(cx, cy, side)), picked by name with `make_detector` (``facemask predict --detector``):

* ``hog`` — dlib's frontal face detector (HOG features + linear SVMs, 5 views; from the `dlib-bin`
  wheel). The frame is resized so that the smallest face searched (`min_face` x the shorter side) fills
  the detector's 80-pixel window: one pyramid pass, no upsampling of the whole frame.
* ``cnn`` — dlib's CNN face detector (MMOD, `mmod_human_face_detector.dat` from the
  `face_recognition_models` wheel): finds darker, blurrier and more turned faces, ~50x slower on a CPU.
* ``haar`` — OpenCV's Haar cascades that ship inside the opencv-python-headless 4.x wheel
  (`cv2.data.haarcascades`; the 5.x wheels dropped them, hence the pin): the frontal cascade
  first, and only where it finds nothing the profile cascade on the frame and on its mirror image
  (the bundled profile cascade knows one side only). Of the candidates the largest face is kept.

Which one is the default was measured (`bench/bench_detect.py`, README "Speed"): found-face rate and
frames/s on the synthetic test videos, category by category, and on a real face.

Per-frame boxes jitter, sometimes miss and sometimes fire on the background, so `BoxSmoother`
filters them over time with a bounded delay (the video is streamed, never held): a detection far
from its neighbours' median is dropped, gaps of at most `max_gap` frames between two detections
are bridged by linear interpolation, then centre and size are each the median over the ±`radius`
frames of the same face segment. Longer gaps stay empty: those frames are reported as frames
without a face, not guessed.

A Haar box is not the landmark box that the training crops were made from (300VW-Mask: the
bounding box of the 68 landmarks, squared to 1.3 x mean(w, h) about its centre). `HAAR_TO_LANDMARKS`
maps one to the other; it was measured with `calibrate_to_landmarks` on synthetic frames whose landmarks
are known (tests/test_calibration.py measures it again), and `crop_box()` then squares it like the training crops.
"""
from __future__ import annotations

import importlib.util
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from facemask.data.masks.draw import square_crop_box

#: Haar face box (centre cx, cy; side s) -> landmark box: centre (cx + dx*s, cy + dy*s),
#: mean side `scale*s`. Measured with `calibrate_to_landmarks` (tests/test_calibration.py) on synthetic video:
#: 24 videos x 60 frames at 320x240 (seed 1): dx 0.012, dy 0.209, scale 0.844 (quartiles 0.80-0.90),
#: from the 988 of 1440 frames with a detection; 6 videos (seed 0): -0.035, 0.221, 0.854. The
#: landmark box is a little smaller than the Haar box and lower (the Haar box holds the forehead,
#: the landmarks end at the brows and reach the chin); dx is 0 by symmetry.
HAAR_TO_LANDMARKS = {"dx": 0.0, "dy": 0.21, "scale": 0.85}


class DetectorError(RuntimeError):
    """A detector's model cannot be loaded (a cv2 build without `cv2.data`, dlib or its models missing)."""


def dlib_model(name: str) -> Path:
    """The path of a model file of the `face_recognition_models` wheel (``shape_predictor_68_face_landmarks.dat``,
    ``mmod_human_face_detector.dat``, ...), found without importing the package (its ``__init__`` needs
    ``pkg_resources``, which recent setuptools no longer ship).

    Raises:
        DetectorError: the package or the file is missing.
    """

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorError("the face_recognition_models package is not installed "
                            "(pip install -e .; see pyproject.toml)")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise DetectorError(f"{path}: model file missing from face_recognition_models")
    return path


def import_dlib():
    """The `dlib` module, or a DetectorError saying how to install it."""
    try:
        import dlib
    except ImportError:
        raise DetectorError("dlib is not installed (pip install -e .: the dlib-bin wheel; "
                            "see pyproject.toml)") from None
    return dlib


@lru_cache(maxsize=1)
def hog_svm():
    """dlib's frontal face HOG detector (`dlib.get_frontal_face_detector`), built once per process (~1 s)."""
    return import_dlib().get_frontal_face_detector()


def _cascade(name: str) -> cv2.CascadeClassifier:
    data = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if data is None or not hasattr(cv2, "CascadeClassifier"):
        raise DetectorError(
            f"this OpenCV ({cv2.__version__}) has no bundled Haar cascades; "
            "install opencv-python-headless 4.x (see pyproject.toml)"
        )
    path = Path(data) / name
    clf = cv2.CascadeClassifier(str(path))
    if clf.empty():
        raise DetectorError(f"cannot load the Haar cascade {path}")
    return clf


def to_gray(frame: np.ndarray) -> np.ndarray:
    """A BGR frame in grey (a grey one as it is)."""
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def _resized(img: np.ndarray, f: float) -> np.ndarray:
    if f == 1.0:
        return img
    return cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)


class FaceDetector:
    """What every detector offers: `candidates` (all boxes) and `__call__` (the largest face).

    Attributes:
        name: the ``--detector`` name.
        to_landmarks: this detector's box (cx, cy, side) -> the 68-landmark box, as `HAAR_TO_LANDMARKS`
            (measured on synthetic frames with `calibrate_to_landmarks`); the learned methods' crops come from it.
        to_rect: this detector's box -> the box dlib's 68-point shape predictor expects (the HOG
            detector's, which it was trained with; measured on a real face with
            `facemask.inference.tracker.calibrate_rect`); the landmark tracker starts from it.
    """

    name = ""
    to_landmarks: dict = {"dx": 0.0, "dy": 0.0, "scale": 1.0}
    to_rect: dict = {"dx": 0.0, "dy": 0.0, "scale": 1.0}

    min_face = 0.15

    def candidates(self, frame: np.ndarray, min_side: float | None = None) -> np.ndarray:
        """All face boxes (N, 4) as x, y, w, h in frame pixels.

        Args:
            min_side: smallest face searched, in pixels (default: `min_face` x the frame's shorter side).
        """
        raise NotImplementedError

    def _min_side(self, shape: tuple[int, ...], min_side: float | None) -> float:
        return max(1.0, min_side if min_side is not None else self.min_face * min(shape[:2]))

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        """The largest face as (cx, cy, side) in frame pixels, or None."""
        boxes = self.candidates(frame)
        if len(boxes) == 0:
            return None
        x, y, w, h = boxes[np.argmax(boxes[:, 2] * boxes[:, 3])]
        return np.array([x + w / 2, y + h / 2, (w + h) / 2])


class HaarFaceDetector(FaceDetector):
    """Largest face in a BGR frame, from OpenCV's bundled Haar cascades.

    Args:
        max_side: frames are shrunk so that their longer side is at most this before detection
            (speed; boxes are returned in the frame's own pixels).
        min_face: smallest face searched, as a share of the (shrunk) frame's shorter side.
        scale_factor, min_neighbors: `CascadeClassifier.detectMultiScale` settings.
        profile: also try the profile cascade (both sides) on frames where no frontal face is found.
    """

    name = "haar"
    to_landmarks = HAAR_TO_LANDMARKS
    #: measured with `facemask.inference.tracker.calibrate_rect` (tests/test_calibration.py) on the astronaut
    #: photograph, 26 frames: dx 0.023 (0 by symmetry), dy 0.107, scale 0.939
    to_rect = {"dx": 0.0, "dy": 0.107, "scale": 0.94}

    def __init__(self, max_side: int = 480, min_face: float = 0.1, scale_factor: float = 1.1,
                 min_neighbors: int = 4, profile: bool = True):
        self.max_side = max_side
        self.min_face = min_face
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.frontal = _cascade("haarcascade_frontalface_alt2.xml")
        self.profile = _cascade("haarcascade_profileface.xml") if profile else None

    def _detect(self, clf: cv2.CascadeClassifier, gray: np.ndarray, m: int) -> np.ndarray:
        boxes = clf.detectMultiScale(gray, scaleFactor=self.scale_factor,
                                     minNeighbors=self.min_neighbors, minSize=(m, m))
        return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)

    def candidates(self, frame: np.ndarray, min_side: float | None = None) -> np.ndarray:
        """All face boxes (N, 4) as x, y, w, h in frame pixels (frontal, else profile)."""
        gray = to_gray(frame)
        f = min(1.0, self.max_side / max(gray.shape))
        gray = cv2.equalizeHist(_resized(gray, f))
        m = max(int(self._min_side(gray.shape, None if min_side is None else min_side * f)), 20)
        boxes = self._detect(self.frontal, gray, m)
        if len(boxes) == 0 and self.profile is not None:
            flipped = self._detect(self.profile, gray[:, ::-1].copy(), m)
            flipped[:, 0] = gray.shape[1] - flipped[:, 0] - flipped[:, 2]
            boxes = np.concatenate([self._detect(self.profile, gray, m), flipped])
        return boxes / f


class HogFaceDetector(FaceDetector):
    """dlib's frontal face detector (HOG + linear SVM, `dlib.get_frontal_face_detector`).

    Its window is 80 pixels: the frame is resized by ``80 / (min_face x shorter side)`` (shrunk or
    enlarged) so that the smallest face searched just fills it, then searched in one pyramid pass.

    Args:
        min_face: smallest face searched, as a share of the frame's shorter side.
        threshold: SVM score a detection needs (dlib's default 0; lower finds more and more falsely).
    """

    name = "hog"
    WINDOW = 80
    #: measured with `calibrate_to_landmarks` on 6 synthetic videos of 60 frames, seed 0 (tests/test_calibration.py):
    #: dx -0.016 (0 by symmetry), dy 0.162, scale 0.996 (quartiles 0.87-1.04), 315 of 360 frames
    to_landmarks = {"dx": 0.0, "dy": 0.16, "scale": 1.0}
    to_rect = {"dx": 0.0, "dy": 0.0, "scale": 1.0}  # the shape predictor was trained on these very boxes

    def __init__(self, min_face: float = 0.2, threshold: float = 0.0):
        self.min_face, self.threshold = min_face, threshold
        self.svm = hog_svm()

    def candidates(self, frame: np.ndarray, min_side: float | None = None) -> np.ndarray:
        gray = to_gray(frame)
        f = self.WINDOW / self._min_side(gray.shape, min_side)
        rects, _, _ = self.svm.run(_resized(gray, f), 0, self.threshold)
        return np.array([[r.left(), r.top(), r.width(), r.height()] for r in rects], np.float64).reshape(-1, 4) / f


class CnnFaceDetector(FaceDetector):
    """dlib's CNN face detector (max-margin object detection, `mmod_human_face_detector.dat`).

    Args:
        min_face: smallest face searched, as a share of the frame's shorter side; the frame is
            resized so that it becomes `WINDOW` pixels (the smallest face the network finds reliably).
        threshold: detection confidence needed (dlib's default 0).
    """

    name = "cnn"
    #: the smallest face it finds reliably, in pixels (the astronaut, 12 frames with faces of 84-156 px
    #: shrunk to 70-130 / 52-97 / 42-78 px: found in 12 / 10 / 6 of them)
    WINDOW = 64
    #: measured like HAAR_TO_LANDMARKS on 105 frames of 12 synthetic videos (320 x 240, the network at
    #: the frames' own size): dx 0.009 (0 by symmetry), dy 0.218, scale 1.007
    to_landmarks = {"dx": 0.0, "dy": 0.22, "scale": 1.0}
    #: measured with `facemask.inference.tracker.calibrate_rect` on the astronaut, 28 frames: dx 0.076 (0 by
    #: symmetry: that photograph's face is turned a little), dy 0.080, scale 0.875
    to_rect = {"dx": 0.0, "dy": 0.08, "scale": 0.875}

    def __init__(self, min_face: float = 0.2, threshold: float = 0.0):
        self.min_face, self.threshold = min_face, threshold
        self.net = import_dlib().cnn_face_detection_model_v1(str(dlib_model("mmod_human_face_detector.dat")))

    def candidates(self, frame: np.ndarray, min_side: float | None = None) -> np.ndarray:
        rgb = frame[:, :, ::-1] if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        f = self.WINDOW / self._min_side(rgb.shape, min_side)
        dets = [d for d in self.net(np.ascontiguousarray(_resized(rgb, f)), 0) if d.confidence >= self.threshold]
        return np.array([[d.rect.left(), d.rect.top(), d.rect.width(), d.rect.height()] for d in dets],
                        np.float64).reshape(-1, 4) / f


#: ``--detector`` name -> class
DETECTORS: dict[str, type[FaceDetector]] = {"hog": HogFaceDetector, "cnn": CnnFaceDetector, "haar": HaarFaceDetector}


def make_detector(name: str, **kwargs) -> FaceDetector:
    """The detector called `name` (``hog``, ``cnn`` or ``haar``).

    Raises:
        ValueError: an unknown name (the message lists the valid ones).
        DetectorError: its model cannot be loaded.
    """
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; valid: {', '.join(DETECTORS)}")
    return DETECTORS[name](**kwargs)


@dataclass
class _Track:
    index: int
    box: np.ndarray | None  # (cx, cy, side) or None
    kept: bool = False      # a detection that passed the outlier check


class BoxSmoother:
    """Streaming temporal filter of per-frame face boxes, with a bounded delay.

    Three steps, each over a few frames either side:

    1. outliers: a detection is dropped (counted as a miss) when its centre lies more than
       `outlier` x side from the median centre of the other detections within ±(radius + max_gap)
       frames, or its side differs from their median side by more than a factor 1 + `outlier`
       (a false detection in the background; at least two other detections are needed to judge);
    2. gaps: runs of at most `max_gap` frames without a detection between two detections are
       bridged by linear interpolation; longer runs stay empty (no face);
    3. smoothing: centre and side are the median over frames i-radius..i+radius of the same face
       segment (0: no smoothing).

    `push(box)` takes frame i's raw box (cx, cy, side) or None and returns the frames whose box
    is now final, as (index, box or None) in order; `flush()` returns the rest at the end of the
    stream. A frame is final `delay = 2 * (radius + max_gap)` frames later, and at most
    ``3 * (radius + max_gap) + 1`` boxes are held, whatever the video's length.
    """

    def __init__(self, radius: int = 3, max_gap: int = 5, outlier: float = 0.5):
        if radius < 0 or max_gap < 0 or outlier <= 0:
            raise ValueError("radius and max_gap must be >= 0, outlier > 0")
        self.radius, self.max_gap, self.outlier = radius, max_gap, outlier
        self.context = radius + max_gap
        self.delay = 2 * self.context
        self._raw: deque[_Track] = deque()
        self._judged = 0  # next frame to check for an outlier
        self._next = 0    # next frame to finalise
        self._n = 0       # frames pushed

    def push(self, box: np.ndarray | None) -> list[tuple[int, np.ndarray | None]]:
        self._raw.append(_Track(self._n, None if box is None else np.asarray(box, dtype=np.float64)))
        self._n += 1
        while self._judged + self.context < self._n:
            self._judge()
        out = []
        while self._next + self.delay < self._n:
            out.append(self._finalise())
        return out

    def flush(self) -> list[tuple[int, np.ndarray | None]]:
        while self._judged < self._n:
            self._judge()
        out = []
        while self._next < self._n:
            out.append(self._finalise())
        return out

    def _judge(self) -> None:
        j = self._judged
        self._judged += 1
        t = self._raw[j - self._raw[0].index]
        if t.box is None:
            return
        others = [u.box for u in self._raw if u.box is not None and u.index != j and abs(u.index - j) <= self.context]
        if len(others) < 2:
            t.kept = True
            return
        cx, cy, side = np.median(others, axis=0)
        ratio = t.box[2] / side
        t.kept = bool(np.hypot(t.box[0] - cx, t.box[1] - cy) <= self.outlier * side
                      and 1 / (1 + self.outlier) <= ratio <= 1 + self.outlier)

    def _finalise(self) -> tuple[int, np.ndarray | None]:
        i, r, g = self._next, self.radius, self.max_gap
        while self._raw and self._raw[0].index < i - self.context:
            self._raw.popleft()
        first = self._raw[0].index
        vals = np.full((len(self._raw), 3), np.nan)
        for k, t in enumerate(self._raw):
            if t.kept:
                vals[k] = t.box
        have = ~np.isnan(vals[:, 0])
        # bridge short gaps that have a detection on both sides (inside the held window:
        # a gap that reaches the window's edge is longer than max_gap by construction)
        idx = np.flatnonzero(have)
        for a, b in zip(idx[:-1], idx[1:]):
            if 1 < b - a <= g + 1:
                w = (np.arange(a + 1, b) - a) / (b - a)
                vals[a + 1:b] = vals[a] + w[:, None] * (vals[b] - vals[a])
                have[a + 1:b] = True
        c = i - first
        self._next += 1
        if not have[c]:
            return i, None
        lo, hi = c, c  # the face segment around i, at most radius each side
        while lo > 0 and c - lo < r and have[lo - 1]:
            lo -= 1
        while hi + 1 < len(vals) and hi - c < r and have[hi + 1]:
            hi += 1
        return i, np.median(vals[lo:hi + 1], axis=0)


def face_to_landmark_box(face: np.ndarray, calib: dict = HAAR_TO_LANDMARKS) -> np.ndarray:
    """Haar face (cx, cy, side) -> the estimated landmark box (x0, y0, x1, y1)."""
    cx, cy, s = face
    cx, cy, half = cx + calib["dx"] * s, cy + calib["dy"] * s, calib["scale"] * s / 2
    return np.array([cx - half, cy - half, cx + half, cy + half])


def crop_box(face: np.ndarray, frame_hw: tuple[int, int], scale: float = 1.3,
             calib: dict = HAAR_TO_LANDMARKS) -> tuple[int, int, int, int]:
    """The training-style crop (x0, y0, x1, y1) for a Haar face (cx, cy, side) in a frame of `frame_hw`.

    The estimated landmark box is squared exactly as the training crops were
    (`facemask.data.masks.draw.square_crop_box`: side `scale` x its mean side, about its centre, clipped).
    """

    x0, y0, x1, y1 = face_to_landmark_box(face, calib)
    return tuple(int(v) for v in square_crop_box(np.array([[x0, y0], [x1, y1]]), *frame_hw, scale=scale))


def calibrate_to_landmarks(samples, detector: FaceDetector | None = None) -> dict:
    """Measure a detector's `to_landmarks` (for Haar: `HAAR_TO_LANDMARKS`) on frames whose 68 landmarks are known.

    Args:
        samples: iterable of (BGR frame, (68, 2) 0-based landmarks).

    Returns:
        {"dx", "dy", "scale"}: medians over the frames where a face was detected of
        (landmark box centre - Haar centre) / Haar side and landmark box mean side / Haar side,
        plus "frames" and "detected" counts and the spread ("scale_iqr").
    """
    detector = detector or HaarFaceDetector()
    rows, n = [], 0
    for frame, pts in samples:
        n += 1
        face = detector(frame)
        if face is None:
            continue
        (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
        cx, cy, s = face
        rows.append([((x0 + x1) / 2 - cx) / s, ((y0 + y1) / 2 - cy) / s, ((x1 - x0) + (y1 - y0)) / 2 / s])
    if not rows:
        raise ValueError(f"no face detected in any of the {n} calibration frames")
    rows = np.array(rows)
    med = np.median(rows, axis=0)
    q1, q3 = np.percentile(rows[:, 2], [25, 75])
    return {"dx": round(float(med[0]), 3), "dy": round(float(med[1]), 3), "scale": round(float(med[2]), 3),
            "frames": n, "detected": len(rows), "scale_iqr": [round(float(q1), 3), round(float(q3), 3)]}
