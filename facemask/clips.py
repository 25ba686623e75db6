"""1-s clips, their sampling and subject-independent split, zoom boxes, and the packed arrays.

The paper (Sect. 4.1) cuts every video into 1-s sequences (30 frames), picks 10 % of each video's
sequences at random, and splits them by video into 93 / 9 / 12 train / val / test videos (619 / 58 /
80 sequences); the eye and mouth sub-datasets are crops of those frames around the eyes and the
mouth, with random noise on the box and the box held fixed for every 5 consecutive frames (Fig. 4).

Choices where the paper is silent (each one a function here):

* **clips** (`cut_clips`): a video's frames (those the masks stage kept) fall into runs of
  consecutive frame numbers; each run is cut into non-overlapping clips of `length` frames from its
  start, and a remainder shorter than `length` is left out. With no dropped frames this is frames
  1-30, 31-60, ... of the video.
* **sampling** (`sample_count`): ``max(1, floor(fraction * n + 0.5))`` of a video's n clips (round
  half up; every video with a clip keeps at least one), drawn without replacement with a generator
  seeded by (seed, video), so a video's pick does not depend on the other videos.
* **split** (`split_sizes`, `split_videos`): video counts in the given proportions by largest
  remainder; every split gets at least one video, and when there are at least four videos per
  category, val and test get at least one video of each category (30 synthetic videos in three
  categories: 24 / 3 / 3). Test, then val, are drawn per category in proportion to the category's
  size (largest remainder again, after the one-each minimum), the rest is train; the videos are
  shuffled within a category by the seed. With the authors' release and ``official_split`` their
  ``split_1`` files are used as they are (`official_clips`).
* **zoom boxes** (`zoom_box`): the bounding box of the region's pixels (eyes: class 2; mouth:
  classes 3 and 4) over a window of `window` consecutive face labels (windows start at frames
  0, 5, 10 ... of a clip; the box is in face-crop pixels and the same pixel box is cut from each of
  the window's crops, whose sizes differ by a few pixels at most), grown by `margin` of its size
  on each side, its shorter side then grown to a fixed aspect ratio (width / height: eyes 2, mouth
  1, `DEFAULT_ASPECT`) so the S x S resize stretches the eyes 2 : 1 at most instead of the 5-7 : 1 of a
  tight both-eyes box, then moved by up to ``noise`` x its size and scaled by up to ``1 +- noise``
  (uniform draws). The fusion stage calls the same function on predicted masks with ``noise=0``.
  Boxes may reach outside the crop; `crop_zoom` pads with black / background there.
"""
from __future__ import annotations

import logging
import math
import time
import zlib
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np
import pandas as pd

from facemask.errors import BadInputError, MissingInputError
from facemask.io import atomic_dir, atomic_write_json, atomic_write_text, save_ragged
from facemask.masks import EYES, INNER_MOUTH, LIPS, PALETTE, contact_sheet

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
REGIONS = ("face", "eyes", "mouth")
#: For each region, the face class id of each of its class ids (index = the region's class id).
REGION_CLASS_IDS: dict[str, tuple[int, ...]] = {
    "face": (0, 1, 2, 3, 4),
    "eyes": (0, EYES),
    "mouth": (0, LIPS, INNER_MOUTH),
}
REGION_CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "face": ("background", "skin", "eyes", "lips", "inner_mouth"),
    "eyes": ("background", "eye"),
    "mouth": ("background", "lips", "inner_mouth"),
}
#: Width / height of the zoom boxes (the shorter side is grown to it).
DEFAULT_ASPECT = {"eyes": 2.0, "mouth": 1.0}
#: Where a region sits in the face box (classes 1-4) when a window holds none of its pixels
#: (e.g. a predicted mask that missed it): centre (x, y) and size (w, h) as shares of the face box,
#: the medians over the synthetic 300VW-Mask labels (the face box spans brows to chin).
FALLBACK = {"eyes": (0.5, 0.16, 0.61, 0.08), "mouth": (0.5, 0.66, 0.41, 0.20)}
#: Zoom boxes are at least this many pixels a side.
MIN_BOX = 4
#: The masks stage's list of the clips it sampled (when it wrote only their frames; `read_sampled`).
SAMPLED_CLIPS = "clips.csv"
#: ``clips.storage``: dense packed arrays per region, or each frame's face crop once, encoded (`facemask.store`).
STORAGES = ("arrays", "crops")
#: ``<region>/val/labels_orig.npy`` (``storage: arrays``): the val labels at each crop's own resolution
#: (`facemask.io.save_ragged`); a `facemask.store` split gives them itself (`SplitView.orig_label`).
ORIG_LABELS = "labels_orig.npy"
_REGION_CODE = {"face": 0, "eyes": 1, "mouth": 2}


# ---------------------------------------------------------------------------------------------------
# Clips, sampling, split


def video_key(video: str) -> int:
    """A stable integer for a video name (its number, or a CRC of the name)."""
    return int(video) if str(video).isdigit() else zlib.crc32(str(video).encode())


def read_frames(mask_dir: str | Path) -> pd.DataFrame:
    """``frames.csv`` of the masks stage (video names kept as strings: ``001``)."""
    path = Path(mask_dir) / "frames.csv"
    if not path.is_file():
        raise MissingInputError(f"{path}: missing (run the masks stage first)")
    df = pd.read_csv(path, dtype={"video": str})
    missing = {"video", "frame"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    if "category" not in df.columns:
        df["category"] = -1
    return df


def cut_clips(frames: Sequence[int], length: int) -> list[int]:
    """First frames of the clips of one video: each run of consecutive frame numbers is cut into
    non-overlapping pieces of `length` frames from its start; shorter remainders are left out."""
    if length < 1:
        raise ValueError(f"clip length must be >= 1, got {length}")
    f = np.unique(np.asarray(frames, dtype=np.int64))
    if f.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(f) != 1) + 1
    firsts = []
    for run in np.split(f, breaks):
        firsts += [int(run[i]) for i in range(0, len(run) - length + 1, length)]
    return firsts


def clip_index(frames: pd.DataFrame, length: int) -> pd.DataFrame:
    """Every clip of every video: columns video, first_frame, category."""
    rows = []
    for video, g in frames.groupby("video", sort=True):
        cat = int(g["category"].iloc[0])
        rows += [(video, f, cat) for f in cut_clips(g["frame"].to_numpy(), length)]
    return pd.DataFrame(rows, columns=["video", "first_frame", "category"])


def sample_count(n: int, fraction: float) -> int:
    """Clips kept of a video's n: ``max(1, floor(fraction * n + 0.5))`` (0 when n = 0), at most n."""
    if not 0 < fraction <= 1:
        raise ValueError(f"clips.fraction must be in (0, 1], got {fraction}")
    if n <= 0:
        return 0
    return min(n, max(1, math.floor(fraction * n + 0.5)))


def _pick(video: str, n: int, fraction: float, seed: int) -> np.ndarray:
    """Sorted positions of the `sample_count` clips kept of a video's n, drawn by a generator seeded by (seed, video)."""
    k = sample_count(n, fraction)
    if k == 0:
        return np.zeros(0, np.int64)
    rng = np.random.default_rng([seed, 1, video_key(video)])
    return np.sort(rng.choice(n, size=k, replace=False))


def sample_clips(index: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    """`sample_count` clips of each video, drawn with a generator seeded by (seed, video)."""
    keep = []
    for video, g in index.groupby("video", sort=True):
        keep += list(g.index[_pick(video, len(g), fraction, seed)])
    return index.loc[keep].sort_values(["video", "first_frame"]).reset_index(drop=True)


def sample_video(video: str, frames: Sequence[int], length: int, fraction: float, seed: int) -> tuple[list[int], int]:
    """(first frames of the clips `sample_clips` keeps of one video whose usable frames are `frames`, and the
    number of clips it has): what the masks stage needs to write only the sampled clips' frames."""
    firsts = cut_clips(frames, length)
    return [firsts[i] for i in _pick(video, len(firsts), fraction, seed)], len(firsts)


def _missing(index: pd.DataFrame, frames: pd.DataFrame, length: int) -> list[tuple[str, int]]:
    """(video, frame) of the clips in `index` that ``frames.csv`` does not list."""
    known = set(zip(frames["video"], frames["frame"]))
    return [(v, f) for v, f0 in zip(index["video"], index["first_frame"]) for f in range(f0, f0 + length)
            if (v, f) not in known]


def read_sampled(mask_dir: str | Path, length: int, fraction: float, seed: int,
                 frames: pd.DataFrame) -> tuple[pd.DataFrame, int, list[str]] | None:
    """The clips the masks stage sampled (``SAMPLED_CLIPS``, written when it kept only their frames), or
    None when it wrote every frame.

    Returns:
        (clips: video, first_frame, category; the number of clips the videos had; the videos without one).

    Raises:
        ValueError: they were drawn with other `length`, `fraction` or `seed` than these (the masks
            stage must rerun), or a frame of theirs is missing from ``frames.csv``.
    """
    import json

    mask_dir = Path(mask_dir)
    path = mask_dir / SAMPLED_CLIPS
    if not path.is_file():
        return None
    sampling = json.loads((mask_dir / "summary.json").read_text()).get("sampling") or {}
    want = {"length": int(length), "fraction": float(fraction), "seed": int(seed)}
    got = {k: sampling.get(k) for k in want}
    if got != want:
        raise ValueError(f"{path}: the masks stage sampled the clips with {got}; clips / data params ask for {want} "
                         f"(rerun the masks stage)")
    index = pd.read_csv(path, dtype={"video": str})
    lost = _missing(index, frames, length)
    if lost:
        raise ValueError(f"{path}: {len(lost)} frame(s) of the sampled clips are not in frames.csv, "
                         f"e.g. {lost[0][0]}_{lost[0][1]:06d}")
    return (index[["video", "first_frame", "category"]], int(sampling["clips_available"]),
            list(sampling["videos_without_clips"]))


def _largest_remainder(total: int, weights: Sequence[float], floor_each: Sequence[int] | None = None,
                       cap: Sequence[int] | None = None) -> list[int]:
    """Integers summing to `total` in proportion to `weights` (largest remainder, ties by order),
    each at least its `floor_each` and at most its `cap`."""
    n = len(weights)
    floor_each = list(floor_each or [0] * n)
    cap = list(cap) if cap is not None else [total] * n
    counts = [min(f, c) for f, c in zip(floor_each, cap)]
    rest = total - sum(counts)
    w = np.asarray(weights, dtype=np.float64)
    while rest > 0:
        open_ = [i for i in range(n) if counts[i] < cap[i]]
        if not open_:
            break
        ww = w[open_] / w[open_].sum() if w[open_].sum() > 0 else np.full(len(open_), 1 / len(open_))
        share = ww * rest
        add = np.floor(share).astype(int)
        for j, i in enumerate(open_):
            add[j] = min(add[j], cap[i] - counts[i])
        if add.sum() == 0:  # hand out single units by largest remainder
            order = sorted(range(len(open_)), key=lambda j: (-(share[j] - math.floor(share[j])), j))
            add[order[0]] = 1
        for j, i in enumerate(open_):
            counts[i] += int(add[j])
        rest = total - sum(counts)
    return counts


def split_sizes(n_videos: int, proportions: Sequence[float], min_eval: int = 1) -> tuple[int, int, int]:
    """Videos per split (train, val, test) in the given proportions, by largest remainder.

    Val and test get at least `min_eval` videos each (taken from train) while train keeps at
    least as many as val and test together; every split gets at least one.

    Raises:
        ValueError: fewer than 3 videos, or proportions that are not three non-negative numbers
            with a positive sum.
    """
    p = np.asarray(proportions, dtype=np.float64)
    if p.shape != (3,) or (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"clips.split must be three non-negative proportions, got {proportions!r}")
    if n_videos < 3:
        raise BadInputError(f"a train / val / test split by video needs at least 3 videos with a clip, got {n_videos}")
    p = p / p.sum()
    raw = p * n_videos
    counts = np.floor(raw).astype(int)
    for i in sorted(range(3), key=lambda i: (-(raw[i] - counts[i]), i))[: n_videos - counts.sum()]:
        counts[i] += 1
    for i in (1, 2):  # val / test minimum, while train keeps at least as many as val + test
        while counts[i] < min_eval and counts[0] - 1 >= counts[1] + counts[2] + 1:
            counts[i] += 1
            counts[0] -= 1
    for i in (1, 2):  # at least one in every split, whatever the proportions
        if counts[i] == 0:
            j = int(np.argmax(counts))
            counts[j] -= 1
            counts[i] += 1
    if counts[0] == 0:
        j = int(np.argmax(counts))
        counts[j] -= 1
        counts[0] += 1
    return int(counts[0]), int(counts[1]), int(counts[2])


def split_videos(categories: Mapping[str, int], proportions: Sequence[float], seed: int) -> dict[str, str]:
    """Assign each video to train / val / test, subject-independently (see the module docstring).

    Args:
        categories: video -> category (any ints; -1 for unknown is one more category).
        proportions: train / val / test (e.g. the paper's 93 / 9 / 12).
        seed: the same seed gives the same split.

    Returns:
        video -> split name.
    """
    videos = sorted(categories)
    strata = sorted({categories[v] for v in videos})
    min_eval = len(strata) if len(videos) >= 4 * len(strata) else 1
    n_train, n_val, n_test = split_sizes(len(videos), proportions, min_eval)
    rng = np.random.default_rng([seed, 2])
    pools = {}
    for c in strata:
        members = [v for v in videos if categories[v] == c]
        pools[c] = [members[i] for i in rng.permutation(len(members))]
    out = {}
    for name, n in (("test", n_test), ("val", n_val)):
        sizes = [len(pools[c]) for c in strata]
        one_each = [1 if (n >= len(strata) and s > 0) else 0 for s in sizes]
        take = _largest_remainder(n, sizes, one_each, sizes)
        for c, k in zip(strata, take):
            for v in pools[c][:k]:
                out[v] = name
            pools[c] = pools[c][k:]
    for c in strata:
        for v in pools[c]:
            out[v] = "train"
    return {v: out[v] for v in videos}


def official_clips(mask_dir: str | Path, length: int) -> tuple[pd.DataFrame, dict]:
    """Clips of the authors' ``data_splits/split_1/{train,val,test}_per10.txt``.

    The frames each file lists are grouped per video into runs of consecutive frame numbers and cut
    into clips of `length` (`cut_clips`); frames left in shorter pieces (where the authors left out
    frames with unreliable landmarks) stay in the split files but are not in the clip index.

    Returns:
        (index with columns split, video, first_frame; per split {"lines", "frames_in_clips"}).
    """
    split_dir = Path(mask_dir) / "data_splits" / "split_1"
    rows, stats = [], {}
    for split in SPLITS:
        path = split_dir / f"{split}_per10.txt"
        if not path.is_file():
            raise MissingInputError(f"{path}: missing (clips.official_split needs the authors' split files)")
        frames: dict[str, list[int]] = {}
        lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
        for i, parts in enumerate(lines, 1):
            name = Path(parts[0]).stem
            v, _, f = name.partition("_")
            if not f.isdigit():
                raise ValueError(f"{path}:{i}: cannot read a frame name from {parts[0]!r}")
            frames.setdefault(v, []).append(int(f))
        n_in = 0
        for v in sorted(frames):
            firsts = cut_clips(frames[v], length)
            rows += [(split, v, f) for f in firsts]
            n_in += len(firsts) * length
        stats[split] = {"lines": len(lines), "frames_in_clips": n_in}
    return pd.DataFrame(rows, columns=["split", "video", "first_frame"]), stats


# ---------------------------------------------------------------------------------------------------
# Zoom boxes


def _region_mask(labels: np.ndarray, region: str) -> np.ndarray:
    return np.isin(labels, REGION_CLASS_IDS[region][1:])


def _bbox(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """(x0, y0, x1, y1) end-exclusive of the True pixels, or None."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return float(cols[0]), float(rows[0]), cols[-1] + 1.0, rows[-1] + 1.0


def _union(boxes) -> tuple[float, float, float, float] | None:
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    b = np.asarray(boxes)
    return b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()


def zoom_box(labels, region: str, margin: float, noise: float = 0.0, rng: np.random.Generator | None = None,
             aspect: float | None = None) -> tuple[int, int, int, int]:
    """The eye or mouth crop box for one window of face labels.

    Args:
        labels: (H, W) face class ids, or a window of them ((T, H, W) or a list of 2-D maps; the
            crops of consecutive frames may differ a little in size): ground truth, or a model's
            predictions. The box covers the region in every frame of the window, in pixel
            coordinates shared by the window's crops (one box per window).
        region: ``eyes`` (class 2) or ``mouth`` (classes 3, 4).
        margin: the tight box grows by this share of its width / height on each side.
        noise: with `rng`, the centre moves by up to noise x the box size (uniform, per axis) and
            the size is scaled by a factor in [1 - noise, 1 + noise] (one factor, the aspect stays).
        rng: source of the noise; None means no noise.
        aspect: width / height the shorter side is grown to; None: `DEFAULT_ASPECT[region]`; 0:
            keep the box's own shape.

    Returns:
        (x0, y0, x1, y1) ints, end-exclusive, in the labels' pixels; may reach outside the image
        (`crop_zoom` pads there). When no frame holds the region, the box is placed by `FALLBACK`
        in the face box (classes 1-4), or in the whole image when there is no face either.
    """
    if region not in DEFAULT_ASPECT:
        raise ValueError(f"zoom region must be one of {sorted(DEFAULT_ASPECT)}, got {region!r}")
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        window = [labels]
    else:
        window = [np.asarray(lb) for lb in labels]
    if not window:
        raise ValueError("zoom_box: empty window")
    box = _union(_bbox(_region_mask(lb, region)) for lb in window)
    if box is not None:
        bx0, by0, bx1, by1 = box
        cx, cy, bw, bh = (bx0 + bx1) / 2, (by0 + by1) / 2, bx1 - bx0, by1 - by0
    else:
        face = _union(_bbox(lb > 0) for lb in window)
        if face is None:
            h, w = window[0].shape
            face = (0.0, 0.0, float(w), float(h))
        fx0, fy0, fx1, fy1 = face
        fcx, fcy, fw, fh = FALLBACK[region]
        cx, cy = fx0 + fcx * (fx1 - fx0), fy0 + fcy * (fy1 - fy0)
        bw, bh = fw * (fx1 - fx0), fh * (fy1 - fy0)
    bw, bh = bw * (1 + 2 * margin), bh * (1 + 2 * margin)
    a = DEFAULT_ASPECT[region] if aspect is None else aspect
    if a:
        if bw < a * bh:
            bw = a * bh
        else:
            bh = bw / a
    if noise and rng is not None:
        dx, dy, ds = rng.uniform(-noise, noise, size=3)
        cx, cy = cx + dx * bw, cy + dy * bh
        bw, bh = bw * (1 + ds), bh * (1 + ds)
    bw, bh = max(bw, MIN_BOX), max(bh, MIN_BOX)
    x0, y0 = math.floor(cx - bw / 2 + 0.5), math.floor(cy - bh / 2 + 0.5)
    return int(x0), int(y0), int(x0 + max(1, round(bw))), int(y0 + max(1, round(bh)))


def crop_zoom(image: np.ndarray, box: Sequence[int], size: int | None = None,
              interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    """``image[y0:y1, x0:x1]`` with zeros where the box reaches outside, resized to size x size.

    Use ``cv2.INTER_NEAREST`` for labels (padding is then background).
    """
    x0, y0, x1, y1 = (int(v) for v in box)
    h, w = image.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0) + image.shape[2:], image.dtype)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if sx0 < sx1 and sy0 < sy1:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    if size is not None:
        out = cv2.resize(out, (size, size), interpolation=interpolation)
    return out


def remap_labels(labels: np.ndarray, region: str) -> np.ndarray:
    """Face class ids -> the region's ids (eyes: 0 bg, 1 eye; mouth: 0 bg, 1 lips, 2 inner mouth)."""
    lut = np.zeros(256, np.uint8)
    for i, c in enumerate(REGION_CLASS_IDS[region]):
        lut[c] = i
    return lut[np.asarray(labels, dtype=np.uint8)]


def region_palette(region: str) -> tuple[tuple[int, int, int], ...]:
    """The paper's colours of a region's classes (Fig. 4: eyes green, lips cyan, inner mouth blue)."""
    return tuple(PALETTE[c] for c in REGION_CLASS_IDS[region])


# ---------------------------------------------------------------------------------------------------
# Packing


def _clip_frames(mask_dir: Path, video: str, first: int, length: int):
    """One clip's files as stored (JPEG crops, label PNGs: bytes) and its decoded labels, sizes checked."""
    from facemask.store import decode_image, decode_label

    crops, pngs, labels = [], [], []
    for f in range(first, first + length):
        name = f"{video}_{f:06d}"
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


def region_sizes(input_size: int | Mapping[str, int]) -> dict[str, int]:
    """``clips.input_size`` as ``{region: side}``: one int for every region, or a mapping per region."""
    if isinstance(input_size, Mapping):
        missing = [r for r in REGIONS if r not in input_size]
        if missing:
            raise ValueError(f"clips.input_size: no size for {missing}")
        return {r: int(input_size[r]) for r in REGIONS}
    return {r: int(input_size) for r in REGIONS}


def pack_frame(region: str, size: int, box=None, *, image: np.ndarray | None = None,
               label: np.ndarray | None = None) -> np.ndarray:
    """One frame of a region's packed data from the face crop: `image` (BGR, as read) -> (S, S, 3) RGB,
    or `label` (face class ids) -> (S, S) region class ids.

    Face: the whole crop resized to S x S (INTER_AREA; labels INTER_NEAREST). Eyes and mouth: the zoom
    `box` cut from the crop (`crop_zoom`) and resized alike, labels mapped to the region's classes.
    """
    if (image is None) == (label is None):
        raise ValueError("pack_frame: pass image or label")
    if region == "face":
        if image is not None:
            return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)[..., ::-1]
        return cv2.resize(label, (size, size), interpolation=cv2.INTER_NEAREST)
    if image is not None:
        return crop_zoom(image, box, size, cv2.INTER_AREA)[..., ::-1]
    return crop_zoom(remap_labels(label, region), box, size, cv2.INTER_NEAREST)


def clip_boxes(labels: list[np.ndarray], region: str, window: int, zoom: Mapping, seed: int,
               clip_key: Sequence[int]) -> np.ndarray:
    """(L, 4) float32 zoom boxes of one clip for an eye or mouth region: one `zoom_box` per `window` frames,
    computed from those frames' labels, with noise drawn from a generator seeded by (seed, region, *clip_key)."""
    L = len(labels)
    rng = np.random.default_rng([seed, 3, _REGION_CODE[region], *clip_key])
    boxes = np.empty((L, 4), np.float32)
    for s in range(0, L, window):
        win = slice(s, min(L, s + window))
        boxes[win] = zoom_box(labels[win], region, float(zoom["margin"]), float(zoom.get("noise", 0.0)), rng=rng,
                              aspect=zoom.get("aspect"))
    return boxes


def pack_clip(images: list[np.ndarray], labels: list[np.ndarray], size: int | Mapping[str, int], window: int,
              zoom: Mapping[str, Mapping], seed: int, clip_key: Sequence[int],
              regions: Sequence[str] = REGIONS) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """One clip's frames for every region: (images (L, S, S, 3) RGB, labels (L, S, S), boxes (L, 4) or None).

    `size`: S, one for every region or ``{region: S}``. Boxes from `clip_boxes`, frames from `pack_frame`:
    what a region's `facemask.store.SplitView` returns for the clip.
    """
    out, sizes = {}, region_sizes(size)
    for region in regions:
        boxes = None if region == "face" else clip_boxes(labels, region, window, zoom[region], seed, clip_key)
        imgs = np.stack([pack_frame(region, sizes[region], None if boxes is None else boxes[t], image=im)
                         for t, im in enumerate(images)])
        labs = np.stack([pack_frame(region, sizes[region], None if boxes is None else boxes[t], label=lb)
                         for t, lb in enumerate(labels)])
        out[region] = (imgs, labs, boxes)
    return out


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
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {list(SPLITS)}")
    index = read_index(clips_dir)
    part = index[index["split"] == split].sort_values("row")
    return [{"clip": int(r.clip), "row": int(r.row), "video": r.video, "first_frame": int(r.first_frame),
             "category": int(r.category),
             "names": [f"{r.video}_{f:06d}" for f in range(int(r.first_frame), int(r.first_frame) + int(r.length))]}
            for r in part.itertuples()]


def read_test_clips(clips_dir: str | Path) -> list[dict]:
    """`read_split_clips` of the test split: what the fuse and evaluate stages iterate over."""
    return read_split_clips(clips_dir, "test")


def _write_store(work: Path, mask_dir: Path, index: pd.DataFrame, sizes: Mapping[str, int], length: int,
                 window: int, zoom: Mapping, seed: int, progress: bool) -> None:
    """Every split's frames once (the face folder; linked into the others) and the eye and mouth boxes."""
    from tqdm import tqdm

    from facemask.store import BlobWriter, link_blobs, write_split_meta

    writers, boxes = {}, {}
    for s in SPLITS:
        part = index[index.split == s]
        names = [f"{v}_{f:06d}" for v, f0 in zip(part["video"], part["first_frame"]) for f in range(f0, f0 + length)]
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
    from numpy.lib.format import open_memmap
    from tqdm import tqdm

    from facemask.store import decode_image

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
    return {"store": "facemask.store: <split>/crops_jpg.npy, labels_png.npy (the face crops and label PNGs as "
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
        ``labels_orig_shapes.npy``) the val labels at each crop's own resolution (`facemask.io.save_ragged`);
        with ``storage: crops``: the split's face crops and label PNGs as the masks stage wrote them, once
        (hard-linked across regions), which `facemask.store` reads as those arrays. Both: for eyes / mouth
        ``boxes.npy`` (clips, L, 4) float32 zoom boxes (x0, y0, x1, y1: integers, end-exclusive) in the
        original crop's pixels; ``<region>/meta.json`` (the region's classes and sizes), ``meta.json``
        (everything), ``contact_{face,eyes,mouth}.png``.

    Returns:
        meta (also in ``meta.json``).
    """
    from facemask.data import load_split

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
    frames = read_frames(mask_dir)
    categories = dict(frames.groupby("video")["category"].first().astype(int))
    official = source == "300vw-mask" and bool(cfg.get("official_split", False))
    meta: dict = {"source": source, "official_split": official, "seed": seed, "length": length,
                  "fraction": fraction, "input_size": sizes, "window": window, "proportions": list(cfg["split"]),
                  "zoom": zoom}
    if official:
        index, stats = official_clips(mask_dir, length)
        lost = _missing(index, frames, length)
        if lost:
            raise ValueError(f"{mask_dir}: split_1 lists {len(lost)} frame(s) the masks stage did not write, "
                             f"e.g. {lost[0][0]}_{lost[0][1]:06d}")
        index["category"] = [categories.get(v, -1) for v in index["video"]]
        meta["official"] = stats
        meta["clips_available"] = None
    else:
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
    order = {s: i for i, s in enumerate(SPLITS)}
    index = index.sort_values(["split", "video", "first_frame"], key=lambda c: c.map(order) if c.name == "split" else c)
    index = index.reset_index(drop=True)
    index.insert(0, "clip", np.arange(len(index)))
    index["row"] = index.groupby("split").cumcount()
    index["length"] = length
    index = index[["clip", "split", "row", "video", "first_frame", "length", "category"]]
    overlap = [s for s in SPLITS for t in SPLITS if s < t
               and set(index.loc[index.split == s, "video"]) & set(index.loc[index.split == t, "video"])]
    if overlap and not official:  # cannot happen: the split is by video
        raise AssertionError(f"splits share videos: {overlap}")
    meta["splits"] = {}
    for s in SPLITS:
        part = index[index.split == s]
        meta["splits"][s] = {"videos": sorted(part["video"].unique().tolist()), "clips": int(len(part)),
                             "frames": int(len(part) * length),
                             "categories": {str(k): int(v) for k, v in
                                            part.groupby("video")["category"].first().value_counts().sort_index().items()}}
        if len(part) == 0:
            raise ValueError(f"split {s!r} has no clips")
    meta["shared_videos"] = overlap
    meta["regions"] = {r: {"classes": len(REGION_CLASS_IDS[r]), "class_names": list(REGION_CLASS_NAMES[r]),
                           "face_class_ids": list(REGION_CLASS_IDS[r])} for r in REGIONS}

    with atomic_dir(out_dir) as work:
        index.to_csv(work / "index.csv", index=False)
        (work / "split").mkdir()
        for s in SPLITS:
            if official:
                text = (mask_dir / "data_splits" / "split_1" / f"{s}_per10.txt").read_text()
            else:
                part = index[index.split == s]
                text = "".join(f"/images_orig/{v}_{f:06d}.jpg /labels_orig/{v}_{f:06d}.png\n"
                               for v, f0 in zip(part["video"], part["first_frame"]) for f in range(f0, f0 + length))
            atomic_write_text(work / "split" / f"{s}_per10.txt", text)
        write = _write_store if storage == "crops" else _write_arrays
        write(work, mask_dir, index, sizes, length, window, zoom, seed, progress)
        for r in REGIONS:
            images, labels = load_split(work / r / "train")
            items = _sheet_items(images, labels, index[index.split == "train"].reset_index(drop=True), length, window)
            cv2.imwrite(str(work / f"contact_{r}.png"), contact_sheet(items, tile=128, columns=8,
                                                                       palette=region_palette(r)))
        for r in REGIONS:
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
