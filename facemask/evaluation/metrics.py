"""Evaluation measures of the paper (Sect. 4.2, 4.3) and one it lacks.

* IoU from a confusion matrix accumulated over the whole test set (`facemask.core.iou`); the mIoU is
  the mean over the facial classes, background excluded (Table 2's note).
* Significance against the baseline FCN: the paper groups its 80 test sequences in 10 and runs a paired test
  over the groups; here every interval and P value comes from one bootstrap over training seeds and test subjects
  (`facemask.evaluation.stats`, `facemask.evaluation.evidence`), since contiguous groups of clips share subjects.
* Temporal stability: how often a pixel's class flips between consecutive frames, for a prediction
  and for the ground truth (flicker is what video users notice; the paper does not measure it).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import cv2
import numpy as np
import pandas as pd

from facemask.core.iou import finite_or_none, iou_per_class, mean_iou
from facemask.data.labels import CLASS_NAMES, classes_to_rgb
from facemask.data.sheets import fit_tile, put_caption


def iou_report(cm: np.ndarray, names: Sequence[str] = CLASS_NAMES) -> dict[str, float | None]:
    """``{class: IoU, ..., "miou": mean}`` for the classes 1.. as fractions; None where undefined."""
    iou = iou_per_class(cm)
    out = {name: finite_or_none(v) for name, v in zip(names[1:], iou[1:])}
    out["miou"] = finite_or_none(mean_iou(cm))
    return out


def flips(prev: np.ndarray, cur: np.ndarray) -> tuple[int, int]:
    """(pixels whose class changed, pixels compared) from frame `prev` to frame `cur`.

    Consecutive crops of a video need not have the same size; `cur` is then resized to `prev`'s size
    (nearest neighbour), so a pixel is a position in the previous frame's crop.
    """
    if cur.shape != prev.shape:
        cur = cv2.resize(cur, (prev.shape[1], prev.shape[0]), interpolation=cv2.INTER_NEAREST)
    return int(np.count_nonzero(prev != cur)), int(prev.size)


def flip_rate(labels: Sequence[np.ndarray]) -> tuple[int, int]:
    """Flips and pixels compared over every consecutive pair of one sequence (counts, so they sum)."""
    n = m = 0
    for prev, cur in zip(labels[:-1], labels[1:]):
        f, p = flips(prev, cur)
        n, m = n + f, m + p
    return n, m


def stability_report(counts: Mapping[str, tuple[int, int]], truth: str = "ground_truth") -> dict:
    """Flip rates of every entry of `counts` ({name: (flips, pixels)}), and each method's ratio to the truth's.

    A ratio of 1 flickers as much as the ground truth moves; above 1, extra flicker.
    """
    rates = {k: (f / p if p else None) for k, (f, p) in counts.items()}
    ref = rates.get(truth)
    out = {"flip_rate": rates}
    out["ratio_to_ground_truth"] = {k: (r / ref if r is not None and ref else None)
                                    for k, r in rates.items() if k != truth}
    return out


def reports_by(meta, cms: np.ndarray, methods: Sequence[str], column: str | None = None) -> dict:
    """IoU reports per method (``{method: iou_report}``); with `column`, one such dict per value of it."""
    if column is None:
        total = cms.sum(0)
        return {m: iou_report(total[i]) for i, m in enumerate(methods)}
    out = {}
    for value, idx in meta.groupby(column, sort=True).indices.items():
        key = value.item() if hasattr(value, "item") else value
        out[str(key)] = {"frames": int(len(idx)), **reports_by(None, cms[idx], methods)}
    return out


def subject_table(meta, cms: np.ndarray, methods: Sequence[str]):
    """Per subject (video): frames, category, and the mean and standard deviation over its frames of
    each method's per-frame mIoU (the paper's Fig. 6; frames without any facial class are left out).
    A DataFrame sorted by subject."""
    miou = mean_iou(cms)  # per frame and method
    rows = []
    for video, idx in meta.groupby("video", sort=True).indices.items():
        row = {"subject": str(video), "category": int(meta["category"].iloc[idx[0]]), "frames": int(len(idx))}
        for i, m in enumerate(methods):
            v = miou[idx, i]
            v = v[np.isfinite(v)]
            row[f"{m}_mean"] = float(v.mean()) if v.size else float("nan")
            row[f"{m}_std"] = float(v.std()) if v.size else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def timestep_table(meta, cms: np.ndarray, methods: Sequence[str], baseline: str = "fcn"):
    """mIoU of each method over the frames at each position t = 1..T of their window, and each method's
    improvement over `baseline` there (Table 4). A DataFrame with one row per t."""
    b = list(methods).index(baseline)
    rows = []
    for step, idx in meta.groupby("step", sort=True).indices.items():
        total = cms[idx].sum(0)
        miou = [mean_iou(total[i]) for i in range(len(methods))]
        row = {"t": int(step) + 1, **{m: miou[i] for i, m in enumerate(methods)}}
        row.update({f"{m}_minus_{baseline}": miou[i] - miou[b] for i, m in enumerate(methods) if i != b})
        rows.append(row)
    return pd.DataFrame(rows)


def seeds_table(runs: Mapping[int, Mapping], methods: Sequence[str],
                classes: Sequence[str] = CLASS_NAMES[1:]) -> pd.DataFrame:
    """One row per (seed, method) with its ``miou`` and per-class IoU, from ``{seed: run record}``;
    methods a run lacks are left out."""
    rows = []
    for seed in sorted(runs):
        report = runs[seed]["eval"]
        for m in methods:
            if m in report:
                rows.append({"seed": int(seed), "method": m, "miou": report[m].get("miou"),
                             **{c: report[m].get(c) for c in classes}})
    return pd.DataFrame(rows, columns=["seed", "method", "miou", *classes])


def seeds_summary(runs: Mapping[int, Mapping], methods: Sequence[str]) -> dict:
    """Per method: the mean and sample standard deviation of the mIoU over the training seeds, and their number
    (a description; the intervals and P values: `facemask.evaluation.evidence.compare_runs`)."""
    out = {}
    for m in methods:
        vals = [runs[s]["eval"][m]["miou"] for s in sorted(runs) if m in runs[s]["eval"]
                and runs[s]["eval"][m].get("miou") is not None]
        out[m] = {"seeds": len(vals), "mean": finite_or_none(np.mean(vals)) if vals else None,
                  "std": finite_or_none(np.std(vals, ddof=1)) if len(vals) > 1 else None}
    return out


def comparison_figure(rows: Sequence[tuple[np.ndarray, np.ndarray, Mapping[str, np.ndarray], str]],
                      methods: Sequence[str], tile: int = 128) -> np.ndarray:
    """The paper's Fig. 5: one row per example frame, columns image, ground truth, then each method's mask.

    Args:
        rows: (BGR crop, ground-truth class ids, {method: class ids}, caption) per example.
        methods: the methods to show, in column order.
        tile: side of each cell in pixels.

    Returns a BGR uint8 image for ``cv2.imwrite``.
    """
    def mask(lab):
        return classes_to_rgb(fit_tile(np.asarray(lab, np.uint8), tile, cv2.INTER_NEAREST))[..., ::-1].copy()

    head = []
    for name in ("image", "ground truth", *methods):
        cell = np.full((18, tile, 3), 255, np.uint8)
        cv2.putText(cell, name, (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        head.append(cell)
    lines = [head]
    for image, gt, preds, caption in rows:
        img = fit_tile(image, tile, cv2.INTER_AREA)
        put_caption(img, caption)
        lines.append([img, mask(gt)] + [mask(preds[m]) for m in methods])
    pad = lambda c: np.pad(c, ((0, 2), (0, 2), (0, 0)), constant_values=255)  # noqa: E731
    return np.concatenate([np.concatenate([pad(c) for c in line], axis=1) for line in lines], axis=0)

