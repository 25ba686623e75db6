"""Frame sources of `facemask predict`: a video, a folder of frames, a folder of face crops.
"""
from __future__ import annotations

import queue
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from facemask.core.errors import PredictError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


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


class Prefetch:
    """Iterate a frame source in a thread of its own, up to `size` frames ahead: decoding (which
    releases the GIL) overlaps the rest. An error of the source is raised where the frame would be.

    Attributes:
        seconds: time spent decoding, in the thread; `cpu_seconds`: the thread's CPU time.
    """

    def __init__(self, source, size: int = 8):

        self._queue: queue.Queue = queue.Queue(size)
        self._stop = threading.Event()
        self.seconds = self.cpu_seconds = 0.0
        self._thread = threading.Thread(target=self._run, args=(iter(source),), daemon=True,
                                        name="facemask-decoder")
        self._thread.start()

    def _put(self, entry) -> bool:

        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, frames) -> None:
        c0 = time.thread_time()
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
        finally:
            self.cpu_seconds = time.thread_time() - c0

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

