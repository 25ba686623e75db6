"""What `facemask predict` writes: label PNGs, boxes.csv, the overlay video, and the checks on --out.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facemask.app.sources import FrameSource
from facemask.core.errors import OutputError, PredictError
from facemask.data.labels import PALETTE, write_label_png
from facemask.inference.tracker import crop_mask


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


#: The paper's colours as BGR, indexed by class id; and as an OpenCV look-up table (1, 256, 3).
PALETTE_BGR = np.ascontiguousarray(np.asarray(PALETTE, np.uint8)[:, ::-1])
PALETTE_LUT = np.zeros((1, 256, 3), np.uint8)
PALETTE_LUT[0, :len(PALETTE_BGR)] = PALETTE_BGR
CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def blend_labels(image: np.ndarray, label: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """What `facemask.data.labels.overlay` draws (the classes blended in, background untouched, each region's
    outline in its full colour on its own side), in uint8 with OpenCV alone (a look-up table for the colours,
    ``addWeighted``, a 4-neighbour erosion and dilation for the outlines, masked copies): 0.07 ms for a 170-px
    crop, against 0.5 ms with NumPy's indexing and masked copies (the same bytes). The data stages keep the
    NumPy version, whose bytes do not depend on OpenCV's SIMD kernels (DESIGN.md); here an overlay video is
    only looked at."""
    label = np.ascontiguousarray(label, np.uint8)
    colours = cv2.LUT(cv2.merge([label, label, label]), PALETTE_LUT)
    fg = cv2.compare(label, 0, cv2.CMP_GT)
    out = image.copy()
    cv2.copyTo(cv2.addWeighted(image, 1 - alpha, colours, alpha, 0), fg, out)
    edge = cv2.bitwise_or(cv2.compare(cv2.dilate(label, CROSS), label, cv2.CMP_NE),
                          cv2.compare(cv2.erode(label, CROSS), label, cv2.CMP_NE))
    cv2.copyTo(colours, cv2.bitwise_and(edge, fg), out)
    return out


def draw_overlay(frame: np.ndarray, label: np.ndarray | None, box=None, note: str | None = None) -> np.ndarray:
    """`frame` (BGR) with a crop's classes blended in the paper's colours (`blend_labels`), the crop box in
    yellow and an optional note in the top-left corner.

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


#: boxes.csv ``status``: detected / tracked (`facemask.inference.tracker.LandmarkTracker`), bridged (a short gap
#: filled in by `facemask.inference.detect.BoxSmoother`), outlier (a box the smoother dropped), lost (the track
#: failed its test), no_face (nothing found), given (``--cropped``).
FACE_STATUSES = ("detected", "tracked", "bridged", "given", "outlier", "lost", "no_face")


@dataclass
class FrameItem:
    """One frame on its way through: decoded, located, segmented, written."""
    name: str
    frame: np.ndarray                  # BGR, the whole frame (the crop itself with --cropped)
    status: str = "no_face"            # how its face was found: see `FACE_STATUSES`
    box: tuple | None = None           # crop box (x0, y0, x1, y1) in frame pixels; None: no face
    crop: np.ndarray | None = None     # RGB crop for the network, until it has run
    label: np.ndarray | None = None    # class ids at the crop's size
    points: np.ndarray | None = None   # the landmark method: 68 landmarks whose mask the writer draws in the box

    @property
    def done(self) -> bool:
        """Ready to be written: no face, its label made, or its landmarks there for the writer to draw."""
        return self.box is None or self.label is not None or self.points is not None


class Writer:
    """Label PNGs and the overlay video, in frame order, written by a thread of their own.

    PNG compression and video encoding release the GIL, so writing overlaps the tracking and the
    network on a second core. The landmark method's masks are drawn here too (`FrameItem.points`), off the
    thread that waits for the landmarker. At most `MAX_PENDING` frames wait; `close` waits for them and re-raises
    the first error of the writing thread.
    """

    MAX_PENDING = 16

    def __init__(self, root: Path, source: FrameSource, video: bool, video_format: str):

        self._pool = ThreadPoolExecutor(1, thread_name_prefix="facemask-writer")
        self._pending: deque = deque()
        self.seconds = self.cpu_seconds = 0.0  # wall and CPU time of the writing thread
        self.mask_seconds = 0.0  # of `seconds`: drawing the landmark method's masks
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

    def write(self, item: FrameItem) -> None:
        """Queue `item` for writing (in order); raises an error of an earlier write."""
        self._pending.append(self._pool.submit(self._write, item))
        while self._pending and (len(self._pending) > self.MAX_PENDING or self._pending[0].done()):
            self._pending.popleft().result()

    def _write(self, item: FrameItem) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        if item.label is None and item.points is not None:  # the landmark method's mask, drawn here
            item.label = crop_mask(item.points, item.box)
            self.mask_seconds += time.perf_counter() - t0
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
        self.cpu_seconds += time.thread_time() - c0

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


def check_out(out: Path, overwrite: bool, keep: dict[str, Path], need: int = 0) -> None:
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
def write_errors(out: Path):
    """An OSError while writing (disk full, permissions changed meanwhile) as an OutputError naming --out."""
    try:
        yield
    except OSError as e:
        raise OutputError(f"--out {out}: cannot write ({e.strerror or e})") from e

