"""Where the face is in each frame of `facemask predict`, and for the landmark method its labels.

Every method finds the face with the landmark tracker (`facemask.inference.tracker.LandmarkTracker`: a
detector on the first frame, every ``detect_every`` frames and whenever the track is lost; the 68
landmarks tracked between). The landmark method draws each frame's mask from its landmarks at once (no
smoothing: the paper's tracker has none). The learned methods crop by the training rule (1.3 x the
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
from facemask.data.masks import square_crop_box
from facemask.inference.detect import BoxSmoother, DetectorError, crop_box
from facemask.inference.tracker import LandmarkTracker, crop_mask, fit_crop, landmark_box

#: The smoother holds landmark boxes, so the crop is made from them as they are.
LANDMARK_BOX = {"dx": 0.0, "dy": 0.0, "scale": 1.0}


class FaceLocator:
    """Locates each frame's face and hands the frame on to `windows`, in order.

    Args:
        windows: where located frames go.
        landmarks_only: the landmark method (labels from the landmarks; no network).
        cropped: the frames are face crops already.
        detector, detect_every: the tracker's detector (``hog``, ``cnn``, ``haar``) and re-detection period.
        smooth, max_gap: the learned methods' box smoothing.
        timings: seconds per phase, added to (``detection``, ``landmarks``).

    Raises:
        PredictError: the detector's model cannot be loaded.
    """

    def __init__(self, windows: WindowQueue, landmarks_only: bool, cropped: bool, detector: str,
                 detect_every: int, smooth: int, max_gap: int, timings: dict):
        self.windows, self.landmarks_only, self.cropped, self.timings = windows, landmarks_only, cropped, timings
        try:
            self.tracker = None if cropped and not landmarks_only else \
                LandmarkTracker(detector, detect_every=detect_every)
        except DetectorError as e:
            raise PredictError(f"--detector {detector}: {e}") from None
        self.smoother = None if cropped or landmarks_only else BoxSmoother(radius=smooth, max_gap=max_gap)
        self.located: deque[FrameItem] = deque()  # frames waiting for the smoother's verdict

    def add(self, item: FrameItem) -> None:
        """Locate the face of one frame (and label it, for the landmark method)."""
        if self.cropped:
            self._given(item)
            return
        seen = dict(self.tracker.seconds)
        fit = self.tracker(item.frame)
        item.status = fit.status
        self.timings["detection"] += self.tracker.seconds["detection"] - seen["detection"]
        self.timings["landmarks"] += sum(self.tracker.seconds[k] - seen[k] for k in ("landmarks", "check"))
        if self.landmarks_only:
            self.windows.add(item, self._label_from(item, fit.points))
            return
        self.located.append(item)
        self._place(self.smoother.push(None if fit.points is None else landmark_box(fit.points)))

    def finish(self) -> None:
        """Hand on the frames the smoother still holds."""
        if self.smoother is not None:
            self._place(self.smoother.flush())

    def _given(self, item: FrameItem) -> None:
        """``--cropped``: the whole frame is the face crop."""
        h, w = item.frame.shape[:2]
        item.status = "given"
        if self.landmarks_only:
            t0 = time.perf_counter()
            item.label = crop_mask(fit_crop(self.tracker.predictor, item.frame), (0, 0, w, h))
            self.timings["landmarks"] += time.perf_counter() - t0
        self.windows.add(item, (0, 0, w, h))

    def _label_from(self, item: FrameItem, points: np.ndarray | None):
        """The landmark method: the crop box of the landmarks and the mask drawn from them (None: no face)."""
        if points is None:
            return None
        h, w = item.frame.shape[:2]
        t0 = time.perf_counter()
        try:
            box = square_crop_box(points, h, w)
            item.label = crop_mask(points, box)
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
