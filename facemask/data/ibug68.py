"""iBUG 68-point landmarks: `.pts` files and the named point groups.

300VW annotates every frame with 68 points in a small text format (``version: 1``,
``n_points: 68``, the points between braces). Coordinates there follow the MATLAB
convention, where the centre of the top-left pixel is (1, 1); in memory this package
always uses 0-based pixel coordinates, so reading subtracts 1 and writing adds 1.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from facemask.core.errors import InputError
from facemask.core.io import atomic_write_text

N_POINTS = 68

#: 0-based index ranges of the iBUG-68 groups (end exclusive).
GROUPS: dict[str, range] = {
    "jaw": range(0, 17),
    "right_brow": range(17, 22),
    "left_brow": range(22, 27),
    "nose": range(27, 36),
    "right_eye": range(36, 42),
    "left_eye": range(42, 48),
    "outer_lips": range(48, 60),
    "inner_lips": range(60, 68),
}


#: The closed outlines of the label regions as the authors' scripts draw them (reference/data-facts.md):
#: spline pieces of 0-based landmark indices; consecutive pieces share their end point (a C0 corner).
#: The masks (`facemask.data.masks.draw`) fill them; the synthetic renderer paints along them.
OUTLINES: dict[str, tuple[tuple[int, ...], ...]] = {
    "skin": (tuple(range(0, 17)), tuple(range(26, 21, -1)), tuple(range(21, 16, -1))),
    "eye_r": ((36, 37, 38, 39), (39, 40, 41, 36)),
    "eye_l": ((42, 43, 44, 45), (45, 46, 47, 42)),
    "lips": ((48, 49, 50, 51), (51, 52, 53, 54), (54, 55, 56, 57, 58, 59, 48)),
    "inner_mouth": ((60, 61, 62, 63, 64), (64, 65, 66, 67, 60)),
}


class PtsError(InputError, ValueError):
    """A `.pts` file that cannot be read; the message names the file and the reason."""


def read_pts(path: str | Path, n_points: int = N_POINTS) -> np.ndarray:
    """Read a `.pts` file into a (n_points, 2) float64 array of 0-based pixel coordinates.

    Raises:
        PtsError: the header, the point count or a coordinate is wrong; names the file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii", errors="strict")
    except (OSError, UnicodeDecodeError) as e:
        raise PtsError(f"{path}: cannot read .pts file ({e})") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    try:
        start, end = lines.index("{"), lines.index("}")
    except ValueError:
        raise PtsError(f"{path}: not a .pts file (no '{{' ... '}}' block)") from None
    header = {}
    for ln in lines[:start]:
        key, _, value = ln.partition(":")
        header[key.strip()] = value.strip()
    declared = header.get("n_points")
    body = lines[start + 1 : end]
    if declared is not None and declared != str(len(body)):
        raise PtsError(f"{path}: header says n_points {declared} but {len(body)} points follow")
    if len(body) != n_points:
        raise PtsError(f"{path}: expected {n_points} points, found {len(body)}")
    pts = np.empty((n_points, 2), dtype=np.float64)
    for i, ln in enumerate(body):
        parts = ln.split()
        try:
            if len(parts) != 2:
                raise ValueError
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise PtsError(f"{path}: point {i + 1} is not two numbers: {ln!r}") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise PtsError(f"{path}: point {i + 1} is not finite: {ln!r}")
        pts[i] = (x - 1.0, y - 1.0)
    return pts


def format_pts(points: np.ndarray) -> str:
    """The text of a `.pts` file for (N, 2) 0-based points (written 1-based)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must be (N, 2), got {points.shape}")
    rows = "\n".join(f"{x + 1.0:.3f} {y + 1.0:.3f}" for x, y in points)
    return f"version: 1\nn_points:  {len(points)}\n{{\n{rows}\n}}\n"


def write_pts(path: str | Path, points: np.ndarray) -> None:
    """Write (N, 2) 0-based points as a 300VW `.pts` file (1-based coordinates), atomically."""
    atomic_write_text(Path(path), format_pts(points))
