"""Confusion matrices and IoU: the arithmetic every layer scores with (training's validation, the evaluation).

IoU from a confusion matrix accumulated over a whole set of frames; the mIoU is the mean over the
facial classes, background excluded (the paper's Table 2 note).
"""
from __future__ import annotations

import math

import numpy as np


def confusion_matrix(gt: np.ndarray, pred: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) int64 counts; row = ground-truth class, column = predicted class.

    Raises:
        ValueError: the two maps differ in shape, or hold a class id outside 0..classes-1.
    """
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in shape")
    gt, pred = gt.ravel().astype(np.int64), pred.ravel().astype(np.int64)
    for name, a in (("ground truth", gt), ("prediction", pred)):
        if a.size and (a.min() < 0 or a.max() >= classes):
            raise ValueError(f"{name} holds class ids outside 0..{classes - 1} (min {a.min()}, max {a.max()})")
    return np.bincount(gt * classes + pred, minlength=classes * classes).reshape(classes, classes)


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """IoU = TP / (TP + FP + FN) of every class of a (..., C, C) confusion matrix; NaN for a class
    absent from both maps."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    union = cm.sum(-1) + cm.sum(-2) - tp
    return np.where(union > 0, tp / np.maximum(union, 1), np.nan)


def mean_iou(cm: np.ndarray):
    """Mean IoU over the classes 1.. (background excluded) of a (..., C, C) confusion matrix, ignoring
    classes absent from both maps; NaN where none is present. A float for one matrix."""
    iou = iou_per_class(cm)[..., 1:]
    n = np.isfinite(iou).sum(-1)
    out = np.where(n > 0, np.nansum(iou, -1) / np.maximum(n, 1), np.nan)
    return float(out) if out.ndim == 0 else out


def finite_or_none(x: float) -> float | None:
    """`x` as a float, or None where it is NaN or infinite (JSON has no NaN)."""
    return float(x) if x is not None and math.isfinite(x) else None

