"""Smooth outlines through the landmarks, as the 300VW-Mask labels draw them.

The labels join each contour piece with a not-a-knot cubic spline whose parameter is
the point index (data-facts: skin = jaw, brow 26..22, brow 21..17; eyes = upper lid
36..39 and lower lid 39,40,41,36; lips = 48..51, 51..54, 54..59,48; inner mouth =
60..64 and 64..67,60). Drawing the face along the same curves makes what is painted
the region that is labelled. Sampling a spline through uniformly spaced knots is
linear in the points, so each piece is one precomputed matrix.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from facemask.core.exact import matmul, spline_matrix
from facemask.data.ibug68 import OUTLINES

#: samples per landmark interval
DENSITY = 4

PIECES: dict[str, tuple[tuple[int, ...], ...]] = {
    **OUTLINES,  # the labelled regions' closed outlines
    # open curves used by the renderer
    "upper_lid_r": ((36, 37, 38, 39),),
    "lower_lid_r": ((39, 40, 41, 36),),
    "upper_lid_l": ((42, 43, 44, 45),),
    "lower_lid_l": ((45, 46, 47, 42),),
    "brow_r": ((17, 18, 19, 20, 21),),
    "brow_l": ((22, 23, 24, 25, 26),),
    "jaw": (tuple(range(0, 17)),),
    "upper_inner": ((60, 61, 62, 63, 64),),
    "upper_outer": ((48, 49, 50, 51), (51, 52, 53, 54)),
    "lower_inner": ((64, 65, 66, 67, 60),),
}


@lru_cache(maxsize=None)
def curve_matrix(name: str, density: int = DENSITY) -> np.ndarray:
    """(M, 68) matrix: the dense outline `name` is `curve_matrix(name) @ landmarks`."""
    blocks = []
    for k, piece in enumerate(PIECES[name]):
        m = np.zeros(((len(piece) - 1) * density + 1, 68))
        m[:, list(piece)] = spline_matrix(len(piece), density)
        # consecutive pieces share their end point: keep it once
        blocks.append(m[1:] if k and piece[0] == PIECES[name][k - 1][-1] else m)
    return np.concatenate(blocks, axis=0)


def curve(points: np.ndarray, name: str, density: int = DENSITY) -> np.ndarray:
    """The dense (M, 2) outline `name` through the (68, 2) landmarks (a fixed-order product: `exact.matmul`)."""
    return matmul(curve_matrix(name, density), points)


def to_cv(pts: np.ndarray, shift: int = 4) -> np.ndarray:
    """Float pixel coordinates -> int32 points for cv2 drawing with `shift` fractional bits."""
    return np.round(np.asarray(pts) * (1 << shift)).astype(np.int32)
