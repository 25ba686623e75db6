"""The packed clips on disk: each frame's face crop stored once, as encoded, and cut and resized on read.

Packing every region at the paper's 320 x 320 as raw arrays takes 409,600 B a frame per region: 28 GB for
the paper's 757 clips x 30 frames x 3 regions, and DVC's cache a second copy. Instead a split keeps each
frame of its clips once, as the masks stage wrote it — the face crop's JPEG bytes and its label PNG's bytes,
at the crop's own size — and a region's view of the split applies the clips stage's pixel operations when a
frame is read (`facemask.data.clips.regions.pack_frame`: the face crop resized to S x S; an eye or mouth box cut from it
and resized). The arrays a view returns are, byte for byte, what the dense packing held (the same decoder,
the same operations); the files take a few to a few tens of KB a frame (`bench/bench_train.py --storage crops jpeg arrays --loader-only`).

Layout of ``<clips>/<region>/<split>/``:

* ``crops_jpg.npy`` (bytes,) uint8: the encoded face crops one after another, frame k = row · L + t of
  the split's clips (rows of ``index.csv``); ``crops_jpg_offsets.npy`` (F + 1,) int64 where each starts;
* ``labels_png.npy``, ``labels_png_offsets.npy``: the label PNGs, alike;
* ``boxes.npy`` (eyes, mouth): (clips, L, 4) float32 zoom boxes (x0, y0, x1, y1) in crop pixels;
* ``split.json``: ``{"format", "region", "size", "clips", "length"}``.

The crop and label files are the same for every region: the clips stage writes them once and hard-links
them into the other regions' folders (DVC caches one copy).
"""
from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from facemask.core.io import load_ragged
from facemask.data.labels import read_label_png, remap_labels
from facemask.data.clips.regions import crop_zoom, pack_frame


#: ``clips.storage``: dense packed arrays per region, or each frame's face crop once, encoded (`facemask.data.clips.store`).
STORAGES = ("arrays", "crops")


#: ``<region>/val/labels_orig.npy`` (``storage: arrays``): the val labels at each crop's own resolution
#: (`facemask.core.io.save_ragged`); a `facemask.data.clips.store` split gives them itself (`SplitView.orig_label`).
ORIG_LABELS = "labels_orig.npy"


FORMAT = "facemask-crops/1"


BLOBS = ("crops_jpg", "labels_png")


class BlobWriter:
    """Writes ``<stem>.npy``, chunks of bytes one after another into a file of known total size (a split's
    frames stream to disk; memory does not grow with them), and on `close` ``<stem>_offsets.npy``."""

    def __init__(self, stem: Path, total: int, count: int):
        self.stem, self.total = stem, int(total)
        self.file = open(stem.with_suffix(".npy"), "wb")
        np.lib.format.write_array_header_1_0(self.file, {"descr": "|u1", "fortran_order": False,
                                                         "shape": (self.total,)})
        self.offsets = np.zeros(count + 1, np.int64)
        self.k = 0

    def add(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.k += 1
        self.offsets[self.k] = self.offsets[self.k - 1] + len(chunk)

    def close(self) -> None:
        self.file.close()
        if self.k != len(self.offsets) - 1 or self.offsets[-1] != self.total:
            raise RuntimeError(f"{self.stem}.npy: {self.k} chunks of {self.offsets[self.k]} B written, "
                               f"{len(self.offsets) - 1} of {self.total} B announced (files changed meanwhile?)")
        np.save(self.stem.with_name(self.stem.name + "_offsets.npy"), self.offsets)


def link_blobs(src: Path, dst: Path) -> None:
    """The crop and label files of split folder `src` in `dst` as hard links (copies where links fail)."""
    for name in BLOBS:
        for f in (f"{name}.npy", f"{name}_offsets.npy"):
            try:
                os.link(src / f, dst / f)
            except OSError:
                shutil.copyfile(src / f, dst / f)


def write_split_meta(split_dir: Path, region: str, size: int, clips: int, length: int) -> None:
    (split_dir / "split.json").write_text(json.dumps(
        {"format": FORMAT, "region": region, "size": int(size), "clips": int(clips), "length": int(length)},
        indent=2) + "\n")


def write_split(split_dir: str | Path, crops: Sequence[np.ndarray], labels: Sequence[np.ndarray], length: int,
                size: int, region: str = "face", boxes: np.ndarray | None = None, quality: int = 95) -> None:
    """A split from decoded frames, encoded as the masks stage writes them (JPEG crops at `quality`, label
    PNGs): for benchmarks and checks that start from arrays. `crops`: BGR, `labels`: face class ids, one per
    frame (clip-major); `boxes` (clips, L, 4) for an eye or mouth region."""
    split_dir = Path(split_dir)
    split_dir.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    encoded = {"crops_jpg": [cv2.imencode(".jpg", c, params)[1].tobytes() for c in crops],
               "labels_png": [cv2.imencode(".png", np.asarray(lb, np.uint8))[1].tobytes() for lb in labels]}
    for name, chunks in encoded.items():
        w = BlobWriter(split_dir / name, sum(len(c) for c in chunks), len(chunks))
        for c in chunks:
            w.add(c)
        w.close()
    if boxes is not None:
        np.save(split_dir / "boxes.npy", np.asarray(boxes, np.float32))
    write_split_meta(split_dir, region, size, len(crops) // length, length)


def is_split(split_dir: str | Path) -> bool:
    return (Path(split_dir) / "split.json").is_file()


class _Blob:
    """Chunk k of ``<stem>.npy``, memory-mapped on first use (so a dataset pickles small into workers)."""
    def __init__(self, stem: Path):
        self.stem = stem
        self.offsets = np.load(stem.with_name(stem.name + "_offsets.npy"))
        self._data = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, k: int) -> np.ndarray:
        if self._data is None:
            self._data = np.load(self.stem.with_suffix(".npy"), mmap_mode="r")
        return self._data[self.offsets[k]:self.offsets[k + 1]]

    def __getstate__(self):
        return {**self.__dict__, "_data": None}


def decode_image(data: np.ndarray, where: str) -> np.ndarray:
    """An encoded image -> BGR uint8, as ``cv2.imread`` gives it."""
    img = cv2.imdecode(np.asarray(data), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{where}: cannot decode the image")
    return img


def decode_label(data: np.ndarray, where: str) -> np.ndarray:
    """An encoded label PNG -> class ids, as `facemask.data.labels.read_label_png` reads the file."""
    try:
        return read_label_png(io.BytesIO(np.asarray(data).tobytes()))
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


class SplitView:
    """One region's split of the crop store, read like the dense packing.

    ``images`` (clips, L, S, S, 3) uint8 RGB and ``labels`` (clips, L, S, S) uint8 are array-like: index them
    with ints and slices on the first two axes (``images[k]``, ``images[k, 2:7]``, ``images[::5, :T]``) or
    ``np.asarray`` them; each frame is decoded when read. `orig_label` gives a frame's labels at its crop's
    own size (face: the crop; eyes / mouth: the box, not resized), as the evaluation scores them.
    """

    def __init__(self, split_dir: str | Path):
        self.dir = Path(split_dir)
        meta_path = self.dir / "split.json"
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{meta_path}: format {meta.get('format')!r}, expected {FORMAT!r} (rerun the clips stage)")
        self.region, self.size = meta["region"], int(meta["size"])
        self.clips, self.length = int(meta["clips"]), int(meta["length"])
        self._crops, self._labels = _Blob(self.dir / BLOBS[0]), _Blob(self.dir / BLOBS[1])
        n = self.clips * self.length
        for blob in (self._crops, self._labels):
            if len(blob) != n:
                raise ValueError(f"{blob.stem}.npy: {len(blob)} frames, {meta_path} says {self.clips} x {self.length}")
        self.boxes = None
        if self.region != "face":
            self.boxes = np.load(self.dir / "boxes.npy")
            if self.boxes.shape != (self.clips, self.length, 4):
                raise ValueError(f"{self.dir / 'boxes.npy'}: shape {self.boxes.shape}, expected "
                                 f"{(self.clips, self.length, 4)}")
        self.images = _Frames(self, "images")
        self.labels = _Frames(self, "labels")

    def _where(self, kind: str, k: int) -> str:
        return f"{self.dir / BLOBS[kind != 'images']}.npy frame {k}"

    def crop(self, k: int) -> np.ndarray:
        """Frame k's face crop, BGR at its own size."""
        return decode_image(self._crops[k], self._where("images", k))

    def crop_label(self, k: int) -> np.ndarray:
        """Frame k's face labels at the crop's own size."""
        return decode_label(self._labels[k], self._where("labels", k))

    def frame(self, clip: int, t: int, kind: str) -> np.ndarray:
        """One packed frame: RGB (S, S, 3) for ``images``, class ids (S, S) for ``labels``."""
        k = clip * self.length + t
        box = None if self.boxes is None else self.boxes[clip, t]
        if kind == "images":
            return pack_frame(self.region, self.size, box, image=self.crop(k))
        return pack_frame(self.region, self.size, box, label=self.crop_label(k))

    def orig_label(self, k: int) -> np.ndarray:
        """Frame k's region labels at the crop's own resolution (the eye / mouth box cut, not resized)."""
        lab = self.crop_label(k)
        if self.boxes is None:
            return lab
        clip, t = divmod(k, self.length)
        return crop_zoom(remap_labels(lab, self.region), self.boxes[clip, t])


class _Frames:
    """`SplitView.images` / `.labels`: the dense arrays, decoded on indexing."""
    def __init__(self, view: SplitView, kind: str):
        self.view, self.kind = view, kind
        s = view.size
        self.shape = (view.clips, view.length, s, s, 3) if kind == "images" else (view.clips, view.length, s, s)
        self.dtype = np.dtype(np.uint8)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if len(key) > 2 or any(not isinstance(k, (int, np.integer, slice)) for k in key):
            raise IndexError(f"{self.view.dir} {self.kind}: index the clip and frame axes with ints or slices, "
                             f"got {key!r}")
        axes = [range(n)[k] for k, n in zip(key + (slice(None),) * (2 - len(key)), self.shape[:2])]
        clips = axes[0] if isinstance(axes[0], range) else [axes[0]]
        ts = axes[1] if isinstance(axes[1], range) else [axes[1]]
        out = np.empty((len(clips), len(ts), *self.shape[2:]), self.dtype)
        for i, c in enumerate(clips):
            for j, t in enumerate(ts):
                out[i, j] = self.view.frame(c, t, self.kind)
        if not isinstance(axes[1], range):
            out = out[:, 0]
        if not isinstance(axes[0], range):
            out = out[0]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def load_split(split_dir: str | Path):
    """The packed arrays of one split, (clips, L, S, S, 3) uint8 RGB and (clips, L, S, S) uint8: a
    `facemask.data.clips.store.SplitView`'s (decoded on indexing), or memory-mapped `images.npy` and `labels.npy`;
    checked to belong together."""
    split_dir = Path(split_dir)
    if is_split(split_dir):
        view = SplitView(split_dir)
        return view.images, view.labels
    paths = split_dir / "images.npy", split_dir / "labels.npy"
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"{p}: missing (run the clips stage first)")
    images, labels = (np.load(p, mmap_mode="r") for p in paths)
    if images.ndim != 5 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"{paths[0]}: expected (clips, L, H, W, 3) uint8, got {images.shape} {images.dtype}")
    if labels.shape != images.shape[:-1]:
        raise ValueError(f"{paths[1]}: shape {labels.shape} does not match images {images.shape}")
    return images, labels


def load_orig_labels(split_dir: str | Path) -> list[np.ndarray] | None:
    """Every frame's labels at its crop's own resolution (frame row · L + t): from a `facemask.data.clips.store`
    split, or for plain arrays from ``labels_orig.npy`` (`facemask.core.io.save_ragged`; the clips stage writes
    it for val); None when neither is there (the packed size only)."""

    split_dir = Path(split_dir)
    if not is_split(split_dir):
        return load_ragged(split_dir / ORIG_LABELS) if (split_dir / ORIG_LABELS).is_file() else None
    view = SplitView(split_dir)
    return [view.orig_label(k) for k in range(view.clips * view.length)]

