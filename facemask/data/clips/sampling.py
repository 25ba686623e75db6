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

import json
import math
import zlib
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from facemask.core.errors import BadInputError, MissingInputError
from facemask.data.layout import SAMPLED_CLIPS, frame_stem

SPLITS = ("train", "val", "test")




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



def missing_frames(index: pd.DataFrame, frames: pd.DataFrame, length: int) -> list[tuple[str, int]]:
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
    lost = missing_frames(index, frames, length)
    if lost:
        raise ValueError(f"{path}: {len(lost)} frame(s) of the sampled clips are not in frames.csv, "
                         f"e.g. {frame_stem(*lost[0])}")
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

