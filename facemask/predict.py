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

import json
import re
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from facemask.io import atomic_dir
from facemask.masks import CLASS_NAMES, write_label_png
from facemask.masks import overlay as blend_labels

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class PredictError(Exception):
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
    try:
        return load_model(path)
    except Exception as e:  # torch and pickle raise many kinds on a bad file
        raise PredictError(f"{path}: not a readable facemask model ({type(e).__name__}: {e})") from None


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


METHODS = ("cascade", "primary", "fcn")


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


@dataclass
class _Item:
    """One frame on its way through: decoded, located, segmented, written."""

    name: str
    frame: np.ndarray                  # BGR, the whole frame (the crop itself with --cropped)
    detected: bool = False             # the detector found a face in this very frame
    box: tuple | None = None           # crop box (x0, y0, x1, y1) in frame pixels; None: no face
    crop: np.ndarray | None = None     # RGB crop for the network, until it has run
    label: np.ndarray | None = None    # class ids at the crop's size

    @property
    def done(self) -> bool:
        return self.box is None or self.label is not None


class _Writer:
    """Label PNGs and the overlay video, in frame order."""

    def __init__(self, root: Path, source: FrameSource, video: bool, video_format: str):
        self.labels = root / "labels"
        self.labels.mkdir()
        self.boxes = open(root / "boxes.csv", "w")
        self.boxes.write("frame,x0,y0,x1,y1,detected\n")
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
        h, w = item.frame.shape[:2]
        full = np.zeros((h, w), np.uint8) if item.box is None else paste_label(item.label, item.box, (h, w))
        write_label_png(self.labels / f"{item.name}.png", full)
        self.boxes.write(f"{item.name},{','.join(map(str, item.box or ('', '', '', '')))},{int(item.detected)}\n")
        if self._vw is not None:
            note = None if item.box is not None else f"{item.name}: no face"
            img = draw_overlay(item.frame, item.label, item.box, note)
            if (w, h) != self.size:  # --cropped: crops of other sizes are fitted to the first one's
                img = cv2.resize(img, self.size, interpolation=cv2.INTER_AREA)
            self._vw.write(img)

    def close(self) -> None:
        self.boxes.close()
        if self._vw is not None:
            self._vw.release()
            self._vw = None


class _Windows:
    """Located frames -> T-frame windows of one face segment -> the network, `batch` windows at a time
    -> the writer, in frame order. Holds at most about ``2·batch·T`` frames (see the module docstring)."""

    def __init__(self, segmenter, batch: int, writer: _Writer, timings: dict, bar):
        self.segmenter, self.T, self.batch = segmenter, segmenter.T, batch
        self.writer, self.timings, self.bar = writer, timings, bar
        self.queue: deque[_Item] = deque()  # every frame not yet written, in order
        self.window: list[_Item] = []       # the open window of the current face segment
        self.ready: list[list[_Item]] = []  # closed windows waiting for the network
        self.no_face: list[str] = []
        self.with_face = 0

    def add(self, item: _Item, box) -> None:
        """Queue a located frame: `box` is its crop box in frame pixels, or None (no face)."""
        item.box = box
        if box is None:
            self.no_face.append(item.name)
            self._close()
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
        t0 = time.perf_counter()
        while self.queue and self.queue[0].done:
            self.writer.write(self.queue.popleft())
            self.bar.update(1)
        self.timings["writing"] += time.perf_counter() - t0


def default_out(input: str | Path) -> Path:
    """Where the output goes without ``--out``: next to the input, named after it (``clip.mp4`` ->
    ``clip_masks``; ``frames/`` -> ``frames_masks``)."""
    p = Path(input)
    p = p.resolve() if p.name in ("", ".", "..") else p
    return p.with_name(f"{p.stem if p.is_file() else p.name}_masks")


def _check_out(out: Path, overwrite: bool, keep: dict[str, Path]) -> None:
    """`out` may be created or replaced: it is no folder of someone else's, nor holds `keep` (input, models)."""
    dst = out.resolve()
    for what, path in keep.items():
        src = Path(path).resolve()
        if dst == src or dst in src.parents:
            raise PredictError(f"--out {out}: would replace the {what} {path}")
    if out.exists() and not out.is_dir():
        raise PredictError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise PredictError(f"--out {out}: folder exists and is not empty (pass --overwrite to replace it)")


def predict(input: str | Path, out: str | Path, models: str | Path = "models", cropped: bool = False,
            device: str = "auto", batch: int = 4, video: bool = True, video_format: str = "mp4",
            fps: float = 30.0, overwrite: bool = False, max_gap: int = 5, smooth: int = 3,
            progress: bool = True, threads: int | None = None, segmenter=None, method: str = "cascade") -> dict:
    """Masks for every frame of `input`, written to `out`; returns the summary (also in summary.json).

    Args:
        input: a video file, a folder of frames, or with `cropped` a folder of face crops.
        out: output folder, created atomically (it must not exist or be empty, unless `overwrite`).
        models: folder with ``{face,eyes,mouth}/convlstm.pt``.
        cropped: the images are face crops already (made like the training crops): no detection.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        batch: T-frame windows per forward pass.
        video: write the overlay video; `video_format` ``mp4`` (mp4v) or ``avi`` (MJPG).
        fps: frame rate of the overlay for folder input (a video keeps its own).
        max_gap: frames without a detection between two detections that are bridged by interpolation.
        smooth: the face box is the median over ±`smooth` frames.
        progress: show a tqdm bar on stderr.
        threads: CPU threads of torch and OpenCV (None: their defaults, every core).
        method: ``cascade`` (the paper's final model), ``primary`` (the face ConvLSTM-FCN alone) or ``fcn``
            (the per-frame baseline FCN): pick what `metrics/eval.json` says works best on your data.
        segmenter: instead of loading `models`: any callable taking windows (lists of T RGB uint8 crops)
            and returning their label maps, with an attribute ``T`` (as `facemask.fusion.Cascade`).

    Raises:
        PredictError: bad input, models or output folder; nothing is left at `out`.
    """
    from tqdm import tqdm

    from facemask.detect import BoxSmoother, DetectorError, HaarFaceDetector, crop_box

    for name, value, least in (("--batch", batch, 1), ("--max-gap", max_gap, 0), ("--smooth", smooth, 0)):
        if value < least:
            raise PredictError(f"{name} {value}: must be at least {least}")
    if not fps > 0:
        raise PredictError(f"--fps {fps}: must be positive")
    if threads is not None:
        if threads < 1:
            raise PredictError(f"--threads {threads}: must be at least 1")
        import torch

        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
    t_start = time.perf_counter()
    out = Path(out)
    source = open_source(input, cropped, fps)
    segmenter_given = segmenter is not None
    _check_out(out, overwrite, {"input": source.path, **({} if segmenter_given else {"models": Path(models)})})
    if not segmenter_given:
        segmenter = load_segmenter(models, method, device, batch)
    try:
        detector = None if cropped else HaarFaceDetector()
    except DetectorError as e:
        raise PredictError(str(e)) from None
    smoother = None if cropped else BoxSmoother(radius=smooth, max_gap=max_gap)
    timings = {"decode": 0.0, "detection": 0.0, "network": 0.0, "writing": 0.0}
    t_setup = time.perf_counter() - t_start
    located: deque[_Item] = deque()  # frames waiting for the smoother's verdict
    n = detected = 0

    with atomic_dir(out) as tmp:
        writer = _Writer(tmp, source, video, video_format)
        bar = tqdm(total=source.count, unit="frame", desc="predict", disable=not progress, file=sys.stderr,
                   dynamic_ncols=True)
        windows = _Windows(segmenter, batch, writer, timings, bar)

        def place(final):
            for _, face in final:
                it = located.popleft()
                windows.add(it, None if face is None else crop_box(face, it.frame.shape[:2]))

        try:
            frames = iter(source)
            while True:
                t0 = time.perf_counter()
                nxt = next(frames, None)
                t1 = time.perf_counter()
                timings["decode"] += t1 - t0
                if nxt is None:
                    break
                n += 1
                item = _Item(*nxt)
                if cropped:
                    item.detected = True
                    detected += 1
                    windows.add(item, (0, 0, item.frame.shape[1], item.frame.shape[0]))
                    continue
                face = detector(item.frame)
                item.detected = face is not None
                detected += item.detected
                located.append(item)
                final = smoother.push(face)
                timings["detection"] += time.perf_counter() - t1
                place(final)
            if smoother is not None:
                place(smoother.flush())
            windows.finish()
        finally:
            writer.close()
            bar.close()
        if n == 0:
            raise PredictError(f"{source.path}: no frame could be decoded")

        warnings = []
        if source.kind == "video" and n != source.count:
            warnings.append(f"{source.path}: the header announces {source.count} frames, {n} could be decoded "
                            "(a truncated or damaged file?)")
        total = time.perf_counter() - t_start
        summary = {
            "input": str(source.path),
            "kind": source.kind,
            "frames": n,
            "frames_announced": source.count,
            "frame_size": list(source.size),
            "fps": source.fps,
            "faces_found": windows.with_face,
            "frames_detected": detected,
            "frames_bridged": windows.with_face - detected,
            "frames_without_face": windows.no_face,
            "classes": list(CLASS_NAMES),
            "outputs": {"labels": "labels/<frame>.png", "boxes": "boxes.csv",
                        "overlay": writer.video_path.name if writer.video_path else None},
            "models": str(models) if segmenter_given is False else None,
            "device": str(getattr(segmenter, "device", "")) or None,
            "window": segmenter.T,
            "batch": batch,
            "detector": None if cropped else {"name": "opencv haar: frontalface_alt2, profileface (both sides)",
                                              "max_gap": max_gap, "smooth_radius": smooth},
            "timings_s": {k: round(v, 3) for k, v in {**timings, "setup": t_setup, "total": total}.items()},
            "frames_per_s": round(n / total, 2) if total > 0 else None,
            "warnings": warnings,
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
