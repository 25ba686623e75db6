"""Where the face is in each frame of `facemask predict`, and for the landmark method its labels.

Every method finds the face with a landmarker (`facemask.inference.landmarker`): ``mediapipe``
(`facemask.inference.mesh.MediaPipeLandmarker`, MediaPipe's face mesh, the default) or ``dlib`` (the landmark
tracker `facemask.inference.tracker.LandmarkTracker`: a detector on the first frame, every ``detect_every``
frames and whenever the track is lost; the 68 landmarks tracked between), the 68 points smoothed over time
by a One-Euro filter (`facemask.inference.landmarker.ONE_EURO`) when asked to. With several faces in
view it takes the most prominent whole one (`facemask.inference.landmarker.pick_face`), or the ``--face``-th
from the left, and follows that one. The landmark method hands each frame on with its landmarks, from which
the writer draws the mask in its own thread. The learned methods crop by the training rule (1.3 x the
landmark box) after `facemask.inference.detect.BoxSmoother` (outliers dropped, gaps of at most
``max_gap`` frames bridged, a median over ±``smooth`` frames), which holds a few frames back. With
``--cropped`` the frames are face crops already: no detection.

Each located frame goes on to the `facemask.app.segmenters.WindowQueue` with its crop box (None: no face)
and a status (`facemask.app.outputs.FACE_STATUSES`).
"""
from __future__ import annotations

import time
from collections import deque

import numpy as np

from facemask.app.outputs import FrameItem
from facemask.app.segmenters import WindowQueue
from facemask.core.errors import PredictError
from facemask.data.masks.draw import square_crop_box
from facemask.inference.detect import BoxSmoother, DetectorError, crop_box
from facemask.inference.landmarker import ONE_EURO, DlibLandmarker, Landmarker, OneEuroFilter
from facemask.inference.mesh import MediaPipeError, MediaPipeLandmarker
from facemask.inference.tracker import crop_mask, fit_crop, landmark_box

#: The smoother holds landmark boxes, so the crop is made from them as they are.
LANDMARK_BOX = {"dx": 0.0, "dy": 0.0, "scale": 1.0}


def make_landmarker(name: str | None, *, face: int | None, detector: str, detect_every: int, fps: float,
                    smoothing: bool) -> tuple[Landmarker, str | None]:
    """``--landmarker``: (the landmarker, a warning or None).

    None (the default) is ``mediapipe`` where mediapipe is installed, else ``dlib`` with a warning;
    ``mediapipe`` without it is an error naming the install command.

    Raises:
        PredictError: naming the option and the reason.
    """
    one_euro = OneEuroFilter(**ONE_EURO, fps=fps) if smoothing else None
    warning = None
    if name in (None, "mediapipe"):
        try:
            return MediaPipeLandmarker(face=face, smoothing=one_euro), None
        except MediaPipeError as e:
            if name == "mediapipe":
                raise PredictError(f"--landmarker mediapipe: {e}") from None
            warning = (f"the default landmarker, mediapipe, is not available, so dlib's is used, whose 68-point "
                       f"model (iBUG 300-W) is for non-commercial use only: {e}")
    try:
        return DlibLandmarker(detector, detect_every, face=face, smoothing=one_euro), warning
    except DetectorError as e:
        raise PredictError(f"--detector {detector}: {e}") from None


class FaceLocator:
    """Locates each frame's face and hands the frame on to `windows`, in order.

    Args:
        windows: where located frames go.
        landmarks_only: the landmark method (labels from the landmarks; no network).
        cropped: the frames are face crops already.
        landmarker: finds the face and its 68 landmarks (None: ``--cropped`` with a learned method).
        smooth, max_gap: the learned methods' box smoothing.
        timings: seconds per phase, added to (``detection``, ``landmarks``).

    Attributes:
        faces: frames by how many faces the landmarker saw in them (``0``, ``1``, ``2+``).
        most_faces: the most faces it saw in one frame.
    """

    def __init__(self, windows: WindowQueue, landmarks_only: bool, cropped: bool, landmarker: Landmarker | None,
                 smooth: int, max_gap: int, timings: dict):
        self.windows, self.landmarks_only, self.cropped, self.timings = windows, landmarks_only, cropped, timings
        self.landmarker = landmarker
        self.smoother = None if cropped or landmarks_only else BoxSmoother(radius=smooth, max_gap=max_gap)
        self.located: deque[FrameItem] = deque()  # frames waiting for the smoother's verdict
        self.faces = {"0": 0, "1": 0, "2+": 0}
        self.most_faces = 0

    def add(self, item: FrameItem) -> None:
        """Locate the face of one frame (and label it, for the landmark method)."""
        if self.cropped:
            self._given(item)
            return
        found = self._landmarks(item.frame)
        item.status = found.status
        self.faces["0" if found.faces == 0 else "1" if found.faces == 1 else "2+"] += 1
        self.most_faces = max(self.most_faces, found.faces)
        if self.landmarks_only:
            self.windows.add(item, self._label_from(item, found.points))
            return
        self.located.append(item)
        self._place(self.smoother.push(None if found.points is None else landmark_box(found.points)))

    def face_warning(self) -> str | None:
        """``--face N`` when no frame held N + 1 faces: the one-line warning (else None)."""
        lm = self.landmarker
        if self.cropped or lm is None or lm.face is None or self.most_faces > lm.face:
            return None
        return (f"--face {lm.face}: at most {self.most_faces} face{'s' if self.most_faces != 1 else ''} in any frame, "
                f"so there is no face {lm.face} (0-based, from the left) and no frame has a mask")

    def finish(self) -> None:
        """Hand on the frames the smoother still holds."""
        if self.smoother is not None:
            self._place(self.smoother.flush())

    def _landmarks(self, frame: np.ndarray):
        """The landmarker on the next frame, its time added to `timings`."""
        lm = self.landmarker
        seen = dict(lm.seconds)
        found = lm(frame)
        self.timings["detection"] += lm.seconds["detection"] - seen["detection"]
        self.timings["landmarks"] += sum(lm.seconds[k] - seen[k] for k in ("landmarks", "smoothing"))
        return found

    def _given(self, item: FrameItem) -> None:
        """``--cropped``: the whole frame is the face crop. The landmark method: dlib's predictor on the crop
        (whose landmark box the crop rule gives), or the face mesh on the crop alone."""
        h, w = item.frame.shape[:2]
        item.status = "given"
        if self.landmarks_only and isinstance(self.landmarker, DlibLandmarker):
            t0 = time.perf_counter()
            item.label = crop_mask(fit_crop(self.landmarker.predictor, item.frame), (0, 0, w, h))
            self.timings["landmarks"] += time.perf_counter() - t0
        elif self.landmarks_only:
            self.landmarker.reset()  # crops need not follow one another
            points = self._landmarks(item.frame).points
            if points is None:
                item.status = "no_face"
                self.windows.add(item, None)
                return
            item.label = crop_mask(points, (0, 0, w, h))
        self.windows.add(item, (0, 0, w, h))

    def _label_from(self, item: FrameItem, points: np.ndarray | None):
        """The landmark method: the crop box of the landmarks (None: no face); the writer draws the mask from
        `FrameItem.points` in its own thread."""
        if points is None:
            return None
        h, w = item.frame.shape[:2]
        t0 = time.perf_counter()
        try:
            box = square_crop_box(points, h, w)
            item.points = points
        except ValueError:  # the face lies outside the frame
            box, item.status = None, "lost"
        self.timings["landmarks"] += time.perf_counter() - t0
        return box

    def _place(self, final) -> None:
        """The smoother's verdicts, in frame order: each frame's crop box, or none."""
        for _, face in final:
            it = self.located.popleft()
            if face is None:
                it.status = "outlier" if it.status in ("detected", "tracked") else it.status
            elif it.status not in ("detected", "tracked"):
                it.status = "bridged"
            self.windows.add(it, None if face is None else crop_box(face, it.frame.shape[:2], calib=LANDMARK_BOX))
