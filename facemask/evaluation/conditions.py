"""Scores by frame condition, the hold baseline and the ceiling: what a memory of the last clean view adds.

The synthetic generator records for every frame (``data/raw/300VW/frames.csv``) the transient event it
carries (``transient``: a kind, or empty) and the share of the face's skin outline that occluders cover
(``occlusion``). From that record:

* **degraded** (`is_degraded`, the one definition): the frame carries a transient event, or occluders cover
  at least `OCCLUSION_THRESHOLD` of its face. Every other frame is **clean**.
* **conditions** (`frame_conditions`): per test frame, one of `CONDITIONS` — clean; degraded with a clean
  frame earlier in its T-frame window (the windows 0.., T.., 2T.. of a clip, as `facemask.inference.fusion.windows_of`
  cuts them: what a windowed ConvLSTM could remember); degraded without one (the window's memory holds only
  degraded frames, or the frame opens its window).
* **the hold baseline and the ceiling** (`hold_labels`): the FCN's labels on every degraded frame replaced by the
  FCN's labels (the baseline), or by the ground truth (the ceiling), of the last clean frame earlier in the clip
  (a degraded frame with none keeps the FCN's own). A label map is carried
  from one frame to another through the video frame (`carry_label`): pasted into full-frame coordinates at
  its crop box and cut out at the other frame's crop box, pixels outside the first box counted background.
  That is what a memory holding the face still, in the image, would give: it ignores the face's motion
  since the clean frame. The baseline is what a per-frame model with such a memory of its own last clean view
  scores (a temporal model should beat it); the ceiling is the most such a memory could add to the FCN (a model
  that also follows the motion can still exceed it, on frames where the face moved).

Every score is accumulated as in the evaluate stage: per-frame confusion matrices summed over the frames
of a condition, IoU per class, the mIoU over the non-background classes (`facemask.evaluation.metrics.reports_by`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from facemask.core.errors import BadInputError, MissingInputError
from facemask.data.labels import BACKGROUND
from facemask.data.layout import frame_stem
from facemask.evaluation.metrics import reports_by

#: A frame whose face's skin outline is at least this much covered by occluders is degraded (the record's
#: ``occlusion``; DESIGN.md, "Degraded frames and the per-condition scores", has the measurement behind the value).
OCCLUSION_THRESHOLD = 0.1
CLEAN, WITH_PAST, WITHOUT_PAST = "clean", "degraded_with_clean_past", "degraded_without_clean_past"
#: The conditions, in report order.
CONDITIONS = (CLEAN, WITH_PAST, WITHOUT_PAST)
#: Columns the per-frame record must have.
RECORD_COLUMNS = ("video", "frame", "transient", "occlusion")


def is_degraded(transient, occlusion, threshold: float = OCCLUSION_THRESHOLD) -> np.ndarray:
    """Boolean array: the frames that carry a transient event (a non-empty kind) or whose face is covered
    by occluders for at least `threshold` of its skin outline."""
    kind = pd.Series(np.atleast_1d(np.asarray(transient, dtype=object))).fillna("").astype(str).to_numpy()
    occ = np.atleast_1d(np.asarray(occlusion, dtype=np.float64))
    if kind.shape != occ.shape:
        raise ValueError(f"transient {kind.shape} and occlusion {occ.shape} differ in length")
    return (kind != "") | (occ >= threshold)


def frame_conditions(degraded: Sequence[bool], window: int) -> list[str]:
    """The condition (`CONDITIONS`) of each frame of one clip, its windows starting at frames 0, T, 2T, ..."""
    if window < 1:
        raise ValueError(f"window must be positive, got {window}")
    deg = [bool(d) for d in degraded]
    out = []
    for i, d in enumerate(deg):
        if not d:
            out.append(CLEAN)
        else:
            start = i - i % window
            out.append(WITH_PAST if not all(deg[start:i]) else WITHOUT_PAST)
    return out


def hold_sources(degraded: Sequence[bool]) -> list[int]:
    """For each frame of one clip, the frame whose labels the hold oracle shows: itself when clean, the last
    clean frame before it when degraded, itself when no earlier frame of the clip is clean."""
    out, last = [], None
    for i, d in enumerate(degraded):
        if not d:
            last = i
            out.append(i)
        else:
            out.append(i if last is None else last)
    return out


def carry_label(label: np.ndarray, src_box: Sequence[int], dst_box: Sequence[int],
                fill: int = BACKGROUND) -> np.ndarray:
    """A label map of the crop `src_box` (x0, y0, x1, y1; frame pixels, end-exclusive) moved to the crop
    `dst_box`: pasted into the frame at `src_box`, cut out at `dst_box`; pixels `src_box` does not cover
    get `fill`. Returns a new (dst h, dst w) array of `label`'s dtype."""
    label = np.asarray(label)
    sx0, sy0, sx1, sy1 = (int(v) for v in src_box)
    dx0, dy0, dx1, dy1 = (int(v) for v in dst_box)
    if label.shape != (sy1 - sy0, sx1 - sx0):
        raise ValueError(f"label {label.shape} does not fit its box {(sx0, sy0, sx1, sy1)}")
    if dx1 <= dx0 or dy1 <= dy0:
        raise ValueError(f"empty target box {(dx0, dy0, dx1, dy1)}")
    out = np.full((dy1 - dy0, dx1 - dx0), fill, dtype=label.dtype)
    x0, y0, x1, y1 = max(sx0, dx0), max(sy0, dy0), min(sx1, dx1), min(sy1, dy1)
    if x0 < x1 and y0 < y1:
        out[y0 - dy0:y1 - dy0, x0 - dx0:x1 - dx0] = label[y0 - sy0:y1 - sy0, x0 - sx0:x1 - sx0]
    return out


def hold_labels(labels: Sequence[np.ndarray], boxes: Sequence[Sequence[int]], degraded: Sequence[bool],
                held: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
    """A hold on one clip: each frame's `labels`, or on a degraded frame with a clean frame before it the `held`
    labels (default: `labels`) of the last such frame (`hold_sources`), carried to this frame's crop box
    (`carry_label`).

    With the FCN's labels for both, the **hold baseline**: a per-frame model with a memory of its own last clean
    view. With the FCN's labels and ``held`` the ground truth, the **ceiling** of such a memory: what the FCN plus
    a perfect memory of the last clean view of the face, held still in the image, would score."""
    held = labels if held is None else held
    if not len(labels) == len(boxes) == len(degraded) == len(held):
        raise ValueError(f"labels {len(labels)}, held {len(held)}, boxes {len(boxes)} and degraded {len(degraded)} "
                         "differ in length")
    return [labels[i] if s == i else carry_label(held[s], boxes[s], boxes[i])
            for i, s in enumerate(hold_sources(degraded))]


def condition_reports(conditions: Sequence[str], cms: np.ndarray, methods: Sequence[str]) -> dict:
    """Per condition (``all`` first, then `CONDITIONS`): ``{"frames": n, method: iou_report, ...}`` from the
    frames' confusion matrices `cms` (n_frames, n_methods, C, C). A condition without frames has ``frames``
    0 and None for every method."""
    cms = np.asarray(cms)
    conditions = list(conditions)
    if len(conditions) != len(cms):
        raise ValueError(f"{len(conditions)} conditions for {len(cms)} frames")
    unknown = sorted(set(conditions) - set(CONDITIONS))
    if unknown:
        raise ValueError(f"unknown conditions {unknown}; valid: {list(CONDITIONS)}")
    by = reports_by(pd.DataFrame({"condition": conditions}), cms, methods, "condition")
    out = {"all": {"frames": int(len(cms)), **reports_by(None, cms, methods)}}
    for c in CONDITIONS:
        out[c] = by.get(c, {"frames": 0, **{m: None for m in methods}})
    return out


def seeds_by_condition(runs: Mapping[int, Mapping]) -> dict:
    """Per condition and method (the hold oracle included): the mean and sample standard deviation of the
    mIoU over the training seeds, from each run's ``conditions`` (`condition_reports`' form, as recorded in
    ``run.json`` and ``metrics/seeds/seed_<N>.json``), and their number. A run without per-condition scores,
    or a method without frames in a condition, takes no part."""
    vals: dict[str, dict[str, list[float]]] = {}
    for s in sorted(runs):
        for cond, by in (runs[s].get("conditions") or {}).items():
            for m, rep in by.items():
                if isinstance(rep, Mapping) and rep.get("miou") is not None:
                    vals.setdefault(cond, {}).setdefault(m, []).append(float(rep["miou"]))
    return {c: {m: {"seeds": len(v), "mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else None}
                for m, v in by.items()} for c, by in vals.items()}


def crop_boxes(frames_csv: Path) -> dict[str, tuple[int, int, int, int]]:
    """{frame stem: its ground-truth crop box (x0, y0, x1, y1)} from the masks stage's ``frames.csv``.

    Raises:
        BadInputError: the file holds no crop boxes (the authors' release has crops only).
    """
    f = pd.read_csv(frames_csv, dtype={"video": str})
    if f[["x0", "y0", "x1", "y1"]].isna().any().any():
        raise BadInputError(f"{frames_csv}: crop boxes missing (the authors' release holds crops only)")
    return {frame_stem(v, n): (int(a), int(b), int(c), int(d))
            for v, n, a, b, c, d in zip(f.video, f.frame, f.x0, f.y0, f.x1, f.y1)}


def read_record(path: str | Path) -> pd.DataFrame:
    """The generator's per-frame record (``frames.csv``) indexed by the 300VW-Mask frame name ``VVV_FFFFFF``,
    with the columns ``transient`` (str, empty for none) and ``occlusion`` (float)."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: missing (the per-frame record of the synthetic generator; "
                                f"the download stage writes it with data.source synthetic)")
    df = pd.read_csv(path, dtype={"video": str, "transient": str}, keep_default_na=False)
    missing = [c for c in RECORD_COLUMNS if c not in df.columns]
    if missing:
        raise BadInputError(f"{path}: columns {missing} missing (has {list(df.columns)})")
    df["video"] = df["video"].str.zfill(3)
    occ = pd.to_numeric(df["occlusion"], errors="coerce")
    if occ.isna().any():
        raise BadInputError(f"{path}: occlusion is not a number in row {int(occ.isna().to_numpy().argmax()) + 2}")
    df["occlusion"] = occ.astype(np.float64)
    df.index = [frame_stem(v, f) for v, f in zip(df["video"], df["frame"])]
    return df[["transient", "occlusion"]]


def clip_record(record: pd.DataFrame, names: Sequence[str], path: str | Path = "frames.csv") -> pd.DataFrame:
    """The record's rows of the frames `names`, in order; an error naming the first frame it lacks."""
    missing = [n for n in names if n not in record.index]
    if missing:
        raise BadInputError(f"{path}: no row for frame {missing[0]} ({len(missing)} frames of the clip missing)")
    return record.loc[list(names)]
