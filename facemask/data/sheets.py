"""Contact sheets: images with their labels, tiled (the paper's Fig. 3 and 4; the evaluation's Fig. 5).
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from facemask.data.labels import PALETTE, classes_to_rgb, overlay


def fit_tile(img: np.ndarray, size: int, interpolation: int) -> np.ndarray:
    """Fit `img` into a size x size tile (aspect kept, black borders)."""
    h, w = img.shape[:2]
    s = size / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = cv2.resize(img, (nw, nh), interpolation=interpolation)
    tile = np.zeros((size, size) + img.shape[2:], img.dtype)
    y, x = (size - nh) // 2, (size - nw) // 2
    tile[y:y + nh, x:x + nw] = small
    return tile


def put_caption(tile: np.ndarray, text: str) -> None:
    for colour, thick in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(tile, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.36, colour, thick, cv2.LINE_AA)


def contact_sheet(items: Sequence[tuple[np.ndarray, np.ndarray, str]], tile: int = 128, columns: int = 8,
                  palette: Sequence[Sequence[int]] = PALETTE) -> np.ndarray:
    """A grid of crops with their labels, like the paper's Fig. 3 (faces) and Fig. 4 (eyes, mouths).

    Each item (BGR image, class ids, caption) becomes one column of three tiles: the image, the
    label in the paper's colours, and the label blended over the image with class edges.

    Returns:
        A BGR uint8 image (write it with ``cv2.imwrite``).
    """
    if not items:
        return np.zeros((tile, tile, 3), np.uint8)
    cols = []
    for image, label, text in items:
        img = fit_tile(image, tile, cv2.INTER_AREA)
        lab = fit_tile(np.asarray(label, np.uint8), tile, cv2.INTER_NEAREST)
        col_rgb = classes_to_rgb(lab, palette)[..., ::-1].copy()
        ov = overlay(img, lab, palette=palette)
        put_caption(img, text)
        cols.append(np.concatenate([img, col_rgb, ov], axis=0))
    rows = []
    for i in range(0, len(cols), columns):
        row = cols[i:i + columns]
        row += [np.zeros_like(cols[0])] * (columns - len(row)) if len(cols) > columns else []
        rows.append(np.concatenate([np.pad(c, ((0, 2), (0, 2), (0, 0)), constant_values=255) for c in row], axis=1))
    return np.concatenate(rows, axis=0)

