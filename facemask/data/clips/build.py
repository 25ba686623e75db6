"""The clips stage: the clip index, the split files and the packed training data of every region.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Mapping

import cv2
import numpy as np
import pandas as pd
from numpy.lib.format import open_memmap
from tqdm import tqdm

from facemask.core.errors import MissingInputError
from facemask.core.io import atomic_dir, atomic_write_json, atomic_write_text, save_ragged
from facemask.data.labels import REGION_CLASS_IDS, REGION_CLASS_NAMES, REGIONS, region_palette, remap_labels
from facemask.data.layout import frame_stem
from facemask.data.clips.regions import DEFAULT_ASPECT, clip_boxes, crop_zoom, pack_clip, region_sizes
from facemask.data.clips.sampling import (SPLITS, clip_index, missing_frames, official_clips, read_frames, read_sampled,
                                    sample_clips, split_videos, video_key)
from facemask.data.sheets import contact_sheet
from facemask.data.clips.store import (ORIG_LABELS, STORAGES, BlobWriter, decode_image, decode_label, link_blobs, load_split,
                                 write_split_meta)

log = logging.getLogger(__name__)


def _clip_frames(mask_dir: Path, video: str, first: int, length: int):
    """One clip's files as stored (JPEG crops, label PNGs: bytes) and its decoded labels, sizes checked."""
    crops, pngs, labels = [], [], []
    for f in range(first, first + length):
        name = frame_stem(video, f)
        img_path, lab_path = mask_dir / "images_orig" / f"{name}.jpg", mask_dir / "labels_orig" / f"{name}.png"
        if not img_path.is_file() or not lab_path.is_file():
            raise FileNotFoundError(f"{img_path if not img_path.is_file() else lab_path}: missing")
        crop, png = img_path.read_bytes(), lab_path.read_bytes()
        img = decode_image(np.frombuffer(crop, np.uint8), str(img_path))
        lab = decode_label(np.frombuffer(png, np.uint8), str(lab_path))
        if lab.shape != img.shape[:2]:
            raise ValueError(f"{img_path}: image {img.shape[1]}x{img.shape[0]} and label "
                             f"{lab.shape[1]}x{lab.shape[0]} differ in size")
        crops.append(crop)
        pngs.append(png)
        labels.append(lab)
    return crops, pngs, labels


def _sheet_items(images: np.ndarray, labels: np.ndarray, index: pd.DataFrame, length: int, window: int,
                 n: int = 16) -> list:
    """Up to n (BGR image, labels, caption) from packed arrays: clips spread over videos, a
    different window of each."""
    if len(index) == 0:
        return []
    picks = np.linspace(0, len(index) - 1, min(n, len(index))).round().astype(int)
    items = []
    for k, i in enumerate(picks):
        t = (k * window) % length
        row = index.iloc[i]
        items.append((images[i, t][..., ::-1], labels[i, t], f"{row.video} f{row.first_frame + t} {row.split}"))
    return items


def read_index(path: str | Path) -> pd.DataFrame:
    """``index.csv`` of the clips stage (a file, or the clips folder), video names as strings."""
    path = Path(path)
    path = path / "index.csv" if path.is_dir() else path
    if not path.is_file():
        raise MissingInputError(f"{path}: missing (run the clips stage first)")
    return pd.read_csv(path, dtype={"video": str})


def read_split_clips(clips_dir: str | Path, split: str) -> list[dict]:
    """The clips of one split in the order of its packed arrays (row 0, 1, ...).

    Each is ``{"clip", "row", "video", "first_frame", "category", "names"}``, `names` the frames'
    ``VVV_FFFFFF`` stems (the files ``images_orig/<name>.jpg`` and ``labels_orig/<name>.png``).

    Raises:
        ValueError: an unknown split, a split without clips, or rows that are not 0..n-1 (an ``index.csv``
            that does not match its arrays).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {list(SPLITS)}")
    index = read_index(clips_dir)
    part = index[index["split"] == split].sort_values("row")
    if part.empty:
        raise ValueError(f"{clips_dir}: no {split} clips in index.csv")
    if part["row"].tolist() != list(range(len(part))):
        raise ValueError(f"{clips_dir}: the {split} clips' rows in index.csv are not 0..{len(part) - 1}")
    return [{"clip": int(r.clip), "row": int(r.row), "video": str(r.video), "first_frame": int(r.first_frame),
             "category": int(r.category),
             "names": [frame_stem(r.video, f) for f in range(int(r.first_frame), int(r.first_frame) + int(r.length))]}
            for r in part.itertuples()]


def read_test_clips(clips_dir: str | Path) -> list[dict]:
    """`read_split_clips` of the test split: what the fuse and evaluate stages iterate over."""
    return read_split_clips(clips_dir, "test")


def _write_store(work: Path, mask_dir: Path, index: pd.DataFrame, sizes: Mapping[str, int], length: int,
                 window: int, zoom: Mapping, seed: int, progress: bool) -> None:
    """Every split's frames once (the face folder; linked into the others) and the eye and mouth boxes."""

    writers, boxes = {}, {}
    for s in SPLITS:
        part = index[index.split == s]
        names = [frame_stem(v, f) for v, f0 in zip(part["video"], part["first_frame"]) for f in range(f0, f0 + length)]
        d = work / "face" / s
        d.mkdir(parents=True)
        writers[s] = {kind: BlobWriter(d / kind, sum((mask_dir / sub / f"{n}.{ext}").stat().st_size for n in names),
                                       len(names))
                      for kind, sub, ext in (("crops_jpg", "images_orig", "jpg"), ("labels_png", "labels_orig", "png"))}
        for r in ("eyes", "mouth"):
            boxes[r, s] = np.empty((len(part), length, 4), np.float32)
    for row in tqdm(index.itertuples(), total=len(index), desc="clips", unit="clip", disable=not progress):
        crops, pngs, labels = _clip_frames(mask_dir, row.video, int(row.first_frame), length)
        for crop, png in zip(crops, pngs):
            writers[row.split]["crops_jpg"].add(crop)
            writers[row.split]["labels_png"].add(png)
        for r in ("eyes", "mouth"):
            boxes[r, row.split][row.row] = clip_boxes(labels, r, window, zoom[r], seed,
                                                      (video_key(row.video), int(row.first_frame)))
    for s in SPLITS:
        for w in writers[s].values():
            w.close()
        n = int((index.split == s).sum())
        write_split_meta(work / "face" / s, "face", sizes["face"], n, length)
        for r in ("eyes", "mouth"):
            d = work / r / s
            d.mkdir(parents=True)
            link_blobs(work / "face" / s, d)
            np.save(d / "boxes.npy", boxes[r, s])
            write_split_meta(d, r, sizes[r], n, length)


def _write_arrays(work: Path, mask_dir: Path, index: pd.DataFrame, sizes: Mapping[str, int], length: int,
                  window: int, zoom: Mapping, seed: int, progress: bool) -> None:
    """Every region's split as dense packed arrays (`pack_clip`), and the val labels at crop resolution."""

    arrays = {}
    for r in REGIONS:
        for s in SPLITS:
            n, size = int((index.split == s).sum()), sizes[r]
            d = work / r / s
            d.mkdir(parents=True)
            arrays[r, s] = (open_memmap(d / "images.npy", "w+", np.uint8, (n, length, size, size, 3)),
                            open_memmap(d / "labels.npy", "w+", np.uint8, (n, length, size, size)),
                            None if r == "face" else open_memmap(d / "boxes.npy", "w+", np.float32, (n, length, 4)))
    val_orig = {r: [] for r in REGIONS}  # the val labels at each crop's own resolution, in row order
    for row in tqdm(index.itertuples(), total=len(index), desc="clips", unit="clip", disable=not progress):
        crops, _, labels = _clip_frames(mask_dir, row.video, int(row.first_frame), length)
        images = [decode_image(np.frombuffer(c, np.uint8), f"{row.video} clip {row.first_frame}") for c in crops]
        packed = pack_clip(images, labels, sizes, window, zoom, seed, (video_key(row.video), int(row.first_frame)))
        for r, (im, lb, bx) in packed.items():
            a_im, a_lb, a_bx = arrays[r, row.split]
            a_im[row.row], a_lb[row.row] = im, lb
            if bx is not None:
                a_bx[row.row] = bx
            if row.split == "val":
                val_orig[r] += list(labels) if bx is None else \
                    [crop_zoom(remap_labels(lab, r), box) for lab, box in zip(labels, bx)]
    for r in REGIONS:
        save_ragged(work / r / "val" / ORIG_LABELS, val_orig[r])
    for v in arrays.values():
        for a in v:
            if a is not None:
                a.flush()


def _region_layout(region: str, storage: str) -> dict:
    """What ``<region>/meta.json`` says about the files of a split."""
    boxes = {"boxes.npy": "(clips, L, 4) float32 x0, y0, x1, y1 in face-crop pixels"} if region != "face" else {}
    if storage == "arrays":
        return {"arrays": {"images.npy": "(clips, L, S, S, 3) uint8 RGB", "labels.npy": "(clips, L, S, S) uint8",
                           **boxes}}
    return {"store": "facemask.data.clips.store: <split>/crops_jpg.npy, labels_png.npy (the face crops and label PNGs as "
                     "encoded, frame row * L + t) read as (clips, L, S, S, 3) uint8 RGB and (clips, L, S, S) uint8"
                     + (f", boxes.npy {boxes['boxes.npy']}" if boxes else "")}


def build_clips(mask_dir: str | Path, out_dir: str | Path, cfg: Mapping, seed: int, source: str = "synthetic",
                progress: bool = True) -> dict:
    """Write the clip index, the split files and the packed arrays of every region; all or nothing.

    Args:
        mask_dir: the masks stage output (``data/300VW-Mask``).
        out_dir: ``data/clips``, replaced only on success.
        cfg: the ``clips`` params: length, fraction, split, official_split, input_size (one side for
            every region, or ``{face, eyes, mouth}``), window, zoom, storage (`STORAGES`; default arrays).
        seed: the run's seed.
        source: ``data.source``; with ``300vw-mask`` and ``cfg["official_split"]`` the authors'
            split files are used.

    Writes:
        ``index.csv`` (one row per clip: clip, split, row, video, first_frame, length, category;
        `row` is the clip's position in its split's arrays), ``split/{train,val,test}_per10.txt``
        (``/images_orig/VVV_FFFFFF.jpg /labels_orig/VVV_FFFFFF.png`` per frame),
        ``<region>/<split>/``, with ``storage: arrays``: ``images.npy`` (clips, L, S, S, 3) uint8 RGB,
        ``labels.npy`` (clips, L, S, S) uint8 region class ids, and ``val/labels_orig.npy`` (+
        ``labels_orig_shapes.npy``) the val labels at each crop's own resolution (`facemask.core.io.save_ragged`);
        with ``storage: crops``: the split's face crops and label PNGs as the masks stage wrote them, once
        (hard-linked across regions), which `facemask.data.clips.store` reads as those arrays. Both: for eyes / mouth
        ``boxes.npy`` (clips, L, 4) float32 zoom boxes (x0, y0, x1, y1: integers, end-exclusive) in the
        original crop's pixels; ``<region>/meta.json`` (the region's classes and sizes), ``meta.json``
        (everything), ``contact_{face,eyes,mouth}.png``.

    Returns:
        meta (also in ``meta.json``).
    """
    t0 = time.perf_counter()
    mask_dir, out_dir = Path(mask_dir), Path(out_dir)
    storage = cfg.get("storage", "arrays")
    if storage not in STORAGES:
        raise ValueError(f"clips.storage {storage!r}; valid: {', '.join(STORAGES)}")
    length, window = int(cfg["length"]), int(cfg["window"])
    sizes = region_sizes(cfg["input_size"])
    fraction = float(cfg["fraction"])
    zoom = {r: dict(cfg["zoom"][r]) for r in ("eyes", "mouth")}
    for r in zoom:
        zoom[r].setdefault("aspect", DEFAULT_ASPECT[r])
    official = source == "300vw-mask" and bool(cfg.get("official_split", False))
    meta: dict = {"source": source, "official_split": official, "seed": seed, "length": length,
                  "fraction": fraction, "input_size": sizes, "window": window, "proportions": list(cfg["split"]),
                  "zoom": zoom}
    index = _number(_choose_clips(mask_dir, cfg, seed, official, meta), length)
    meta["splits"], meta["shared_videos"] = _split_summary(index, length, official)
    meta["regions"] = {r: {"classes": len(REGION_CLASS_IDS[r]), "class_names": list(REGION_CLASS_NAMES[r]),
                           "face_class_ids": list(REGION_CLASS_IDS[r])} for r in REGIONS}

    with atomic_dir(out_dir) as work:
        index.to_csv(work / "index.csv", index=False)
        _write_split_files(work / "split", index, mask_dir, length, official)
        write = _write_store if storage == "crops" else _write_arrays
        write(work, mask_dir, index, sizes, length, window, zoom, seed, progress)
        for r in REGIONS:
            images, labels = load_split(work / r / "train")
            items = _sheet_items(images, labels, index[index.split == "train"].reset_index(drop=True), length, window)
            cv2.imwrite(str(work / f"contact_{r}.png"), contact_sheet(items, tile=128, columns=8,
                                                                       palette=region_palette(r)))
            atomic_write_json(work / r / "meta.json", {
                "region": r, **meta["regions"][r], "input_size": sizes[r], "length": length, "window": window,
                "zoom": zoom.get(r), "splits": {s: meta["splits"][s]["clips"] for s in SPLITS},
                **_region_layout(r, storage),
                "order": "rows of index.csv of the split, by its column `row`"})
        atomic_write_json(work / "meta.json", meta)  # no wall-clock figures: the bytes follow from data and params
    sizes = " / ".join(f"{meta['splits'][s]['clips']} clips ({len(meta['splits'][s]['videos'])} videos)"
                       for s in SPLITS)
    log.info("%s: train / val / test = %s; %.1f s", out_dir, sizes, time.perf_counter() - t0)
    return meta


def _choose_clips(mask_dir: Path, cfg: Mapping, seed: int, official: bool, meta: dict) -> pd.DataFrame:
    """The clips (video, first_frame, category, split): the authors' split files as they are, or the clips
    the masks stage sampled, or `sample_clips` of every clip; then `split_videos`. Adds to `meta` what
    was available."""
    length, fraction = int(cfg["length"]), float(cfg["fraction"])
    frames = read_frames(mask_dir)
    categories = dict(frames.groupby("video")["category"].first().astype(int))
    if official:
        index, stats = official_clips(mask_dir, length)
        lost = missing_frames(index, frames, length)
        if lost:
            raise ValueError(f"{mask_dir}: split_1 lists {len(lost)} frame(s) the masks stage did not write, "
                             f"e.g. {frame_stem(*lost[0])}")
        index["category"] = [categories.get(v, -1) for v in index["video"]]
        meta["official"] = stats
        meta["clips_available"] = None
        return index
    sampled = read_sampled(mask_dir, length, fraction, seed, frames)
    if sampled is not None:  # the masks stage sampled the clips and wrote only their frames
        index, meta["clips_available"], meta["videos_without_clips"] = sampled
    else:
        every = clip_index(frames, length)
        index = sample_clips(every, fraction, seed)
        meta["clips_available"] = int(len(every))
        meta["videos_without_clips"] = sorted(set(categories) - set(every["video"]))
    assignment = split_videos({v: categories[v] for v in index["video"].unique()}, cfg["split"], seed)
    index["split"] = index["video"].map(assignment)
    return index


def _number(index: pd.DataFrame, length: int) -> pd.DataFrame:
    """`index` in split, video, frame order with the columns of ``index.csv``: `clip` (position), `row`
    (position in its split's arrays) and `length`."""
    order = {s: i for i, s in enumerate(SPLITS)}
    index = index.sort_values(["split", "video", "first_frame"], key=lambda c: c.map(order) if c.name == "split" else c)
    index = index.reset_index(drop=True)
    index.insert(0, "clip", np.arange(len(index)))
    index["row"] = index.groupby("split").cumcount()
    index["length"] = length
    return index[["clip", "split", "row", "video", "first_frame", "length", "category"]]


def _split_summary(index: pd.DataFrame, length: int, official: bool) -> tuple[dict, list]:
    """Per split its videos, clips, frames and categories; and the pairs of splits that share a video
    (none unless the authors' split files say so).

    Raises:
        ValueError: a split without clips."""
    overlap = [s for s in SPLITS for t in SPLITS if s < t
               and set(index.loc[index.split == s, "video"]) & set(index.loc[index.split == t, "video"])]
    if overlap and not official:  # cannot happen: the split is by video
        raise AssertionError(f"splits share videos: {overlap}")
    splits = {}
    for s in SPLITS:
        part = index[index.split == s]
        splits[s] = {"videos": sorted(part["video"].unique().tolist()), "clips": int(len(part)),
                     "frames": int(len(part) * length),
                     "categories": {str(k): int(v) for k, v in
                                    part.groupby("video")["category"].first().value_counts().sort_index().items()}}
        if len(part) == 0:
            raise ValueError(f"split {s!r} has no clips")
    return splits, overlap


def _write_split_files(folder: Path, index: pd.DataFrame, mask_dir: Path, length: int, official: bool) -> None:
    """``{train,val,test}_per10.txt`` in the authors' format (the authors' own when their split is used)."""
    folder.mkdir()
    for s in SPLITS:
        if official:
            text = (mask_dir / "data_splits" / "split_1" / f"{s}_per10.txt").read_text()
        else:
            part = index[index.split == s]
            text = "".join(f"/images_orig/{frame_stem(v, f)}.jpg /labels_orig/{frame_stem(v, f)}.png\n"
                           for v, f0 in zip(part["video"], part["first_frame"]) for f in range(f0, f0 + length))
        atomic_write_text(folder / f"{s}_per10.txt", text)

