"""MediaPipe's face mesh as a landmarker (`facemask.inference.landmarker`): 68 iBUG points from its 468 (478).

MediaPipe's face mesh (Kartynnik et al., "Real-time facial surface geometry from monocular video on
mobile GPUs", CVPR-W 2019), ``mediapipe==0.10.14``, whose wheel carries the BlazeFace short-range
detector and the face landmark models (Apache-2.0), runs in video mode: BlazeFace finds a face, the
mesh model follows it from frame to frame on the region its own landmarks give, and drops it when the
model's face-presence score falls below ``min_tracking``. Its points become the 68 iBUG points by
`facemask.inference.mp68`'s correspondence. Faces too small for the graph's own detector (it sees the
frame at 128 x 128) are found by BlazeFace on tiles of the frame (`TileFinder`) and followed on a zoomed
crop (`MediaPipeLandmarker`).

mediapipe is imported when a landmarker is made, not with this module: without it (Python 3.13, or not
installed) `MediaPipeError` says how to install it (`INSTALL`).
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time
import warnings

import cv2
import numpy as np

from facemask.core.errors import InputError
from facemask.inference.landmarker import (SAME_FACE_IOU, WHOLE, Landmarker, Landmarks, OneEuroFilter, box_iou,
                                           box_of, pick_face, prominence, visible_fraction)
from facemask.inference.mp68 import N_MESH, N_MESH_IRIS, table, weight_matrix

#: How to install mediapipe beside facemask (also in the Makefile's ``setup``): without its declared
#: dependencies, which would add a second OpenCV; facemask's own pins carry what it needs.
INSTALL = "pip install --no-deps mediapipe==0.10.14"


class MediaPipeError(InputError, ImportError):
    """mediapipe is missing or unusable; the message says how to install it."""


def import_mediapipe():
    """(the mediapipe module, its ``SolutionBase``), imported once; raises `MediaPipeError` saying how to
    install it when it is missing or has no face mesh."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # the graph's C++ log lines at start-up
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import mediapipe as mp
        except ImportError as e:
            raise MediaPipeError(f"mediapipe is not installed ({e}): `{INSTALL}` (Python 3.10-3.12; `make setup` "
                                 "does it), or use the dlib landmarker") from None
        try:
            from mediapipe.python.solution_base import SolutionBase
            face_mesh = mp.solutions.face_mesh
        except (ImportError, AttributeError):
            face_mesh = None
    if face_mesh is None:
        raise MediaPipeError(f"mediapipe {getattr(mp, '__version__', '?')} has no face mesh solution (its models "
                             f"ship in the wheels up to 0.10.21; the project pins 0.10.14): `{INSTALL}`")
    return mp, SolutionBase


@contextlib.contextmanager
def quiet_stderr():
    """Within the block, the process's stderr (file descriptor 2) goes to /dev/null: MediaPipe's C++
    graph writes a dozen log lines there when it starts and on its first frames (TFLite's XNNPACK
    delegate, "Feedback manager requires a model with a single signature") that its settings do not
    silence. Used only around the graph's own calls (start, reset, a frame: ~10 us each), while the
    calling thread waits and nothing of ours writes."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (captured by a test runner)
        fd = 2
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def wait_idle(solution) -> None:
    """Until a MediaPipe solution's graph has started (its calculators open in threads of their own after
    a start or a reset, and log then: `quiet_stderr` must be around that too)."""
    graph = getattr(solution, "_graph", None)
    if graph is not None:
        graph.wait_until_idle()


def mediapipe_available() -> bool:
    """Whether `import_mediapipe` works here."""
    try:
        import_mediapipe()
    except MediaPipeError:
        return False
    return True


def box_rank(box: np.ndarray, frame_hw: tuple[int, int], score: float) -> tuple[bool, float]:
    """A detection box's rank as `pick_face` ranks faces: (whole, prominence)."""
    corners = np.reshape(box, (2, 2))
    return visible_fraction(corners, frame_hw) >= WHOLE, prominence(corners, frame_hw, score)


def detection_scores(faces: list[np.ndarray], dets: list[tuple[np.ndarray, float]]) -> list[float]:
    """Per face (its points) the score of the BlazeFace detection that covers it best (box IoU > 0.1), NaN
    when none does (BlazeFace did not run on this frame, or missed this face)."""
    out = []
    for f in faces:
        ious = [box_iou(b, box_of(f)) for b, _ in dets]
        j = int(np.argmax(ious)) if ious else -1
        out.append(dets[j][1] if j >= 0 and ious[j] > 0.1 else float("nan"))
    return out


class FaceMeshVideo:
    """MediaPipe's face mesh graph in video mode, every face's mesh in pixel coordinates.

    The graph and settings of ``mediapipe.solutions.face_mesh.FaceMesh`` (static_image_mode=False), with
    the face detections as a second output (their scores are the confidence).

    Args:
        max_faces: faces the graph follows at once. While fewer are followed it runs BlazeFace on every
            frame (to find more); with 1 it runs only until a face is found.
        refine: the attention model (478 points: refined eyes and lips, irises).
        min_detection, min_tracking: BlazeFace score to start a face, mesh face-presence score to keep it.
    """

    def __init__(self, max_faces: int = 1, refine: bool = False, min_detection: float = 0.5,
                 min_tracking: float = 0.5):
        mp, SolutionBase = import_mediapipe()
        fm = mp.solutions.face_mesh
        self.refine, self.max_faces = bool(refine), int(max_faces)
        with warnings.catch_warnings(), quiet_stderr():
            warnings.simplefilter("ignore")
            self.graph = SolutionBase(
                binary_graph_path=fm._BINARYPB_FILE_PATH,
                side_inputs={"num_faces": self.max_faces, "with_attention": self.refine, "use_prev_landmarks": True},
                calculator_params={
                    "facedetectionshortrangecpu__facedetectionshortrange__facedetection__TensorsToDetectionsCalculator"
                    ".min_score_thresh": min_detection,
                    "facelandmarkcpu__ThresholdingCalculator.threshold": min_tracking},
                outputs=["multi_face_landmarks", "face_detections"])
            wait_idle(self.graph)

    def __call__(self, rgb: np.ndarray) -> tuple[list[np.ndarray], list[tuple[np.ndarray, float]]]:
        """(meshes, detections) of an RGB frame: each mesh (468 or 478, 2) in 0-based pixel coordinates
        (the graph's [0, 1] coordinates span the image's edges: x W - 0.5); each detection a box
        (x0, y0, x1, y1) and its score, when BlazeFace ran on this frame."""
        h, w = rgb.shape[:2]
        with warnings.catch_warnings(), quiet_stderr():
            warnings.simplefilter("ignore")  # protobuf 4's GetPrototype deprecation, once per call
            res = self.graph.process({"image": rgb})
        meshes = []
        for lm in res.multi_face_landmarks or ():
            xy = np.array([(p.x, p.y) for p in lm.landmark], np.float64)
            meshes.append(xy * (w, h) - 0.5)
        dets = []
        for d in res.face_detections or ():
            b = d.location_data.relative_bounding_box
            box = np.array([b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h]) - 0.5
            dets.append((box, float(d.score[0]) if d.score else float("nan")))
        return meshes, dets

    def reset(self) -> None:
        with quiet_stderr():
            self.graph.reset()
            wait_idle(self.graph)

    def close(self) -> None:
        self.graph.close()


class TileFinder:
    """BlazeFace (short range) on overlapping square tiles of the frame: faces too small for the face
    mesh graph's own detector, which sees the whole frame at 128 x 128 (it misses faces below about an
    eighth of the frame's width, and some tilted or black-and-white ones at any size).

    Args:
        tile: tile side as a share of the frame's shorter side (0.5: 12 tiles on 640 x 480, 240 px each).
        overlap: share of a tile shared with its neighbour.
        min_detection: BlazeFace score.
    """

    def __init__(self, tile: float = 0.5, overlap: float = 0.4, min_detection: float = 0.5):
        mp, _ = import_mediapipe()
        with warnings.catch_warnings(), quiet_stderr():
            warnings.simplefilter("ignore")
            self.detector = mp.solutions.face_detection.FaceDetection(model_selection=0,
                                                                      min_detection_confidence=min_detection)
            wait_idle(self.detector)
        self.tile, self.overlap = tile, overlap

    def __call__(self, rgb: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Faces as (box (x0, y0, x1, y1) in frame pixels, score), overlapping ones merged (best score kept)."""
        h, w = rgb.shape[:2]
        side = max(64, int(round(self.tile * min(h, w))))
        step = side * (1 - self.overlap)
        found = []
        with quiet_stderr():
            self._tiles(rgb, side, step, found)
        found.sort(key=lambda f: -f[1])
        kept: list[tuple[np.ndarray, float]] = []
        for box, score in found:
            if all(box_iou(box, k) < 0.3 for k, _ in kept):
                kept.append((box, score))
        return kept

    def _tiles(self, rgb: np.ndarray, side: int, step: float, found: list) -> None:
        """BlazeFace on every tile; its faces appended to `found`."""
        h, w = rgb.shape[:2]
        for y in np.linspace(0, max(0, h - side), max(1, math.ceil(max(0, h - side) / step) + 1)).astype(int):
            for x in np.linspace(0, max(0, w - side), max(1, math.ceil(max(0, w - side) / step) + 1)).astype(int):
                tile = np.ascontiguousarray(rgb[y:y + side, x:x + side])
                th, tw = tile.shape[:2]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = self.detector.process(tile)
                for d in res.detections or ():
                    b = d.location_data.relative_bounding_box
                    found.append((np.array([x + b.xmin * tw, y + b.ymin * th, x + (b.xmin + b.width) * tw,
                                            y + (b.ymin + b.height) * th]) - 0.5, float(d.score[0])))

    def close(self) -> None:
        self.detector.close()


class MediaPipeLandmarker(Landmarker):
    """68 iBUG landmarks from MediaPipe's face mesh in video mode (see the module docstring).

    Two ways to follow a face. **Frame**: the mesh graph on the whole frame (its BlazeFace finds the face,
    its landmarks follow it). **Zoom**: when the graph finds no face, every `search_every` frames a
    `TileFinder` looks for small faces; the face it finds is followed by a second mesh graph on a square
    crop about it (2.5 x its side, resized to `zoom_px`), re-centred (and that graph restarted) when the
    face drifts from the crop's centre or changes size; until it is lost.

    Args:
        refine: the attention mesh (``refine_landmarks``): refined eyes and lips; measured better on every
            test set (mask mIoU +5 to +11 points: README, "Landmarkers"), at ~1 ms a frame more.
        max_faces: faces the frame graph follows at once: >= 2 to see several and pick one (`pick_face`) or the
            ``face``-th (while fewer are in view the graph runs BlazeFace on every frame, ~1-2 ms); 1: it
            follows the face BlazeFace scores highest (not the largest) and stops detecting once it has one.
        face: None: the most prominent whole face (`pick_face`); N: the N-th from the left (0-based) at
            acquisition. Then followed.
        correspondence: ``fitted`` or ``published`` (`facemask.inference.mp68`).
        min_detection, min_tracking: see `FaceMeshVideo`.
        search_every: run the tile search on every this many frames without a face (0: never; no zoom).
        zoom_px: side of the zoomed crop.
        smoothing: a `OneEuroFilter` or None.
    """

    name = "mediapipe"
    ZOOM_CROP = 2.5       # crop side / face box side
    RECENTRE = 0.15       # re-centre when the face centre is this share of the crop side away
    SIZE_RANGE = (0.25, 0.6)  # ... or its box side leaves this share of the crop side
    FINDER_SCORE = 0.5    # BlazeFace score of a tile-search candidate (then confirmed on the zoomed crop)
    MAX_CANDIDATES = 4    # tile-search candidates confirmed at most, per search

    def __init__(self, refine: bool = True, max_faces: int = 2, face: int | None = None,
                 correspondence: str = "fitted", min_detection: float = 0.5, min_tracking: float = 0.5,
                 search_every: int = 5, zoom_px: int = 256, smoothing: OneEuroFilter | None = None):
        super().__init__(smoothing)
        if face is not None and face < 0:
            raise ValueError(f"face must be >= 0, got {face}")
        if max_faces < 1 or search_every < 0:
            raise ValueError(f"max_faces must be >= 1 and search_every >= 0, got {max_faces}, {search_every}")
        if face is not None and max_faces <= face:
            max_faces = face + 1
        self.face, self.search_every, self.zoom_px = face, int(search_every), int(zoom_px)
        self.weights = weight_matrix(table(refine, correspondence), N_MESH_IRIS if refine else N_MESH)
        self.mesh = FaceMeshVideo(max_faces, refine, min_detection, min_tracking)
        self.zoom = FaceMeshVideo(1, refine, min_detection, min_tracking) if search_every else None
        # the finder's candidates are confirmed by the zoom graph's own detector and mesh on the enlarged crop
        self.finder = TileFinder(min_detection=self.FINDER_SCORE) if search_every else None
        self._reset()

    def _reset(self) -> None:
        self.mesh.reset()
        if self.zoom is not None:
            self.zoom.reset()
        self.prev: np.ndarray | None = None   # the followed face's 68 points
        self.last_mesh: np.ndarray | None = None  # ... and its mesh
        self.score: float | None = None
        self.crop: np.ndarray | None = None   # zoom mode: crop (cx, cy, side) in frame pixels
        self.since_search = 0

    def close(self) -> None:
        self.mesh.close()
        if self.zoom is not None:
            self.zoom.close()
            self.finder.close()

    # -- zoom

    def _zoom_mesh(self, rgb: np.ndarray) -> np.ndarray | None:
        """The mesh of the face in the crop, in frame pixels (None: lost)."""
        cx, cy, side = self.crop
        f, z = self.zoom_px / side, self.zoom_px
        m = np.array([[f, 0, (z - 1) / 2 - f * cx], [0, f, (z - 1) / 2 - f * cy]])
        img = cv2.warpAffine(rgb, m, (z, z), flags=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
        meshes, _ = self.zoom(img)
        if not meshes:
            return None
        return (meshes[0] - (z - 1) / 2) / f + (cx, cy)

    def _set_crop(self, box: np.ndarray) -> None:
        """Zoom on a face box (x0, y0, x1, y1)."""
        side = ((box[2] - box[0]) + (box[3] - box[1])) / 2
        self.crop = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, self.ZOOM_CROP * side])
        self.zoom.reset()

    def _zoom_step(self, rgb: np.ndarray) -> np.ndarray | None:
        mesh = self._zoom_mesh(rgb)
        if mesh is None:
            return None
        box = box_of(mesh[:468])
        cx, cy, side = self.crop
        s = ((box[2] - box[0]) + (box[3] - box[1])) / 2 / side
        off = np.hypot((box[0] + box[2]) / 2 - cx, (box[1] + box[3]) / 2 - cy) / side
        if off > self.RECENTRE or not self.SIZE_RANGE[0] <= s <= self.SIZE_RANGE[1]:
            self._set_crop(box)
            again = self._zoom_mesh(rgb)
            mesh = again if again is not None else mesh
        return mesh

    def _search(self, rgb: np.ndarray) -> tuple[np.ndarray, float] | None:
        """Tile search: the chosen face's mesh (zoomed) and its detection score, or None. Each candidate is
        confirmed by the zoom graph on its crop (BlazeFace's small detections include false ones), tried in
        the order `pick_face` ranks them (whole faces first, then by prominence): the first confirmed one, or
        with ``face=N`` the N-th from the left of the confirmed ones (at most `MAX_CANDIDATES` tried)."""
        t0 = time.perf_counter()
        try:
            hw = rgb.shape[:2]
            dets = sorted(self.finder(rgb), key=lambda d: box_rank(d[0], hw, d[1]), reverse=True)[:self.MAX_CANDIDATES]
            confirmed = []
            for box, score in dets:
                self._set_crop(box)
                mesh = self._zoom_mesh(rgb)
                if mesh is not None:
                    confirmed.append((mesh, score, self.crop))
                    if self.face is None:
                        break
            k = pick_face([m[:468] for m, _, _ in confirmed], self.face, frame_hw=rgb.shape[:2],
                          scores=[sc for _, sc, _ in confirmed])
            if k is None:
                self.crop = None
                return None
            mesh, score, crop = confirmed[k]
            if crop is not self.crop:  # the zoom graph last saw another candidate: start it on this one
                self._set_crop(box_of(mesh[:468]))
                mesh = self._zoom_mesh(rgb)
                if mesh is None:
                    self.crop = None
                    return None
            return mesh, score
        finally:
            self.seconds["detection"] += time.perf_counter() - t0

    # -- a frame

    def _step(self, frame: np.ndarray) -> Landmarks:
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        if self.crop is not None:  # zoom mode
            mesh = self._zoom_step(rgb)
            if mesh is not None:
                return self._report(mesh, "tracked", 1)
            self.zoom.reset()  # lost: its detector once more, on the same crop (the face is large there)
            mesh = self._zoom_mesh(rgb)
            if mesh is not None:
                return self._report(mesh, "detected", 1)
            self.crop, self.prev = None, None
            lost = True
        else:
            lost = False
        meshes, dets = self.mesh(rgb)
        faces = [self.weights @ m for m in meshes]
        scores = detection_scores(faces, dets)
        hw = rgb.shape[:2]
        k = pick_face(faces, self.face, self.prev, frame_hw=hw, scores=scores) if self.prev is not None else None
        status = "tracked"
        if k is not None and box_iou(box_of(faces[k]), box_of(self.prev)) < SAME_FACE_IOU:
            status, self.score = "detected", None  # a whole face took over from a cut one
        if k is None:
            lost = lost or self.prev is not None
            k = pick_face(faces, self.face, frame_hw=hw, scores=scores)
            status, self.score = "detected", None
        if k is None:
            return self._no_face(rgb, lost, len(faces))
        self.since_search = 0
        if np.isfinite(scores[k]) and (status == "detected" or self.score is None):
            self.score = scores[k]  # BlazeFace ran: the score of the detection that covers this face
        return self._report(meshes[k], status, len(faces))

    def _no_face(self, rgb: np.ndarray, lost: bool, faces: int) -> Landmarks:
        """No face to follow in the frame graph: every `search_every` frames the tile search."""
        self.prev = None
        if self.finder is not None and self.since_search % self.search_every == 0:
            found = self._search(rgb)
            if found is not None:
                self.since_search = 0
                self.score = found[1]
                return self._report(found[0], "detected", 1)
        self.since_search += 1
        self.last_mesh = None
        return Landmarks(None, None, "lost" if lost else "no_face", faces)

    def _report(self, mesh: np.ndarray, status: str, faces: int) -> Landmarks:
        self.last_mesh = mesh
        self.prev = self.weights @ mesh
        return Landmarks(self.prev.copy(), self.score if self.score is not None else float("nan"), status, faces)
