"""Tiny datasets in the real 300VW / 300VW-Mask layouts, and archives of them, for tests."""
from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np

from facemask.data.ibug68 import N_POINTS, write_pts

SIZE = (32, 24)  # video frame width, height
#: The tiny 300VW of the `tiny_300vw` fixture: video -> frames (a training video and a category-3 one).
TINY_300VW = {"001": 3, "410": 4}


def points(frame: int) -> np.ndarray:
    """68 distinct in-frame 0-based points that move with the frame index."""
    i = np.arange(N_POINTS, dtype=np.float64)
    return np.stack([(i % 17) + 0.5 * frame, (i // 17) * 4.0 + 2.0], axis=1)


def write_video(path: Path, frames: int, size: tuple[int, int] = SIZE) -> Path:
    """An MJPG `.avi` of `frames` grey frames (what 300VW readers open with OpenCV)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, size)
    for f in range(frames):
        w.write(np.full((size[1], size[0], 3), 40 * f % 256, np.uint8))
    w.release()
    return path


def write_300vw(ds: Path, videos: dict[str, int], annotations: dict[str, int] | None = None) -> Path:
    """The 300VW layout in `ds` (e.g. ``.../300VW_Dataset_2015_12_14``):
    ``NNN/{vid.avi, annot/000001.pts...}`` and ReadMe.txt.

    Args:
        videos: video name -> frame count.
        annotations: video name -> number of .pts files, where it differs from the frame count.
    """
    for name, frames in videos.items():
        write_video(ds / name / "vid.avi", frames)
        for f in range(1, (annotations or {}).get(name, frames) + 1):
            write_pts(ds / name / "annot" / f"{f:06d}.pts", points(f))
    ds.mkdir(parents=True, exist_ok=True)
    (ds / "ReadMe.txt").write_text("300VW (test copy)\n")
    return ds


def write_300vw_mask(ds: Path, frames: dict[str, int]) -> Path:
    """The authors' layout in `ds` (e.g. ``.../300VW-Mask-Dataset``): images_orig/*.jpg,
    labels_orig/*.png, data_splits/split_1/*_per10.txt; frames are dealt to train / val / test in turn.
    """
    (ds / "images_orig").mkdir(parents=True)
    (ds / "labels_orig").mkdir()
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    k = 0
    for video, n in frames.items():
        for f in range(1, n + 1):
            stem = f"{video}_{f:06d}"
            cv2.imwrite(str(ds / "images_orig" / f"{stem}.jpg"), np.full((8, 8, 3), 128, np.uint8))
            cv2.imwrite(str(ds / "labels_orig" / f"{stem}.png"), np.zeros((8, 8, 3), np.uint8))
            lines[list(lines)[k % 3]].append(f"/images_orig/{stem}.jpg /labels_orig/{stem}.png")
            k += 1
    split = ds / "data_splits" / "split_1"
    split.mkdir(parents=True)
    for part, rows in lines.items():
        (split / f"{part}_per10.txt").write_text("".join(r + "\n" for r in rows))
    return ds


def make_zip(src: Path, dest: Path, extra: dict[str, bytes] | None = None) -> Path:
    """Zip the tree `src` (entry names relative to src.parent, as `zip -r` run beside it) plus `extra` entries."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(src.rglob("*")):
            zf.write(p, p.relative_to(src.parent).as_posix())
        for name, data in (extra or {}).items():
            zf.writestr(zipfile.ZipInfo(name), data)  # ZipInfo keeps the name as given
    return dest


def zip_with_mode(dest: Path, name: str, mode: int, data: bytes = b"/etc/passwd") -> Path:
    """A zip of one entry with Unix `mode` (0o120777: a symlink) in its external attributes, as Info-ZIP writes."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    with zipfile.ZipFile(dest, "w") as zf:
        zf.writestr(info, data)
    return dest


def make_tar(dest: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    """A tar with the given members (data for regular files, None otherwise)."""
    with tarfile.open(dest, "w") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return dest
