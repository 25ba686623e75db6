"""Annotated real faces as videos, their masks scored as the paper scores them, and the landmarkers compared.

Each annotated photograph (`facemask.data.annotated`) is moved through a 640 x 480 video by
`facemask.data.realface.photo_video` (slow scale, rotation and shift, a light drift, sensor noise), so
its 68 true points are known in every frame. A landmarker's points become masks (`landmarks_to_mask`)
scored against the masks of the true points **inside the authors' crop** of the true points
(`square_crop_box`), per class, intersections and unions summed over all frames (the paper's mIoU);
a frame where the landmarker finds no face counts as all background.

The rows compared (`LANDMARKERS`):

* ``default``: `facemask predict` as a user runs it (``--method landmarks``, every default);
* ``mediapipe-plain``: MediaPipe's face mesh alone (refine, one face, video mode) with the published
  468 -> 68 table (`facemask.inference.mp68.PUBLISHED`), no smoothing;
* ``dlib``: dlib's HOG detector and 68-point model on every frame (the largest face; no tracking).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from facemask.app.predict import predict
from facemask.core.iou import confusion_matrix, iou_per_class
from facemask.data.annotated import AnnotatedFace
from facemask.data.labels import CLASS_NAMES, read_label_png
from facemask.data.masks.draw import landmarks_to_mask, square_crop_box
from facemask.data.realface import PhotoVideo, paste, photo_video, write_video
from facemask.inference import mp68
from facemask.inference.detect import make_detector
from facemask.inference.landmarker import box_iou, box_of
from facemask.inference.mesh import FaceMeshVideo
from facemask.inference.tracker import ShapePredictor, map_box

SIZE = (640, 480)
#: the rows of the comparison (and ``default-smoothed``: the default with ``--landmark-smoothing``)
LANDMARKERS = ("default", "mediapipe-plain", "dlib")


def person_videos(face: AnnotatedFace, frames: int, sizes=(130.0, 80.0), seed: int = 0) -> list[PhotoVideo]:
    """One video per face size (the landmark box's mean side in pixels) of one annotated photograph."""
    return [photo_video(face.photo, face.points, frames, SIZE, px, seed=seed + 7 * j) for j, px in enumerate(sizes)]


def cut_face_video(main: PhotoVideo, other: AnnotatedFace, seed: int = 0) -> PhotoVideo:
    """`main` with a larger face of `other` pasted so that the frame's right edge cuts it in half: the
    annotated (whole) face is the one a user means. The truth stays `main`'s."""
    n = len(main.frames)
    px = 1.4 * float(np.mean(main.points[0].max(0) - main.points[0].min(0)))
    centres = np.tile([SIZE[0] - 2.0, SIZE[1] * 0.45], (n, 1))
    cut = photo_video(other.photo, other.points, n, SIZE, px, seed=seed, rotation=4.0, centres=centres)
    return PhotoVideo(paste(main.frames, cut), main.points)


def scores(counts: np.ndarray) -> dict[str, float]:
    """IoU per class (skin, eyes, lips, inner mouth) and their mean from summed confusion counts."""
    iou = iou_per_class(counts)
    out = {CLASS_NAMES[c]: float(iou[c]) for c in range(1, 5)}
    out["mIoU"] = float(np.nanmean(iou[1:]))
    return out


def mask_counts(points: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(5, 5) confusion counts of the masks of `points` (F, 68, 2; NaN: no face) against those of `truth`,
    inside the authors' crop of the truth, summed over the frames."""
    cm = np.zeros((5, 5), np.int64)
    for p, g in zip(points, truth):
        cm += frame_counts(p, g, SIZE[1], SIZE[0])
    return cm


def frame_counts(p: np.ndarray | None, g: np.ndarray, h: int, w: int) -> np.ndarray:
    x0, y0, x1, y1 = square_crop_box(g, h, w)
    truth = landmarks_to_mask(g - (x0, y0), y1 - y0, x1 - x0)
    pred = (np.zeros_like(truth) if p is None or not np.isfinite(p).all()
            else landmarks_to_mask(p - (x0, y0), y1 - y0, x1 - x0))
    return confusion_matrix(truth, pred, 5)


def label_counts(labels: list[np.ndarray], truth: np.ndarray) -> np.ndarray:
    """As `mask_counts` for whole-frame label maps (`facemask predict`'s PNGs)."""
    cm = np.zeros((5, 5), np.int64)
    for lab, g in zip(labels, truth):
        x0, y0, x1, y1 = square_crop_box(g, *lab.shape)
        cm += confusion_matrix(landmarks_to_mask(g - (x0, y0), y1 - y0, x1 - x0), lab[y0:y1, x0:x1], 5)
    return cm


def mesh_points(frames: np.ndarray, refine: bool = True, truth: np.ndarray | None = None) -> np.ndarray:
    """(F, 478 or 468, 2) MediaPipe face mesh points of a video (video mode; NaN where no face).

    Without `truth`: the one face the graph follows (the one BlazeFace scores highest), as the library runs
    by default. With `truth` (F, 68, 2): the graph follows up to 4 faces and the mesh whose box overlaps the
    true landmarks' box most (IoU >= 0.3) is kept: the annotated face's mesh, for fitting.
    """
    graph = FaceMeshVideo(1 if truth is None else 4, refine)
    out = np.full((len(frames), 478 if refine else 468, 2), np.nan)
    try:
        for t, f in enumerate(frames):
            meshes, _ = graph(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
            if meshes and truth is not None:
                ious = [box_iou(box_of(m[:468]), box_of(truth[t])) for m in meshes]
                meshes = [meshes[int(np.argmax(ious))]] if max(ious) >= 0.3 else []
            if meshes:
                out[t] = meshes[0]
    finally:
        graph.close()
    return out


def plain_mediapipe(frames: np.ndarray) -> np.ndarray:
    """(F, 68, 2) of the ``mediapipe-plain`` row."""
    w = mp68.weight_matrix(mp68.PUBLISHED, 478)
    return np.einsum("ij,fjd->fid", w, mesh_points(frames, True))


def dlib_points(frames: np.ndarray, detector=None, predictor=None) -> np.ndarray:
    """(F, 68, 2) of the ``dlib`` row: HOG detection + the 68-point model on each frame (largest face)."""
    detector = detector or make_detector("hog")
    predictor = predictor or ShapePredictor()
    out = np.full((len(frames), 68, 2), np.nan)
    for t, f in enumerate(frames):
        face = detector(f)
        if face is not None:
            out[t] = predictor(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), map_box(face, detector.to_rect))
    return out


def predict_labels(frames: np.ndarray, **options) -> tuple[list[np.ndarray], dict]:
    """`facemask predict` (``--method landmarks``, its defaults unless `options` say otherwise) on the frames
    as an MJPG video: (whole-frame label maps, summary)."""
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "in.avi"
        write_video(frames, video)
        summary = predict(video, Path(tmp) / "out", method="landmarks", video=False, progress=False, **options)
        labels = [read_label_png(p) for p in sorted((Path(tmp) / "out" / "labels").glob("*.png"))]
    return labels, summary


def compare(video: PhotoVideo, rows=LANDMARKERS, dlib_models=None) -> dict[str, np.ndarray]:
    """Each row's (5, 5) confusion counts on one video."""
    out = {}
    for row in rows:
        if row in ("default", "default-smoothed"):
            smoothing = row == "default-smoothed"
            out[row] = label_counts(predict_labels(video.frames, landmark_smoothing=smoothing)[0], video.points)
        elif row == "mediapipe-plain":
            out[row] = mask_counts(plain_mediapipe(video.frames), video.points)
        elif row == "dlib":
            out[row] = mask_counts(dlib_points(video.frames, *(dlib_models or ())), video.points)
        else:
            raise ValueError(f"unknown row {row!r}; valid: {', '.join(LANDMARKERS)}, default-smoothed")
    return out
