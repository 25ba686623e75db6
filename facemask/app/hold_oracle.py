"""The face FCN's mIoU and the hold oracle's on one split, overall and per frame condition.

The benchmark's degraded frames are calibrated with it before anything temporal is trained (DESIGN.md,
"Degraded frames"): on a validation split, never against the test set that reports a verdict. Reads the
trained face FCN, the split's clips (the clips stage's index and packed face crops: what the models see),
the original-resolution labels and crop boxes (the masks stage's folder) and the generator's per-frame
record (``frames.csv`` of the raw synthetic set). The FCN's labels are made as the fuse stage makes them
(`facemask.inference.fusion.fcn_probs` on the packed crop, scores resized to the crop's own size, arg-max)
and scored as the evaluate stage scores them: per-frame confusion matrices summed, IoU per class, mIoU over
the four facial classes. The hold oracle replaces the FCN's labels on every degraded frame by its labels of
the last clean frame earlier in the clip (`facemask.evaluation.conditions.hold_labels`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from facemask.core import errors
from facemask.core.devices import resolve_device
from facemask.core.iou import confusion_matrix, mean_iou
from facemask.data.clips.build import read_split_clips
from facemask.data.clips.store import load_split
from facemask.data.labels import CLASS_NAMES, read_label_png
from facemask.evaluation import conditions as K
from facemask.evaluation.metrics import reports_by
from facemask.inference.fusion import fcn_probs, labels_at
from facemask.models.registry import load_model

METHODS = ("fcn", "hold")


def kind_of(transient: str, occlusion: float, threshold: float) -> str:
    """One label per frame for the per-kind table: the transient kind, else ``occluded`` or ``clean``."""
    return transient if transient else ("occluded" if occlusion >= threshold else "clean")


def _inputs(model_path: Path, clips_dir: Path, split: str):
    """The split's clips, its packed face crops and the FCN; a missing or unusable one as one line naming it."""
    if not Path(model_path).is_file():
        raise errors.MissingInputError(f"{model_path}: missing (the train_fcn@face stage writes it)")
    try:
        clips, (packed, _) = read_split_clips(clips_dir, split), load_split(Path(clips_dir) / "face" / split)
        return clips, packed, load_model(model_path)
    except FileNotFoundError as e:
        raise errors.MissingInputError(str(e)) from None
    except ValueError as e:
        raise errors.BadInputError(str(e)) from None


def score_frames(model_path: Path, clips_dir: Path, masks: Path, record_path: Path, split: str, window: int,
                 threshold: float, device: str = "cpu") -> tuple[pd.DataFrame, np.ndarray]:
    """One row per frame of `split` (condition, kind, occlusion, both methods' per-frame mIoU) and the frames'
    confusion matrices (frames, 2, C, C): the FCN's, the hold oracle's.

    Raises:
        MissingInputError, BadInputError: an input missing or unusable (the message names it).
    """
    dev = resolve_device(device)
    clips, packed, model = _inputs(model_path, clips_dir, split)
    model = model.to(dev)
    record, boxes = K.read_record(record_path), K.crop_boxes(masks / "frames.csv")
    cms, rows = [], []
    for k, clip in enumerate(clips):
        names = clip["names"]
        rec = K.clip_record(record, names, record_path)
        deg = K.is_degraded(rec["transient"], rec["occlusion"], threshold)
        conds, src = K.frame_conditions(deg, window), K.hold_sources(deg)
        gts = [read_label_png(masks / "labels_orig" / f"{n}.png") for n in names]
        probs = fcn_probs(model, np.asarray(packed[k, :len(names)]), dev)
        fcn = [labels_at(probs[i], gt.shape) for i, gt in enumerate(gts)]
        hold = K.hold_labels(fcn, [boxes[n] for n in names], deg)
        for i, n in enumerate(names):
            cm = np.stack([confusion_matrix(gts[i], fcn[i], len(CLASS_NAMES)),
                           confusion_matrix(gts[i], hold[i], len(CLASS_NAMES))])
            cms.append(cm)
            miou = mean_iou(cm)
            transient, occlusion = rec["transient"].iloc[i], float(rec["occlusion"].iloc[i])
            rows.append({"name": n, "clip": k, "video": clip["video"], "category": clip["category"],
                         "step": i % window, "transient": transient, "occlusion": occlusion,
                         "kind": kind_of(transient, occlusion, threshold), "degraded": bool(deg[i]),
                         "condition": conds[i], "hold_from": i - src[i],
                         "fcn_miou": float(miou[0]), "hold_miou": float(miou[1])})
    return pd.DataFrame(rows), np.stack(cms)


def report(meta: pd.DataFrame, cms: np.ndarray, split: str, window: int, threshold: float, model: Path) -> dict:
    """Both methods overall, per condition, per kind of degradation and per category, and the headroom (the
    hold oracle's mIoU minus the FCN's)."""
    by_condition = K.condition_reports(meta["condition"], cms, METHODS)
    overall = by_condition["all"]
    return {"model": str(model), "split": split, "window": window, "occlusion_threshold": threshold,
            "frames": int(len(meta)), "degraded_frames": int(meta["degraded"].sum()),
            "transient_frames": int((meta["transient"] != "").sum()),
            "headroom": overall["hold"]["miou"] - overall["fcn"]["miou"], "conditions": by_condition,
            "kinds": reports_by(meta, cms, METHODS, "kind"), "categories": reports_by(meta, cms, METHODS, "category")}


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def summary(r: dict) -> str:
    """The report in a few lines and a markdown table per condition and kind."""
    fcn, hold = r["conditions"]["all"]["fcn"], r["conditions"]["all"]["hold"]
    share = 100 * r["degraded_frames"] / r["frames"]

    def classes(d: dict) -> str:
        return _pct(d["miou"]) + "  (" + ", ".join(f"{c} {_pct(d[c])}" for c in CLASS_NAMES[1:]) + ")"

    lines = [f"{r['split']} frames {r['frames']}, degraded {r['degraded_frames']} ({share:.1f} %; transient "
             f"{r['transient_frames']}, occlusion threshold {r['occlusion_threshold']}), window {r['window']}",
             "FCN  mIoU " + classes(fcn), "hold mIoU " + classes(hold),
             f"headroom (hold - FCN): {100 * r['headroom']:+.2f} points",
             "", "| condition / kind | frames | FCN mIoU | hold mIoU |", "|---|---|---|---|"]
    for name, d in [*r["conditions"].items(), *(("kind " + k, v) for k, v in r["kinds"].items())]:
        fcn, hold = (_pct(d[m] and d[m]["miou"]) for m in METHODS)
        lines.append(f"| {name} | {d['frames']} | {fcn} | {hold} |")
    return "\n".join(lines)
