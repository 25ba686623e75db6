"""The paper's landmark-tracker baseline (Table 2, row 1): 68 landmarks tracked through a video, then masks.

The paper compares its networks with a face tracker that follows the 68 iBUG landmarks and turns them
into a face mask; it was the best of its baselines (60.09 % mIoU on 300VW). This module rebuilds it
from parts that ship in registry wheels (nothing is downloaded at run time):

* **Shape model**: dlib's 68-point shape predictor (Kazemi & Sullivan 2014, an ensemble of regression
  trees), ``shape_predictor_68_face_landmarks.dat`` from the `face_recognition_models` wheel. It was
  trained on iBUG 300-W, whose licence excludes commercial use.
* **Acquisition**: a face detector (`facemask.inference.detect`: dlib HOG, dlib CNN or OpenCV Haar) on the first
  frame and whenever the track is lost; with ``detect_every = k`` also every k frames, where a detection
  that overlaps the track re-anchors it (stops slow drift).
* **Tracking**: every other frame's fit starts from the previous frame's landmarks: their box, mapped
  to the box the predictor was trained with (`LANDMARKS_TO_RECT`), is the initial shape's placement
  (the tracking-by-fitting of Asthana et al., "Incremental face alignment in the wild", CVPR 2014,
  reduced to what dlib's predictor accepts: a box).
* **Loss-of-track test** on every tracked frame: (1) geometry: the new landmark box may not move by
  more than `max_jump` x its side nor change its side by more than a factor `max_scale`, and must lie
  mostly inside the frame; (2) appearance: dlib's HOG face SVM scores the region the new landmarks
  occupy (`FaceScore`, a failure checker in the manner of Chrysos et al. 2015); below `min_score` the
  track is lost. A lost frame is reported as such (no landmarks), never filled in; the detector then
  tries to pick the face up again, in the same frame.

Masks: `facemask.data.masks.draw.landmarks_to_mask`, the very function that made the ground truth, on the
tracked landmarks; the crop is the authors' rule (`facemask.data.masks.draw.square_crop_box`).
`predict_test_clips` makes the pipeline's ``tracker`` predictions: it runs the tracker over each test
video from its first frame and writes one label PNG per test frame, at that frame's crop, like every
other method in ``data/predictions/<method>/``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from facemask.data.labels import write_label_png
from facemask.data.layout import frame_stem, parse_stem
from facemask.data.masks.draw import landmarks_to_mask
from facemask.data.frames import iter_frames
from facemask.inference.detect import (DetectorError, FaceDetector, HogFaceDetector, dlib_model, hog_svm, import_dlib,
                                       make_detector, to_gray)

log = logging.getLogger(__name__)

#: The 68-landmark box (centre cx, cy; mean side s) -> the box dlib's shape predictor expects (the HOG
#: detector's, which it was trained with): centre (cx + dx*s, cy + dy*s), side scale*s. Measured with
#: `calibrate_rect` (tests/test_calibration.py: the astronaut photograph in 30 frames at 640 x 480,
#: rotated up to 15 degrees, scaled by up to 30 %): dx 0.003, dy -0.068, scale 0.971 (29 frames). The
#: HOG box lies a little higher than the landmarks (it holds the forehead, not the chin); dx is 0 by symmetry.
LANDMARKS_TO_RECT = {"dx": 0.0, "dy": -0.068, "scale": 0.97}

STATUSES = ("detected", "tracked", "lost", "no_face")


def landmark_box(points: np.ndarray) -> np.ndarray:
    """(cx, cy, side) of the points' bounding box, side = mean(w, h) (the crop rule's measure)."""
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, ((x1 - x0) + (y1 - y0)) / 2])


def map_box(box: np.ndarray, calib: dict) -> np.ndarray:
    """(cx, cy, side) -> (cx + dx*side, cy + dy*side, scale*side)."""
    cx, cy, s = box
    return np.array([cx + calib["dx"] * s, cy + calib["dy"] * s, calib["scale"] * s])


def _rect(box: np.ndarray):
    dlib = import_dlib()
    cx, cy, s = box
    x0, y0 = int(round(cx - s / 2)), int(round(cy - s / 2))
    side = max(1, int(round(s)))
    return dlib.rectangle(x0, y0, x0 + side - 1, y0 + side - 1)


def pick_box(boxes: np.ndarray, face: int | None = None) -> np.ndarray | None:
    """The face a search of the whole frame takes, as (cx, cy, side): of `boxes` (N, 4: x, y, w, h) the
    largest (by area, as `facemask.inference.detect.FaceDetector` does), or with `face` = N the N-th from
    the left by centre (0-based); None when there are none, or fewer than N + 1."""
    if len(boxes) == 0:
        return None
    if face is None:
        k = int(np.argmax(boxes[:, 2] * boxes[:, 3]))
    else:
        order = np.argsort(boxes[:, 0] + boxes[:, 2] / 2, kind="stable")
        if face >= len(order):
            return None
        k = int(order[face])
    x, y, w, h = boxes[k]
    return np.array([x + w / 2, y + h / 2, (w + h) / 2])


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two square boxes given as (cx, cy, side)."""
    ix = max(0.0, min(a[0] + a[2] / 2, b[0] + b[2] / 2) - max(a[0] - a[2] / 2, b[0] - b[2] / 2))
    iy = max(0.0, min(a[1] + a[2] / 2, b[1] + b[2] / 2) - max(a[1] - a[2] / 2, b[1] - b[2] / 2))
    inter = ix * iy
    return inter / (a[2] ** 2 + b[2] ** 2 - inter)


@lru_cache(maxsize=2)
def _load_predictor(path: str):
    """A dlib shape predictor file, read once per process (the 68-point model: ~100 MB, seconds)."""
    try:
        model = import_dlib().shape_predictor(path)
    except RuntimeError as e:
        raise DetectorError(f"{path}: not a dlib shape predictor ({e})") from None
    parts = model(np.zeros((8, 8), np.uint8), _rect(np.array([4.0, 4.0, 8.0]))).num_parts
    if parts != 68:
        raise DetectorError(f"{path}: predicts {parts} points, not the 68 iBUG landmarks")
    return model


class ShapePredictor:
    """dlib's 68-point shape predictor: (grey frame, box (cx, cy, side)) -> (68, 2) landmarks.

    Args:
        path: a dlib shape predictor file (default: the 68-point iBUG 300-W model of
            `face_recognition_models`).
    """

    def __init__(self, path: str | Path | None = None):
        self.model = _load_predictor(str(Path(path) if path else dlib_model("shape_predictor_68_face_landmarks.dat")))

    def __call__(self, gray: np.ndarray, box: np.ndarray) -> np.ndarray:
        shape = self.model(gray, _rect(box))
        return np.array([(p.x, p.y) for p in shape.parts()], np.float64)


class FaceScore:
    """Failure checker: dlib's HOG face SVM score of the face expected in a box.

    The region around the box (`context` x its side on every side) is resized so that the box is
    `side_px` pixels (the SVM's window) and searched at every position and a few scales; the score is
    the best of the windows whose centre lies within 0.25 x side of the box's and whose size is within a
    factor 1.5 of it, or `floor` when none is. dlib detects at score >= 0; a face tracked in the
    astronaut video scores 0.4-1.3, a covered one `floor`.
    """

    def __init__(self, side_px: int = 80, context: float = 0.3, floor: float = -2.0):
        self.svm = hog_svm()
        self.side_px, self.context, self.floor = side_px, context, floor

    def __call__(self, gray: np.ndarray, box: np.ndarray) -> float:
        cx, cy, s = box
        m = (0.5 + self.context) * s
        h, w = gray.shape[:2]
        a, b, c, d = int(max(0, cx - m)), int(max(0, cy - m)), int(min(w, cx + m)), int(min(h, cy + m))
        if c - a < 0.5 * s or d - b < 0.5 * s:
            return self.floor
        f = self.side_px / s
        roi = cv2.resize(gray[b:d, a:c], None, fx=f, fy=f, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
        rects, scores, _ = self.svm.run(roi, 0, self.floor)
        best = self.floor
        ex, ey = (cx - a) * f, (cy - b) * f
        for r, sc in zip(rects, scores):
            rs = (r.width() + r.height()) / 2
            rx, ry = r.left() + r.width() / 2, r.top() + r.height() / 2
            if np.hypot(rx - ex, ry - ey) <= 0.25 * self.side_px and 1 / 1.5 <= rs / self.side_px <= 1.5:
                best = max(best, float(sc))
        return best


@dataclass
class Fit:
    """The tracker's result for one frame.

    Attributes:
        points: (68, 2) landmarks in 0-based frame pixels; None when there is no face.
        status: ``detected`` (fitted from a detection in this frame), ``tracked`` (from the previous
            frame's landmarks, passed the loss-of-track test), ``lost`` (the track failed the test and
            no detection picked the face up again), ``no_face`` (no track, and the detector found none).
        score: the failure checker's score of a tracked frame (None when not scored).
        reason: why the track was lost (``jump``, ``scale``, ``outside``, ``score``), else None.
        faces: the faces the detector found when it searched the whole frame in this frame (None: it
            did not).
    """

    points: np.ndarray | None
    status: str
    score: float | None = None
    reason: str | None = None
    faces: int | None = None


class LandmarkTracker:
    """68-landmark face tracker: detect, then fit each frame from the previous frame's landmarks.

    Call it on the frames of one video in order (`reset` between videos); see the module docstring.

    Args:
        detector: a `facemask.inference.detect.FaceDetector` or its name (``hog``, ``cnn``, ``haar``).
        detect_every: also run the detector every this many frames and re-anchor the track on a
            detection that overlaps it (0: only on the first frame and when the track is lost).
        min_score: failure checker threshold (None: no appearance test).
        max_jump, max_scale: geometry test between consecutive frames.
        predictor: a `ShapePredictor` (default: the 68-point iBUG 300-W model).
        face: which face a search of the whole frame takes (`pick_box`): None the largest, N the N-th
            from the left (0-based); then the track follows it.
    """

    def __init__(self, detector: FaceDetector | str = "hog", detect_every: int = 0, min_score: float | None = -0.5,
                 max_jump: float = 0.25, max_scale: float = 1.25, predictor: ShapePredictor | None = None,
                 face: int | None = None):
        if detect_every < 0:
            raise ValueError(f"detect_every must be >= 0, got {detect_every}")
        if face is not None and face < 0:
            raise ValueError(f"face must be >= 0, got {face}")
        self.face, self.faces = face, None
        self.detector = make_detector(detector) if isinstance(detector, str) else detector
        self.predictor = predictor or ShapePredictor()
        self.checker = FaceScore() if min_score is not None else None
        self.detect_every, self.min_score = int(detect_every), min_score
        self.max_jump, self.max_scale = max_jump, max_scale
        self.seconds = {"detection": 0.0, "landmarks": 0.0, "check": 0.0}
        self.reset()

    def reset(self) -> None:
        """Forget the track (a new video)."""
        self.prev: np.ndarray | None = None
        self.since_detection = 0

    def _detect(self, frame: np.ndarray, near: np.ndarray | None = None) -> np.ndarray | None:
        """A detection as the predictor's box: the largest face in the frame (or the `face`-th from the
        left; their number goes to `faces`); or with `near` (a predictor box) the detection in the region
        around it (twice its side) that overlaps it most (IoU >= 0.3)."""
        t0 = time.perf_counter()
        try:
            if near is None:
                boxes = self.detector.candidates(frame)
                self.faces = len(boxes)
                face = pick_box(boxes, self.face)
                return None if face is None else map_box(face, self.detector.to_rect)
            cx, cy, s = near
            h, w = frame.shape[:2]
            a, b = int(max(0, cx - s)), int(max(0, cy - s))
            roi = frame[b:int(min(h, cy + s)), a:int(min(w, cx + s))]
            if min(roi.shape[:2]) < 0.5 * s:
                return None
            best, best_iou = None, 0.3
            for x, y, bw, bh in self.detector.candidates(roi, min_side=0.6 * s):
                box = map_box(np.array([a + x + bw / 2, b + y + bh / 2, (bw + bh) / 2]), self.detector.to_rect)
                iou = _box_iou(box, near)
                if iou >= best_iou:
                    best, best_iou = box, iou
            return best
        finally:
            self.seconds["detection"] += time.perf_counter() - t0

    def _fit(self, gray: np.ndarray, box: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        pts = self.predictor(gray, box)
        self.seconds["landmarks"] += time.perf_counter() - t0
        return pts

    def _lost_reason(self, gray: np.ndarray, pts: np.ndarray, prev: np.ndarray) -> tuple[str | None, float | None]:
        """The loss-of-track test of a fit `pts` made from `prev`: (reason or None, checker score)."""
        (cx, cy, s), (px, py, ps) = landmark_box(pts), landmark_box(prev)
        if s <= 0 or np.hypot(cx - px, cy - py) > self.max_jump * ps:
            return "jump", None
        if not 1 / self.max_scale <= s / ps <= self.max_scale:
            return "scale", None
        h, w = gray.shape[:2]
        inside = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
        if inside.mean() < 0.5:
            return "outside", None
        if self.checker is None:
            return None, None
        t0 = time.perf_counter()
        score = self.checker(gray, map_box(landmark_box(pts), LANDMARKS_TO_RECT))
        self.seconds["check"] += time.perf_counter() - t0
        return ("score" if score < self.min_score else None), score

    def __call__(self, frame: np.ndarray) -> Fit:
        """Landmarks of the next frame (BGR or grey) of the video."""
        gray = to_gray(frame)
        if self.prev is not None:
            self.since_detection += 1
            start = map_box(landmark_box(self.prev), LANDMARKS_TO_RECT)
            if self.detect_every and self.since_detection >= self.detect_every:
                self.since_detection = 0
                box = self._detect(frame, near=start)
                if box is not None:
                    self.prev = self._fit(gray, box)
                    return Fit(self.prev, "detected")
            pts = self._fit(gray, start)
            reason, score = self._lost_reason(gray, pts, self.prev)
            if reason is None:
                self.prev = pts
                return Fit(pts, "tracked", score)
            self.prev = None
            fit = self._acquire(frame, gray)
            return fit if fit.points is not None else Fit(None, "lost", score, reason)
        return self._acquire(frame, gray)

    def _acquire(self, frame: np.ndarray, gray: np.ndarray) -> Fit:
        box = self._detect(frame)
        if box is None:
            return Fit(None, "no_face", faces=self.faces)
        self.prev = self._fit(gray, box)
        self.since_detection = 0
        return Fit(self.prev, "detected", faces=self.faces)


def fit_crop(predictor: ShapePredictor, crop: np.ndarray, scale: float = 1.3) -> np.ndarray:
    """Landmarks of a face crop made like the training crops (a square `scale` x the landmark box, about
    its centre): the landmark box is known from the crop, so no detection is needed."""
    h, w = crop.shape[:2]
    box = np.array([(w - 1) / 2, (h - 1) / 2, (w + h) / 2 / scale])
    return predictor(to_gray(crop), map_box(box, LANDMARKS_TO_RECT))


def crop_mask(points: np.ndarray, box) -> np.ndarray:
    """The 5-class mask of landmarks `points` (frame pixels) inside the crop ``box`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    return landmarks_to_mask(points - (x0, y0), y1 - y0, x1 - x0)


# ---------------------------------------------------------------------------------------------------
# The pipeline's `tracker` method: test-set predictions like every other method's


def video_fps(path: Path, default: float = 30.0) -> float:
    """A video's frame rate as its header gives it (`default` when it gives none, or a senseless one)."""
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return float(fps) if fps and 1.0 <= fps <= 1000.0 else default


def _video_frames(path: Path, last: int):
    """(frame number, BGR frame or None) of frames 1..last of a video."""
    for n, frame in iter_frames(path):
        if n > last:
            return
        yield n, frame


def _crop_frames(images: Path, video: str, first: int, last: int):
    """(frame number, BGR crop or None) of the released crops ``images/VVV_FFFFFF.jpg`` first..last."""
    for n in range(first, last + 1):
        yield n, cv2.imread(str(images / f"{frame_stem(video, n)}.jpg"), cv2.IMREAD_COLOR)


def predict_test_clips(clips: list[dict], raw_dir: str | Path, mask_dir: str | Path, out_dir: str | Path,
                       detector: str = "hog", detect_every: int = 0, min_score: float | None = -0.5,
                       progress: bool = True, landmarker=None, method: str = "tracker") -> dict:
    """The tracker's label PNG of every test frame, at that frame's crop, into `out_dir` (which must exist).

    Where the raw videos are there (``raw_dir/NNN/vid.avi``) and ``mask_dir/frames.csv`` holds each
    frame's crop box, the tracker runs over every test video from its first frame to its last test
    frame (the tracker has the whole past, as in the paper), and each test frame's landmarks are turned
    into a mask inside that frame's crop. Otherwise (the authors' 300VW-Mask release: crops only) it
    runs over each test clip's crops ``mask_dir/images_orig`` from the clip's first frame.
    A frame without landmarks (no face found, or the track lost) gets an all-background label.

    Args:
        clips: the test clips (`facemask.data.clips.build.read_test_clips`): ``video`` and ``names`` (``VVV_FFFFFF``).
        raw_dir: ``data/raw/300VW``.
        mask_dir: ``data/300VW-Mask`` (``frames.csv``, ``images_orig/``).
        detector, detect_every, min_score: `LandmarkTracker` settings.
        landmarker: instead of that tracker, any landmarker of the same interface (called on each frame in
            order, returning an object with ``points`` (None: no face) and ``status`` (`STATUSES`); ``reset``
            between videos, which takes the video's frame rate; ``seconds`` per phase), e.g.
            `facemask.inference.mesh.MediaPipeLandmarker`.
        method: the method's name, on the progress bar and in the log.

    Returns:
        {"frames", "source" ("video" or "crops"), "status": {status: count}, "frames_without_face",
        "seconds", "frames_per_s", "tracker_seconds": {phase: s}}.
    """

    t0 = time.perf_counter()
    raw_dir, mask_dir, out_dir = Path(raw_dir), Path(mask_dir), Path(out_dir)
    frames = pd.read_csv(mask_dir / "frames.csv", dtype={"video": str})
    frames = frames.set_index(["video", "frame"])
    wanted: dict[str, set[int]] = {}
    for clip in clips:
        for name in clip["names"]:
            video, n = parse_stem(name)
            wanted.setdefault(video, set()).add(n)
    has_boxes = {"x0", "y0", "x1", "y1"} <= set(frames.columns) and frames[["x0", "y0", "x1", "y1"]].notna().all().all()
    from_video = has_boxes and all((raw_dir / v / "vid.avi").is_file() for v in wanted)
    tracker = landmarker or LandmarkTracker(detector, detect_every=detect_every, min_score=min_score)
    status = dict.fromkeys(STATUSES, 0)
    missing: list[str] = []
    # one run per video (from its first frame), or per clip over the released crops
    runs = ([(v, 1, max(ns)) for v, ns in sorted(wanted.items())] if from_video else
            [(c["video"], parse_stem(c["names"][0])[1], parse_stem(c["names"][-1])[1]) for c in clips])
    total = sum(last - first + 1 for _, first, last in runs)
    with tqdm(total=total, desc=method, unit="frame", disable=not progress) as bar:
        for video, first, last in runs:
            tracker.reset(**({"fps": video_fps(raw_dir / video / "vid.avi")} if landmarker and from_video else {}))
            source = (_video_frames(raw_dir / video / "vid.avi", last) if from_video
                      else _crop_frames(mask_dir / "images_orig", video, first, last))
            for n, frame in source:
                bar.update(1)
                fit = tracker(frame) if frame is not None else Fit(None, "no_face")
                if n not in wanted.get(video, ()):
                    continue
                status[fit.status] += 1
                row = frames.loc[(video, n)]
                box = (tuple(int(row[k]) for k in ("x0", "y0", "x1", "y1")) if from_video
                       else (0, 0, int(row["w"]), int(row["h"])))
                if fit.points is None:
                    missing.append(frame_stem(video, n))
                    label = np.zeros((box[3] - box[1], box[2] - box[0]), np.uint8)
                else:
                    label = crop_mask(fit.points, box)
                write_label_png(out_dir / f"{frame_stem(video, n)}.png", label)
    seconds = time.perf_counter() - t0
    n_frames = sum(status.values())
    log.info("%s: %d test frames from %d %s; %s; %.1f frames/s", method, n_frames, len(runs),
             "videos" if from_video else "clips", ", ".join(f"{k} {v}" for k, v in status.items()), total / seconds)
    return {"frames": n_frames, "source": "video" if from_video else "crops", "status": status,
            "frames_without_face": missing, "seconds": round(seconds, 3),
            "frames_per_s": round(total / seconds, 2) if seconds > 0 else None,
            "tracker_seconds": {k: round(v, 3) for k, v in tracker.seconds.items()}}


# ---------------------------------------------------------------------------------------------------
# Calibration: which box the predictor gets from a detector's box, and from the previous landmarks



def landmark_info(stats: dict) -> dict:
    """What a landmark method's info.json keeps of `predict_test_clips`'s summary (no wall-clock figures, so the
    stage's output follows from its inputs)."""
    if "skipped" in stats:
        return stats
    return {"source": stats["source"], "status": stats["status"],
            "frames_without_face": len(stats["frames_without_face"])}


def calibrate_rect(frames, detector: FaceDetector, predictor: ShapePredictor | None = None) -> dict:
    """Measure a detector's `to_rect` and `LANDMARKS_TO_RECT` on frames of real faces.

    In every frame where dlib's HOG detector (the box the 68-point predictor was trained with) and
    `detector` both find one face, the predictor is started from the HOG box. Returned medians:
    ``to_rect`` (HOG box relative to the detector's: centre offset / side, side ratio) and
    ``landmarks_to_rect`` (HOG box relative to the fitted landmarks' box), with the frame count.
    """

    hog = HogFaceDetector()
    predictor = predictor or ShapePredictor()
    rel, lm = [], []
    for frame in frames:
        ref, faces = hog.candidates(frame), detector.candidates(frame)
        if len(ref) != 1 or len(faces) != 1:
            continue
        (x, y, w, h), (a, b, c, d) = ref[0], faces[0]
        hb, db = np.array([x + w / 2, y + h / 2, (w + h) / 2]), np.array([a + c / 2, b + d / 2, (c + d) / 2])
        rel.append([(hb[0] - db[0]) / db[2], (hb[1] - db[1]) / db[2], hb[2] / db[2]])
        lb = landmark_box(predictor(to_gray(frame), hb))
        lm.append([(hb[0] - lb[0]) / lb[2], (hb[1] - lb[1]) / lb[2], hb[2] / lb[2]])
    if not rel:
        raise ValueError("no frame where both detectors find exactly one face")
    def med(rows):
        return dict(zip(("dx", "dy", "scale"), (round(float(v), 3) for v in np.median(rows, axis=0))))

    return {"to_rect": med(rel), "landmarks_to_rect": med(lm), "frames": len(rel)}
