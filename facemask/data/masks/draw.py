"""Face masks from 68 landmarks and the authors' square crop.

The 300VW-Mask labels (Wang et al., IJCV 2019, Sect. 4.1; the authors' MATLAB scripts) are made
from the iBUG-68 landmarks of every frame:

* each contour piece is a cubic spline with not-a-knot ends whose parameter is the point index
  (`scipy.interpolate.CubicSpline(..., bc_type="not-a-knot")`), sampled finely;
* pieces break (are only C0) at the eye corners, the mouth corners and the upper-lip centre:
  skin = jaw 0..16, brow 26..22, brow 21..17 (the brows are the top edge: no forehead; the nose
  lies inside the skin); eyes = upper lid 36..39 + lower lid 39,40,41,36 (and 42..47 alike);
  lips = 48..51, 51..54, 54..59,48; inner mouth = 60..64, 64..67,60;
* the closed contours are filled in the order skin, eyes, lips, inner mouth, each over the
  previous one, so "lips" ends up the ring between the outer and the inner lip contour.

Filling uses the pixel-centre rule of MATLAB's ``poly2mask``: a pixel belongs to a region when its
centre lies inside the contour (even-odd rule, half-open at the edges), so a filled area equals the
contour's area up to the pixel grid. ``cv2.fillPoly`` instead also sets every pixel the outline
touches, which grows a region by about 0.7 px all round: +20 % on an eye 30 x 10 px wide.

The crop (`square_crop_box`): a square of side ``scale * mean(w, h)`` of the landmark box about its
centre, clipped to the frame; frame and mask are cropped alike and the evaluation works at that
crop's own resolution.

Class ids and label PNGs: `facemask.data.labels`; the masks stage's dataset: `facemask.data.masks.build`.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from facemask.core.exact import matmul, spline_matrix
from facemask.data.labels import EYES, INNER_MOUTH, LIPS, SKIN
from facemask.data.ibug68 import N_POINTS, OUTLINES


#: Fill order and contours: (class id, the closed outlines filled with it, `facemask.data.ibug68.OUTLINES`).
CONTOURS: tuple[tuple[int, tuple[tuple[tuple[int, ...], ...], ...]], ...] = (
    (SKIN, (OUTLINES["skin"],)),
    (EYES, (OUTLINES["eye_r"], OUTLINES["eye_l"])),
    (LIPS, (OUTLINES["lips"],)),
    (INNER_MOUTH, (OUTLINES["inner_mouth"],)),
)


#: Spline samples per pixel of the longest landmark interval's chord (at least 8 per interval).
_SAMPLES_PER_PX = 2.0
_MIN_PER_INTERVAL = 8


def spline_piece(points: np.ndarray) -> np.ndarray:
    """The not-a-knot cubic spline through (k, 2) points, parameter = point index, sampled finely.

    Every landmark interval gets ``max(8, ceil(2 x longest interval chord in px))`` samples, so
    consecutive samples lie about half a pixel apart or closer; the first and last points are
    included. Same result as ``CubicSpline(arange(k), points, bc_type="not-a-knot")(s)``, with
    the spline's (linear) dependence on the points precomputed per (k, samples), and the product summed
    in a fixed order (`facemask.core.exact.matmul`: the labels' bytes do not depend on the CPU's BLAS).
    """
    points = np.asarray(points, dtype=np.float64)
    k = len(points)
    chord = float(np.sqrt((np.diff(points, axis=0) ** 2).sum(1)).max())
    per = max(_MIN_PER_INTERVAL, math.ceil(_SAMPLES_PER_PX * chord))
    return matmul(spline_matrix(k, per), points)


def contour(points: np.ndarray, pieces: Sequence[Sequence[int]]) -> np.ndarray:
    """The closed outline (M, 2) through `pieces` of the (68, 2) landmarks, one spline per piece."""
    parts = [spline_piece(points[list(p)]) for p in pieces]
    # drop each piece's last sample: it repeats the next piece's first point (the polygon closes itself)
    return np.concatenate([p[:-1] for p in parts], axis=0)


def fill_polygon(mask: np.ndarray, polygon: np.ndarray, value: int) -> np.ndarray:
    """Set the pixels of `mask` whose centres lie inside `polygon` to `value`, in place.

    Pixel (row i, column j) has its centre at (x, y) = (j, i). Inside is the even-odd rule,
    half-open like MATLAB's poly2mask: a row's crossings x_a < x_b fill the centres j with
    x_a <= j < x_b (so two polygons sharing an edge never both claim a pixel).
    """
    h, w = mask.shape
    poly = np.asarray(polygon, dtype=np.float64)
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    top, bottom = max(0, math.ceil(y0.min())), min(h - 1, math.floor(y0.max()))
    if top > bottom:
        return mask
    rows = np.arange(top, bottom + 1, dtype=np.float64)[:, None]
    crosses = (y0 <= rows) != (y1 <= rows)  # (R, E): edge spans the row's centre line (half-open)
    r, e = np.nonzero(crosses)
    if r.size == 0:
        return mask
    ya, yb, xa, xb = y0[e], y1[e], x0[e], x1[e]
    x = xa + (rows[r, 0] - ya) * (xb - xa) / (yb - ya)
    # a crossing at x toggles inside/outside from pixel ceil(x) on: parity of the running count,
    # over the columns the polygon spans only
    left, right = max(0, math.ceil(x0.min())), min(w, math.floor(x0.max()) + 1)
    if left >= right:
        return mask
    span = right - left
    col = np.clip(np.ceil(x) - left, 0, span).astype(np.int64)
    toggles = np.bincount(r * (span + 1) + col, minlength=len(rows) * (span + 1)).reshape(len(rows), span + 1)
    inside = (np.cumsum(toggles[:, :span], axis=1) & 1).astype(bool)
    mask[top:bottom + 1, left:right][inside] = value
    return mask


def _check_points(points) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (N_POINTS, 2):
        raise ValueError(f"landmarks must be ({N_POINTS}, 2), got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("landmarks hold NaN or infinite coordinates")
    return points


def landmarks_to_mask(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """The 5-class face mask of one frame from its 68 landmarks (the 300VW-Mask labels).

    Args:
        points: (68, 2) float, 0-based pixel coordinates (x, y) of the iBUG-68 landmarks.
        height, width: size of the mask; landmarks outside it are fine (the mask is clipped).

    Returns:
        (height, width) uint8 class ids: 0 background, 1 skin, 2 eyes, 3 lips, 4 inner mouth.

    Raises:
        ValueError: points of the wrong shape, or not finite.
    """
    points = _check_points(points)
    mask = np.zeros((int(height), int(width)), dtype=np.uint8)
    for cls, contours in CONTOURS:
        for pieces in contours:
            fill_polygon(mask, contour(points, pieces), cls)
    return mask


def square_crop_box(points: np.ndarray, frame_h: int, frame_w: int, scale: float = 1.3) -> tuple[int, int, int, int]:
    """The authors' face crop: a square of side ``scale * mean(w, h)`` of the landmark box, clipped.

    (w, h) is the size of the points' bounding box (max - min, in pixels). The square holds
    ``side = max(1, round(scale * (w + h) / 2))`` pixels a side and is placed so that its centre,
    ``x0 + (side - 1) / 2`` in pixel-centre coordinates, is the box centre rounded to the nearest
    half pixel: ``x0 = floor(cx - (side - 1) / 2 + 0.5)`` (likewise y0). It is then clipped to the
    frame, so at a border the crop is no longer square.

    Args:
        points: (N, 2) 0-based pixel coordinates (x, y); any N >= 1 (e.g. 68 landmarks, or the two
            corners of a box).
        frame_h, frame_w: frame size.
        scale: side / mean(w, h) (params ``masks.crop_scale``; the authors: 1.3).

    Returns:
        (x0, y0, x1, y1) ints, end-exclusive: the crop is ``frame[y0:y1, x0:x1]``.

    Raises:
        ValueError: points not finite, or the square lies entirely outside the frame.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if not np.isfinite(points).all():
        raise ValueError("crop: points hold NaN or infinite coordinates")
    (xmin, ymin), (xmax, ymax) = points.min(axis=0), points.max(axis=0)
    side = max(1, int(math.floor(scale * ((xmax - xmin) + (ymax - ymin)) / 2 + 0.5)))
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    x0 = int(math.floor(cx - (side - 1) / 2 + 0.5))
    y0 = int(math.floor(cy - (side - 1) / 2 + 0.5))
    box = (max(0, x0), max(0, y0), min(int(frame_w), x0 + side), min(int(frame_h), y0 + side))
    if box[0] >= box[2] or box[1] >= box[3]:
        raise ValueError(f"crop: the square {(x0, y0, x0 + side, y0 + side)} lies outside the "
                         f"{frame_w}x{frame_h} frame")
    return box

