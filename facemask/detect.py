"""Face localisation for `facemask predict`, with nothing downloaded at run time.

The detector is OpenCV's Haar cascades that ship inside the opencv-python-headless 4.x wheel
(`cv2.data.haarcascades`; the 5.x wheels dropped them, hence the pin): the frontal cascade
first, and only where it finds nothing the profile cascade on the frame and on its mirror image
(the bundled profile cascade knows one side only). Of the candidates the largest face is kept.

Per-frame boxes jitter, sometimes miss and sometimes fire on the background, so `BoxSmoother`
filters them over time with a bounded delay (the video is streamed, never held): a detection far
from its neighbours' median is dropped, gaps of at most `max_gap` frames between two detections
are bridged by linear interpolation, then centre and size are each the median over the ±`radius`
frames of the same face segment. Longer gaps stay empty: those frames are reported as frames
without a face, not guessed.

A Haar box is not the landmark box that the training crops were made from (300VW-Mask: the
bounding box of the 68 landmarks, squared to 1.3 x mean(w, h) about its centre). `HAAR_TO_LANDMARKS`
maps one to the other; it was measured with `calibrate()` on synthetic frames whose landmarks
are known (`python -m facemask.detect`), and `crop_box()` then squares it like the training crops.
"""
from __future__ import annotations

import argparse
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

#: Haar face box (centre cx, cy; side s) -> landmark box: centre (cx + dx*s, cy + dy*s),
#: mean side `scale*s`. Measured with `calibrate()` (`python -m facemask.detect`) on synthetic video:
#: 24 videos x 60 frames at 320x240 (seed 1): dx 0.012, dy 0.209, scale 0.844 (quartiles 0.80-0.90),
#: from the 988 of 1440 frames with a detection; 6 videos (seed 0): -0.035, 0.221, 0.854. The
#: landmark box is a little smaller than the Haar box and lower (the Haar box holds the forehead,
#: the landmarks end at the brows and reach the chin); dx is 0 by symmetry.
HAAR_TO_LANDMARKS = {"dx": 0.0, "dy": 0.21, "scale": 0.85}


class DetectorError(RuntimeError):
    """The bundled cascades cannot be loaded (a cv2 build without `cv2.data`)."""


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


class HaarFaceDetector:
    """Largest face in a BGR frame, from OpenCV's bundled Haar cascades.

    Args:
        max_side: frames are shrunk so that their longer side is at most this before detection
            (speed; boxes are returned in the frame's own pixels).
        min_face: smallest face searched, as a share of the (shrunk) frame's shorter side.
        scale_factor, min_neighbors: `CascadeClassifier.detectMultiScale` settings.
        profile: also try the profile cascade (both sides) on frames where no frontal face is found.
    """

    def __init__(self, max_side: int = 480, min_face: float = 0.1, scale_factor: float = 1.1,
                 min_neighbors: int = 4, profile: bool = True):
        self.max_side = max_side
        self.min_face = min_face
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.frontal = _cascade("haarcascade_frontalface_alt2.xml")
        self.profile = _cascade("haarcascade_profileface.xml") if profile else None

    def _detect(self, clf: cv2.CascadeClassifier, gray: np.ndarray) -> np.ndarray:
        m = max(int(self.min_face * min(gray.shape)), 20)
        boxes = clf.detectMultiScale(gray, scaleFactor=self.scale_factor,
                                     minNeighbors=self.min_neighbors, minSize=(m, m))
        return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)

    def candidates(self, frame: np.ndarray) -> np.ndarray:
        """All face boxes (N, 4) as x, y, w, h in frame pixels (frontal, else profile)."""
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        f = min(1.0, self.max_side / max(gray.shape))
        if f < 1.0:
            gray = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        boxes = self._detect(self.frontal, gray)
        if len(boxes) == 0 and self.profile is not None:
            flipped = self._detect(self.profile, gray[:, ::-1].copy())
            flipped[:, 0] = gray.shape[1] - flipped[:, 0] - flipped[:, 2]
            boxes = np.concatenate([self._detect(self.profile, gray), flipped])
        return boxes / f

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        """The largest face as (cx, cy, side) in frame pixels, or None."""
        boxes = self.candidates(frame)
        if len(boxes) == 0:
            return None
        x, y, w, h = boxes[np.argmax(boxes[:, 2] * boxes[:, 3])]
        return np.array([x + w / 2, y + h / 2, (w + h) / 2])


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


def landmark_box(face: np.ndarray, calib: dict = HAAR_TO_LANDMARKS) -> np.ndarray:
    """Haar face (cx, cy, side) -> the estimated landmark box (x0, y0, x1, y1)."""
    cx, cy, s = face
    cx, cy, half = cx + calib["dx"] * s, cy + calib["dy"] * s, calib["scale"] * s / 2
    return np.array([cx - half, cy - half, cx + half, cy + half])


def crop_box(face: np.ndarray, frame_hw: tuple[int, int], scale: float = 1.3,
             calib: dict = HAAR_TO_LANDMARKS) -> tuple[int, int, int, int]:
    """The training-style crop (x0, y0, x1, y1) for a Haar face (cx, cy, side) in a frame of `frame_hw`.

    The estimated landmark box is squared exactly as the training crops were
    (`facemask.masks.square_crop_box`: side `scale` x its mean side, about its centre, clipped).
    """
    from facemask.masks import square_crop_box

    x0, y0, x1, y1 = landmark_box(face, calib)
    return tuple(int(v) for v in square_crop_box(np.array([[x0, y0], [x1, y1]]), *frame_hw, scale=scale))


def calibrate(samples, detector: HaarFaceDetector | None = None) -> dict:
    """Measure `HAAR_TO_LANDMARKS` on frames whose 68 landmarks are known.

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


def _synthetic_samples(root: Path):
    """(frame, landmarks) of every frame of a synthetic 300VW-layout folder, streamed."""
    from facemask.landmarks import read_pts

    from facemask.video import iter_frames

    for vid in sorted(root.glob("*/vid.avi")):
        for k, frame in iter_frames(vid):
            if frame is not None:
                yield frame, read_pts(vid.parent / "annot" / f"{k:06d}.pts")


def _main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Measure the Haar box -> landmark box mapping (HAAR_TO_LANDMARKS) "
                                             "on synthetic video whose landmarks are known.")
    ap.add_argument("--videos", type=int, default=24)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    import tempfile

    from facemask import synth

    with tempfile.TemporaryDirectory() as tmp:
        cfg = {"videos": args.videos, "frames": args.frames, "fps": 30, "width": 320, "height": 240,
               "categories": [0.4, 0.3, 0.3]}
        synth.generate(tmp, cfg, args.seed)
        print(calibrate(_synthetic_samples(Path(tmp))))


if __name__ == "__main__":
    _main()
