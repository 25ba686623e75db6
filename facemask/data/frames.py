"""Reading 300VW videos and reconciling their frames with their per-frame annotations.

A 300VW video folder holds ``vid.avi`` and ``annot/000001.pts ...`` (one file per frame, 1-based).
Tools that read it usually assert that the two counts agree; in the real archive a few videos have
broken frames, so here every frame number is checked on its own and each one that cannot be used
is counted with its reason (`DROP_REASONS`) instead of stopping or skipping it silently:

* ``no_annotation``     -- a readable frame without a ``.pts`` file;
* ``no_frame``          -- a ``.pts`` file for a frame number the video does not have;
* ``unreadable_frame``  -- a frame the container announces but OpenCV cannot decode;
* ``bad_annotation``    -- a ``.pts`` file that cannot be parsed (wrong header, point count, text);
* ``landmarks_nan``     -- a ``.pts`` file with NaN or infinite coordinates;
* ``landmarks_outside`` -- a landmark outside the frame (more than `outside_tol` pixels beyond the
  pixel area ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``).

Frames are streamed one at a time (a 1080p video does not fit in memory).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from facemask.core.errors import InputError
from facemask.data.ibug68 import PtsError, read_pts

DROP_REASONS = ("no_annotation", "no_frame", "unreadable_frame", "bad_annotation", "landmarks_nan",
                "landmarks_outside")

#: After this many undecodable frames in a row the rest of the announced frames count as unreadable.
MAX_FAILURES_IN_A_ROW = 25
#: Frame numbers kept per drop reason in the summary (all are counted).
EXAMPLES = 10

_PTS_NAME = re.compile(r"^(\d+)\.pts$")


def _order(reason: str) -> tuple[int, str]:
    return (DROP_REASONS.index(reason) if reason in DROP_REASONS else len(DROP_REASONS), reason)


class VideoError(InputError, RuntimeError):
    """A video that cannot be opened at all; the message names the file."""


def frame_count(path: str | Path) -> int:
    """The number of frames the container announces (0 when unknown)."""
    cap = cv2.VideoCapture(str(path))
    try:
        return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))) if cap.isOpened() else 0
    finally:
        cap.release()


def iter_frames(path: str | Path) -> Iterator[tuple[int, np.ndarray | None]]:
    """Yield ``(frame number (1-based), BGR frame or None)`` for every frame of a video.

    ``None`` marks a frame that the container announces (``CAP_PROP_FRAME_COUNT``) but that cannot
    be decoded; reading then seeks past it. Frames beyond the announced count are read as long as
    they decode. After `MAX_FAILURES_IN_A_ROW` failures the remaining announced frames are yielded
    as ``None`` without further attempts.

    Raises:
        VideoError: OpenCV cannot open the file.
    """
    path = Path(path)
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"{path}: OpenCV cannot open the video")
    try:
        announced = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        n, failures = 0, 0
        while True:
            ok, frame = cap.read()
            n += 1
            if ok and frame is not None:
                failures = 0
                yield n, frame
                continue
            if n > announced:  # the end of the stream
                return
            failures += 1
            yield n, None
            if failures >= MAX_FAILURES_IN_A_ROW:
                for k in range(n + 1, announced + 1):
                    yield k, None
                return
            cap.set(cv2.CAP_PROP_POS_FRAMES, n)  # 0-based position of frame n + 1
    finally:
        cap.release()


def annotation_files(annot_dir: str | Path) -> dict[int, Path]:
    """Frame number -> ``.pts`` path for the files ``NNNNNN.pts`` of an ``annot/`` folder."""
    out = {}
    annot_dir = Path(annot_dir)
    if annot_dir.is_dir():
        for p in annot_dir.iterdir():
            m = _PTS_NAME.match(p.name)
            if m:
                out[int(m.group(1))] = p
    return out


def landmarks_inside(points: np.ndarray, height: int, width: int, tol: float = 0.0) -> bool:
    """Whether every point lies in the frame's pixel area, widened by `tol` pixels."""
    lo = -0.5 - tol
    return bool((points[:, 0] >= lo).all() and (points[:, 0] <= width - 0.5 + tol).all()
                and (points[:, 1] >= lo).all() and (points[:, 1] <= height - 0.5 + tol).all())


@dataclass
class Reconciliation:
    """What one video held, what was kept and what was dropped (filled while iterating)."""

    video: str
    frames: int = 0                     # frame numbers the video has (decodable or not)
    annotations: int = 0                # .pts files
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: dict[str, list[int]] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    def drop(self, reason: str, frame: int, message: str | None = None) -> None:
        self.dropped[reason] += 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < EXAMPLES:
            ex.append(frame)
        if message and len(self.messages) < EXAMPLES:
            self.messages.append(message)

    def as_dict(self) -> dict:
        return {"video": self.video, "frames": self.frames, "annotations": self.annotations, "kept": self.kept,
                "dropped": {r: n for r, n in sorted(self.dropped.items(), key=lambda kv: _order(kv[0])) if n},
                "examples": {r: v for r, v in self.examples.items()}, "messages": self.messages}


def reconcile(video_dir: str | Path, outside_tol: float = 0.0,
              report: Reconciliation | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(frame number, BGR frame, (68, 2) landmarks)`` for every usable frame of a 300VW video.

    Every frame number of the video or of its annotations ends up either yielded (``report.kept``)
    or dropped with its reason (``report.dropped``); see the module docstring for the reasons.

    Args:
        video_dir: ``.../NNN`` with ``vid.avi`` and ``annot/``.
        outside_tol: pixels a landmark may lie beyond the frame before the frame is dropped.
        report: filled in while iterating (create one to read the counts afterwards).

    Raises:
        VideoError: ``vid.avi`` missing or not openable.
    """
    video_dir = Path(video_dir)
    report = report if report is not None else Reconciliation(video_dir.name)
    avi = video_dir / "vid.avi"
    if not avi.is_file():
        raise VideoError(f"{avi}: missing video file")
    annots = annotation_files(video_dir / "annot")
    report.annotations = len(annots)
    seen = 0
    for n, frame in iter_frames(avi):
        seen = n
        pts_path = annots.get(n)
        if frame is None:
            report.drop("unreadable_frame", n)
            continue
        if pts_path is None:
            report.drop("no_annotation", n)
            continue
        try:
            points = read_pts(pts_path)
        except PtsError as e:
            report.drop("landmarks_nan" if "not finite" in str(e) else "bad_annotation", n, str(e))
            continue
        h, w = frame.shape[:2]
        if not landmarks_inside(points, h, w, outside_tol):
            report.drop("landmarks_outside", n)
            continue
        report.kept += 1
        yield n, frame, points
    report.frames = seen
    for n in sorted(k for k in annots if k > seen or k < 1):
        report.drop("no_frame", n)
