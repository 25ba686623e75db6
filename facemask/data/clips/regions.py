"""Zoom boxes of the eye and mouth sub-datasets, and the packing of one frame for a region.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import cv2
import numpy as np

from facemask.data.labels import REGION_CLASS_IDS, REGIONS, remap_labels


#: The zoomed regions of the cascade (Sect. 3.3), in the order it merges them.
ZOOM_REGIONS = ("eyes", "mouth")
#: Width / height of the zoom boxes (the shorter side is grown to it).
DEFAULT_ASPECT = {"eyes": 2.0, "mouth": 1.0}


#: Where a region sits in the face box (classes 1-4) when a window holds none of its pixels
#: (e.g. a predicted mask that missed it): centre (x, y) and size (w, h) as shares of the face box,
#: the medians over the synthetic 300VW-Mask labels (the face box spans brows to chin).
FALLBACK = {"eyes": (0.5, 0.16, 0.61, 0.08), "mouth": (0.5, 0.66, 0.41, 0.20)}


#: Zoom box settings of the default params.yaml (``clips.zoom.<region>``; ``aspect`` defaults in `zoom_box`).
DEFAULT_ZOOM = {"eyes": {"margin": 0.35}, "mouth": {"margin": 0.3}}
#: Zoom boxes are at least this many pixels a side.
MIN_BOX = 4


_REGION_CODE = {"face": 0, "eyes": 1, "mouth": 2}


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
    what a region's `facemask.data.clips.store.SplitView` returns for the clip.
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
